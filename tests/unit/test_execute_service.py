"""execute_plan over fakes of its ports: ordering, caps, refusals, batching, journal failure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from quotatool.errors import ProtocolError, UsageError
from quotatool.model import (
    Archive,
    Delete,
    Plan,
    PlannedAction,
    PlanSummary,
    QuotaResource,
    Uid,
    UidValidity,
)
from quotatool.ports_write import (
    ArchiveBlock,
    ArchiveItem,
    JournalRecord,
    MessageState,
    OpenedFolder,
)
from quotatool.services.execute import execute_plan, plan_id, refusal, stale_reason
from tests.fakes import RecordingProgress

CAPS = frozenset({"IMAP4REV1", "UIDPLUS", "MOVE", "CONDSTORE", "QUOTA"})


@dataclass
class Msg:
    size: int
    flags: set[str]
    modseq: int


@dataclass
class FakeMailbox:
    """An in-memory IMAP account; ``log`` records every call, mutating ones upper-case."""

    folders: dict[str, dict[int, Msg]]
    caps: frozenset[str] = CAPS
    uidvalidity: dict[str, int] = field(default_factory=dict)
    modified: set[int] = field(default_factory=set)
    log: list[str] = field(default_factory=list)
    selected: str = ""
    modseq: int = 100

    def describe(self) -> str:
        return "fake://account"

    def capabilities(self) -> frozenset[str]:
        return self.caps

    def quota(self) -> tuple[QuotaResource, ...] | None:
        used = sum(m.size for f in self.folders.values() for m in f.values())
        return (QuotaResource("", "STORAGE", used, 10**9),)

    def _opened(self, folder: str) -> OpenedFolder:
        return OpenedFolder(folder, UidValidity(self.uidvalidity.get(folder, 7)), 1000, 500)

    def select(self, folder: str) -> OpenedFolder:
        self.log.append(f"select {folder}")
        self.selected = folder
        return self._opened(folder)

    def examine(self, folder: str) -> OpenedFolder:
        self.log.append(f"examine {folder}")
        self.selected = folder
        return self._opened(folder)

    def status(self, folder: str) -> OpenedFolder | None:
        return self._opened(folder) if folder in self.folders else None

    def create(self, folder: str) -> None:
        self.log.append(f"CREATE {folder}")
        self.folders[folder] = {}

    def _state(self, uid: int, m: Msg) -> MessageState:
        return MessageState(Uid(uid), m.size, frozenset(m.flags), 0, f"<{uid}>", m.modseq)

    def states(self, uids: Sequence[Uid]) -> dict[Uid, MessageState]:
        self.log.append(f"fetch {len(uids)}")
        box = self.folders[self.selected]
        return {Uid(u): self._state(u, box[u]) for u in uids if u in box}

    def states_from(self, first_uid: int) -> dict[Uid, MessageState]:
        box = self.folders[self.selected]
        return {Uid(u): self._state(u, m) for u, m in box.items() if u >= first_uid}

    def mark_deleted(self, uids: Sequence[Uid], unchanged_since: int | None) -> set[Uid]:
        assert uids
        self.log.append(f"STORE {len(uids)} since={unchanged_since}")
        box = self.folders[self.selected]
        hit = {u for u in uids if u in self.modified}
        for u in uids:
            if u in box and u not in hit:
                box[u].flags.add("\\Deleted")
                self.modseq += 1
                box[u].modseq = self.modseq
        return hit

    def uid_expunge(self, uids: Sequence[Uid]) -> None:
        assert uids, "an empty UID EXPUNGE set"
        self.log.append(f"EXPUNGE {sorted(uids)}")
        box = self.folders[self.selected]
        for u in uids:
            if u in box and "\\Deleted" in box[u].flags:
                del box[u]

    def present(self, uids: Sequence[Uid]) -> set[Uid]:
        return {u for u in uids if u in self.folders[self.selected]}

    def _transfer(self, verb: str, uids: Sequence[Uid], destination: str) -> dict[Uid, Uid]:
        self.log.append(f"{verb} {len(uids)} {destination}")
        src, dst = self.folders[self.selected], self.folders[destination]
        mapping = {}
        for u in uids:
            new = max(dst, default=0) + 1
            dst[new] = Msg(src[u].size, set(src[u].flags), 1)
            mapping[u] = Uid(new)
            if verb == "MOVE":
                del src[u]
        return mapping

    def move(self, uids: Sequence[Uid], destination: str) -> dict[Uid, Uid]:
        return self._transfer("MOVE", uids, destination)

    def copy(self, uids: Sequence[Uid], destination: str) -> dict[Uid, Uid]:
        return self._transfer("COPY", uids, destination)

    def fetch_raw(self, uids: Sequence[Uid]) -> dict[Uid, bytes]:
        box = self.folders[self.selected]
        return {u: b"x" * box[u].size for u in uids if u in box}

    def close(self) -> None:
        self.log.append("close")


class JournalFull(Exception):
    pass


@dataclass
class FakeJournal:
    log: list[str]
    fail_at: int | None = None
    records: list[JournalRecord] = field(default_factory=list)
    writes: int = 0

    def write(self, records: Sequence[JournalRecord]) -> None:
        self.writes += 1
        if self.fail_at is not None and self.writes >= self.fail_at:
            self.log.append("journal FAILED")
            raise JournalFull("no space")
        self.log.append(f"journal {records[0].state} {len(records)}")
        self.records.extend(records)

    def latest(
        self, folder: str, uidvalidity: UidValidity, uids: Sequence[Uid]
    ) -> dict[Uid, JournalRecord]:
        wanted = set(uids)
        out = {}
        for r in self.records:
            if r.folder == folder and r.uidvalidity == uidvalidity and r.uid in wanted:
                out[r.uid] = r
        return out

    def pending_local(self) -> list[JournalRecord]:
        return []


@dataclass
class FakeArchive:
    written: list[ArchiveItem] = field(default_factory=list)

    def prepare(self, destination: str, items: Sequence[ArchiveItem]) -> ArchiveBlock | None:
        return ArchiveBlock(0, 1, "0")

    def write(
        self, destination: str, items: Sequence[ArchiveItem], block: ArchiveBlock | None
    ) -> None:
        self.written.extend(items)

    def repair(self, destination: str, block: ArchiveBlock) -> bool:
        return False


def _action(uid: int, action: Delete | Archive | None = None, size: int = 100) -> PlannedAction:
    return PlannedAction(
        rule="r",
        action=action or Delete(),
        folder="INBOX",
        uidvalidity=UidValidity(7),
        uid=Uid(uid),
        size=size,
        frees_bytes=size,
        flags=("\\Seen",),
        modseq=10 + uid,
    )


def _plan(actions: list[PlannedAction]) -> Plan:
    total = sum(a.frees_bytes for a in actions)
    return Plan(
        target="fake",
        account="a",
        rules_file="r.toml",
        created_at=0,
        quota=None,
        actions=tuple(actions),
        skipped=(),
        summary=PlanSummary(len(actions), total, (), ()),
    )


def _mailbox(uids: range, **kw: object) -> FakeMailbox:
    box = {u: Msg(100, {"\\Seen"}, 10 + u) for u in uids}
    box[9999] = Msg(50, {"\\Deleted"}, 5)  # another client's deleted message
    return FakeMailbox(folders={"INBOX": box}, **kw)  # type: ignore[arg-type]


def test_deletes_in_batches_with_the_journal_around_each() -> None:
    mb = _mailbox(range(1, 1201))
    journal = FakeJournal(mb.log)
    progress = RecordingProgress()
    plan = _plan([_action(u) for u in range(1, 1201)])
    result = execute_plan(plan, mb, journal, FakeArchive(), batch_size=500, progress=progress)
    assert len(result.done) == 1200
    assert not result.partial
    assert [line for line in mb.log if line.startswith("STORE")] == [
        "STORE 500 since=510",
        "STORE 500 since=1010",
        "STORE 200 since=1210",
    ]
    # intent before every mutation, done after it
    first = mb.log.index("journal intent 500")
    assert first < mb.log.index("STORE 500 since=510") < mb.log.index("journal done 500")
    assert 9999 in mb.folders["INBOX"]  # promise 1
    assert result.freed_bytes == 120_000
    assert ("advance", 500) in progress.events


def test_stale_and_modified_messages_are_skipped_not_touched() -> None:
    mb = _mailbox(range(1, 6), modified={4})
    mb.folders["INBOX"][2].flags.add("\\Flagged")
    mb.folders["INBOX"][3].modseq = 99
    del mb.folders["INBOX"][5]
    plan = _plan([_action(u) for u in range(1, 6)])
    result = execute_plan(plan, mb, FakeJournal(mb.log), FakeArchive())
    reasons = {o.action.uid: o.reason for o in result.skipped}
    assert "flags changed" in (reasons[Uid(2)] or "")
    assert "MODSEQ 13 -> 99" in (reasons[Uid(3)] or "")
    assert "MODIFIED" in (reasons[Uid(4)] or "")
    assert "no longer in the folder" in (reasons[Uid(5)] or "")
    assert [o.action.uid for o in result.done] == [1]
    assert sorted(mb.folders["INBOX"]) == [2, 3, 4, 9999]
    assert result.partial


def test_changed_uidvalidity_skips_the_folder() -> None:
    mb = _mailbox(range(1, 3))
    mb.uidvalidity["INBOX"] = 8
    result = execute_plan(_plan([_action(1), _action(2)]), mb, FakeJournal(mb.log), FakeArchive())
    assert all("UIDVALIDITY" in (o.reason or "") for o in result.skipped)
    assert not [line for line in mb.log if line.isupper() or line.startswith(("STORE", "EXP"))]


def test_caps_and_missing_uidplus_refuse_before_any_call() -> None:
    mb = _mailbox(range(1, 4))
    plan = _plan([_action(u) for u in range(1, 4)])
    with pytest.raises(UsageError, match="--max-messages 2"):
        execute_plan(plan, mb, FakeJournal(mb.log), FakeArchive(), max_messages=2)
    with pytest.raises(UsageError, match="--max-bytes 299"):
        execute_plan(plan, mb, FakeJournal(mb.log), FakeArchive(), max_bytes=299)
    assert mb.log == []
    mb.caps = CAPS - {"UIDPLUS"}
    with pytest.raises(ProtocolError, match="UIDPLUS"):
        execute_plan(plan, mb, FakeJournal(mb.log), FakeArchive())
    assert mb.log == []
    assert refusal(CAPS, plan) is None
    assert refusal(frozenset(), _plan([])) is None


@pytest.mark.parametrize("fail_at", [1, 2, 3, 4])
def test_journal_failure_stops_before_the_next_mutation(fail_at: int) -> None:
    mb = _mailbox(range(1, 9))
    mb.folders["Archive"] = {}
    plan = _plan(
        [_action(u) for u in range(1, 5)]
        + [_action(u, Archive("Archive", local=False)) for u in range(5, 9)]
    )
    journal = FakeJournal(mb.log, fail_at=fail_at)
    with pytest.raises(JournalFull):
        execute_plan(plan, mb, journal, FakeArchive(), batch_size=2)
    failed = mb.log.index("journal FAILED")
    mutating = {"STORE", "EXPUNGE", "MOVE", "COPY", "CREATE"}
    assert not [line for line in mb.log[failed + 1 :] if line.split()[0] in mutating]
    # Promise 11 the other way round too: every mutation follows a recorded intent.
    for n, line in enumerate(mb.log[:failed]):
        if line.split()[0] in mutating - {"CREATE"}:
            assert any(e.startswith("journal intent") for e in mb.log[:n]), mb.log


def test_copy_fallback_verifies_then_expunges_and_rerun_is_idempotent() -> None:
    mb = _mailbox(range(1, 4), caps=CAPS - {"MOVE"})
    plan = _plan([_action(u, Archive("Arch/2020", local=False)) for u in range(1, 4)])
    journal = FakeJournal(mb.log)
    result = execute_plan(plan, mb, journal, FakeArchive())
    assert result.archive_method == "copy"
    assert "CREATE Arch/2020" in mb.log
    assert sorted(mb.folders["Arch/2020"]) == [1, 2, 3]
    assert sorted(mb.folders["INBOX"]) == [9999]
    assert [o.destination_uid for o in result.done] == [1, 2, 3]
    mb.log.clear()
    again = execute_plan(plan, mb, journal, FakeArchive())
    assert len(again.already_done) == 3
    assert again.done_bytes == 0
    assert not [line for line in mb.log if line.split()[0] in {"STORE", "EXPUNGE", "COPY"}]


def test_local_archive_writes_before_it_deletes() -> None:
    mb = _mailbox(range(1, 3))
    archive = FakeArchive()
    plan = _plan([_action(u, Archive("mbox:/x/a.mbox", local=True)) for u in (1, 2)])
    result = execute_plan(plan, mb, FakeJournal(mb.log), archive)
    assert len(result.done) == 2
    assert [i.raw for i in archive.written] == [b"x" * 100] * 2
    order = [line.split()[0] + line.split()[1] for line in mb.log if line.startswith("journal")]
    assert order == ["journalintent", "journalwritten", "journaldone"]


def test_stale_reason_ignores_recent_and_our_own_deleted_flag() -> None:
    action = _action(1)
    state = MessageState(Uid(1), 100, frozenset({"\\Seen", "\\Recent"}), 0, None, 11)
    assert stale_reason(action, state, ours=False) is None
    ours = MessageState(Uid(1), 100, frozenset({"\\Seen", "\\Deleted"}), 0, None, 50)
    assert stale_reason(action, ours, ours=True) is None
    assert "flags changed" in (stale_reason(action, ours, ours=False) or "")
    bigger = MessageState(Uid(1), 101, frozenset({"\\Seen"}), 0, None, 11)
    assert "size changed" in (stale_reason(action, bigger, ours=False) or "")
    assert plan_id(_plan([action])) == plan_id(_plan([action]))
    assert plan_id(_plan([action])) != plan_id(_plan([_action(2)]))
