"""`quotatool demo`: the scan report and the dry run of rules.example.toml on the sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quotatool.cli.app import app
from quotatool.cli.demo import example_rules_text

ROOT = Path(__file__).resolve().parents[2]
ENV = {"NO_COLOR": "1", "COLUMNS": "200", "XDG_CONFIG_HOME": "/nonexistent"}
NOW = "2026-06-01"


def test_the_packaged_example_is_byte_identical_to_the_repository_one() -> None:
    packaged = ROOT / "quotatool" / "data" / "rules.example.toml"
    top = ROOT / "rules.example.toml"
    assert packaged.read_bytes() == top.read_bytes()
    assert example_rules_text().encode("utf-8") == top.read_bytes()


def test_demo_shows_the_scan_then_the_plan(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--path", str(tmp_path / "M"), "--now", NOW], env=ENV)
    assert result.exit_code == 0, result.output
    out = result.stdout
    scan_at = out.index("Mailbox usage of maildir:")
    plan_at = out.index("Plan for maildir:")
    assert scan_at < plan_at
    assert "Folders, largest first" in out[:plan_at]
    plan_part = out[plan_at:]
    assert "with rules rules.example.toml" in plan_part
    for rule in ("old newsletters", "empty trash", "offload big attachments", "archive old mail"):
        assert any(line.startswith(rule + " ") for line in plan_part.splitlines()), rule
    assert "* archive to a folder in the same quota root frees nothing" in plan_part
    assert "Traceback" not in result.output


def test_demo_json_is_one_document_with_scan_and_plan(tmp_path: Path) -> None:
    maildir = tmp_path / "M"
    result = CliRunner().invoke(
        app, ["demo", "--path", str(maildir), "--now", NOW, "--json"], env=ENV
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # one document, nothing else on stdout
    assert list(doc) == ["schema", "scan", "plan"]
    assert doc["schema"] == "quotatool.demo/1"
    assert doc["scan"]["schema"] == "quotatool.scan/1"
    assert doc["plan"]["schema"] == "quotatool.plan/1"
    assert doc["plan"]["rules_file"] == "rules.example.toml"
    assert doc["plan"]["created_at"] == "2026-06-01T00:00:00Z"
    assert doc["scan"]["totals"]["messages"] > doc["plan"]["summary"]["messages"] > 0
    # The demo's plan is exactly what `clean --dry-run` plans for the same Maildir.
    clean = CliRunner().invoke(
        app,
        [
            "clean",
            f"maildir:{maildir}",
            "--rules",
            str(ROOT / "rules.example.toml"),
            "--dry-run",
            "--json",
            "--now",
            NOW,
        ],
        env=ENV,
    )
    assert clean.exit_code == 0, clean.output
    plan = json.loads(clean.stdout)
    assert doc["plan"]["actions"] == plan["actions"]
    assert doc["plan"]["summary"] == plan["summary"]


@pytest.mark.parametrize("now", ["2026-13-01", "tomorrow"])
def test_demo_bad_now_is_a_usage_error(tmp_path: Path, now: str) -> None:
    result = CliRunner().invoke(app, ["demo", "--path", str(tmp_path / "M"), "--now", now], env=ENV)
    assert result.exit_code == 2
    assert result.stderr.startswith("quotatool: error: --now: expected a date like 2026-11-28")
    assert result.stdout == ""
