r"""The real run: carry out a plan's deletes and archives, journaled, verified and resumable.

The sequences are DESIGN.md §4; the promises they keep are SAFETY.md's. In short, per folder:

1. SELECT it; a UIDVALIDITY other than the plan's skips every step there (promise 3).
2. Per batch of one action kind and destination (UID sets, not one round trip per message):
   FETCH size, flags and MODSEQ; a message that changed since the plan is skipped with the
   reason (promise 3), one that is gone is skipped (or, when the journal says it was ours,
   finished).
3. Journal ``intent`` → mutate → verify → journal ``done`` (promises 6, 11). Deletion is
   always ``UID STORE +FLAGS.SILENT (\Deleted)`` with ``UNCHANGEDSINCE`` then ``UID EXPUNGE``
   of exactly those UIDs (promises 1, 2), and success is read back with ``UID SEARCH``, never
   taken from an OK (fact 2).
4. Archive copies are proven before an original goes (promise 4): COPYUID must map each UID
   to a destination message of the same size; a local file and its directory are fsynced and
   the re-read bytes hash equal to the fetched ones. With MOVE (RFC 6851) the server removes
   the original in the same command, so the copy is verified right after, and a failure is
   reported.
5. Offloads (promise 5) upload the parts, APPEND the stub version and fetch it back before the
   original goes: :mod:`quotatool.services.offload`.

Resuming: the journal's last record of a (folder, UIDVALIDITY, UID), from this plan or an
earlier one, says what was already done. A copy whose reply was lost is looked for in the
destination above the UIDNEXT recorded before the command, by size, INTERNALDATE and
Message-ID, instead of being made again (promise 8); a torn mbox batch is cut back first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from quotatool.core.plan import plan_to_json
from quotatool.errors import FolderNotFoundError, ParseError, ProtocolError, UsageError
from quotatool.model import (
    Archive,
    Delete,
    Offload,
    Plan,
    PlannedAction,
    QuotaResource,
    Uid,
)
from quotatool.ports import NullProgress, Progress
from quotatool.ports_write import (
    ArchiveBlock,
    ArchiveItem,
    DestinationError,
    JournalRecord,
    LocalArchive,
    MailboxWriter,
    MessageState,
    ObjectMismatchError,
    ObjectStore,
    OpenedFolder,
    StepState,
    WriteJournal,
)
from quotatool.services.offload import (
    Replacement,
    StoreOpener,
    StubbedMessage,
    objects_detail,
    offload_message,
    op_id_for,
    replace_messages,
    sections_of,
    splice_reason,
    verify_stub_copy,
)

__all__ = [
    "DEFAULT_BATCH",
    "ExecutionResult",
    "StepOutcome",
    "check_caps",
    "execute_plan",
    "plan_id",
    "refusal",
    "stale_reason",
]

DEFAULT_BATCH = 500
"""Messages per batch: a few round trips per 500 messages, lines far below 64 KB."""
LOCAL_BATCH_BYTES = 32 * 1024 * 1024
"""Octets of raw messages held in memory at once for a local archive batch."""

Status = Literal["done", "skipped", "failed", "already_done"]
# RFC 3501 §2.3.2: \Recent belongs to one session, so it says nothing about the message.
_SESSION_FLAGS = frozenset({"\\Recent"})
_DELETED = "\\Deleted"


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What became of one planned action."""

    action: PlannedAction
    """The planned action."""
    status: Status
    """``done`` now, ``already_done`` by an earlier run, ``skipped`` (not touched), ``failed``."""
    reason: str | None = None
    """Why it was skipped or failed, one line."""
    destination_uid: int | None = None
    """UID of the archive copy in an IMAP destination folder, when known."""
    resumed: bool = False
    """True when this run finished a step an interrupted run had begun."""


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """The result of a real run, with the quota before and after it."""

    target: str
    """The TARGET as the user may see it."""
    plan_id: str
    """The executed plan's id (a hash of its JSON), as written in the journal."""
    outcomes: tuple[StepOutcome, ...]
    """One per planned action, in plan order."""
    planned_bytes: int
    """What the plan said it would free."""
    quota_before: tuple[QuotaResource, ...] | None
    """The quota right before the first change."""
    quota_after: tuple[QuotaResource, ...] | None
    """The quota at the end (reconciliation)."""
    archive_method: str | None = None
    """``move`` or ``copy`` (fallback) for IMAP archives, ``None`` when there were none."""
    notes: tuple[str, ...] = field(default=())
    """Run-wide remarks."""

    def _with(self, status: Status) -> tuple[StepOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == status)

    @property
    def done(self) -> tuple[StepOutcome, ...]:
        return self._with("done")

    @property
    def already_done(self) -> tuple[StepOutcome, ...]:
        return self._with("already_done")

    @property
    def skipped(self) -> tuple[StepOutcome, ...]:
        return self._with("skipped")

    @property
    def failed(self) -> tuple[StepOutcome, ...]:
        return self._with("failed")

    @property
    def done_bytes(self) -> int:
        """What the steps done by this run were planned to free."""
        return sum(o.action.frees_bytes for o in self.done)

    @property
    def freed_bytes(self) -> int | None:
        """STORAGE usage before minus after, as the server counts it; ``None`` without quota."""
        before = _storage(self.quota_before)
        after = _storage(self.quota_after)
        if before is None or after is None:
            return None
        return before - after

    @property
    def partial(self) -> bool:
        """True when some step was skipped or failed."""
        return bool(self.skipped or self.failed)


