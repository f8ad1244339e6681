r"""Offload attachments to an object store, and the verified replace sequence restore shares.

DESIGN.md §4 and §5, SAFETY.md promise 5 and facts 4-6. One message goes like this:

1. fetch it raw (``BODY.PEEK[]``) and take each planned part out (:func:`detach`); a part under
   a signed or encrypted structure is refused unless the rule opted in;
2. upload each payload under its content-addressed key; the store hashes what it sends and
   reads the object back (:meth:`ObjectStore.put`), so a stub never names a bad object;
3. splice the stubs in (headers and every other part byte for byte) with an
   ``X-Quotatool-Op`` marker, and check the result: other parts untouched, every stub
   restorable to the payload it replaced;
4. :func:`replace_messages`: journal ``intent`` → APPEND with the original's flags and
   INTERNALDATE → check APPENDUID → journal ``appended`` → fetch the copy back and compare it
   byte for byte → ``UID STORE \\Deleted`` (UNCHANGEDSINCE) and ``UID EXPUNGE`` of the original
   → journal ``done``.

A rerun that finds ``intent`` or ``appended`` in the journal searches the folder for the marker
first (``UID SEARCH HEADER X-Quotatool-Op <id>``) and verifies what it finds by content, so a
copy whose APPEND reply was lost is used instead of appended again (promise 8).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from quotatool.core.signed import guarded_by
from quotatool.core.splice import (
    MARKER_FIELD,
    check_untouched,
    locate,
    marker_of,
)
from quotatool.core.stub import StubError, detach, find_stubs, stub_message
from quotatool.errors import ParseError
from quotatool.model import Offload, StoredObject, Uid
from quotatool.ports_write import (
    DestinationError,
    MailboxWriter,
    MessageState,
    ObjectStore,
    OpenedFolder,
    StepState,
)

__all__ = [
    "CopyCheck",
    "JournalWrite",
    "Replaced",
    "Replacement",
    "StoreOpener",
    "StubbedMessage",
    "crlf_clean",
    "objects_detail",
    "offload_message",
    "op_id_for",
    "replace_messages",
    "sections_of",
    "splice_reason",
    "store_root",
    "verify_stub_copy",
]

StoreOpener = Callable[[str], tuple[ObjectStore, str | None]]
"""Open a store by URL or config name; return it and its ``link_url`` template (or ``None``)."""

# imaplib's APPEND turns every CR, LF and CRLF into CRLF (imaplib.MapCRLF), so a message with
# a bare CR or LF would not arrive as built; such messages are refused, not silently changed.
_SESSION_FLAGS = frozenset({"\\recent"})
_DELETED = "\\Deleted"


def crlf_clean(raw: bytes) -> bool:
    """Return whether every line of ``raw`` ends in CRLF (what APPEND carries unchanged)."""
    # Three counts in C instead of a regex with look-around: 50 times faster on big bodies.
    pairs = raw.count(b"\r\n")
    return raw.count(b"\r") == pairs and raw.count(b"\n") == pairs


def op_id_for(run_id: str, folder: str, uidvalidity: int, uid: int) -> str:
    """Return the marker value of one message's rewrite: the run's id and the message's key.

    33 characters: a plan id (16 hex), a dot and 16 hex of the (folder, UIDVALIDITY, UID), so
    the marker line has a fixed length and no server text (SAFETY.md promise 15).
    """
    digest = hashlib.sha256(f"{folder}\0{uidvalidity}\0{uid}".encode()).hexdigest()[:16]
    return f"{run_id}.{digest}"


def store_root(url: str, key: str) -> str:
    """Return the store URL of an object URL (``<root>/<key>`` → ``<root>``)."""
    suffix = "/" + key
    return url[: -len(suffix)] if url.endswith(suffix) else url


# -- offload: build the stub version of one message -----------------------------------------------


@dataclass(frozen=True, slots=True)
class StubbedMessage:
    """The stub version of a message, ready to APPEND, and the objects it names."""

    raw: bytes
    """The rewritten message, with its marker."""
    sections: frozenset[str]
    """The sections replaced by stubs."""
    objects: tuple[StoredObject, ...]
    """The verified objects, in section order."""

    @property
    def moved_bytes(self) -> int:
        """Octets of decoded payload now in the store."""
        return sum(o.size for o in self.objects)


def offload_message(
    raw: bytes,
    action: Offload,
    store: ObjectStore,
    *,
    op_id: str,
    moved_at: int,
    link_url: str | None = None,
) -> StubbedMessage:
    """Upload the planned parts of ``raw`` and return the verified stub version.

    Raises ParseError (StubError, SpliceError) when the message cannot be offloaded as planned
    (the caller skips it; nothing was changed in the mailbox), and StoreError when the store
    fails; ObjectMismatchError means an object did not verify.
    """
    if not crlf_clean(raw):
        raise StubError("the message has a bare CR or LF, which APPEND would change")
    sections = [p.section for p in action.parts]
    if not action.include_signed:
        guarded = guarded_by(locate(raw), sections)
        if guarded:
            section, kind = next(iter(sorted(guarded.items())))
            raise StubError(
                f"part {section} lies inside {kind}: rewriting it would break the signature "
                "(set include_signed = true in the rule to offload anyway)"
            )
    parts = [detach(raw, s) for s in sections]
    for planned, part in zip(action.parts, parts, strict=True):
        if part.content_type != planned.content_type:
            raise StubError(
                f"part {part.section} is {part.content_type} now, the plan says "
                f"{planned.content_type}"
            )
    objects = [store.put(p.key, p.payload, sha256=p.sha256, size=p.size) for p in parts]
    locations = {p.section: o.url for p, o in zip(parts, objects, strict=True)}
    new = stub_message(raw, parts, locations, moved_at=moved_at, op_id=op_id, link_url=link_url)
    replaced = set(sections)
    check_untouched(raw, new, replaced)
    # The stubs must name what they replaced before the original may go: restore_message
    # rebuilds a part from exactly these fields (detach checked that the layout re-encodes
    # the payload into the original body when it says exact=yes).
    refs = {ref.section: ref for ref in find_stubs(new)}
    for p in parts:
        ref = refs.get(p.section)
        if ref is None or (ref.sha256, ref.size, ref.key, ref.headers, ref.layout) != (
            p.sha256,
            p.size,
            p.key,
            p.headers,
            p.layout,
        ):
            raise StubError(f"part {p.section}: the stub does not describe the part it replaced")
    if not crlf_clean(new):
        raise StubError("the stub version would have a bare CR or LF")
    return StubbedMessage(raw=new, sections=frozenset(replaced), objects=tuple(objects))


def verify_stub_copy(
    copy: bytes,
    *,
    op_id: str,
    store: ObjectStore,
    original: bytes | None,
    sections: frozenset[str],
) -> str | None:
    """Check a stub version found in the mailbox; return why it is not good, or ``None``.

    It must carry ``op_id``, keep every part of ``original`` outside ``sections`` byte for byte
    (when the original is still there to compare with), and have a stub in each of
    ``sections`` whose object is in the store with the recorded size.
    """
    try:
        if marker_of(copy) != op_id:
            return "it does not carry the operation's marker"
        if original is not None:
            check_untouched(original, copy, set(sections))
        refs = {ref.section: ref for ref in find_stubs(copy)}
    except ParseError as exc:
        return exc.message
    for section in sorted(sections):
        ref = refs.get(section)
        if ref is None:
            return f"part {section} is not a stub in it"
        if store.head(ref.key) != ref.size:
            return f"object {ref.key} is not in the store with {ref.size} octets"
    return None


# -- the replace sequence (offload and restore) ----------------------------------------------------


@dataclass
class Replacement:
    """One message to be replaced by a rewritten version of itself in the same folder."""

    uid: Uid
    """The original's UID."""
    state: MessageState | None
    """The original now; ``None`` when it is gone (an interrupted run expunged it)."""
    op_id: str
    """The marker value the rewritten version carries."""
    new: bytes | None
    """The rewritten version to APPEND; ``None`` only when the original is gone."""
    resume: bool = False
    """The journal says an earlier run may have APPENDed it: search for the marker first."""
    flagged: bool = False
    r"""The original carries our ``\Deleted`` from an interrupted run."""
    detail: dict[str, Any] = field(default_factory=dict)
    """Journal detail of the step (objects, sections)."""


