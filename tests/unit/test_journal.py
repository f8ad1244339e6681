"""SqliteJournal: durable records, last record per message from any plan, the crash hook."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from quotatool.adapters.journal import CRASH_EXIT, JournalError, SqliteJournal, journal_path
from quotatool.model import Uid, UidValidity
from quotatool.ports_write import JournalRecord


def _rec(uid: int, state: str, plan: str = "p1", **detail: object) -> JournalRecord:
    return JournalRecord(
        plan_id=plan,
        folder="INBOX",
        uidvalidity=UidValidity(7),
        uid=Uid(uid),
        action="archive",
        destination="mbox:/tmp/a.mbox",
        state=state,  # type: ignore[arg-type]
        detail=detail,
    )


def test_latest_record_per_uid_from_any_plan(tmp_path: Path) -> None:
    j = SqliteJournal(tmp_path / "j.sqlite")
    j.write([_rec(1, "intent", block={"offset": 0}), _rec(2, "intent")])
    j.write([_rec(1, "written")])
    j.write([_rec(2, "done", plan="p2")])
    latest = j.latest("INBOX", UidValidity(7), [Uid(1), Uid(2), Uid(3)])
    assert latest[Uid(1)].state == "written"
    assert latest[Uid(2)].state == "done"
    assert latest[Uid(2)].plan_id == "p2"
    assert Uid(3) not in latest
    assert j.latest("INBOX", UidValidity(8), [Uid(1)]) == {}
    assert j.writes == 3
    j.close()
    # Durable: a new connection reads the same history, detail included.
    again = SqliteJournal(tmp_path / "j.sqlite")
    records = again.all_records()
    assert [r.state for r in records] == ["intent", "intent", "written", "done"]
    assert records[0].detail == {"block": {"offset": 0}}


def test_pending_local_lists_only_unfinished_local_intents(tmp_path: Path) -> None:
    j = SqliteJournal(tmp_path / "j.sqlite")
    j.write([_rec(1, "intent"), _rec(2, "intent"), _rec(3, "intent")])
    j.write([_rec(2, "written")])
    j.write(
        [
            JournalRecord("p1", "INBOX", UidValidity(7), Uid(4), "delete", None, "intent"),
            JournalRecord("p1", "INBOX", UidValidity(7), Uid(5), "archive", "Arch", "intent"),
        ]
    )
    assert sorted(r.uid for r in j.pending_local()) == [1, 3]


def test_wal_full_sync_and_private_file(tmp_path: Path) -> None:
    path = journal_path(tmp_path, "anna@host-0123.lock")
    assert path.name == "anna@host-0123.journal.sqlite"
    j = SqliteJournal(path)
    j.write([_rec(1, "intent")])
    assert j._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert j._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    for p in tmp_path.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


def test_symlink_journal_is_refused(tmp_path: Path) -> None:
    (tmp_path / "j.sqlite").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(Exception, match="cannot create journal"):
        SqliteJournal(tmp_path / "j.sqlite")
    assert not (tmp_path / "elsewhere").exists()


def test_write_failure_is_a_journal_error(tmp_path: Path) -> None:
    j = SqliteJournal(tmp_path / "j.sqlite")
    j.write([_rec(1, "intent")])
    # Another connection holds the write lock: our BEGIN IMMEDIATE cannot get it.
    other = sqlite3.connect(tmp_path / "j.sqlite", isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")
    j._db.execute("PRAGMA busy_timeout=0")
    with pytest.raises(JournalError, match="cannot write the journal"):
        j.write([_rec(2, "intent")])
    other.execute("ROLLBACK")
    assert [r.uid for r in j.all_records()] == [1]


def test_crash_hook_exits_right_after_the_nth_write(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from quotatool.adapters.journal import SqliteJournal
        from quotatool.model import Uid, UidValidity
        from quotatool.ports_write import JournalRecord
        j = SqliteJournal(Path(sys.argv[1]))
        for n in range(1, 6):
            j.write([JournalRecord("p", "INBOX", UidValidity(1), Uid(n), "delete", None, "intent")])
            print(n, flush=True)
        """
    )
    env = {**os.environ, "QUOTATOOL_TEST_CRASH_AT": "3"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "j.sqlite")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == CRASH_EXIT
    assert done.stdout.split() == ["1", "2"]  # the third write happened, then the exit
    assert [r.uid for r in SqliteJournal(tmp_path / "j.sqlite").all_records()] == [1, 2, 3]
