"""The journal of a real run: SQLite in WAL mode with ``synchronous=FULL``, one per account.

Why SQLite and not an append-only file with an fsync per line: a batch of 500 messages moves
from one state to the next as *one* record, and SQLite commits it all or nothing, so a crash
never leaves half a batch recorded; a torn last line, checksums and compaction would otherwise
be ours to write. With ``journal_mode=WAL`` and ``synchronous=FULL`` every COMMIT fsyncs the
WAL before it returns (https://www.sqlite.org/pragma.html#pragma_synchronous), which is the
durability promise 11 of SAFETY.md needs. Any SQLite error (a failed fsync is
``SQLITE_IOERR_FSYNC``, a full disk ``SQLITE_FULL``) becomes :class:`JournalError`, which no
caller catches: the run stops before its next mutating command.

Rows are never updated, only appended (``seq`` orders them), so the journal keeps the whole
history of a step: intent, then done. They are keyed by plan id + folder + UIDVALIDITY + UID +
action; a resume looks up the last row of a (folder, UIDVALIDITY, UID) from *any* plan,
because a UID is never reused within one UIDVALIDITY (RFC 3501 §2.3.1.1) and a plan computed
again after a crash has a different id.

Test hook: ``QUOTATOOL_TEST_CRASH_AT=N`` ends the process with ``os._exit`` right after the
N-th successful write, the way mbsync tests itself (SAFETY.md promise 6).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from quotatool.errors import ConfigError, QuotatoolError
from quotatool.model import Uid, UidValidity
from quotatool.ports_write import JournalRecord, StepState

__all__ = ["CRASH_ENV", "CRASH_EXIT", "JournalError", "SqliteJournal", "journal_path"]

CRASH_ENV = "QUOTATOOL_TEST_CRASH_AT"
CRASH_EXIT = 86
"""Exit status of a process ended by the crash hook, so a test can tell it from a failure."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS step (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    plan_id TEXT NOT NULL,
    folder TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    action TEXT NOT NULL,
    destination TEXT,
    state TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS step_message ON step (folder, uidvalidity, uid, seq);
CREATE INDEX IF NOT EXISTS step_state ON step (state, action);
"""
_CHUNK = 500  # host parameters per query, below SQLite's limit of 999 in old builds


class JournalError(QuotatoolError):
    """The journal could not be written or synced: the run stops (SAFETY.md promise 11)."""


def journal_path(directory: Path, lock_name: str) -> Path:
    """Return the journal file beside the account's lock file (same safe name)."""
    return directory / (lock_name.removesuffix(".lock") + ".journal.sqlite")


class SqliteJournal:
    """ports_write.WriteJournal on an SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writes = 0
        crash = os.environ.get(CRASH_ENV, "")
        self._crash_at = int(crash) if crash.isdigit() else None
        try:
            # Create it ourselves, 0600 and without following a planted symlink (promise 14);
            # SQLite gives its -wal and -shm files the mode of the database file.
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            os.close(fd)
        except OSError as exc:
            raise ConfigError(f"cannot create journal {path}: {exc.strerror or exc}") from exc
        try:
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open journal {path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def write(self, records: Sequence[JournalRecord]) -> None:
        if not records:
            return
        rows = [
            (
                r.plan_id,
                r.folder,
                int(r.uidvalidity),
                int(r.uid),
                r.action,
                r.destination,
                r.state,
                json.dumps(dict(r.detail), sort_keys=True),
            )
            for r in records
        ]
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT INTO step (plan_id, folder, uidvalidity, uid, action, destination, "
                "state, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise JournalError(
                f"cannot write the journal {self.path}: {exc}; stopped before changing "
                "anything else",
                hint="free space or fix the disk, then run the same command again to finish",
            ) from exc
        self.writes += 1
        if self._crash_at is not None and self.writes == self._crash_at:
            os._exit(CRASH_EXIT)

    def latest(
        self, folder: str, uidvalidity: UidValidity, uids: Sequence[Uid]
    ) -> dict[Uid, JournalRecord]:
        found: dict[Uid, JournalRecord] = {}
        wanted = sorted(set(uids))
        try:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                # One bound JSON array (json_each) instead of a formatted list of placeholders.
                cursor = self._db.execute(
                    "SELECT plan_id, folder, uidvalidity, uid, action, destination, state, "
                    "detail FROM step WHERE folder = ? AND uidvalidity = ? "
                    "AND uid IN (SELECT value FROM json_each(?)) ORDER BY seq",
                    (folder, int(uidvalidity), json.dumps(chunk)),
                )
                for row in cursor:
                    record = _record(row)
                    found[record.uid] = record
        except sqlite3.Error as exc:
            raise JournalError(f"cannot read the journal {self.path}: {exc}") from exc
        return found

    def pending_local(self) -> list[JournalRecord]:
        try:
            cursor = self._db.execute(
                "SELECT plan_id, s.folder, s.uidvalidity, s.uid, action, destination, state, "
                "detail FROM step AS s JOIN (SELECT folder, uidvalidity, uid, MAX(seq) AS last "
                "FROM step GROUP BY folder, uidvalidity, uid) AS m ON s.seq = m.last "
                "WHERE s.state = 'intent' AND s.action = 'archive' "
                "AND (s.destination LIKE 'mbox:%' OR s.destination LIKE 'maildir:%') "
                "ORDER BY s.seq"
            )
            return [_record(row) for row in cursor]
        except sqlite3.Error as exc:
            raise JournalError(f"cannot read the journal {self.path}: {exc}") from exc

    def all_records(self) -> list[JournalRecord]:
        """Return every record in the order written (for tests and ``--debug``)."""
        cursor = self._db.execute(
            "SELECT plan_id, folder, uidvalidity, uid, action, destination, state, detail "
            "FROM step ORDER BY seq"
        )
        return [_record(row) for row in cursor]


def _record(row: tuple[Any, ...]) -> JournalRecord:
    plan_id, folder, uidvalidity, uid, action, destination, state, detail = row
    return JournalRecord(
        plan_id=str(plan_id),
        folder=str(folder),
        uidvalidity=UidValidity(int(uidvalidity)),
        uid=Uid(int(uid)),
        action=str(action),
        destination=None if destination is None else str(destination),
        state=cast(StepState, str(state)),
        detail=json.loads(detail),
    )
