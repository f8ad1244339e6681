"""`quotatool rules check` and `quotatool rules explain` through the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from quotatool.adapters.maildir import MaildirSource
from quotatool.cli.app import app
from quotatool.config.rules_file import load_rules
from quotatool.core.plan import build_plan
from quotatool.services.plan import explain_message
from quotatool.services.scan import scan

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "rules.example.toml"
NOW = "2026-06-01"
NOW_TS = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp())
ENV = {"NO_COLOR": "1", "COLUMNS": "200", "XDG_CONFIG_HOME": "/nonexistent"}


def rules(*args: str) -> Result:
    return CliRunner().invoke(app, ["rules", *args], env=ENV)


def stderr_lines(result: Result) -> list[str]:
    assert "Traceback" not in result.output
    return [line for line in result.stderr.splitlines() if line.strip()]


# -- check ---------------------------------------------------------------------------------------


def test_check_accepts_the_example_and_lists_its_rules() -> None:
    result = rules("check", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"{EXAMPLE}: ok, 4 rules"
    text = EXAMPLE.read_text(encoding="utf-8").splitlines()
    for line, name in zip(
        lines[1:],
        ["old newsletters", "empty trash", "offload big attachments", "archive old mail"],
        strict=True,
    ):
        where, _, rest = line.strip().partition(": ")
        assert rest.startswith(f"{name}: ")
        number = int(where.rsplit(":", 1)[1])
        assert text[number - 1].strip() == "[[rule]]"
    assert result.stderr == ""


def test_check_broken_names_file_line_rule_and_key_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        "version = 1\n"
        "\n"
        "[[rule]]\n"
        'name = "keep"\n'
        'action = "delete"\n'
        'older_than = "5y"\n'
        "\n"
        "[[rule]]\n"
        'name = "old news"\n'
        'folders = ["News"]\n'
        'older_than = "3 months"\n'
        'action = "delete"\n'
    )
    result = rules("check", str(path))
    assert result.exit_code == 4
    assert result.stdout == ""
    lines = stderr_lines(result)
    assert lines[0] == (
        f'quotatool: error: {path}:11: rule "old news": older_than: '
        "expected a duration like 90d or 2y, got '3 months'"
    )
    assert lines[1:] == ["hint: months vary in length; write days or weeks, e.g. 90d"]


def test_check_unknown_key_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('version = 1\n[[rule]]\nname = "x"\nlarger_then = "5MB"\naction = "delete"\n')
    result = rules("check", str(path))
    assert result.exit_code == 4
    assert stderr_lines(result)[0] == (
        f'quotatool: error: {path}:4: rule "x": larger_then: unknown key '
        "(did you mean larger_than?)"
    )


def test_check_toml_syntax_error_keeps_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('version = 1\n[[rule]]\nname = "x"\naction = delete\n')
    result = rules("check", str(path))
    assert result.exit_code == 4
    lines = stderr_lines(result)
    assert len(lines) == 1
    assert lines[0].startswith(f"quotatool: error: {path}:4:10: invalid TOML: ")


def test_check_missing_file(tmp_path: Path) -> None:
    result = rules("check", str(tmp_path / "nope.toml"))
    assert result.exit_code == 4
    assert stderr_lines(result)[0] == (
        f"quotatool: error: rules file {tmp_path / 'nope.toml'} does not exist"
    )


# -- explain -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plan_doc(sample: Path) -> dict[str, Any]:
    result = CliRunner().invoke(
        app,
        [
            "clean",
            f"maildir:{sample}",
            "--rules",
            str(EXAMPLE),
            "--dry-run",
            "--json",
            "--now",
            NOW,
        ],
        env=ENV,
    )
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def explain(sample: Path, uid: str, *extra: str) -> Result:
    return rules(
        "explain", f"maildir:{sample}", "--rules", str(EXAMPLE), "--uid", uid, "--now", NOW, *extra
    )


def test_explain_a_deleted_message_names_the_rule_and_the_bytes(
    sample: Path, plan_doc: dict[str, Any]
) -> None:
    action = next(a for a in plan_doc["actions"] if a["rule"] == "empty trash")
    result = explain(sample, f"{action['folder']}:{action['uid']}")
    assert result.exit_code == 0, result.output
    out = result.stdout
    rows = {line.split()[1]: line for line in out.splitlines() if "rules.example.toml:" in line}
    assert rows.keys() == {"old", "empty", "offload", "archive"}
    assert "matches" in rows["empty"]
    assert "is not selected" in rows["old"]
    size = next(a for a in plan_doc["actions"] if a["uid"] == action["uid"])["size"]
    assert out.splitlines()[-1].startswith('Verdict: rule "empty trash" would delete it, freeing ')
    assert size > 0


def test_explain_keep_newest_per_sender_says_the_message_is_kept(
    sample: Path, plan_doc: dict[str, Any]
) -> None:
    kept = plan_doc["skipped"][0]
    assert kept["reason"].startswith("kept:")
    result = explain(sample, f"{kept['folder']}:{kept['uid']}", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["schema"] == "quotatool.explain/1"
    assert doc["message"]["uid"] == kept["uid"]
    assert doc["action"] is None
    assert doc["skipped"] == {"rule": kept["rule"], "reason": kept["reason"]}
    assert doc["rules"][0]["rule"] == kept["rule"]
    assert doc["rules"][0]["matched"] is True
    text = explain(sample, f"{kept['folder']}:{kept['uid']}").stdout
    assert f'Verdict: rule "{kept["rule"]}" claims it but leaves it alone: kept:' in text


def test_explain_agrees_with_the_plan_for_every_message(
    sample: Path, plan_doc: dict[str, Any]
) -> None:
    # The service behind `rules explain`, for each message of every folder: the verdict is the
    # plan's, including keep_newest, which needs the other messages of the folder or sender.
    ruleset = load_rules(EXAMPLE)
    source = MaildirSource(sample)
    inventory = scan(source, now=NOW_TS)
    plan = build_plan(inventory, ruleset, now=NOW_TS, rules_file=str(EXAMPLE), account="x")
    planned = {(a.folder, a.uid): a.rule for a in plan.actions}
    skipped = {(k.folder, k.uid): k.rule for k in plan.skipped}
    checked = 0
    for fs in inventory.folders:
        for m in fs.messages[::80]:
            v = explain_message(
                source,
                ruleset,
                folder=fs.status.name,
                uid=m.uid,
                now=NOW_TS,
                rules_file=str(EXAMPLE),
                account="x",
            )
            key = (fs.status.name, m.uid)
            assert (v.action.rule if v.action else None) == planned.get(key), key
            assert (v.skipped.rule if v.skipped else None) == skipped.get(key), key
            assert v.claimed_by == (planned.get(key) or skipped.get(key)), key
            checked += 1
    for k in plan.skipped[:3]:
        v = explain_message(
            source,
            ruleset,
            folder=k.folder,
            uid=k.uid,
            now=NOW_TS,
            rules_file=str(EXAMPLE),
            account="x",
        )
        assert v.skipped is not None
        assert v.skipped.reason == k.reason
        assert v.scanned_folders == len(inventory.folders)  # per = "sender": every folder
    assert checked >= 10


def test_explain_a_message_no_rule_matches(sample: Path, plan_doc: dict[str, Any]) -> None:
    claimed = {(a["folder"], a["uid"]) for a in plan_doc["actions"] + plan_doc["skipped"]}
    uid = next(u for u in range(1, 10_000) if ("INBOX", u) not in claimed)
    result = explain(sample, f"inbox:{uid}")  # INBOX is case-insensitive
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "Verdict: no rule matches; the message stays."


@pytest.mark.parametrize(
    ("uid", "code", "message"),
    [
        ("INBOX", 2, "--uid: expected FOLDER:UID like INBOX:1234, got 'INBOX'"),
        ("INBOX:x", 2, "--uid: expected FOLDER:UID like INBOX:1234, got 'INBOX:x'"),
        (":5", 2, "--uid: expected FOLDER:UID like INBOX:1234, got ':5'"),
        ("INBOX:999999", 9, "folder 'INBOX' has no message with UID 999999"),
        ("No such:1", 9, "folder 'No such' does not exist"),
        ("[Gmail]/*:1", 9, "folder '[Gmail]/*' does not exist"),
    ],
)
def test_explain_errors_are_one_line(sample: Path, uid: str, code: int, message: str) -> None:
    result = explain(sample, uid)
    assert result.exit_code == code
    lines = stderr_lines(result)
    assert lines[0] == f"quotatool: error: {message}"
    assert all(line.startswith("hint: ") for line in lines[1:])
