"""`quotatool scan --rules`: what each rule would free, the same numbers the dry run plans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner, Result

from quotatool.cli.app import app
from tests.cli.test_clean import ENV, EXAMPLE, clean


def scan(*args: str) -> Result:
    return CliRunner().invoke(app, ["scan", *args], env=ENV)


def _json(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def test_reclaimable_is_the_dry_run_plan_of_the_same_scan(sample: Path) -> None:
    doc = _json(scan(f"maildir:{sample}", "--rules", str(EXAMPLE), "--json"))
    freed = doc["reclaimable"]
    # The plan clean --dry-run makes at the scan's own time gives the same numbers, rule by rule.
    args = ["--rules", str(EXAMPLE), "--dry-run", "--json", "--now", doc["scanned_at"]]
    plan = _json(clean(f"maildir:{sample}", *args))
    assert freed == plan["summary"]["by_rule"]
    assert sum(r["frees_bytes"] for r in freed) == plan["summary"]["frees_bytes"]
    assert any(r["frees_bytes"] > 0 for r in freed), freed
    assert [r["rule"] for r in freed] == [r["rule"] for r in plan["summary"]["by_rule"]]


def test_prometheus_carries_one_reclaimable_sample_per_rule(sample: Path) -> None:
    doc = _json(scan(f"maildir:{sample}", "--rules", str(EXAMPLE), "--json"))
    expected = {r["rule"]: r["frees_bytes"] for r in doc["reclaimable"]}
    result = scan(f"maildir:{sample}", "--rules", str(EXAMPLE), "--format", "prometheus")
    assert result.exit_code == 0, result.output
    families = {f.name: f for f in text_string_to_metric_families(result.stdout)}
    samples = families["quotatool_reclaimable_bytes"].samples
    assert {s.labels["rule"]: s.value for s in samples} == expected
    assert {s.labels["account"] for s in samples} == {f"maildir:{sample}"}


def test_the_table_lists_every_rule_and_the_total(sample: Path) -> None:
    doc = _json(scan(f"maildir:{sample}", "--rules", str(EXAMPLE), "--json"))
    result = scan(f"maildir:{sample}", "--rules", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    section = result.stdout[result.stdout.index("What the rules would free") :]
    for r in doc["reclaimable"]:
        assert r["rule"] in section
    assert "Total" in section


def test_without_rules_there_is_no_reclaimable_output(sample: Path) -> None:
    doc = _json(scan(f"maildir:{sample}", "--json"))
    assert "reclaimable" not in doc
    result = scan(f"maildir:{sample}", "--format", "prometheus")
    families = {f.name: f for f in text_string_to_metric_families(result.stdout)}
    assert "quotatool_reclaimable_bytes" not in families  # a family without samples is left out
    assert families["quotatool_folder_size_bytes"].samples
    assert "What the rules would free" not in scan(f"maildir:{sample}").stdout


def test_a_broken_rules_file_is_one_error_line_before_anything_is_read(
    sample: Path, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('version = 1\n\n[[rule]]\nname = "x"\naction = "delete"\nolder_then = "1y"\n')
    result = scan(f"maildir:{tmp_path / 'missing'}", "--rules", str(rules), "--json")
    assert result.exit_code == 4, result.output
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.output
    assert lines[0].startswith("quotatool: error: ")
    assert f'{rules}:6: rule "x": older_then: unknown key' in lines[0], lines