def _storage(quota: tuple[QuotaResource, ...] | None) -> int | None:
    if quota is None:
        return None
    return next((q.usage for q in quota if q.resource == "STORAGE"), None)


def plan_id(plan: Plan) -> str:
    """Return a stable id of ``plan``: the first 16 hex digits of its JSON's SHA-256."""
    return hashlib.sha256(plan_to_json(plan).encode("utf-8")).hexdigest()[:16]


def refusal(capabilities: frozenset[str], plan: Plan) -> str | None:
    r"""Return why the server cannot run ``plan`` safely, or ``None``; the dry run shows it too.

    Without UIDPLUS (RFC 4315) there is no ``UID EXPUNGE`` and no COPYUID: the only ways to
    remove a message would be a folder-wide EXPUNGE or CLOSE, which also remove what another
    client marked ``\Deleted`` (SAFETY.md promise 1, 9).
    """
    destructive = any(isinstance(a.action, Delete | Archive | Offload) for a in plan.actions)
    if destructive and "UIDPLUS" not in capabilities:
        return (
            "the server does not offer UIDPLUS (RFC 4315), so messages cannot be removed "
            "without also expunging other clients' deleted messages; refusing to delete, "
            "archive or offload"
        )
    return None


def check_caps(plan: Plan, *, max_messages: int | None, max_bytes: int | None) -> None:
    """Refuse a plan larger than ``--max-messages`` / ``--max-bytes`` before any change."""
    count = len(plan.actions)
    if max_messages is not None and count > max_messages:
        raise UsageError(
            f"the plan acts on {count} messages, more than --max-messages {max_messages}; "
            "nothing was changed",
            hint="check the rules with --dry-run --explain, or raise the limit",
        )
    total = sum(a.size for a in plan.actions)
    if max_bytes is not None and total > max_bytes:
        raise UsageError(
            f"the plan acts on {total} bytes of mail, more than --max-bytes {max_bytes}; "
            "nothing was changed",
            hint="check the rules with --dry-run --explain, or raise the limit",
        )


def stale_reason(action: PlannedAction, state: MessageState, ours: bool) -> str | None:
    r"""Return why ``state`` no longer matches the plan, or ``None`` (promise 3).

    ``ours``: the journal says this run family already began on the message, so a
    ``\Deleted`` flag (and the MODSEQ it bumped) may be our own doing.
    """
    if state.size != action.size:
        return f"size changed since the plan ({action.size} -> {state.size} bytes)"
    planned = set(action.flags) - _SESSION_FLAGS
    now = set(state.flags) - _SESSION_FLAGS
    if ours:
        planned.discard(_DELETED)
        now.discard(_DELETED)
    if planned != now:
        return f"flags changed since the plan ({_flags(planned)} -> {_flags(now)})"
    if (
        not ours
        and action.modseq is not None
        and state.modseq is not None
        and state.modseq != action.modseq
    ):
        return f"changed since the plan (MODSEQ {action.modseq} -> {state.modseq})"
    return None


def _flags(flags: set[str]) -> str:
    return " ".join(sorted(flags)) or "no flags"


