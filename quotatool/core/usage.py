"""Fold an Inventory into the numbers a person wants: where did the space go?

Everything here is pure and runs in one pass over the messages: a 100,000-message mailbox
must summarise in a small fraction of a second. Sizes are RFC822.SIZE octets (what the quota
counts); years and dates are INTERNALDATE in UTC (the arrival time the server stores and
sorts by, present on every message, unlike the optional ``Date:`` header).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from quotatool.model import Attachment, Inventory, MessageInfo, QuotaResource, RuleSummary

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SEEN = "\\Seen"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FolderUsage:
    """What one folder holds."""

    name: str
    """Decoded folder name."""
    messages: int
    """Number of messages scanned."""
    bytes: int
    """Sum of RFC822.SIZE."""
    unseen: int
    """Messages without ``\\Seen``."""
    attachments: int
    """Number of attachment parts."""
    attachment_bytes: int
    """Sum of the attachment parts' encoded sizes."""
    oldest: int | None
    """Earliest INTERNALDATE (POSIX seconds), ``None`` for an empty folder."""
    newest: int | None
    """Latest INTERNALDATE (POSIX seconds), ``None`` for an empty folder."""
    special_use: str | None
    """RFC 6154 special-use attribute such as ``\\Trash``, if any."""


@dataclass(frozen=True, slots=True)
class Bucket:
    """Usage grouped under one key (a sender, a domain, a year, a MIME type)."""

    key: str
    """The group: an address, a domain, a year like ``"2023"`` or a MIME type."""
    messages: int
    """Messages in the group."""
    bytes: int
    """Sum of those messages' RFC822.SIZE."""
    attachments: int = 0
    """Attachment parts in the group (for MIME types: parts of that type)."""
    attachment_bytes: int = 0
    """Encoded size of those attachment parts."""


@dataclass(frozen=True, slots=True)
class Totals:
    """Sums over every scanned message."""

    messages: int
    """Messages scanned."""
    bytes: int
    """Sum of RFC822.SIZE."""
    attachments: int
    """Attachment parts."""
    attachment_bytes: int
    """Encoded size of the attachment parts."""
    unseen: int
    """Messages without ``\\Seen``."""
    unparsed: int
    """Messages whose BODYSTRUCTURE could not be parsed (counted by size everywhere else)."""
    folders: int
    """Folders scanned."""


@dataclass(frozen=True, slots=True)
class LargeAttachment:
    """One attachment part, with enough of its message to find it."""

    folder: str
    """Folder of the message."""
    uid: int
    """UID of the message in ``folder``."""
    filename: str | None
    """Decoded filename, if the part names one."""
    content_type: str
    """Lower-case ``type/subtype``."""
    size: int
    """Encoded octets stored on the server."""
    decoded_size: int
    """Estimated size after removing the transfer encoding."""
    date: int
    """INTERNALDATE of the message."""
    from_addr: str
    """Sender address of the message."""
    subject: str
    """Subject of the message."""


@dataclass(frozen=True, slots=True)
class ScanReport:
    """Everything the scan report shows, already sorted and cut to size."""

    target: str
    """The TARGET as the user named it."""
    scanned_at: int
    """When the scan started, POSIX seconds."""
    quota: tuple[QuotaResource, ...] | None
    """Quota resources, ``None`` when the server reports no quota."""
    totals: Totals
    """Sums over every message."""
    folders: tuple[FolderUsage, ...]
    """Every folder, largest first (ties by name)."""
    largest_messages: tuple[MessageInfo, ...]
    """The ``top`` largest messages (ties by folder, then UID)."""
    largest_attachments: tuple[LargeAttachment, ...]
    """The ``top`` largest attachment parts by encoded size."""
    by_sender: tuple[Bucket, ...]
    """The ``top`` sender addresses by bytes (ties by key)."""
    by_domain: tuple[Bucket, ...]
    """The ``top`` sender domains by bytes (ties by key)."""
    by_year: tuple[Bucket, ...]
    """Every INTERNALDATE year (UTC), ascending."""
    by_type: tuple[Bucket, ...]
    """The ``top`` attachment MIME types by attachment bytes (ties by bytes, then key)."""
    warnings: tuple[str, ...]
    """The scan's warnings, unchanged."""
    reclaimable: tuple[RuleSummary, ...] | None = None
    """What each cleanup rule would free (``scan --rules``), ``None`` when no rules were given."""


