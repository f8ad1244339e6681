"""`quotatool clean --dry-run` through the command line, on local Maildirs (no server)."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from quotatool.cli.app import app
from quotatool.core.plan import plan_from_json, plan_to_json

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "rules.example.toml"
NOW = "2026-06-01"
NOW_TS = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp())
DAY = 86400
ENV = {"NO_COLOR": "1", "COLUMNS": "200", "XDG_CONFIG_HOME": "/nonexistent"}


def clean(*args: str) -> Result:
    return CliRunner().invoke(app, ["clean", *args], env=ENV)


def dry_run(maildir: Path, *extra: str, rules: Path = EXAMPLE) -> Result:
    return clean(f"maildir:{maildir}", "--rules", str(rules), "--dry-run", "--now", NOW, *extra)


def plan_json(maildir: Path, *extra: str, rules: Path = EXAMPLE) -> dict[str, Any]:
    result = dry_run(maildir, "--json", *extra, rules=rules)
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def error_lines(result: Result) -> list[str]:
    assert "Traceback" not in result.output
    return [line for line in result.stderr.splitlines() if line.strip()]


def write_maildir(root: Path, messages: list[tuple[str, bytes, int, str]]) -> Path:
    """Write (folder, raw, mtime, info flags) as Maildir++ files; "" is INBOX."""
    for n, (folder, raw, mtime, flags) in enumerate(messages, start=1):
        base = root / (f".{folder}" if folder else "")
        for sub in ("cur", "new", "tmp"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        path = base / "cur" / f"{1_600_000_000 + n}.M{n}P1.test:2,{flags}"
        path.write_bytes(raw)
        os.utime(path, (mtime, mtime))
    return root


def raw_message(subject: str, sender: str = "a@example.org", body: str = "hello\n") -> bytes:
    return (
        f"From: {sender}\nTo: me@example.org\nSubject: {subject}\n"
        f"Message-ID: <{abs(hash(subject))}@example.org>\n\n{body}"
    ).encode()


# -- the real run is not here yet ----------------------------------------------------------------


def test_without_dry_run_a_local_source_is_a_usage_error_naming_the_fix(sample: Path) -> None:
    result = clean(f"maildir:{sample}", "--rules", str(EXAMPLE))
    assert result.exit_code == 2
    assert error_lines(result) == [
        f"quotatool: error: maildir:{sample}: the real run changes IMAP accounts only",
        "hint: add --dry-run to see the plan for a local Maildir or mbox",
    ]
    assert result.stdout == ""


def test_without_dry_run_refuses_before_reading_the_rules(tmp_path: Path) -> None:
    # Even a missing rules file is not looked at: a local source is refused first.
    result = clean("maildir:/nonexistent", "--rules", str(tmp_path / "missing.toml"))
    assert result.exit_code == 2


# -- the table -----------------------------------------------------------------------------------


def test_dry_run_table_shows_rules_folders_total_and_the_same_root_note(sample: Path) -> None:
    doc = plan_json(sample)
    result = dry_run(sample)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Dry run: nothing has been changed." in out
    for r in doc["summary"]["by_rule"]:
        row = next(line for line in out.splitlines() if line.startswith(r["rule"] + " "))
        assert r["action"] in row
        assert f"{r['messages']:,}" in row.split()
    total = next(line for line in out.splitlines() if line.startswith("Total"))
    assert f"{doc['summary']['messages']:,}" in total.split()
    for f in doc["summary"]["by_folder"]:
        assert any(line.startswith(f["folder"] + " ") for line in out.splitlines()), f
    # The example archives to Archive/{year}: in the same quota root that frees nothing.
    archive_row = next(line for line in out.splitlines() if line.startswith("archive old mail"))
    assert "0 Bytes*" in archive_row
    assert "* archive to a folder in the same quota root frees nothing" in out
    assert "12 × old newsletters: kept: one of the 3 newest per sender" in out


def test_explain_lists_every_planned_and_every_left_alone_message(sample: Path) -> None:
    doc = plan_json(sample)
    out = dry_run(sample, "--explain").stdout
    listed = out.split("Every planned message", 1)[1]
    planned, left_alone = listed.split("Matched but left alone", 1)
    rows = [line.split() for line in planned.splitlines()[3:] if line.strip()]
    assert [(r[0], int(r[1])) for r in rows] == [(a["folder"], a["uid"]) for a in doc["actions"]]
    kept = [line.split() for line in left_alone.splitlines()[3:] if line.strip()]
    assert [(r[0], int(r[1])) for r in kept] == [(k["folder"], k["uid"]) for k in doc["skipped"]]


def test_user_text_is_printed_as_text_never_as_markup(tmp_path: Path) -> None:
    old = NOW_TS - 400 * DAY
    maildir = write_maildir(
        tmp_path / "Maildir",
        [
            ("", raw_message("[urgent] invoice [bold]x[/bold]"), old, "S"),
            ("[archive]", raw_message("[b]plain[/b]"), old, "S"),
        ],
    )
    rules = tmp_path / "rules.toml"
    rules.write_text(
        'version = 1\n[[rule]]\nname = "[old] stuff"\nolder_than = "1y"\naction = "delete"\n'
    )
    result = dry_run(maildir, "--explain", rules=rules)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "[urgent] invoice [bold]x[/bold]" in out
    assert "[archive]" in out
    assert "[b]plain[/b]" in out
    assert out.count("[old] stuff") >= 3  # by rule, and once per planned message


# -- JSON and the saved plan ---------------------------------------------------------------------

ACTION_KEYS = {"rule", "action", "folder", "uidvalidity", "uid", "size", "frees_bytes", "modseq"}


def test_json_has_the_schema_keys_and_sums_that_add_up(sample: Path) -> None:
    doc = plan_json(sample)
    assert doc["schema"] == "quotatool.plan/1"
    assert {"target", "rules_file", "created_at", "quota", "actions", "summary"} <= set(doc)
    assert doc["target"] == f"maildir:{sample}"
    assert doc["rules_file"] == str(EXAMPLE)
    assert doc["created_at"] == "2026-06-01T00:00:00Z"
    assert doc["quota"] is None  # a Maildir reports no quota
    assert doc["actions"]
    for a in doc["actions"]:
        assert set(a) >= ACTION_KEYS, a
        if a["action"] == "archive":
            assert a["destination"].startswith("Archive/")
            assert a["frees_bytes"] == 0
        if a["action"] == "offload":
            assert a["parts"]
            assert a["store"].startswith("file://")
            assert 0 < a["frees_bytes"] < a["size"]
        if a["action"] == "delete":
            assert a["frees_bytes"] == a["size"]
    s = doc["summary"]
    assert s["messages"] == len(doc["actions"])
    assert s["frees_bytes"] == sum(a["frees_bytes"] for a in doc["actions"])
    assert [r["rule"] for r in s["by_rule"]] == [
        "old newsletters",
        "empty trash",
        "offload big attachments",
        "archive old mail",
    ]
    for r in s["by_rule"]:
        mine = [a for a in doc["actions"] if a["rule"] == r["rule"]]
        assert {"rule", "action", "messages", "frees_bytes"} <= set(r)
        assert r["messages"] == len(mine)
        assert r["frees_bytes"] == sum(a["frees_bytes"] for a in mine)
        assert {a["action"] for a in mine} <= {r["action"]}
    keys = [(a["folder"], a["uid"]) for a in doc["actions"]]
    assert len(keys) == len(set(keys))


def test_save_plan_writes_the_same_json_privately(sample: Path, tmp_path: Path) -> None:
    target = tmp_path / "plan.json"
    result = dry_run(sample, "--json", "--save-plan", str(target))
    assert result.exit_code == 0, result.output
    saved = target.read_text(encoding="utf-8")
    assert saved == result.stdout
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    # The real run reads it back: the document round-trips to the same bytes.
    assert plan_to_json(plan_from_json(saved)) == saved
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind


def test_save_plan_with_the_table_says_where_it_went(sample: Path, tmp_path: Path) -> None:
    target = tmp_path / "plan.json"
    result = dry_run(sample, "--save-plan", str(target))
    assert result.exit_code == 0, result.output
    assert "Plan for " in result.stdout
    assert f"Plan saved to {target}." in result.stderr
    assert json.loads(target.read_text())["summary"] == plan_json(sample)["summary"]


def test_save_plan_replaces_a_symlink_instead_of_writing_through_it(
    sample: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    link = tmp_path / "plan.json"
    link.symlink_to(victim)
    result = dry_run(sample, "--save-plan", str(link))
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "keep me\n"
    assert not link.is_symlink()
    assert json.loads(link.read_text())["schema"] == "quotatool.plan/1"


def test_save_plan_into_a_missing_directory_is_one_error_line(sample: Path, tmp_path: Path) -> None:
    result = dry_run(sample, "--save-plan", str(tmp_path / "no" / "plan.json"))
    assert result.exit_code == 1
    lines = error_lines(result)
    assert len(lines) == 1
    assert lines[0].startswith(f"quotatool: error: cannot write plan file {tmp_path}/no/plan.json")


def test_same_inventory_rules_and_now_give_the_same_bytes(sample: Path) -> None:
    first = dry_run(sample, "--json")
    second = dry_run(sample, "--json")
    assert first.exit_code == second.exit_code == 0
    assert first.stdout == second.stdout
    assert dry_run(sample).stdout == dry_run(sample).stdout
    # ... and "now" is what changes it (the test above could fail).
    later = clean(
        f"maildir:{sample}", "--rules", str(EXAMPLE), "--dry-run", "--json", "--now", "2027-06-01"
    )
    assert later.exit_code == 0
    assert later.stdout != first.stdout


def test_now_accepts_a_time_with_its_zone_only(sample: Path) -> None:
    doc = plan_json(sample)
    exact = dry_run(sample, "--json", "--now", "2026-06-01T00:00:00+00:00")
    assert exact.exit_code == 0, exact.output
    assert json.loads(exact.stdout) == doc
    result = dry_run(sample, "--now", "2026-06-01T00:00:00")
    assert result.exit_code == 2
    assert error_lines(result)[0] == (
        "quotatool: error: --now: expected a date like 2026-11-28 or 2026-11-28T12:00:00Z, "
        "got '2026-06-01T00:00:00'"
    )
    assert dry_run(sample, "--now", "June").exit_code == 2


def test_folder_and_exclude_narrow_the_plan(sample: Path) -> None:
    only_inbox = plan_json(sample, "--folder", "INBOX")
    assert {a["folder"] for a in only_inbox["actions"]} == {"INBOX"}
    everything = plan_json(sample)
    without_inbox = plan_json(sample, "--exclude", "INBOX")
    assert "INBOX" not in {a["folder"] for a in without_inbox["actions"]}
    assert len(only_inbox["actions"]) + len(without_inbox["actions"]) == len(everything["actions"])


def test_a_broken_rules_file_fails_before_connecting(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('version = 1\n[[rule]]\nname = "x"\nolder_then = "1y"\naction = "delete"\n')
    # The target does not exist either: the rules error must come first.
    result = clean("maildir:/nonexistent", "--rules", str(rules), "--dry-run")
    assert result.exit_code == 4
    lines = error_lines(result)
    assert lines[0] == (
        f'quotatool: error: {rules}:4: rule "x": older_then: unknown key (did you mean older_than?)'
    )


def test_a_missing_maildir_is_exit_9(tmp_path: Path) -> None:
    result = clean(
        f"maildir:{tmp_path / 'none'}", "--rules", str(EXAMPLE), "--dry-run", "--now", NOW
    )
    assert result.exit_code == 9
    assert error_lines(result)[0].startswith("quotatool: error: ")


def test_an_offload_rule_without_a_store_plans_for_the_default_local_store(
    sample: Path, tmp_path: Path
) -> None:
    body = (
        'version = 1\n[[rule]]\nname = "offload"\naction = "offload"\n'
        'attachment_larger_than = "10KiB"\ninclude_unseen = true\ninclude_flagged = true\n'
    )
    implicit = tmp_path / "implicit.toml"
    implicit.write_text(body, encoding="utf-8")
    xdg = tmp_path / "data home"
    store = "file://" + str(xdg / "quotatool" / "offload").replace(" ", "%20")
    explicit = tmp_path / "explicit.toml"
    explicit.write_text(body + f'offload_to = "{store}"\n', encoding="utf-8")
    args = ["--dry-run", "--json", "--now", NOW]
    env = {**ENV, "XDG_DATA_HOME": str(xdg)}

    def plan(rules: Path) -> dict[str, Any]:
        result = CliRunner().invoke(
            app, ["clean", f"maildir:{sample}", "--rules", str(rules), *args], env=env
        )
        assert result.exit_code == 0, result.output
        doc: dict[str, Any] = json.loads(result.stdout)
        return doc

    doc = plan(implicit)
    assert doc["actions"]
    assert {a["store"] for a in doc["actions"]} == {store}
    # The same plan, byte for byte, as naming that store: the stub sizes count its URL.
    assert doc["actions"] == plan(explicit)["actions"]