def archive_key(folder: str, uidvalidity: int, uid: int) -> str:
    """Return a file-name-safe, stable key of a message (promise 15: no server text in it)."""
    digest = hashlib.sha256(folder.encode("utf-8")).hexdigest()[:12]
    return f"{digest}-{uidvalidity}-{uid}"


def execute_plan(
    plan: Plan,
    mailbox: MailboxWriter,
    journal: WriteJournal,
    archive: LocalArchive,
    *,
    max_messages: int | None = None,
    max_bytes: int | None = None,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
    stores: StoreOpener | None = None,
    now: int | None = None,
) -> ExecutionResult:
    """Carry out ``plan`` on ``mailbox`` and return what became of each action.

    Raises UsageError (caps) or ProtocolError (no UIDPLUS) before anything is changed;
    JournalError, ServerUnavailableError, StoreUnavailableError and other QuotatoolErrors stop
    the run where it is (the journal lets the next run finish). A refused destination
    (DestinationError) fails its batch and an object that does not verify
    (ObjectMismatchError) its message; the run goes on.

    ``stores`` opens the store an offload names (a URL or a config name; offloads are skipped
    with a reason without it); ``now`` is the date the stubs' notes show (POSIX seconds,
    default: the plan's time).
    """
    check_caps(plan, max_messages=max_messages, max_bytes=max_bytes)
    caps = mailbox.capabilities()
    why = refusal(caps, plan)
    if why is not None:
        raise ProtocolError(f"{mailbox.describe()}: {why}", hint="nothing was changed")
    runner = _Runner(
        plan=plan,
        mailbox=mailbox,
        journal=journal,
        archive=archive,
        batch_size=max(1, batch_size),
        progress=progress or NullProgress(),
        condstore="CONDSTORE" in caps,
        use_move="MOVE" in caps,
        stores=stores,
        now=now if now is not None else plan.created_at,
    )
    return runner.run()


# -- the runner ------------------------------------------------------------------------------


@dataclass
class _Item:
    """One action in a batch with what the FETCH and the journal say about it now."""

    action: PlannedAction
    state: MessageState | None
    record: JournalRecord | None

    @property
    def uid(self) -> Uid:
        return self.action.uid


