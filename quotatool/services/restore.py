"""Put offloaded attachments back: the reverse of an offload, verified the same way.

For each message with offload stubs (found by ``UID SEARCH HEADER X-Quotatool-Op ""``, then
:func:`quotatool.core.stub.find_stubs` on the fetched bytes): fetch each object from its store,
check size and SHA-256 against the stub (a wrong object never goes into the mailbox), rebuild
each part byte for byte (:func:`quotatool.core.stub.restore_message`: the original header block
and the payload re-encoded in its recorded layout), then the same replace sequence as an
offload (:func:`quotatool.services.offload.replace_messages`): journal, APPEND with the same
flags and INTERNALDATE, APPENDUID, fetch back and compare, and only then expunge the stub
version. Objects stay in the store (other messages may share them: keys are content-addressed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from quotatool.core.splice import MARKER_FIELD, marker_of
from quotatool.core.stub import StubRef, detach, find_stubs, restore_message
from quotatool.errors import FolderNotFoundError, ParseError
from quotatool.model import QuotaResource, Uid, UidValidity
from quotatool.ports import NullProgress, Progress
from quotatool.ports_write import (
    JournalRecord,
    MailboxWriter,
    MessageState,
    ObjectMissingError,
    ObjectStore,
    OpenedFolder,
    StepState,
    WriteJournal,
)
from quotatool.services.offload import (
    Replacement,
    crlf_clean,
    op_id_for,
    replace_messages,
    store_root,
)

__all__ = [
    "RestoreItem",
    "RestoreOutcome",
    "RestoreResult",
    "RestoreStatus",
    "restore",
    "verify_restored_copy",
]

RestoreStatus = Literal["planned", "done", "already_done", "skipped", "failed"]
_FETCH_CHUNK = 50
_DELETED = "\\Deleted"


@dataclass(frozen=True, slots=True)
class RestoreItem:
    """A message with offload stubs."""

    folder: str
    """Decoded folder name."""
    uidvalidity: UidValidity
    """The folder's UIDVALIDITY."""
    uid: Uid
    """The stub version's UID."""
    size: int
    """RFC822.SIZE of the stub version."""
    message_id: str | None
    """Its Message-ID."""
    stubs: tuple[StubRef, ...]
    """The stubs in it, in section order."""

    @property
    def restore_bytes(self) -> int:
        """Octets of decoded payload that come back."""
        return sum(s.size for s in self.stubs)


@dataclass(frozen=True, slots=True)
class RestoreOutcome:
    """What became of one message (or, in a dry run, what would)."""

    folder: str
    """Decoded folder name."""
    uid: Uid
    """The stub version's UID."""
    status: RestoreStatus
    """``planned`` in a dry run; ``done``, ``already_done``, ``skipped`` or ``failed``."""
    item: RestoreItem | None = None
    """The message and its stubs, when it was read."""
    reason: str | None = None
    """Why it was skipped or failed, one line."""
    new_uid: Uid | None = None
    """UID of the restored message."""
    resumed: bool = False
    """An interrupted run had begun it."""


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """The result of ``quotatool restore``."""

    target: str
    """The TARGET as the user may see it."""
    dry_run: bool
    """True when nothing was changed."""
    outcomes: tuple[RestoreOutcome, ...]
    """One per message looked at, folder by folder, by UID."""
    quota_before: tuple[QuotaResource, ...] | None = None
    """The quota before the first change."""
    quota_after: tuple[QuotaResource, ...] | None = None
    """The quota at the end."""
    notes: tuple[str, ...] = field(default=())
    """Run-wide remarks (a folder that does not exist)."""

    def count(self, status: RestoreStatus) -> int:
        """Return how many outcomes have ``status``."""
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def partial(self) -> bool:
        """True when some message was skipped or failed."""
        return any(o.status in ("skipped", "failed") for o in self.outcomes)


def verify_restored_copy(copy: bytes, *, op_id: str, stubs: Sequence[StubRef]) -> str | None:
    """Check a restored message found by its marker; return why it is not good, or ``None``."""
    try:
        if marker_of(copy) != op_id:
            return "it does not carry the operation's marker"
        left = {ref.section for ref in find_stubs(copy)}
        for ref in stubs:
            if ref.section in left:
                return f"part {ref.section} is still a stub in it"
            if detach(copy, ref.section).sha256 != ref.sha256:
                return f"part {ref.section} does not hold the stored object"
    except ParseError as exc:
        return exc.message
    return None


