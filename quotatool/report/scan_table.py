"""The scan report for people: quota, folders, the largest items and where the bytes came from.

Every value that comes from the mailbox (folder names, subjects, senders, filenames) goes into
a ``rich.text.Text`` cell, never through markup: rich would silently eat ``[urgent]`` in a
subject or ``[archive]`` in a folder name. Styles are only hints; with no colour the report
reads the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich import box
from rich.console import Console, RenderableType
from rich.table import Column, Table
from rich.text import Text

from quotatool.core.usage import Bucket, FolderUsage, ScanReport, Totals
from quotatool.model import QuotaResource
from quotatool.report.text import bar, count, iec, percent, printable, utc_date, utc_minute

# Quota colours: the thresholds monitoring plugins commonly warn at.
_WARN_PERCENT = 80.0
_CRIT_PERCENT = 95.0
# Wider tables only spread the columns apart; past this they stop growing.
_MAX_WIDTH = 150
# Side by side from here: the breakdowns' numbers take ~48 columns, so a half of ~74 still
# leaves a useful 26 for an address.
_SIDE_BY_SIDE = 150
# A mailbox can have hundreds of folders; the table shows the largest, the JSON has all.
_MAX_FOLDERS = 30
_SHOWN_FOLDERS = 25
_SHOWN_WARNINGS = 5
_SHARE_BAR = 10


def data(value: str, style: str = "") -> Text:
    """Return a cell for a value from the mailbox: literal text, never markup."""
    return Text(printable(value), style=style)


def _num(n: int) -> Text:
    return Text(count(n))


def _size(n: int) -> Text:
    return Text(iec(n))


def _date(ts: int | None) -> Text:
    return Text("-", style="dim") if ts is None else Text(utc_date(ts))


def _month(ts: int | None) -> Text:
    return Text("-", style="dim") if ts is None else Text(utc_date(ts)[:7])


# rich.box.SIMPLE_HEAD, plus a rule for section breaks (the totals row) instead of a blank line.
_BOX = box.Box(
    "    \n"  # top
    "    \n"  # header row
    " ── \n"  # below the header
    "    \n"  # body rows
    " ── \n"  # section break
    " ── \n"  # above a footer
    "    \n"  # footer row
    "    \n"  # bottom
)


def _table(title: str, *columns: Column, width: int | None) -> Table:
    """Return a table that fills ``width`` (or the space it is given when ``None``)."""
    return Table(
        *columns,
        title=Text(title, style="bold"),
        title_justify="left",
        box=_BOX,
        show_edge=False,
        pad_edge=False,
        # One space of padding plus the divider: columns two apart, which leaves the text
        # columns room at 80 columns.
        padding=(0, 1, 0, 0),
        header_style="bold",
        expand=True,
        width=width,
    )


def _full_width(console: Console) -> int:
    return min(console.width, _MAX_WIDTH)


def _text_col(header: str, ratio: int = 1, min_width: int = 6) -> Column:
    # ratio columns share what the numbers leave; one line per row, cut with an ellipsis.
    return Column(header, ratio=ratio, min_width=min_width, no_wrap=True, overflow="ellipsis")


def _num_col(header: str) -> Column:
    return Column(header, justify="right", no_wrap=True)


def _level_style(pct: float | None) -> str:
    if pct is None:
        return ""
    if pct >= _CRIT_PERCENT:
        return "bold red"
    if pct >= _WARN_PERCENT:
        return "yellow"
    return "green"


def _amount(resource: QuotaResource, n: int) -> str:
    # RFC 9208 §5.1: STORAGE is a size (converted to octets in QuotaResource); MESSAGE and
    # the rest are plain counts.
    return iec(n) if resource.resource == "STORAGE" else count(n)


def _quota(report: ScanReport, console: Console) -> RenderableType:
    if report.quota is None:
        return Text("The server reports no quota.")
    if not report.quota:
        return Text("The server reports a quota root with no resources.")
    roots = {q.root for q in report.quota}
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column(justify="right", no_wrap=True)
    width = 30 if console.width >= 100 else 16
    for q in report.quota:
        label = Text(q.resource, style="bold")
        if len(roots) > 1 and q.root:
            label.append(" ")
            label.append(data(q.root, "dim"))
        pct = q.percent
        style = _level_style(pct)
        if q.limit is None:
            grid.add_row(label, Text("no limit", style="dim"), _amount(q, q.usage), "")
            continue
        grid.add_row(
            label,
            Text(bar((pct or 0.0) / 100.0, width, track="░"), style=style),
            f"{_amount(q, q.usage)} of {_amount(q, q.limit)}",
            Text("-" if pct is None else f"{pct:.1f}%", style=style),
        )
    title = Text("Quota", style="bold")
    if len(roots) == 1 and next(iter(roots)):
        title.append(" (")
        title.append(data(next(iter(roots))))
        title.append(")")
    outer = Table.grid()
    outer.add_row(title)
    outer.add_row(grid)
    return outer


def _summary(report: ScanReport) -> Text:
    t = report.totals
    line = Text()
    line.append("Scanned ")
    line.append(f"{count(t.messages)} messages", style="bold")
    line.append(", ")
    line.append(iec(t.bytes), style="bold")
    line.append(f", in {count(t.folders)} folder{'s' if t.folders != 1 else ''}")
    line.append(f"; {count(t.unseen)} unseen.")
    if t.attachments:
        line.append(
            f"\nAttachments: {count(t.attachments)} parts, {iec(t.attachment_bytes)} "
            f"({percent(t.attachment_bytes, t.bytes)} of the scanned size)."
        )
    storage = next((q for q in report.quota or () if q.resource == "STORAGE"), None)
    if storage is not None and storage.usage > 0 and t.bytes < 0.95 * storage.usage:
        line.append(
            f"\nThe quota counts {iec(storage.usage)} in use; the folders not scanned "
            "hold the rest."
        )
    if t.unparsed:
        line.append(
            f"\n{count(t.unparsed)} message{'s' if t.unparsed != 1 else ''} could not be "
            "parsed: counted by size, their attachments are not.",
            style="yellow",
        )
    return line


def _folder_name(f: FolderUsage) -> Text:
    name = data(f.name)
    if f.special_use:
        name.append("  ")
        name.append(data(f.special_use, "dim"))
    return name


def _folder_row(f: FolderUsage, date: Callable[[int | None], Text]) -> list[Text]:
    return [
        _folder_name(f),
        _num(f.messages),
        _size(f.bytes),
        _num(f.unseen),
        _num(f.attachments),
        _size(f.attachment_bytes),
        date(f.oldest),
        date(f.newest),
    ]


def _folders(report: ScanReport, console: Console) -> Table:
    table = _table(
        "Folders, largest first",
        _text_col("Folder", min_width=10),
        _num_col("Msgs"),
        _num_col("Size"),
        _num_col("Unseen"),
        _num_col("Att."),
        _num_col("Att. size"),
        _num_col("Oldest"),
        _num_col("Newest"),
        width=_full_width(console),
    )
    # Full dates need 2 x 10 columns; below 100 the month is enough and the names get the room.
    date = _date if console.width >= 100 else _month
    shown: Sequence[FolderUsage] = report.folders
    rest: Sequence[FolderUsage] = ()
    if len(shown) > _MAX_FOLDERS:
        shown, rest = report.folders[:_SHOWN_FOLDERS], report.folders[_SHOWN_FOLDERS:]
    for f in shown:
        table.add_row(*_folder_row(f, date))
    if rest:
        oldest = [f.oldest for f in rest if f.oldest is not None]
        newest = [f.newest for f in rest if f.newest is not None]
        table.add_row(
            Text(f"… {count(len(rest))} more folders", style="dim"),
            _num(sum(f.messages for f in rest)),
            _size(sum(f.bytes for f in rest)),
            _num(sum(f.unseen for f in rest)),
            _num(sum(f.attachments for f in rest)),
            _size(sum(f.attachment_bytes for f in rest)),
            date(min(oldest) if oldest else None),
            date(max(newest) if newest else None),
        )
    table.add_section()
    t = report.totals
    oldest = [f.oldest for f in report.folders if f.oldest is not None]
    newest = [f.newest for f in report.folders if f.newest is not None]
    table.add_row(
        Text("Total"),
        _num(t.messages),
        _size(t.bytes),
        _num(t.unseen),
        _num(t.attachments),
        _size(t.attachment_bytes),
        date(min(oldest) if oldest else None),
        date(max(newest) if newest else None),
        style="bold",
    )
    return table


def _largest_messages(report: ScanReport, console: Console) -> RenderableType:
    if not report.largest_messages:
        return Text("No messages.", style="dim")
    table = _table(
        "Largest messages",
        _text_col("Folder", ratio=3),
        _num_col("UID"),
        _num_col("Size"),
        _num_col("Date"),
        _text_col("From", ratio=3),
        _text_col("Subject", ratio=5),
        width=_full_width(console),
    )
    for m in report.largest_messages:
        table.add_row(
            data(m.folder),
            Text(str(m.uid)),
            _size(m.size),
            _date(m.internaldate),
            _sender(m.from_addr),
            data(m.subject),
        )
    return table


def _largest_attachments(report: ScanReport, console: Console) -> RenderableType:
    if not report.largest_attachments:
        return Text("No attachments.", style="dim")
    table = _table(
        "Largest attachments",
        _text_col("Folder", ratio=2),
        _num_col("UID"),
        _text_col("Filename", ratio=4),
        _text_col("Type", ratio=3),
        _num_col("Size"),
        width=_full_width(console),
    )
    for a in report.largest_attachments:
        table.add_row(
            data(a.folder),
            Text(str(a.uid)),
            Text("(no name)", style="dim") if a.filename is None else data(a.filename),
            data(a.content_type),
            _size(a.size),
        )
    return table


def _sender(addr: str) -> Text:
    return Text("(no sender)", style="dim") if not addr else data(addr)


def _domain(domain: str) -> Text:
    return Text("(no domain)", style="dim") if not domain else data(domain)


def _share(part: int, whole: int) -> tuple[Text, Text]:
    fraction = part / whole if whole > 0 else 0.0
    return Text(bar(fraction, _SHARE_BAR), style="cyan"), Text(percent(part, whole))


def _buckets(
    title: str,
    header: str,
    buckets: Sequence[Bucket],
    totals: Totals,
    width: int | None,
    cell: Callable[[str], Text] = data,
) -> RenderableType:
    if not buckets:
        return Text(f"{title}: nothing to show.", style="dim")
    table = _table(
        title,
        _text_col(header, min_width=8),
        _num_col("Msgs"),
        _num_col("Size"),
        _num_col("Att. size"),
        Column("Share", no_wrap=True),
        _num_col("%"),
        width=width,
    )
    for b in buckets:
        table.add_row(
            cell(b.key),
            _num(b.messages),
            _size(b.bytes),
            _size(b.attachment_bytes),
            *_share(b.bytes, totals.bytes),
        )
    return table


def _types(report: ScanReport, width: int | None) -> RenderableType:
    if not report.by_type:
        return Text("Attachment types: nothing to show.", style="dim")
    table = _table(
        "Attachment types, by attachment size",
        _text_col("Type", min_width=8),
        _num_col("Msgs"),
        _num_col("Parts"),
        _num_col("Size"),
        Column("Share", no_wrap=True),
        _num_col("%"),
        width=width,
    )
    whole = report.totals.attachment_bytes
    for b in report.by_type:
        table.add_row(
            data(b.key),
            _num(b.messages),
            _num(b.attachments),
            _size(b.attachment_bytes),
            *_share(b.attachment_bytes, whole),
        )
    return table


def _pair(console: Console, left: RenderableType, right: RenderableType) -> None:
    if console.width < _SIDE_BY_SIDE:
        console.print(left)
        console.print()
        console.print(right)
        return
    grid = Table.grid(padding=(0, 2), expand=True)
    grid.width = _full_width(console)
    grid.add_column(ratio=1)
    grid.add_column(ratio=1)
    grid.add_row(left, right)
    console.print(grid)


def _warnings(report: ScanReport) -> Text:
    n = len(report.warnings)
    text = Text(f"{count(n)} warning{'s' if n != 1 else ''}:", style="yellow")
    for line in report.warnings[:_SHOWN_WARNINGS]:
        text.append("\n  ")
        text.append(data(line))
    if n > _SHOWN_WARNINGS:
        text.append(f"\n  … and {count(n - _SHOWN_WARNINGS)} more (the JSON output has them all)")
    return text


def _reclaimable(report: ScanReport, console: Console) -> RenderableType:
    rules = report.reclaimable or ()
    table = _table(
        "What the rules would free (clean --dry-run shows each message)",
        _text_col("Rule", ratio=4),
        _text_col("Action", ratio=1),
        _num_col("Messages"),
        _num_col("Frees"),
        _num_col("Left alone"),
        width=_full_width(console),
    )
    for r in rules:
        table.add_row(
            data(r.rule), Text(r.action), _num(r.messages), _size(r.frees_bytes), _num(r.skipped)
        )
    table.add_section()
    table.add_row(
        Text("Total"),
        Text(""),
        _num(sum(r.messages for r in rules)),
        _size(sum(r.frees_bytes for r in rules)),
        _num(sum(r.skipped for r in rules)),
        style="bold",
    )
    return table


def render_scan_table(report: ScanReport, console: Console) -> None:
    """Print ``report`` for people on ``console``."""
    header = Text()
    header.append("Mailbox usage of ", style="bold")
    header.append(data(report.target, "bold"))
    header.append(f"  scanned {utc_minute(report.scanned_at)}", style="dim")
    console.print(header, soft_wrap=True)
    console.print()
    console.print(_quota(report, console))
    console.print()
    console.print(_summary(report))
    console.print()
    console.print(_folders(report, console))
    console.print()
    console.print(_largest_messages(report, console))
    console.print()
    console.print(_largest_attachments(report, console))
    console.print()
    # Side by side each table fills its half of the grid; one below the other, the page.
    width = None if console.width >= _SIDE_BY_SIDE else _full_width(console)
    totals = report.totals
    _pair(
        console,
        _buckets("Senders, by size", "Sender", report.by_sender, totals, width, _sender),
        _buckets("Sender domains, by size", "Domain", report.by_domain, totals, width, _domain),
    )
    console.print()
    _pair(
        console,
        _buckets("Years (arrival, UTC)", "Year", report.by_year, totals, width),
        _types(report, width),
    )
    if report.reclaimable is not None:
        console.print()
        console.print(_reclaimable(report, console))
    if report.warnings:
        console.print()
        console.print(_warnings(report))