@dataclass
class _Runner:
    plan: Plan
    mailbox: MailboxWriter
    journal: WriteJournal
    archive: LocalArchive
    batch_size: int
    progress: Progress
    condstore: bool
    use_move: bool
    stores: StoreOpener | None = None
    now: int = 0
    opened_stores: dict[str, tuple[ObjectStore, str | None]] = field(default_factory=dict)
    outcomes: dict[tuple[str, int], StepOutcome] = field(default_factory=dict)
    folders_made: set[str] = field(default_factory=set)
    used_imap_archive: bool = False
    plan_id: str = ""
    folder: OpenedFolder | None = None

    def run(self) -> ExecutionResult:
        self.plan_id = plan_id(self.plan)
        quota_before = self.mailbox.quota()
        self._repair_local()
        self.progress.start(len(self.plan.actions), "Cleaning")
        for folder, actions in _by_folder(self.plan.actions):
            self._folder(folder, actions)
        self.progress.finish()
        quota_after = self.mailbox.quota()
        outcomes = tuple(
            self.outcomes.get((a.folder, a.uid))
            or StepOutcome(a, "failed", "not reached (this is a bug)")
            for a in self.plan.actions
        )
        method = ("move" if self.use_move else "copy") if self.used_imap_archive else None
        return ExecutionResult(
            target=self.mailbox.describe(),
            plan_id=self.plan_id,
            outcomes=outcomes,
            planned_bytes=self.plan.summary.frees_bytes,
            quota_before=quota_before,
            quota_after=quota_after,
            archive_method=method,
        )

    # -- bookkeeping --------------------------------------------------------------------------

    def _set(self, item: _Item | PlannedAction, status: Status, reason: str | None = None,
             *, dest_uid: int | None = None, resumed: bool = False) -> None:  # fmt: skip
        action = item.action if isinstance(item, _Item) else item
        self.outcomes[(action.folder, action.uid)] = StepOutcome(
            action, status, reason, destination_uid=dest_uid, resumed=resumed
        )

    def _record(
        self, item: _Item, state: StepState, detail: dict[str, Any] | None = None
    ) -> JournalRecord:
        a = item.action
        destination: str | None = None
        if isinstance(a.action, Archive):
            destination = a.action.destination
        elif isinstance(a.action, Offload):
            destination = a.action.store
        merged = dict(item.record.detail) if item.record is not None else {}
        merged.update(detail or {})
        return JournalRecord(
            plan_id=self.plan_id,
            folder=a.folder,
            uidvalidity=a.uidvalidity,
            uid=a.uid,
            action=a.action.kind,
            destination=destination,
            state=state,
            detail=merged,
        )

    def _write(self, items: Sequence[_Item], state: StepState, **detail: Any) -> None:
        self.journal.write([self._record(i, state, detail) for i in items])

    # -- local archive repair (before anything else touches an mbox) --------------------------

    def _repair_local(self) -> None:
        groups: dict[tuple[str, int], list[JournalRecord]] = {}
        for record in self.journal.pending_local():
            block = record.detail.get("block")
            if record.destination is None or not isinstance(block, dict):
                continue
            groups.setdefault((record.destination, int(block["offset"])), []).append(record)
        for (destination, _), records in groups.items():
            raw = records[0].detail["block"]
            block = ArchiveBlock(int(raw["offset"]), int(raw["length"]), str(raw["sha256"]))
            complete = self.archive.repair(destination, block)
            state: StepState = "written" if complete else "aborted"
            self.journal.write(
                [
                    JournalRecord(
                        plan_id=r.plan_id,
                        folder=r.folder,
                        uidvalidity=r.uidvalidity,
                        uid=r.uid,
                        action=r.action,
                        destination=r.destination,
                        state=state,
                        detail=r.detail,
                    )
                    for r in records
                ]
            )

    # -- folders ------------------------------------------------------------------------------

    def _folder(self, name: str, actions: list[PlannedAction]) -> None:
        try:
            opened = self.mailbox.select(name)
        except FolderNotFoundError:
            for a in actions:
                self._set(a, "skipped", f"folder {name!r} no longer exists")
            self.progress.advance(len(actions))
            return
        self.folder = opened
        live = []
        for a in actions:
            if a.uidvalidity != opened.uidvalidity:
                self._set(
                    a,
                    "skipped",
                    f"UIDVALIDITY of {name!r} changed since the plan "
                    f"({a.uidvalidity} -> {opened.uidvalidity}): its UIDs mean other messages now",
                )
            else:
                live.append(a)
        self.progress.advance(len(actions) - len(live))
        for group in _by_kind(live):
            for batch in _batches(group, self.batch_size):
                if not self._source_open():
                    for a in batch:
                        self._set(a, "skipped", f"folder {name!r} changed during the run")
                else:
                    self._batch(batch)
                self.progress.advance(len(batch))

    def _source_open(self) -> bool:
        return self.folder is not None

    def _reselect(self) -> None:
        """SELECT the source again after examining a destination; check it is the same one."""
        assert self.folder is not None
        again = self.mailbox.select(self.folder.name)
        if again.uidvalidity != self.folder.uidvalidity:
            self.folder = None
            return
        self.folder = again

    def _batch(self, batch: list[PlannedAction]) -> None:
        assert self.folder is not None
        uids = [a.uid for a in batch]
        records = self.journal.latest(self.folder.name, self.folder.uidvalidity, uids)
        states = self.mailbox.states(uids)
        items: list[_Item] = []
        for a in batch:
            record = records.get(a.uid)
            if record is not None and record.state == "done":
                self._set(a, "already_done", "done by an earlier run")
                continue
            items.append(_Item(a, states.get(a.uid), record))
        if not items:
            return
        kind = items[0].action.action
        if isinstance(kind, Delete):
            self._delete(items)
        elif isinstance(kind, Archive) and kind.local:
            self._archive_local(items, kind.destination)
        elif isinstance(kind, Archive):
            self._archive_imap(items, kind.destination)
        elif isinstance(kind, Offload):
            self._offload(items, kind.store)

    def _check(self, items: list[_Item], ours: Callable[[_Item], bool]) -> list[_Item]:
        """Skip stale or vanished messages not begun by us; return the ones to act on."""
        ready = []
        for i in items:
            if i.state is None:
                if not ours(i):
                    self._set(i, "skipped", "no longer in the folder (removed by another client)")
                    continue
                ready.append(i)
                continue
            why = stale_reason(i.action, i.state, ours(i))
            if why is not None:
                self._set(i, "skipped", why)
            else:
                ready.append(i)
        return ready

    def _unchanged_since(self, items: Sequence[_Item]) -> int | None:
        # Any change after our FETCH gets a MODSEQ above every MODSEQ we saw (RFC 7162 §3.1.1:
        # the mailbox's HIGHESTMODSEQ only grows), so the largest one seen guards them all.
        if not self.condstore:
            return None
        seen = [i.state.modseq for i in items if i.state is not None and i.state.modseq]
        return max(seen) if seen else None

    def _remove(self, items: list[_Item], *, flagged: Sequence[_Item] = ()) -> list[_Item]:
        r"""STORE \Deleted (UNCHANGEDSINCE) + UID EXPUNGE + SEARCH; return the removed ones.

        ``flagged``: messages that already carry our ``\Deleted`` from an interrupted run.
        """
        modified: set[Uid] = set()
        if items:
            modified = self.mailbox.mark_deleted(
                [i.uid for i in items], self._unchanged_since(items)
            )
        for i in items:
            if i.uid in modified:
                self._set(i, "skipped", "changed during the run (the server reported MODIFIED)")
        targets = [i for i in items if i.uid not in modified] + list(flagged)
        if not targets:
            return []
        uids = [i.uid for i in targets]
        self.mailbox.uid_expunge(uids)
        left = self.mailbox.present(uids)
        removed = []
        for i in targets:
            if i.uid in left:
                self._set(i, "failed", "still in the folder after UID EXPUNGE")
            else:
                removed.append(i)
        return removed

    # -- delete -------------------------------------------------------------------------------

    def _delete(self, items: list[_Item]) -> None:
        def ours(i: _Item) -> bool:
            return i.record is not None and i.record.state == "intent"

        ready = self._check(items, ours)
        gone = [i for i in ready if i.state is None]
        flagged = [
            i for i in ready if i.state is not None and ours(i) and _DELETED in i.state.flags
        ]
        fresh = [i for i in ready if i.state is not None and i not in flagged]
        if fresh:
            self._write(fresh, "intent")
        removed = self._remove(fresh, flagged=flagged)
        finished = removed + gone
        if finished:
            self._write(finished, "done")
        for i in removed:
            self._set(i, "done", resumed=i in flagged)
        for i in gone:
            self._set(i, "done", "removed by an interrupted run", resumed=True)

    # -- archive to an IMAP folder ------------------------------------------------------------

    def _ensure_folder(self, destination: str) -> OpenedFolder:
        status = self.mailbox.status(destination)
        if status is None:
            self.mailbox.create(destination)
            status = self.mailbox.status(destination)
            if status is None:
                raise DestinationError(f"archive folder {destination!r} could not be created")
        return status

    def _find_copies(
        self, destination: str, items: list[_Item]
    ) -> tuple[dict[Uid, Uid], OpenedFolder]:
        """Look for copies made by an interrupted COPY/MOVE above its recorded UIDNEXT."""
        opened = self.mailbox.examine(destination)
        found: dict[Uid, Uid] = {}
        by_first: dict[int, list[_Item]] = {}
        for i in items:
            assert i.record is not None
            first = int(i.record.detail.get("dest_uidnext", 1))
            valid = i.record.detail.get("dest_uidvalidity") == opened.uidvalidity
            by_first.setdefault(first if valid else 1, []).append(i)
        for first, group in sorted(by_first.items()):
            candidates = self.mailbox.states_from(first)
            pool: dict[tuple[int, int, str | None], list[Uid]] = {}
            for uid, state in sorted(candidates.items()):
                pool.setdefault(state.identity(), []).append(uid)
            for i in group:
                assert i.record is not None
                ident = i.record.detail.get("identity")
                key = (int(ident[0]), int(ident[1]), ident[2]) if ident else None
                if key is not None and pool.get(key):
                    found[i.uid] = pool[key].pop(0)
        return found, opened

    def _archive_imap(self, items: list[_Item], destination: str) -> None:
        self.used_imap_archive = True

        def ours(i: _Item) -> bool:
            return i.record is not None and i.record.state in ("intent", "copied")

        ready = self._check(items, ours)
        try:
            dest = self._ensure_folder(destination)
        except DestinationError as exc:
            for i in ready:
                self._set(i, "failed", exc.message)
            return
        copied = [i for i in ready if i.record is not None and i.record.state == "copied"]
        uncertain = [i for i in ready if i.record is not None and i.record.state == "intent"]
        fresh = [i for i in ready if i not in copied and i not in uncertain]
        dest_uids: dict[Uid, Uid] = {
            i.uid: Uid(int(i.record.detail["dest_uid"]))
            for i in copied
            if i.record is not None and "dest_uid" in i.record.detail
        }
        if uncertain:
            # Promise 8: a command whose reply was lost may have taken effect. Find out first.
            found, _ = self._find_copies(destination, uncertain)
            self._reselect()
            if self.folder is None:
                for i in ready:
                    self._set(i, "skipped", "the folder changed during the run")
                return
            for i in uncertain:
                if i.uid in found:
                    dest_uids[i.uid] = found[i.uid]
                    if i.state is None:
                        self._write([i], "done", dest_uid=int(found[i.uid]))
                        self._set(i, "done", dest_uid=found[i.uid], resumed=True)
                    else:
                        copied.append(i)
                elif i.state is None:
                    self._set(i, "skipped", "no longer in the folder and no copy found")
                else:
                    fresh.append(i)
        if fresh:
            self._transfer(fresh, destination, dest)
        if copied:
            self._finish_copies(copied, dest_uids, resumed=True)

    def _transfer(self, fresh: list[_Item], destination: str, dest: OpenedFolder) -> None:
        status = self.mailbox.status(destination) or dest
        for i in fresh:
            assert i.state is not None
            i.record = self._record(
                i,
                "intent",
                {
                    "dest_uidnext": status.uidnext or 1,
                    "dest_uidvalidity": int(status.uidvalidity),
                    "identity": list(i.state.identity()),
                    "method": "move" if self.use_move else "copy",
                },
            )
        self.journal.write([i.record for i in fresh if i.record is not None])
        uids = [i.uid for i in fresh]
        try:
            if self.use_move:
                mapping = self.mailbox.move(uids, destination)
            else:
                mapping = self.mailbox.copy(uids, destination)
        except DestinationError as exc:
            for i in fresh:
                self._set(i, "failed", exc.message)
            return
        verified = self._verify_copies(destination, fresh, mapping)
        if self.folder is None:
            for i in fresh:
                self._set(i, "skipped", "the folder changed during the run")
            return
        if self.use_move:
            left = self.mailbox.present(uids)
            done = [i for i in fresh if i.uid in verified and i.uid not in left]
            for i in fresh:
                if i.uid in left:
                    self._set(i, "failed", "still in the folder after UID MOVE")
                elif i.uid not in verified:
                    self._set(i, "failed", _unverified(i, mapping, destination))
            if done:
                self.journal.write(
                    [self._record(i, "done", {"dest_uid": int(mapping[i.uid])}) for i in done]
                )
            for i in done:
                self._set(i, "done", dest_uid=mapping[i.uid])
            return
        good = [i for i in fresh if i.uid in verified]
        for i in fresh:
            if i.uid not in verified:
                self._set(i, "failed", _unverified(i, mapping, destination) + "; original kept")
        if good:
            self.journal.write(
                [self._record(i, "copied", {"dest_uid": int(mapping[i.uid])}) for i in good]
            )
            self._finish_copies(good, mapping, resumed=False)

    def _verify_copies(
        self, destination: str, items: list[_Item], mapping: dict[Uid, Uid]
    ) -> set[Uid]:
        """Return the source UIDs whose COPYUID target exists with the planned size."""
        targets = [mapping[i.uid] for i in items if i.uid in mapping]
        verified: set[Uid] = set()
        if targets:
            self.mailbox.examine(destination)
            states = self.mailbox.states(targets)
            for i in items:
                target = mapping.get(i.uid)
                state = states.get(target) if target is not None else None
                if state is not None and state.size == i.action.size:
                    verified.add(i.uid)
        self._reselect()
        return verified

    def _finish_copies(self, items: list[_Item], mapping: dict[Uid, Uid], resumed: bool) -> None:
        present = [i for i in items if i.state is not None]
        for i in items:
            if i.state is None:
                # The original is gone already: the interrupted run finished the expunge.
                self._write([i], "done", dest_uid=int(mapping.get(i.uid, 0)))
                self._set(i, "done", dest_uid=mapping.get(i.uid), resumed=True)
        flagged = [i for i in present if i.state is not None and _DELETED in i.state.flags]
        removed = self._remove([i for i in present if i not in flagged], flagged=flagged)
        if removed:
            self._write(removed, "done")
        for i in removed:
            self._set(i, "done", dest_uid=mapping.get(i.uid), resumed=resumed)

    # -- offload to an object store -----------------------------------------------------------

    def _store(self, ref: str) -> tuple[ObjectStore, str | None]:
        opened = self.opened_stores.get(ref)
        if opened is None:
            assert self.stores is not None
            opened = self.opened_stores[ref] = self.stores(ref)
        return opened

    def _offload(self, items: list[_Item], store_ref: str) -> None:
        def ours(i: _Item) -> bool:
            return i.record is not None and i.record.state in ("intent", "appended")

        if self.stores is None:
            for i in items:
                self._set(i, "skipped", "no object store was given to this run")
            return
        ready = self._check(items, ours)
        if not ready:
            return
        # A store that cannot be opened (unknown name, missing extra) stops the run here,
        # before anything in the mailbox changed.
        store, link_url = self._store(store_ref)
        for chunk in _byte_chunks(ready, LOCAL_BATCH_BYTES):
            if self.folder is None:
                for i in chunk:
                    self._set(i, "skipped", "the folder changed during the run")
                continue
            self._offload_chunk(chunk, store, link_url)

    def _offload_chunk(self, chunk: list[_Item], store: ObjectStore, link_url: str | None) -> None:
        assert self.folder is not None
        folder = self.folder
        present = [i for i in chunk if i.state is not None]
        raws = self.mailbox.fetch_raw([i.uid for i in present]) if present else {}
        reps: list[Replacement] = []
        by_uid: dict[Uid, _Item] = {}
        originals: dict[Uid, bytes] = {}
        sections: dict[Uid, frozenset[str]] = {}
        for i in chunk:
            act = i.action.action
            assert isinstance(act, Offload)
            resume = i.record is not None and i.record.state in ("intent", "appended")
            if resume and i.record is not None and "op_id" in i.record.detail:
                op_id = str(i.record.detail["op_id"])
            else:
                op_id = op_id_for(self.plan_id, folder.name, int(folder.uidvalidity), int(i.uid))
            planned = frozenset(p.section for p in act.parts)
            sections[i.uid] = planned
            new: StubbedMessage | None = None
            if i.state is not None:
                raw = raws.get(i.uid)
                if raw is None:
                    self._set(i, "skipped", "no longer in the folder (removed by another client)")
                    continue
                if len(raw) != i.action.size:
                    self._set(
                        i, "failed", f"fetched {len(raw)} bytes but RFC822.SIZE is {i.action.size}"
                    )
                    continue
                try:
                    new = offload_message(
                        raw, act, store, op_id=op_id, moved_at=self.now, link_url=link_url
                    )
                except ObjectMismatchError as exc:
                    self._set(i, "failed", f"{exc.message}; the message was not rewritten")
                    continue
                except ParseError as exc:
                    self._set(i, "skipped", splice_reason(exc))
                    continue
                originals[i.uid] = raw
            by_uid[i.uid] = i
            reps.append(
                Replacement(
                    uid=i.uid,
                    state=i.state,
                    op_id=op_id,
                    new=new.raw if new is not None else None,
                    resume=resume,
                    flagged=resume and i.state is not None and _DELETED in i.state.flags,
                    detail={
                        "sections": sorted(planned),
                        **({"objects": objects_detail(new)} if new is not None else {}),
                    },
                )
            )
        if not reps:
            return

        def journal(entries: Sequence[tuple[Replacement, StepState, Mapping[str, Any]]]) -> None:
            self.journal.write(
                [
                    self._record(by_uid[r.uid], state, {**r.detail, **detail})
                    for r, state, detail in entries
                ]
            )

        def check(rep: Replacement, copy: bytes) -> str | None:
            return verify_stub_copy(
                copy,
                op_id=rep.op_id,
                store=store,
                original=originals.get(rep.uid),
                sections=sections.get(rep.uid) or sections_of(rep.detail),
            )

        results = replace_messages(
            self.mailbox,
            folder,
            reps,
            journal=journal,
            check=check,
            unchanged_since=self._unchanged_since([by_uid[r.uid] for r in reps]),
        )
        for uid, res in results.items():
            self._set(
                by_uid[uid], res.status, res.reason, dest_uid=res.new_uid, resumed=res.resumed
            )

    # -- archive to a local mbox / Maildir ----------------------------------------------------

    def _archive_local(self, items: list[_Item], destination: str) -> None:
        def ours(i: _Item) -> bool:
            return i.record is not None and i.record.state == "written"

        ready = self._check(items, ours)
        written = [i for i in ready if ours(i)]
        for i in [i for i in written if i.state is None]:
            self._write([i], "done")
            self._set(i, "done", "removed by an interrupted run", resumed=True)
        written = [i for i in written if i.state is not None]
        fresh = [i for i in ready if not ours(i)]
        for chunk in _byte_chunks(fresh, LOCAL_BATCH_BYTES):
            written += self._write_local(chunk, destination)
        if written:
            flagged = [i for i in written if i.state is not None and _DELETED in i.state.flags]
            removed = self._remove([i for i in written if i not in flagged], flagged=flagged)
            if removed:
                self._write(removed, "done")
            for i in removed:
                self._set(i, "done", resumed=ours(i))

    def _write_local(self, chunk: list[_Item], destination: str) -> list[_Item]:
        assert self.folder is not None
        raws = self.mailbox.fetch_raw([i.uid for i in chunk])
        items: list[ArchiveItem] = []
        kept: list[_Item] = []
        for i in chunk:
            raw = raws.get(i.uid)
            if raw is None:
                self._set(i, "skipped", "no longer in the folder (removed by another client)")
                continue
            if len(raw) != i.action.size:
                self._set(
                    i, "failed", f"fetched {len(raw)} bytes but RFC822.SIZE is {i.action.size}"
                )
                continue
            assert i.state is not None
            items.append(
                ArchiveItem(
                    key=archive_key(self.folder.name, int(self.folder.uidvalidity), int(i.uid)),
                    raw=raw,
                    sha256=hashlib.sha256(raw).hexdigest(),
                    internaldate=i.state.internaldate,
                    flags=i.state.flags - _SESSION_FLAGS,
                )
            )
            kept.append(i)
        if not items:
            return []
        try:
            block = self.archive.prepare(destination, items)
            detail: dict[str, Any] = {}
            if block is not None:
                detail["block"] = {
                    "offset": block.offset,
                    "length": block.length,
                    "sha256": block.sha256,
                }
            self.journal.write(
                [
                    self._record(i, "intent", {**detail, "sha256": item.sha256})
                    for i, item in zip(kept, items, strict=True)
                ]
            )
            self.archive.write(destination, items, block)
        except DestinationError as exc:
            for i in kept:
                self._set(i, "failed", exc.message)
            return []
        self.journal.write(
            [
                self._record(i, "written", {**detail, "sha256": item.sha256})
                for i, item in zip(kept, items, strict=True)
            ]
        )
        return kept