@dataclass(frozen=True, slots=True)
class Replaced:
    """What became of one replacement."""

    status: Literal["done", "failed", "skipped"]
    """``done``: the rewritten copy is verified and the original gone."""
    reason: str | None = None
    """Why not, one line."""
    new_uid: Uid | None = None
    """UID of the rewritten copy."""
    resumed: bool = False
    """An interrupted run had begun it."""


JournalWrite = Callable[[Sequence[tuple[Replacement, StepState, Mapping[str, Any]]]], None]
"""Write one journal record per (replacement, state, detail), durably, as one transaction."""
CopyCheck = Callable[[Replacement, bytes], str | None]
"""Check a copy found by its marker: ``None`` when it is good, else why not."""


def _append_flags(state: MessageState) -> frozenset[str]:
    return frozenset(f for f in state.flags if f.lower() not in _SESSION_FLAGS and f != _DELETED)


def _find_marked(
    mailbox: MailboxWriter, items: Sequence[Replacement], check: CopyCheck
) -> tuple[dict[Uid, Uid], set[Uid]]:
    """Find the copies a lost APPEND reply left: item UID → good copy, and extra copies."""
    found: dict[Uid, Uid] = {}
    extra: set[Uid] = set()
    for item in items:
        candidates = [u for u in mailbox.search_header(MARKER_FIELD, item.op_id) if u != item.uid]
        if not candidates:
            continue
        raws = mailbox.fetch_raw(candidates)
        # HEADER search is a substring match: only an exact marker is ours.
        ours = sorted(u for u, raw in raws.items() if _marker(raw) == item.op_id)
        good = [u for u in ours if check(item, raws[u]) is None]
        if good:
            found[item.uid] = good[0]
        # Copies carrying this operation's marker were written by us; keep exactly one.
        extra.update(u for u in ours if u != found.get(item.uid))
    return found, extra


