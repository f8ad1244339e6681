"""`quotatool clean` end to end through the command line, against the private Dovecot.

The executor's own safety properties are proven in test_execute*.py; these tests prove the
command keeps its promises: the dry run and the real run share one plan, a saved plan runs
exactly, nothing changes without confirmation or beyond a cap, and the quota drops by what
the plan said.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.dovecot import DovecotServer, MailUser
from tests.integration.test_scan import imaps, run_cli
from tests.mailgen import make_message

RULES = """\
version = 1

[[rule]]
name = "old big mail"
folders = ["INBOX"]
older_than = "365d"
larger_than = "20KiB"
action = "delete"

[[rule]]
name = "old newsletters"
folders = ["News"]
older_than = "30d"
action = "archive"
archive_to = "Archive/{year}"
"""

NOW = "2026-11-28"
OLD = 1_600_000_000  # 2020-09-13
RECENT = 1_795_000_000  # 2026-11-18


@pytest.fixture
def mailbox(dovecot: DovecotServer, fresh_user: MailUser, tmp_path: Path) -> dict[str, Any]:
    user = fresh_user.name
    big = b"x" * 40_000
    uids: dict[str, list[int]] = {"delete": [], "keep": [], "news": []}
    for i in range(6):
        raw = make_message(
            subject=f"old big {i}", date=OLD, attachments=[(f"f{i}.bin", "application/x", big)]
        )
        uids["delete"].append(dovecot.append(user, "INBOX", raw, ["\\Seen"], OLD))
    # Protected or not matching: flagged, unseen, recent, small.
    flagged = make_message(subject="flagged", date=OLD, attachments=[("k.bin", "a/b", big)])
    uids["keep"].append(dovecot.append(user, "INBOX", flagged, ["\\Seen", "\\Flagged"], OLD))
    unseen = make_message(subject="unseen", date=OLD, attachments=[("u.bin", "a/b", big)])
    uids["keep"].append(dovecot.append(user, "INBOX", unseen, [], OLD))
    recent = make_message(subject="recent", date=RECENT, attachments=[("r.bin", "a/b", big)])
    uids["keep"].append(dovecot.append(user, "INBOX", recent, ["\\Seen"], RECENT))
    uids["keep"].append(dovecot.append(user, "INBOX", make_message(date=OLD), ["\\Seen"], OLD))
    for i in range(3):
        raw = make_message(subject=f"news {i}", date=OLD, headers={"List-ID": "<n.example>"})
        uids["news"].append(dovecot.append(user, "News", raw, ["\\Seen"], OLD))
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    return {"uids": uids, "rules": rules, "user": fresh_user}


def clean(
    dovecot: DovecotServer, user: MailUser, *args: str
) -> tuple[int, str, str, dict[str, Any] | None]:
    result = run_cli(
        "clean",
        imaps(dovecot, user.name),
        "--ca-file",
        str(dovecot.ca_file),
        *args,
        password=user.password,
        env={"QUOTATOOL_STATE_DIR": str(Path(user.home) / "qt-state")},
        timeout=120,
    )
    doc = None
    if result.stdout.startswith("{"):
        doc = json.loads(result.stdout)
    return result.returncode, result.stdout, result.stderr, doc


def inbox_uids(dovecot: DovecotServer, user: str, folder: str = "INBOX") -> set[int]:
    out = dovecot.doveadm("-f", "flow", "fetch", "-u", user, "uid", "mailbox", folder, "ALL")
    return {int(line.split("=", 1)[1]) for line in out.split() if line.startswith("uid=")}


def test_saved_plan_runs_exactly_and_frees_what_it_promised(
    dovecot: DovecotServer, mailbox: dict[str, Any], tmp_path: Path
) -> None:
    user: MailUser = mailbox["user"]
    plan_file = tmp_path / "plan.json"
    code, _, err, plan = clean(
        dovecot,
        user,
        "--rules",
        str(mailbox["rules"]),
        "--dry-run",
        "--now",
        NOW,
        "--json",
        "--save-plan",
        str(plan_file),
    )
    assert code == 0, err
    assert plan is not None
    planned = {(a["folder"], a["uid"]) for a in plan["actions"]}
    uids = mailbox["uids"]
    assert planned == {("INBOX", u) for u in uids["delete"]} | {("News", u) for u in uids["news"]}
    deleted_bytes = sum(a["frees_bytes"] for a in plan["actions"] if a["action"] == "delete")
    # Archive/{year} lies under the same quota root: moving there frees nothing.
    assert all(a["frees_bytes"] == 0 for a in plan["actions"] if a["action"] == "archive")
    storage_before = _storage(dovecot, user.name)

    code, _, err, result = clean(dovecot, user, "--plan", str(plan_file), "--yes", "--json")
    assert code == 0, err
    assert result is not None
    assert result["schema"] == "quotatool.result/1"
    assert result["counts"]["done"] == len(planned)
    assert result["counts"]["skipped"] == result["counts"]["failed"] == 0
    assert result["planned_bytes"] == plan["summary"]["frees_bytes"] == deleted_bytes

    assert inbox_uids(dovecot, user.name) == set(uids["keep"])
    assert inbox_uids(dovecot, user.name, "News") == set()
    assert dovecot.mailbox_status(user.name, "Archive/2020")[0] == 3
    freed = storage_before - _storage(dovecot, user.name)
    # Dovecot counts in KiB: allow one KiB of rounding per message.
    assert abs(freed - deleted_bytes) <= 1024 * len(uids["delete"])

    # Run again: everything is already done, nothing more is freed or moved.
    code, _, err, again = clean(dovecot, user, "--plan", str(plan_file), "--yes", "--json")
    assert code == 0, err
    assert again is not None
    assert again["counts"]["done"] == 0
    assert again["counts"]["already_done"] == len(planned)
    assert dovecot.mailbox_status(user.name, "Archive/2020")[0] == 3


def test_without_a_terminal_and_without_yes_nothing_changes(
    dovecot: DovecotServer, mailbox: dict[str, Any]
) -> None:
    user: MailUser = mailbox["user"]
    before = inbox_uids(dovecot, user.name)
    code, out, err, _ = clean(dovecot, user, "--rules", str(mailbox["rules"]), "--now", NOW)
    assert code == 2, err
    assert out == ""
    assert "--yes" in err
    assert "Traceback" not in err
    assert inbox_uids(dovecot, user.name) == before


def test_a_plan_larger_than_the_caps_is_refused(
    dovecot: DovecotServer, mailbox: dict[str, Any]
) -> None:
    user: MailUser = mailbox["user"]
    before = inbox_uids(dovecot, user.name)
    for cap in (["--max-messages", "5"], ["--max-bytes", "100KB"]):
        code, _, err, _ = clean(
            dovecot, user, "--rules", str(mailbox["rules"]), "--now", NOW, "--yes", *cap
        )
        assert code != 0
        assert cap[0] in err or "larger" in err or "more" in err, err
        assert inbox_uids(dovecot, user.name) == before


def test_the_real_run_from_rules_deletes_what_the_dry_run_listed(
    dovecot: DovecotServer, mailbox: dict[str, Any]
) -> None:
    user: MailUser = mailbox["user"]
    rules = str(mailbox["rules"])
    code, _, err, plan = clean(dovecot, user, "--rules", rules, "--dry-run", "--now", NOW, "--json")
    assert code == 0, err
    assert plan is not None
    code, out, err, _ = clean(dovecot, user, "--rules", rules, "--now", NOW, "--yes")
    assert code == 0, err
    assert inbox_uids(dovecot, user.name) == set(mailbox["uids"]["keep"])
    assert str(len(plan["actions"])) in out  # the result table counts what was done


def test_rules_and_plan_together_are_a_usage_error(
    dovecot: DovecotServer, mailbox: dict[str, Any], tmp_path: Path
) -> None:
    user: MailUser = mailbox["user"]
    code, _, err, _ = clean(
        dovecot, user, "--rules", str(mailbox["rules"]), "--plan", str(tmp_path / "p.json")
    )
    assert code == 2
    assert "exactly one of --rules" in err


def _storage(dovecot: DovecotServer, user: str) -> int:
    rows = dovecot.quota_get(user)
    return next(r["value"] for r in rows if r["type"] == "STORAGE") * 1024
