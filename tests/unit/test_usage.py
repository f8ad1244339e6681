"""Usage aggregation: hand-computed numbers, then properties over generated mailboxes."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from quotatool.core.usage import Bucket, FolderUsage, LargeAttachment, Totals, summarize
from quotatool.model import (
    Attachment,
    FolderScan,
    FolderStatus,
    Inventory,
    MessageInfo,
    QuotaResource,
    Uid,
    UidValidity,
)

SEEN = frozenset({"\\Seen"})


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def att(ctype: str, size: int, name: str | None = None, section: str = "2") -> Attachment:
    return Attachment(
        section=section, content_type=ctype, filename=name, size=size, decoded_size=size * 3 // 4
    )


def folder(name: str, *messages: MessageInfo, special_use: str | None = None) -> FolderScan:
    status = FolderStatus(
        name=name, uidvalidity=UidValidity(1), messages=len(messages), special_use=special_use
    )
    return FolderScan(status=status, messages=messages)


def msg(
    name: str,
    uid: int,
    size: int,
    when: str,
    sender: str = "a@x.org",
    *attachments: Attachment,
    seen: bool = True,
    unparsed: bool = False,
    subject: str = "",
) -> MessageInfo:
    return MessageInfo(
        folder=name,
        uid=Uid(uid),
        size=size,
        internaldate=ts(when),
        flags=SEEN if seen else frozenset(),
        from_addr=sender,
        subject=subject,
        attachments=attachments,
        unparsed=unparsed,
    )


def small_inventory() -> Inventory:
    """Three folders; every number below is worked out by hand in the tests."""
    pdf = att("application/pdf", 4000, "report.pdf")
    return Inventory(
        target="imaps://alice@mail.example.org",
        scanned_at=ts("2024-03-01T12:00:00"),
        quota=(QuotaResource(root="User quota", resource="STORAGE", usage=20480, limit=51200),),
        folders=(
            folder(
                "INBOX",
                msg("INBOX", 1, 1000, "2022-12-31T23:59:59", "a@x.org"),
                msg("INBOX", 2, 5000, "2023-01-01T00:00:00", "b@x.org", pdf, seen=False),
                msg(
                    "INBOX",
                    3,
                    9000,
                    "2023-06-15T08:00:00",
                    "c@y.net",
                    att("image/png", 3000, "a.png", "2"),
                    att("image/png", 2000, "b.png", "3"),
                    att("application/pdf", 1000, None, "4"),
                    subject="[urgent] invoice",
                ),
            ),
            folder("Archive", msg("Archive", 7, 5000, "2021-05-05T05:05:05", "a@x.org")),
            folder(
                "Trash",
                msg("Trash", 4, 300, "2023-02-02T02:02:02", "", unparsed=True, seen=False),
                special_use="\\Trash",
            ),
            folder("Empty"),
        ),
        warnings=("Trash: UID 4: BODYSTRUCTURE could not be parsed",),
    )


def test_totals_are_worked_out_by_hand() -> None:
    report = summarize(small_inventory())
    assert report.totals == Totals(
        messages=5,
        bytes=1000 + 5000 + 9000 + 5000 + 300,
        attachments=4,
        attachment_bytes=4000 + 3000 + 2000 + 1000,
        unseen=2,
        unparsed=1,
        folders=4,
    )
    assert report.target == "imaps://alice@mail.example.org"
    assert report.quota is not None
    assert report.quota[0].usage == 20480
    assert report.warnings == ("Trash: UID 4: BODYSTRUCTURE could not be parsed",)


def test_folders_largest_first_ties_by_name_with_dates() -> None:
    report = summarize(small_inventory())
    assert [f.name for f in report.folders] == ["INBOX", "Archive", "Trash", "Empty"]
    assert report.folders[0] == FolderUsage(
        name="INBOX",
        messages=3,
        bytes=15000,
        unseen=1,
        attachments=4,
        attachment_bytes=10000,
        oldest=ts("2022-12-31T23:59:59"),
        newest=ts("2023-06-15T08:00:00"),
        special_use=None,
    )
    assert report.folders[2].special_use == "\\Trash"
    assert report.folders[2].unseen == 1
    empty = report.folders[3]
    assert (empty.messages, empty.bytes, empty.oldest, empty.newest) == (0, 0, None, None)


def test_equal_folder_sizes_sort_by_name() -> None:
    inv = Inventory(
        target="t",
        scanned_at=0,
        folders=(
            folder("b", msg("b", 1, 10, "2020-01-01T00:00:00")),
            folder("a", msg("a", 1, 10, "2020-01-01T00:00:00")),
        ),
    )
    assert [f.name for f in summarize(inv).folders] == ["a", "b"]


def test_years_use_internaldate_in_utc_at_the_boundary() -> None:
    report = summarize(small_inventory())
    assert report.by_year == (
        Bucket("2021", 1, 5000, 0, 0),
        Bucket("2022", 1, 1000, 0, 0),
        Bucket("2023", 3, 5000 + 9000 + 300, 4, 10000),
    )


def test_senders_and_domains() -> None:
    report = summarize(small_inventory())
    assert report.by_sender == (
        Bucket("c@y.net", 1, 9000, 3, 6000),
        Bucket("a@x.org", 2, 6000, 0, 0),
        Bucket("b@x.org", 1, 5000, 1, 4000),
        Bucket("", 1, 300, 0, 0),
    )
    assert report.by_domain == (
        Bucket("x.org", 3, 11000, 1, 4000),
        Bucket("y.net", 1, 9000, 3, 6000),
        Bucket("", 1, 300, 0, 0),
    )


def test_types_count_messages_once_and_parts_each() -> None:
    report = summarize(small_inventory())
    assert report.by_type == (
        # Two messages carry a PDF: 5000 + 9000 octets of mail, 4000 + 1000 of PDF parts.
        Bucket("application/pdf", 2, 14000, 2, 5000),
        # One message with two PNG parts.
        Bucket("image/png", 1, 9000, 2, 5000),
    )


def test_largest_messages_and_attachments() -> None:
    report = summarize(small_inventory(), top=3)
    # 5000 twice: Archive before INBOX by folder name.
    assert [(m.folder, m.uid) for m in report.largest_messages] == [
        ("INBOX", 3),
        ("Archive", 7),
        ("INBOX", 2),
    ]
    assert report.largest_attachments[0] == LargeAttachment(
        folder="INBOX",
        uid=2,
        filename="report.pdf",
        content_type="application/pdf",
        size=4000,
        decoded_size=3000,
        date=ts("2023-01-01T00:00:00"),
        from_addr="b@x.org",
        subject="",
    )
    assert [a.size for a in report.largest_attachments] == [4000, 3000, 2000]


def test_top_bounds_the_lists_but_not_folders_or_years() -> None:
    report = summarize(small_inventory(), top=1)
    assert len(report.largest_messages) == 1
    assert len(report.largest_attachments) == 1
    assert len(report.by_sender) == 1
    assert len(report.by_domain) == 1
    assert len(report.by_type) == 1
    assert len(report.folders) == 4
    assert len(report.by_year) == 3
    zero = summarize(small_inventory(), top=0)
    assert zero.largest_messages == ()
    assert zero.largest_attachments == ()
    assert zero.by_sender == zero.by_domain == zero.by_type == ()
    assert len(zero.by_year) == 3
    assert zero.totals == report.totals


def test_no_quota_and_no_messages() -> None:
    report = summarize(Inventory(target="maildir:/x", scanned_at=0, folders=()))
    assert report.quota is None
    assert report.totals == Totals(0, 0, 0, 0, 0, 0, 0)
    assert report.by_year == report.by_sender == ()
    assert report.largest_messages == ()
    assert report.folders == ()


def test_dates_before_1970_fall_in_their_year() -> None:
    inv = Inventory(
        target="t",
        scanned_at=0,
        folders=(folder("f", msg("f", 1, 1, "1969-12-31T23:59:59"), msg("f", 2, 1, "1970-01-01")),),
    )
    assert [b.key for b in summarize(inv).by_year] == ["1969", "1970"]


# --- properties over generated mailboxes -------------------------------------------------

_TYPES = ("application/pdf", "image/jpeg", "image/png", "application/zip")
_SENDERS = ("a@x.org", "b@x.org", "c@y.net", "", "d@z.com", "noat")
# 1960 .. 2040: both sides of the epoch and many year boundaries.
_DATES = st.integers(min_value=-315_619_200, max_value=2_208_988_800)

attachments_st = st.lists(
    st.tuples(st.sampled_from(_TYPES), st.integers(0, 10**7), st.none() | st.text(max_size=5)),
    max_size=4,
)


@st.composite
def inventories(draw: st.DrawFn) -> Inventory:
    names = draw(st.lists(st.text(min_size=1, max_size=6), unique=True, max_size=5))
    scans = []
    for name in names:
        uids = draw(st.lists(st.integers(1, 10**6), unique=True, max_size=12))
        messages = []
        for uid in sorted(uids):
            parts = draw(attachments_st)
            messages.append(
                MessageInfo(
                    folder=name,
                    uid=Uid(uid),
                    size=draw(st.integers(0, 10**8)),
                    internaldate=draw(_DATES),
                    flags=draw(st.sampled_from([SEEN, frozenset(), frozenset({"\\Flagged"})])),
                    from_addr=draw(st.sampled_from(_SENDERS)),
                    attachments=tuple(
                        Attachment(str(i + 2), t, n, s, s) for i, (t, s, n) in enumerate(parts)
                    ),
                    unparsed=draw(st.booleans()),
                )
            )
        scans.append(folder(name, *messages))
    return Inventory(target="t", scanned_at=0, folders=tuple(scans))


def _sum(items: tuple[Bucket, ...] | tuple[FolderUsage, ...], field: str) -> int:
    return sum(getattr(i, field) for i in items)


@settings(max_examples=80, deadline=None)
@given(inventories())
def test_totals_equal_sums_over_folders_years_senders_domains(inv: Inventory) -> None:
    report = summarize(inv, top=100)
    t = report.totals
    fields = ("messages", "bytes", "attachments", "attachment_bytes")
    for f in (*fields, "unseen"):
        assert _sum(report.folders, f) == getattr(t, f), f
    for buckets in (report.by_year, report.by_sender, report.by_domain):
        for f in fields:
            assert _sum(buckets, f) == getattr(t, f), f
    everything = inv.iter_messages()
    assert t.messages == len(everything)
    assert t.unparsed == sum(m.unparsed for m in everything)
    assert _sum(report.by_type, "attachments") == t.attachments
    assert _sum(report.by_type, "attachment_bytes") == t.attachment_bytes


@settings(max_examples=80, deadline=None)
@given(inventories(), st.integers(0, 6))
def test_top_lists_match_a_full_sort(inv: Inventory, top: int) -> None:
    report = summarize(inv, top=top)
    everything = inv.iter_messages()
    expected = sorted(everything, key=lambda m: (-m.size, m.folder, m.uid))[:top]
    assert list(report.largest_messages) == expected
    parts = sorted(
        ((m, a) for m in everything for a in m.attachments),
        key=lambda ma: (-ma[1].size, ma[0].folder, ma[0].uid, ma[1].section),
    )[:top]
    assert [(a.folder, a.uid, a.size, a.filename) for a in report.largest_attachments] == [
        (m.folder, m.uid, a.size, a.filename) for m, a in parts
    ]
    by_sender: defaultdict[str, int] = defaultdict(int)
    for m in everything:
        by_sender[m.from_addr] += m.size
    ranked = sorted(by_sender.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    assert [(b.key, b.bytes) for b in report.by_sender] == ranked


@settings(max_examples=60, deadline=None)
@given(inventories())
def test_years_and_folder_dates_match_datetime(inv: Inventory) -> None:
    report = summarize(inv)
    years: defaultdict[str, int] = defaultdict(int)
    for m in inv.iter_messages():
        years[str(datetime.fromtimestamp(m.internaldate, UTC).year)] += 1
    assert {b.key: b.messages for b in report.by_year} == years
    assert [b.key for b in report.by_year] == sorted(years, key=int)
    for usage, scan in zip(
        sorted(report.folders, key=lambda f: f.name),
        sorted(inv.folders, key=lambda f: f.status.name),
        strict=True,
    ):
        dates = [m.internaldate for m in scan.messages]
        assert usage.oldest == (min(dates) if dates else None)
        assert usage.newest == (max(dates) if dates else None)


@settings(max_examples=60, deadline=None)
@given(inventories(), st.integers(0, 6))
def test_input_order_does_not_change_the_report(inv: Inventory, top: int) -> None:
    shuffled = Inventory(
        target=inv.target,
        scanned_at=inv.scanned_at,
        folders=tuple(
            FolderScan(status=f.status, messages=f.messages[::-1]) for f in inv.folders[::-1]
        ),
    )
    assert summarize(shuffled, top=top) == summarize(inv, top=top)


def _one_folder(sizes: list[int], name: str = "f") -> Inventory:
    messages = tuple(
        MessageInfo(
            folder=name,
            uid=Uid(i + 1),
            size=size,
            internaldate=i * 86400,
            attachments=(Attachment("2", "image/png", None, size, size),),
        )
        for i, size in enumerate(sizes)
    )
    return Inventory(target="t", scanned_at=0, folders=(folder(name, *messages),))


def test_ascending_sizes_keep_the_candidate_list_small_and_exact() -> None:
    # Every message beats the previous ones: the candidate list is pruned as it grows.
    sizes = [i // 3 for i in range(3000)]
    report = summarize(_one_folder(sizes), top=4)
    # Sizes 999, 999, 999, 998: ties go to the lower UID.
    assert [(m.size, m.uid) for m in report.largest_messages] == [
        (999, 2998),
        (999, 2999),
        (999, 3000),
        (998, 2995),
    ]
    assert [(a.size, a.uid) for a in report.largest_attachments] == [
        (999, 2998),
        (999, 2999),
        (999, 3000),
        (998, 2995),
    ]


def test_many_equal_sizes_tie_break_by_uid() -> None:
    report = summarize(_one_folder([7] * 2000), top=3)
    assert [m.uid for m in report.largest_messages] == [1, 2, 3]
    assert [a.uid for a in report.largest_attachments] == [1, 2, 3]
