"""`quotatool clean --dry-run` against the private Dovecot.

The plan's UIDs and bytes are compared with an independent selection that Dovecot itself makes
(``doveadm search`` for the same criteria, ``doveadm fetch`` for the sizes), and the server's own
state (flags, ``\\Recent``, counts, UIDNEXT, HIGHESTMODSEQ) proves the dry run changed nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.dovecot import DovecotServer, MailUser
from tests.mailgen import make_message

NOW = "2026-01-01"
LISTS = "Lists"
# Rule 1 is "read, unflagged, at least 5 years old (before 2021-01-02), 100,001 octets or
# more"; IMAP LARGER n means size > n, so `LARGER 100000` is the same limit. No message is
# dated between 2019 and 2023, so BEFORE 2021-01-01 and the rule's cutoff select the same.
RULES = """\
version = 1

[[rule]]
name = "old big read mail"
folders = ["INBOX"]
older_than = "5y"
larger_than = "100001"
action = "delete"

[[rule]]
name = "old list mail"
folders = ["INBOX", "Lists"]
from = "*@lists.example.org"
older_than = "1y"
action = "archive"
archive_to = "Archive/{year}"
"""


def ts(year: int, month: int = 6, day: int = 15) -> int:
    return int(datetime(year, month, day, 12, tzinfo=UTC).timestamp())


def _messages() -> list[tuple[str, bytes, tuple[str, ...], int]]:
    """(folder, raw, flags, internaldate): every combination the two rules tell apart."""
    big = [("scan.pdf", "application/pdf", bytes(range(256)) * 600)]  # ~200 KB encoded
    huge = [("video.mp4", "video/mp4", bytes(range(256)) * 1200)]
    out: list[tuple[str, bytes, tuple[str, ...], int]] = []
    person = "Pat <pat@example.com>"
    lister = "Weekly <news@lists.example.org>"
    list_headers = {"List-ID": "<weekly.lists.example.org>"}
    for n, (year, flags, attach, sender) in enumerate(
        [
            (2015, ("\\Seen",), big, person),  # rule 1
            (2016, ("\\Seen", "\\Answered"), huge, person),  # rule 1
            (2017, ("\\Seen", "\\Flagged"), big, person),  # flagged: protected
            (2017, (), big, person),  # unseen: protected
            (2018, ("\\Seen",), [], person),  # small
            (2024, ("\\Seen",), big, person),  # too young for rule 1
            (2016, ("\\Seen",), big, lister),  # rule 1 first, though rule 2 matches too
            (2016, ("\\Seen",), [], lister),  # rule 2
            (2024, ("\\Seen",), [], lister),  # rule 2 (older than 1y on 2026-01-01)
            (2025, ("\\Seen",), [], lister),  # 2025-06-15: too young for rule 2
            (2024, (), [], lister),  # unseen: protected
        ]
    ):
        raw = make_message(
            subject=f"[inbox {n}] message",
            from_=sender,
            date=ts(year),
            attachments=attach,
            headers=list_headers if sender == lister else None,
        )
        out.append(("INBOX", raw, flags, ts(year)))
    for n, (year, flags) in enumerate(
        [(2019, ("\\Seen",)), (2023, ("\\Seen",)), (2025, ("\\Seen",)), (2020, ("\\Flagged",))]
    ):
        raw = make_message(subject=f"Weekly {n}", from_=lister, date=ts(year), headers=list_headers)
        out.append((LISTS, raw, flags, ts(year)))
    return out


@pytest.fixture
def seeded(dovecot: DovecotServer, fresh_user: MailUser) -> MailUser:
    for folder, raw, flags, when in _messages():
        dovecot.append(fresh_user.name, folder, raw, flags=flags, internaldate=when)
    return fresh_user


def run_cli(*args: str, password: str) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith("QUOTATOOL_") and k != "COLUMNS"
    }
    environ.update(
        {
            "NO_COLOR": "1",
            "COLUMNS": "200",
            "XDG_CONFIG_HOME": "/nonexistent",
            "QUOTATOOL_PASSWORD": password,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "quotatool", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )


def dry_run(
    server: DovecotServer, user: MailUser, rules: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "clean",
        f"imaps://{user.name}@{server.host}:{server.imaps_port}",
        "--ca-file",
        str(server.ca_file),
        "--rules",
        str(rules),
        "--dry-run",
        "--now",
        NOW,
        *extra,
        password=user.password,
    )


def search(server: DovecotServer, user: str, folder: str, *criteria: str) -> set[int]:
    out = server.doveadm("search", "-u", user, "mailbox", folder, *criteria)
    return {int(line.split()[1]) for line in out.splitlines() if line.strip()}


def vsizes(server: DovecotServer, user: str, folder: str) -> dict[int, int]:
    out = server.doveadm(
        "-f", "tab", "fetch", "-u", user, "uid size.virtual", "mailbox", folder, "ALL"
    )
    rows = [line.split("\t") for line in out.splitlines()[1:] if line.strip()]
    return {int(uid): int(size) for uid, size in rows}


def state(server: DovecotServer, user: str) -> dict[str, Any]:
    """Everything a mutating command would change, as the server reports it."""
    out: dict[str, Any] = {}
    for folder in ("INBOX", LISTS):
        status = server.doveadm(
            "-f",
            "tab",
            "mailbox",
            "status",
            "-u",
            user,
            "messages recent unseen highestmodseq uidnext uidvalidity",
            folder,
        )
        header, values = status.splitlines()[:2]
        out[folder] = dict(zip(header.split("\t"), values.split("\t"), strict=True))
        out[folder + " flags"] = server.doveadm(
            "-f", "tab", "fetch", "-u", user, "uid flags modseq", "mailbox", folder, "ALL"
        )
    out["folders"] = sorted(server.doveadm("mailbox", "list", "-u", user).split())
    return out


def test_plan_matches_dovecots_own_selection(
    dovecot: DovecotServer, seeded: MailUser, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    saved = tmp_path / "plan.json"
    result = dry_run(dovecot, seeded, rules, "--json", "--save-plan", str(saved))
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert saved.read_text() == result.stdout
    user = seeded.name

    # Rule 1, selected by Dovecot: the same criteria, protections included.
    rule1 = search(
        dovecot, user, "INBOX", "BEFORE", "2021-01-01", "LARGER", "100000", "UNFLAGGED", "SEEN"
    )
    # Rule 2: list mail older than a year, minus what rule 1 claimed first.
    rule2 = {
        folder: search(dovecot, user, folder, "FROM", "lists.example.org", "BEFORE", "2025-01-01")
        & search(dovecot, user, folder, "UNFLAGGED", "SEEN")
        for folder in ("INBOX", LISTS)
    }
    rule2["INBOX"] -= rule1
    assert len(rule1) == 3
    assert len(rule2["INBOX"]) == 2
    assert len(rule2[LISTS]) == 2

    def planned(rule: str, folder: str) -> set[int]:
        return {a["uid"] for a in plan["actions"] if a["rule"] == rule and a["folder"] == folder}

    assert planned("old big read mail", "INBOX") == rule1
    assert planned("old big read mail", LISTS) == set()
    assert planned("old list mail", "INBOX") == rule2["INBOX"]
    assert planned("old list mail", LISTS) == rule2[LISTS]

    # Bytes: the sizes Dovecot counts (RFC822.SIZE, CRLF) for exactly those UIDs.
    sizes = {folder: vsizes(dovecot, user, folder) for folder in ("INBOX", LISTS)}
    for a in plan["actions"]:
        assert a["size"] == sizes[a["folder"]][a["uid"]]
        assert isinstance(a["modseq"], int)  # Dovecot has CONDSTORE
        assert a["modseq"] > 0
    delete_bytes = sum(sizes["INBOX"][uid] for uid in rule1)
    by_rule = {r["rule"]: r for r in plan["summary"]["by_rule"]}
    assert by_rule["old big read mail"]["frees_bytes"] == delete_bytes
    assert by_rule["old big read mail"]["messages"] == 3
    # Archiving to a folder of the same account frees nothing, and the plan says so.
    assert by_rule["old list mail"]["frees_bytes"] == 0
    assert by_rule["old list mail"]["messages"] == 4
    assert {a["destination"] for a in plan["actions"] if a["action"] == "archive"} == {
        "Archive/2016",
        "Archive/2019",
        "Archive/2023",
        "Archive/2024",
    }
    assert any("frees nothing" in note for note in plan["notes"])
    assert plan["summary"]["frees_bytes"] == delete_bytes

    # Quota now is the server's; projected is now minus what the deletes free.
    quota = {q["resource"]: q for q in plan["quota"]}
    server_quota = {row["type"]: row for row in dovecot.quota_get(user)}
    assert quota["STORAGE"]["usage"] == server_quota["STORAGE"]["value"] * 1024
    assert quota["STORAGE"]["projected_usage"] == quota["STORAGE"]["usage"] - delete_bytes
    limit = server_quota["STORAGE"]["limit"]
    assert limit is not None
    assert quota["STORAGE"]["limit"] == limit * 1024


def test_the_table_shows_quota_now_and_after(
    dovecot: DovecotServer, seeded: MailUser, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    result = dry_run(dovecot, seeded, rules, "--explain")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    storage = next(line for line in out.splitlines() if line.strip().startswith("STORAGE"))
    assert "now " in storage
    assert "after the plan " in storage
    assert "limit 50.0 MiB" in storage
    # User text from the server is printed literally, brackets and all.
    assert "[inbox 0] message" in out
    assert "* archive to a folder in the same quota root frees nothing" in out


def test_the_dry_run_changes_nothing_on_the_server(
    dovecot: DovecotServer, seeded: MailUser, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    user = seeded.name
    before = state(dovecot, user)
    # Freshly appended mail is \Recent until some session SELECTs the folder.
    assert int(before["INBOX"]["recent"]) == 11
    assert int(before[LISTS]["recent"]) == 4
    for extra in ((), ("--json",), ("--explain",)):
        result = dry_run(dovecot, seeded, rules, *extra)
        assert result.returncode == 0, result.stderr
    explain = run_cli(
        "rules",
        "explain",
        f"imaps://{user}@{dovecot.host}:{dovecot.imaps_port}",
        "--ca-file",
        str(dovecot.ca_file),
        "--rules",
        str(rules),
        "--uid",
        "INBOX:1",
        "--now",
        NOW,
        password=seeded.password,
    )
    assert explain.returncode == 0, explain.stderr
    assert 'Verdict: rule "old big read mail" would delete it' in explain.stdout
    after = state(dovecot, user)
    # Flags, \Recent, counts, UIDNEXT, HIGHESTMODSEQ and the folder list: all as before.
    assert after == before
    # The oracle can see a change: a session that SELECTs takes \Recent away.
    client = dovecot.connect(user)
    try:
        client.select_folder("INBOX")
    finally:
        client.logout()
    assert int(state(dovecot, user)["INBOX"]["recent"]) == 0