class _Acc:
    """A mutable running sum for one bucket; frozen Buckets are built once at the end."""

    __slots__ = ("attachment_bytes", "attachments", "bytes", "messages")

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0
        self.attachments = 0
        self.attachment_bytes = 0

    def merge(self, other: _Acc) -> None:
        self.messages += other.messages
        self.bytes += other.bytes
        self.attachments += other.attachments
        self.attachment_bytes += other.attachment_bytes

    def bucket(self, key: str) -> Bucket:
        return Bucket(key, self.messages, self.bytes, self.attachments, self.attachment_bytes)


def _year_span(ts: int) -> tuple[int, int, int]:
    """Return (year, first second of it, first second of the next year), UTC."""
    # timedelta arithmetic rather than datetime.fromtimestamp: it also handles dates before
    # 1970, which some servers report for messages with a broken INTERNALDATE.
    year = (_EPOCH + timedelta(seconds=ts)).year
    start = int((datetime(year, 1, 1, tzinfo=UTC) - _EPOCH).total_seconds())
    end = int((datetime(year + 1, 1, 1, tzinfo=UTC) - _EPOCH).total_seconds())
    return year, start, end


def _top_buckets(accs: dict[str, _Acc], top: int) -> tuple[Bucket, ...]:
    # heapq.nsmallest on a negated size rather than nlargest: the tie-breaker is the key in
    # ascending order, and a string cannot be negated.
    best = heapq.nsmallest(top, accs.items(), key=lambda kv: (-kv[1].bytes, kv[0]))
    return tuple(acc.bucket(key) for key, acc in best)


class _Top(Generic[T]):
    """Candidates for the ``top`` largest items, gathered with one comparison per item.

    ``floor`` is the smallest size that can still reach the ``top`` largest seen so far; the
    caller offers only items at or above it. The floor never exceeds the final ``top``-th
    largest size, so no member of the final list is ever dropped; the exact ranking with the
    full tie-breaking key is left to the end, over the few candidates.
    """

    __slots__ = ("_heap", "_next_prune", "_top", "floor", "items")

    def __init__(self, top: int) -> None:
        self._top = top
        self._heap: list[int] = []
        self.items: list[tuple[int, T]] = []
        # Items arriving in ascending size would all be candidates: drop those fallen below
        # the floor whenever the list doubles, so memory and the final ranking stay small.
        self._next_prune = 4 * top + 64
        # With top == 0 nothing qualifies; otherwise everything does until the heap is full.
        self.floor: float = float("inf") if top <= 0 else -1

    def offer(self, size: int, item: T) -> None:
        self.items.append((size, item))
        heap = self._heap
        if len(heap) < self._top:
            heapq.heappush(heap, size)
            if len(heap) == self._top:
                self.floor = heap[0]
        elif size > heap[0]:
            heapq.heapreplace(heap, size)
            self.floor = heap[0]
        if len(self.items) > self._next_prune:
            floor = self.floor
            self.items = [entry for entry in self.items if entry[0] >= floor]
            self._next_prune = max(self._next_prune, 2 * len(self.items))

    def candidates(self) -> list[T]:
        return [item for _, item in self.items]


def _largest_messages(candidates: list[MessageInfo], top: int) -> tuple[MessageInfo, ...]:
    # heapq.nsmallest on a negated size rather than nlargest: ties go to the folder name and
    # UID in ascending order, and a string cannot be negated.
    return tuple(heapq.nsmallest(top, candidates, key=lambda m: (-m.size, m.folder, m.uid)))


def _largest_attachments(
    candidates: list[tuple[MessageInfo, Attachment]], top: int
) -> tuple[LargeAttachment, ...]:
    best = heapq.nsmallest(
        top,
        candidates,
        key=lambda ma: (
            -ma[1].size,
            ma[0].folder,
            ma[0].uid,
            ma[1].section,
        ),
    )
    return tuple(
        LargeAttachment(
            folder=m.folder,
            uid=m.uid,
            filename=a.filename,
            content_type=a.content_type,
            size=a.size,
            decoded_size=a.decoded_size,
            date=m.internaldate,
            from_addr=m.from_addr,
            subject=m.subject,
        )
        for m, a in best
    )