def _marker(raw: bytes) -> str | None:
    try:
        return marker_of(raw)
    except ParseError:
        return None


def replace_messages(
    mailbox: MailboxWriter,
    folder: OpenedFolder,
    items: Sequence[Replacement],
    *,
    journal: JournalWrite,
    check: CopyCheck,
    unchanged_since: int | None,
) -> dict[Uid, Replaced]:
    """Replace each original by its rewritten version in the selected ``folder``.

    Only a copy that is verified (fetched back byte-identical, or found by its marker and
    checked by ``check``) lets its original go. Raises ServerUnavailableError, JournalError and
    other QuotatoolErrors for the caller to stop the run; the journal lets a rerun finish.
    """
    out: dict[Uid, Replaced] = {}
    copies: dict[Uid, Uid] = {}
    extra: set[Uid] = set()
    resumed = {i.uid for i in items if i.resume}
    if resumed:
        found, extra = _find_marked(mailbox, [i for i in items if i.resume], check)
        copies.update(found)
    fresh: list[Replacement] = []
    for i in items:
        if i.uid in copies:
            continue
        if i.state is None or i.new is None:
            out[i.uid] = Replaced("skipped", "no longer in the folder and no copy of it found")
        else:
            fresh.append(i)
    if fresh:
        journal([(i, "intent", {"op_id": i.op_id}) for i in fresh])
    appended: list[tuple[Replacement, Uid]] = []
    for i in fresh:
        assert i.state is not None
        assert i.new is not None
        try:
            where = mailbox.append(folder.name, i.new, _append_flags(i.state), i.state.internaldate)
        except DestinationError as exc:
            out[i.uid] = Replaced("failed", f"{exc.message}; the original is kept")
            continue
        if where.uidvalidity != folder.uidvalidity:
            out[i.uid] = Replaced(
                "failed", f"APPENDUID names UIDVALIDITY {where.uidvalidity}; the original is kept"
            )
            continue
        appended.append((i, where.uid))
    if appended:
        journal([(i, "appended", {"op_id": i.op_id, "new_uid": int(u)}) for i, u in appended])
        back = mailbox.fetch_raw([u for _, u in appended])
        for i, u in appended:
            # SAFETY.md fact 5: a server that merged the copy into the original (Gmail, by
            # Message-ID) gives no new UID or different bytes; the original then stays.
            if u != i.uid and back.get(u) == i.new:
                copies[i.uid] = u
            else:
                if u != i.uid:
                    extra.add(u)
                out[i.uid] = Replaced(
                    "failed",
                    f"the appended copy (UID {u}) is not what was sent; the original is kept",
                )
    # Remove the originals whose copy is proven, and our own surplus copies.
    proven = [i for i in items if i.uid in copies]
    to_flag = [i for i in proven if i.state is not None and not _carries_deleted(i)]
    flagged = [i for i in proven if i.state is not None and _carries_deleted(i)]
    modified: set[Uid] = set()
    if to_flag:
        modified = mailbox.mark_deleted([i.uid for i in to_flag], unchanged_since)
    for i in to_flag:
        if i.uid in modified:
            # Changed by another client after our FETCH: keep it, drop our now stale copy.
            extra.add(copies.pop(i.uid))
            out[i.uid] = Replaced(
                "skipped", "changed during the run (the server reported MODIFIED)"
            )
    if extra:
        mailbox.mark_deleted(sorted(extra), None)
    targets = [i.uid for i in to_flag + flagged if i.uid in copies]
    expunge = targets + sorted(extra)
    if expunge:
        mailbox.uid_expunge(expunge)
    left = mailbox.present(targets) if targets else set()
    done = [i for i in proven if i.uid in copies and i.uid not in left]
    for i in proven:
        if i.uid in left:
            out[i.uid] = Replaced("failed", "still in the folder after UID EXPUNGE")
    if done:
        journal([(i, "done", {"op_id": i.op_id, "new_uid": int(copies[i.uid])}) for i in done])
    for i in done:
        out[i.uid] = Replaced("done", new_uid=copies[i.uid], resumed=i.uid in resumed)
    return out


def _carries_deleted(item: Replacement) -> bool:
    return item.flagged and item.state is not None and _DELETED in item.state.flags


def objects_detail(stubbed: StubbedMessage) -> list[dict[str, Any]]:
    """Return the journal detail naming a stub version's objects."""
    return [{"key": o.key, "size": o.size, "sha256": o.sha256} for o in stubbed.objects]


def sections_of(detail: Mapping[str, Any]) -> frozenset[str]:
    """Return the replaced sections a journal detail records."""
    value = detail.get("sections", [])
    return frozenset(str(s) for s in value) if isinstance(value, list) else frozenset()


def splice_reason(exc: ParseError) -> str:
    """Return the one-line skip reason of a message that cannot be rewritten."""
    return f"cannot be rewritten: {exc.message}"