def restore(
    mailbox: MailboxWriter,
    journal: WriteJournal,
    stores: Callable[[str], ObjectStore],
    *,
    folders: Sequence[str],
    uids: Sequence[Uid] | None,
    run_id: str,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> RestoreResult:
    """Restore the offloaded parts of ``uids`` (or every stub message) in ``folders``.

    ``stores`` opens a store by the URL a stub records (without the object key). Raises
    ServerUnavailableError, StoreUnavailableError, JournalError and other QuotatoolErrors to
    stop the run; the journal lets the next run finish.
    """
    runner = _Restorer(mailbox, journal, stores, run_id, dry_run, progress or NullProgress())
    quota_before = None if dry_run else mailbox.quota()
    for name in folders:
        runner.folder(name, uids)
    return RestoreResult(
        target=mailbox.describe(),
        dry_run=dry_run,
        outcomes=tuple(runner.outcomes),
        quota_before=quota_before,
        quota_after=None if dry_run else mailbox.quota(),
        notes=tuple(runner.notes),
    )


@dataclass
class _Restorer:
    mailbox: MailboxWriter
    journal: WriteJournal
    stores: Callable[[str], ObjectStore]
    run_id: str
    dry_run: bool
    progress: Progress
    outcomes: list[RestoreOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    opened: dict[str, ObjectStore] = field(default_factory=dict)

    def _store(self, root: str) -> ObjectStore:
        store = self.opened.get(root)
        if store is None:
            store = self.opened[root] = self.stores(root)
        return store

    def folder(self, name: str, uids: Sequence[Uid] | None) -> None:
        try:
            opened = self.mailbox.examine(name) if self.dry_run else self.mailbox.select(name)
        except FolderNotFoundError:
            self.notes.append(f"folder {name!r} does not exist")
            return
        if uids is None:
            wanted = self.mailbox.search_header(MARKER_FIELD, "")
        else:
            present = self.mailbox.present(list(uids))
            wanted = sorted(present)
            for uid in sorted(set(uids) - present):
                self.outcomes.append(
                    RestoreOutcome(name, uid, "skipped", reason="no such message in the folder")
                )
        if not wanted:
            return
        records = self.journal.latest(name, opened.uidvalidity, wanted)
        self.progress.start(len(wanted), f"Restoring {name}")
        for start in range(0, len(wanted), _FETCH_CHUNK):
            chunk = wanted[start : start + _FETCH_CHUNK]
            self._chunk(opened, chunk, records, explicit=uids is not None)
            self.progress.advance(len(chunk))
        self.progress.finish()

    def _chunk(
        self,
        folder: OpenedFolder,
        chunk: list[Uid],
        records: Mapping[Uid, JournalRecord],
        *,
        explicit: bool,
    ) -> None:
        states = self.mailbox.states(chunk)
        raws = self.mailbox.fetch_raw(chunk)
        reps: list[Replacement] = []
        items: dict[Uid, RestoreItem] = {}
        stubs: dict[Uid, tuple[StubRef, ...]] = {}
        for uid in chunk:
            record = records.get(uid)
            if record is not None and record.action != "restore":
                record = None
            resume = record is not None and record.state in ("intent", "appended")
            raw, state = raws.get(uid), states.get(uid)
            if raw is None or state is None:
                continue
            try:
                refs = find_stubs(raw)
            except ParseError as exc:
                self._add(folder, uid, "skipped", reason=f"cannot be read: {exc.message}")
                continue
            if not refs:
                if explicit:
                    self._add(folder, uid, "skipped", reason="it has no offload stub")
                continue
            item = RestoreItem(folder.name, folder.uidvalidity, uid, len(raw), None, refs)
            items[uid] = item
            stubs[uid] = refs
            if self.dry_run:
                self._add(folder, uid, "planned", item=item)
                continue
            new, why = self._rebuild(raw, refs, folder, uid, record if resume else None)
            if new is None:
                self._add(folder, uid, "failed", item=item, reason=why)
                continue
            op_id = new[1]
            reps.append(
                Replacement(
                    uid=uid,
                    state=state,
                    op_id=op_id,
                    new=new[0],
                    resume=resume,
                    flagged=resume and _DELETED in state.flags,
                    detail={"objects": [r.key for r in refs]},
                )
            )
        if not reps:
            return

        def write(entries: Sequence[tuple[Replacement, StepState, Mapping[str, Any]]]) -> None:
            self.journal.write(
                [
                    JournalRecord(
                        plan_id=self.run_id,
                        folder=folder.name,
                        uidvalidity=folder.uidvalidity,
                        uid=r.uid,
                        action="restore",
                        destination=None,
                        state=state,
                        detail={**r.detail, **detail},
                    )
                    for r, state, detail in entries
                ]
            )

        def check(rep: Replacement, copy: bytes) -> str | None:
            return verify_restored_copy(copy, op_id=rep.op_id, stubs=stubs[rep.uid])

        results = replace_messages(
            self.mailbox,
            folder,
            reps,
            journal=write,
            check=check,
            unchanged_since=_unchanged_since([states[r.uid] for r in reps]),
        )
        for uid, res in sorted(results.items()):
            self._add(
                folder,
                uid,
                res.status,
                item=items.get(uid),
                reason=res.reason,
                new_uid=res.new_uid,
                resumed=res.resumed,
            )

    def _rebuild(
        self,
        raw: bytes,
        refs: Sequence[StubRef],
        folder: OpenedFolder,
        uid: Uid,
        record: JournalRecord | None,
    ) -> tuple[tuple[bytes, str] | None, str]:
        """Return (restored bytes, op id), or ``None`` and why not."""
        payloads: dict[str, bytes] = {}
        for ref in refs:
            if ref.url is None:
                return None, f"the stub of part {ref.section} names no store"
            store = self._store(store_root(ref.url, ref.key))
            try:
                payloads[ref.section] = b"".join(store.get(ref.key))
            except ObjectMissingError as exc:
                return None, f"{exc.message}; the stub is kept"
        if record is not None and "op_id" in record.detail:
            op_id = str(record.detail["op_id"])
        else:
            op_id = op_id_for(self.run_id, folder.name, int(folder.uidvalidity), int(uid))
        try:
            # restore_part checks each payload's size and SHA-256 against its stub.
            new = restore_message(raw, payloads, op_id=op_id)
        except ParseError as exc:
            return None, f"{exc.message}; the stub is kept"
        if not crlf_clean(new):
            return None, "the restored message would have a bare CR or LF; the stub is kept"
        return (new, op_id), ""

    def _add(
        self,
        folder: OpenedFolder,
        uid: Uid,
        status: RestoreStatus,
        *,
        item: RestoreItem | None = None,
        reason: str | None = None,
        new_uid: Uid | None = None,
        resumed: bool = False,
    ) -> None:
        self.outcomes.append(
            RestoreOutcome(folder.name, uid, status, item, reason, new_uid, resumed)
        )


def _unchanged_since(states: Sequence[MessageState]) -> int | None:
    seen = [s.modseq for s in states if s.modseq]
    return max(seen) if seen else None