def summarize(inventory: Inventory, *, top: int = 10) -> ScanReport:
    """Fold every message of ``inventory`` into per folder, sender, year and type usage.

    ``top`` bounds the largest-message, largest-attachment, sender, domain and type lists;
    folders and years are always complete.
    """
    top = max(top, 0)
    senders: dict[str, _Acc] = {}
    years: dict[int, _Acc] = {}
    types: dict[str, _Acc] = {}
    folders: list[FolderUsage] = []
    total_unparsed = 0
    big_messages: _Top[MessageInfo] = _Top(top)
    big_attachments: _Top[tuple[MessageInfo, Attachment]] = _Top(top)

    # The year of consecutive messages rarely changes (a folder is in UID, i.e. arrival,
    # order), so the current year's bounds are kept; a miss looks the day up, and only a
    # day not seen before pays for a datetime.
    year_lo = year_hi = 0
    day_spans: dict[int, tuple[int, int, _Acc]] = {}
    year_acc = _Acc()

    for scan in inventory.folders:
        messages = scan.messages
        f_bytes = f_unseen = f_att = f_att_bytes = 0
        oldest = newest = messages[0].internaldate if messages else 0
        for m in messages:
            size = m.size
            ts = m.internaldate
            f_bytes += size
            if _SEEN not in m.flags:
                f_unseen += 1
            if m.unparsed:
                total_unparsed += 1
            if ts < oldest:
                oldest = ts
            elif ts > newest:
                newest = ts
            if size >= big_messages.floor:
                big_messages.offer(size, m)

            if not year_lo <= ts < year_hi:
                day = ts // 86400  # POSIX time has exactly 86400 seconds a day (no leap seconds)
                span = day_spans.get(day)
                if span is None:
                    year, lo, hi = _year_span(ts)
                    acc = years.get(year)
                    if acc is None:
                        acc = years[year] = _Acc()
                    span = day_spans[day] = (lo, hi, acc)
                year_lo, year_hi, year_acc = span
            year_acc.messages += 1
            year_acc.bytes += size
            sender = senders.get(m.from_addr)
            if sender is None:
                sender = senders[m.from_addr] = _Acc()
            sender.messages += 1
            sender.bytes += size

            atts = m.attachments
            if not atts:
                continue
            att_bytes = 0
            counted: set[str] = set()
            for a in atts:
                a_size = a.size
                att_bytes += a_size
                if a_size >= big_attachments.floor:
                    big_attachments.offer(a_size, (m, a))
                ctype = a.content_type
                kind = types.get(ctype)
                if kind is None:
                    kind = types[ctype] = _Acc()
                kind.attachments += 1
                kind.attachment_bytes += a_size
                if ctype not in counted:
                    # A message counts once per type, however many parts it has of it.
                    counted.add(ctype)
                    kind.messages += 1
                    kind.bytes += size
            n_att = len(atts)
            f_att += n_att
            f_att_bytes += att_bytes
            year_acc.attachments += n_att
            year_acc.attachment_bytes += att_bytes
            sender.attachments += n_att
            sender.attachment_bytes += att_bytes

        folders.append(
            FolderUsage(
                name=scan.status.name,
                messages=len(messages),
                bytes=f_bytes,
                unseen=f_unseen,
                attachments=f_att,
                attachment_bytes=f_att_bytes,
                oldest=oldest if messages else None,
                newest=newest if messages else None,
                special_use=scan.status.special_use,
            )
        )

    # Domains are derived from the (far fewer) sender buckets instead of per message.
    domains: dict[str, _Acc] = {}
    for addr, acc in senders.items():
        domain = addr.rpartition("@")[2]
        bucket = domains.get(domain)
        if bucket is None:
            bucket = domains[domain] = _Acc()
        bucket.merge(acc)

    totals = Totals(
        messages=sum(f.messages for f in folders),
        bytes=sum(f.bytes for f in folders),
        attachments=sum(f.attachments for f in folders),
        attachment_bytes=sum(f.attachment_bytes for f in folders),
        unseen=sum(f.unseen for f in folders),
        unparsed=total_unparsed,
        folders=len(folders),
    )
    # Types rank by the space their parts take (the question is "which kind of attachment
    # fills the mailbox"), not by the size of the messages that carry them.
    type_order = heapq.nsmallest(
        top, types.items(), key=lambda kv: (-kv[1].attachment_bytes, -kv[1].bytes, kv[0])
    )
    return ScanReport(
        target=inventory.target,
        scanned_at=inventory.scanned_at,
        quota=inventory.quota,
        totals=totals,
        folders=tuple(sorted(folders, key=lambda f: (-f.bytes, f.name))),
        largest_messages=_largest_messages(big_messages.candidates(), top),
        largest_attachments=_largest_attachments(big_attachments.candidates(), top),
        by_sender=_top_buckets(senders, top),
        by_domain=_top_buckets(domains, top),
        by_year=tuple(years[y].bucket(str(y)) for y in sorted(years)),
        by_type=tuple(acc.bucket(key) for key, acc in type_order),
        warnings=inventory.warnings,
    )