def _unverified(item: _Item, mapping: dict[Uid, Uid], destination: str) -> str:
    if item.uid not in mapping:
        return f"the server reported no COPYUID for it in {destination!r}"
    return f"its copy in {destination!r} (UID {mapping[item.uid]}) does not have the planned size"


def _by_folder(actions: Sequence[PlannedAction]) -> Iterator[tuple[str, list[PlannedAction]]]:
    groups: dict[str, list[PlannedAction]] = {}
    for a in actions:
        groups.setdefault(a.folder, []).append(a)
    yield from groups.items()


def _by_kind(actions: Sequence[PlannedAction]) -> list[list[PlannedAction]]:
    groups: dict[tuple[str, str | None, bool], list[PlannedAction]] = {}
    for a in actions:
        act = a.action
        where = act.destination if isinstance(act, Archive) else None
        if isinstance(act, Offload):
            where = act.store
        key = (act.kind, where, isinstance(act, Archive) and act.local)
        groups.setdefault(key, []).append(a)
    return list(groups.values())


def _batches(actions: list[PlannedAction], size: int) -> Iterator[list[PlannedAction]]:
    for start in range(0, len(actions), size):
        yield actions[start : start + size]


def _byte_chunks(items: list[_Item], limit: int) -> Iterator[list[_Item]]:
    chunk: list[_Item] = []
    total = 0
    for i in items:
        if chunk and total + i.action.size > limit:
            yield chunk
            chunk, total = [], 0
        chunk.append(i)
        total += i.action.size
    if chunk:
        yield chunk
