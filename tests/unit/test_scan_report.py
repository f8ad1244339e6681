"""The scan report renderers: the rich table for people and the JSON document for programs."""

from __future__ import annotations

import io
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console

from quotatool.core.usage import ScanReport, summarize
from quotatool.model import Inventory, QuotaResource
from quotatool.report.format import OutputFormat, render_scan
from quotatool.report.scan_json import render_scan_json
from quotatool.report.scan_table import render_scan_table
from quotatool.report.text import bar, percent, printable, rfc3339
from tests.unit.test_usage import att, folder, inventories, msg, ts

KIB = 1024
MIB = 1024 * 1024


def hostile_inventory(quota: tuple[QuotaResource, ...] | None = None) -> Inventory:
    """Names that look like rich markup; sizes chosen so every number is easy to check."""
    return Inventory(
        target="imaps://alice@mail.example.org",
        scanned_at=ts("2024-03-01T12:00:00"),
        quota=quota,
        folders=(
            folder(
                "[archive]/2023",
                msg(
                    "[archive]/2023",
                    5,
                    3 * MIB,
                    "2023-04-01T10:00:00",
                    "[bot]@lists.example.org",
                    att("application/pdf", 2 * MIB, "[draft] report.pdf"),
                    subject="[urgent] invoice",
                ),
                msg("[archive]/2023", 6, 512 * KIB, "2023-05-01T10:00:00", "a@x.org"),
            ),
            folder(
                "INBOX",
                msg(
                    "INBOX",
                    1,
                    1 * MIB,
                    "2024-02-01T10:00:00",
                    "a@x.org",
                    subject="[bold]not bold[/bold] \x1b[2J",
                    seen=False,
                ),
            ),
            folder("Trash", special_use="\\Trash"),
        ),
        warnings=("[archive]/2023: UID 9: skipped",),
    )


def table_text(report: ScanReport, width: int = 120) -> str:
    buf = io.StringIO()
    render_scan_table(report, Console(file=buf, width=width, color_system=None))
    return buf.getvalue()


def storage(percent_used: float) -> tuple[QuotaResource, ...]:
    limit = 100 * MIB
    return (QuotaResource("User quota", "STORAGE", int(limit * percent_used / 100), limit),)


# --- the table -------------------------------------------------------------------------


def test_markup_looking_values_print_literally() -> None:
    text = table_text(summarize(hostile_inventory()))
    assert "[archive]/2023" in text
    assert "[urgent] invoice" in text
    assert "[draft] report.pdf" in text
    assert "[bot]@lists.example.org" in text
    assert "[archive]/2023: UID 9: skipped" in text
    assert "[bold]not bold[/bold]" in text


def test_control_characters_never_reach_the_terminal() -> None:
    text = table_text(summarize(hostile_inventory()))
    assert "\x1b" not in text
    assert "\ufffd[2J" in text


def test_no_quota_line_and_header() -> None:
    text = table_text(summarize(hostile_inventory()))
    assert "The server reports no quota." in text
    assert "imaps://alice@mail.example.org" in text
    assert "2024-03-01 12:00 UTC" in text


def test_sizes_counts_and_dates_are_formatted() -> None:
    text = table_text(summarize(hostile_inventory()))
    # Totals: 3 MiB + 512 KiB + 1 MiB = 4.5 MiB in 3 messages, 1 of them unseen.
    total_row = next(line for line in text.splitlines() if line.startswith("Total"))
    assert re.search(
        r"Total\s+3\s+4\.5 MiB\s+1\s+1\s+2\.0 MiB\s+2023-04-01\s+2024-02-01", total_row
    )
    archive_row = next(line for line in text.splitlines() if line.startswith("[archive]/2023"))
    assert re.search(r"2\s+3\.5 MiB\s+0\s+1\s+2\.0 MiB\s+2023-04-01\s+2023-05-01", archive_row)
    assert "Trash  \\Trash" in text


def test_sections_come_in_order_and_folders_largest_first() -> None:
    text = table_text(summarize(hostile_inventory()))
    headings = [
        "Folders, largest first",
        "Largest messages",
        "Largest attachments",
        "Senders, by size",
        "Sender domains, by size",
        "Years (arrival, UTC)",
        "Attachment types, by attachment size",
        "1 warning:",
    ]
    positions = [text.index(h) for h in headings]
    assert positions == sorted(positions)
    folders = text[text.index("Folders") : text.index("Largest messages")]
    assert folders.index("[archive]/2023") < folders.index("INBOX") < folders.index("Trash")
    largest = text[text.index("Largest messages") : text.index("Largest attachments")]
    assert largest.index("[urgent] invoice") < largest.index("not bold")


def test_quota_bar_percent_and_amounts() -> None:
    text = table_text(summarize(hostile_inventory(storage(82.5))))
    line = next(line for line in text.splitlines() if line.startswith("STORAGE"))
    assert "82.5 MiB of 100.0 MiB" in line
    assert "82.5%" in line
    assert "█" in line
    assert "░" in line
    assert "Quota (User quota)" in text
    assert "no quota" not in text


def test_message_count_resource_is_not_a_size() -> None:
    quota = (QuotaResource("", "MESSAGE", 1234, 10000),)
    text = table_text(summarize(hostile_inventory(quota)))
    assert "1,234 of 10,000" in text
    assert "12.3%" in text


def test_unlimited_resource() -> None:
    quota = (QuotaResource("", "STORAGE", 5 * MIB, None),)
    text = table_text(summarize(hostile_inventory(quota)))
    line = next(line for line in text.splitlines() if line.startswith("STORAGE"))
    assert "no limit" in line
    assert "5.0 MiB" in line


@pytest.mark.parametrize(
    ("used", "sgr"), [(50.0, "\x1b[32m"), (85.0, "\x1b[33m"), (96.0, "\x1b[1;31m")]
)
def test_quota_colour_follows_thresholds(used: float, sgr: str) -> None:
    buf = io.StringIO()
    console = Console(file=buf, width=100, color_system="standard", force_terminal=True)
    render_scan_table(summarize(hostile_inventory(storage(used))), console)
    line = next(line for line in buf.getvalue().splitlines() if "STORAGE" in line)
    assert sgr in line


def test_no_colour_console_gets_plain_text() -> None:
    assert "\x1b[" not in table_text(summarize(hostile_inventory(storage(96.0))))


@pytest.mark.parametrize("width", [80, 100, 120, 160])
def test_lines_fit_the_width_and_long_subjects_are_cut(width: int) -> None:
    long_subject = "Quarterly figures " * 20
    inv = Inventory(
        target="maildir:/srv/mail/alice",
        scanned_at=0,
        folders=(folder("INBOX", msg("INBOX", 1, 10 * MIB, "2024-01-01", subject=long_subject)),),
    )
    text = table_text(summarize(inv), width)
    assert all(cell_len(line) <= width for line in text.splitlines())
    subject_line = next(line for line in text.splitlines() if "Quarterly" in line)
    assert "…" in subject_line
    assert "10.0 MiB" in subject_line


def test_narrow_folder_table_shows_months_and_keeps_names() -> None:
    text = table_text(summarize(hostile_inventory()), 80)
    row = next(line for line in text.splitlines() if line.startswith("[archive]/2023 "))
    assert "2023-04  2023-05" in row


def test_many_folders_are_summed_into_one_row() -> None:
    folders = tuple(
        folder(f"f{i:02}", msg(f"f{i:02}", 1, (100 - i) * KIB, "2024-01-01")) for i in range(40)
    )
    text = table_text(summarize(Inventory(target="t", scanned_at=0, folders=folders)))
    assert "f24" in text
    assert "f25" not in text
    # The 15 smallest: 75 KiB down to 61 KiB = 1020 KiB.
    more = next(line for line in text.splitlines() if "15 more folders" in line)
    assert "1020.0 KiB" in more


def test_warnings_show_the_first_few_and_a_count() -> None:
    inv = Inventory(target="t", scanned_at=0, folders=(), warnings=tuple(f"w{i}" for i in range(8)))
    text = table_text(summarize(inv))
    assert "8 warnings:" in text
    assert "w4" in text
    assert "w5" not in text
    assert "… and 3 more" in text


def test_empty_mailbox_renders() -> None:
    text = table_text(summarize(Inventory(target="t", scanned_at=0, folders=())))
    assert "No messages." in text
    assert "No attachments." in text
    assert "Scanned 0 messages, 0 Bytes, in 0 folders" in text


def test_unparsed_messages_are_called_out() -> None:
    inv = Inventory(
        target="t",
        scanned_at=0,
        folders=(folder("INBOX", msg("INBOX", 1, 10, "2024-01-01", unparsed=True)),),
    )
    assert "1 message could not be parsed" in table_text(summarize(inv))


# --- JSON --------------------------------------------------------------------------------


def test_json_document_keys_and_hand_computed_values() -> None:
    quota = (QuotaResource("User quota", "STORAGE", 20 * MIB, 80 * MIB),)
    text = render_scan_json(summarize(hostile_inventory(quota), top=2))
    assert text.endswith("}\n")
    doc = json.loads(text)
    assert list(doc) == [
        "schema",
        "target",
        "scanned_at",
        "quota",
        "totals",
        "folders",
        "largest_messages",
        "largest_attachments",
        "by_sender",
        "by_domain",
        "by_year",
        "by_type",
        "warnings",
    ]
    assert doc["schema"] == "quotatool.scan/1"
    assert doc["target"] == "imaps://alice@mail.example.org"
    assert doc["scanned_at"] == "2024-03-01T12:00:00Z"
    assert doc["quota"] == [
        {
            "root": "User quota",
            "resource": "STORAGE",
            "usage": 20 * MIB,
            "limit": 80 * MIB,
            "percent": 25.0,
        }
    ]
    assert doc["totals"] == {
        "messages": 3,
        "bytes": 3 * MIB + 512 * KIB + 1 * MIB,
        "attachments": 1,
        "attachment_bytes": 2 * MIB,
        "unseen": 1,
        "unparsed": 0,
        "folders": 3,
    }
    assert doc["folders"][0] == {
        "name": "[archive]/2023",
        "messages": 2,
        "bytes": 3 * MIB + 512 * KIB,
        "unseen": 0,
        "attachments": 1,
        "attachment_bytes": 2 * MIB,
        "oldest": "2023-04-01T10:00:00Z",
        "newest": "2023-05-01T10:00:00Z",
        "special_use": None,
    }
    assert doc["folders"][2] == {
        "name": "Trash",
        "messages": 0,
        "bytes": 0,
        "unseen": 0,
        "attachments": 0,
        "attachment_bytes": 0,
        "oldest": None,
        "newest": None,
        "special_use": "\\Trash",
    }
    assert doc["largest_messages"] == [
        {
            "folder": "[archive]/2023",
            "uid": 5,
            "size": 3 * MIB,
            "date": "2023-04-01T10:00:00Z",
            "from": "[bot]@lists.example.org",
            "subject": "[urgent] invoice",
            "attachments": 1,
        },
        {
            "folder": "INBOX",
            "uid": 1,
            "size": 1 * MIB,
            "date": "2024-02-01T10:00:00Z",
            "from": "a@x.org",
            "subject": "[bold]not bold[/bold] \x1b[2J",
            "attachments": 0,
        },
    ]
    assert doc["largest_attachments"] == [
        {
            "folder": "[archive]/2023",
            "uid": 5,
            "filename": "[draft] report.pdf",
            "content_type": "application/pdf",
            "size": 2 * MIB,
            "decoded_size": 2 * MIB * 3 // 4,
            "date": "2023-04-01T10:00:00Z",
            "from": "[bot]@lists.example.org",
            "subject": "[urgent] invoice",
        }
    ]
    bucket_keys = ["key", "messages", "bytes", "attachments", "attachment_bytes"]
    assert doc["by_sender"] == [
        dict(zip(bucket_keys, ["[bot]@lists.example.org", 1, 3 * MIB, 1, 2 * MIB], strict=True)),
        dict(zip(bucket_keys, ["a@x.org", 2, 1536 * KIB, 0, 0], strict=True)),
    ]
    assert [b["key"] for b in doc["by_domain"]] == ["lists.example.org", "x.org"]
    assert doc["by_year"] == [
        dict(zip(bucket_keys, ["2023", 2, 3584 * KIB, 1, 2 * MIB], strict=True)),
        dict(zip(bucket_keys, ["2024", 1, 1 * MIB, 0, 0], strict=True)),
    ]
    assert doc["by_type"] == [
        dict(zip(bucket_keys, ["application/pdf", 1, 3 * MIB, 1, 2 * MIB], strict=True))
    ]
    assert doc["warnings"] == ["[archive]/2023: UID 9: skipped"]


def test_json_quota_null_and_text_unescaped() -> None:
    text = render_scan_json(summarize(hostile_inventory()))
    assert json.loads(text)["quota"] is None
    assert '"quota": null' in text
    assert '  "schema": "quotatool.scan/1",' in text  # indent 2


def test_json_keeps_non_ascii_readable() -> None:
    inv = Inventory(
        target="t",
        scanned_at=0,
        folders=(folder("Gelöscht", msg("Gelöscht", 1, 1, "2024-01-01", subject="Grüße")),),
    )
    text = render_scan_json(summarize(inv))
    assert "Gelöscht" in text
    assert "Grüße" in text


# --- dispatch ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_every_format_has_a_renderer(fmt: OutputFormat) -> None:
    buf = io.StringIO()
    render_scan(summarize(hostile_inventory()), fmt, Console(file=buf, width=100))
    assert "[urgent] invoice" in buf.getvalue()


def test_json_dispatch_writes_the_document_verbatim() -> None:
    report = summarize(hostile_inventory())
    buf = io.StringIO()
    # Narrow on purpose: the document must not be wrapped to the console width.
    render_scan(report, OutputFormat.JSON, Console(file=buf, width=20))
    assert buf.getvalue() == render_scan_json(report)


def test_format_values_are_the_option_names() -> None:
    assert [f.value for f in OutputFormat] == ["table", "json"]


# --- helpers -----------------------------------------------------------------------------


def test_text_helpers() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert rfc3339(-1) == "1969-12-31T23:59:59Z"
    assert percent(1, 3) == "33.3%"
    assert percent(1, 100_000) == "<0.1%"
    assert percent(0, 10) == "0.0%"
    assert percent(5, 0) == "-"
    assert bar(0.5, 4) == "██  "
    assert bar(1.0, 3, track="░") == "███"
    assert bar(0.0, 3, track="░") == "░░░"
    assert bar(0.001, 3) == "▏  "
    assert bar(2.0, 2) == "██"
    assert printable("a\tb\nc\u202ed\x9b") == "a b c\ufffdd\ufffd"


@given(st.floats(min_value=-1, max_value=2), st.integers(min_value=1, max_value=40))
def test_bar_always_fills_exactly_its_width(fraction: float, width: int) -> None:
    assert len(bar(fraction, width)) == width


# --- properties over generated mailboxes -------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(inventories(), st.integers(0, 5))
def test_json_totals_equal_the_sums_over_folders_and_years(inv: Inventory, top: int) -> None:
    doc = json.loads(render_scan_json(summarize(inv, top=top)))
    totals = doc["totals"]
    for key in ("messages", "bytes", "attachments", "attachment_bytes", "unseen"):
        assert sum(f[key] for f in doc["folders"]) == totals[key]
    for key in ("messages", "bytes", "attachments", "attachment_bytes"):
        assert sum(y[key] for y in doc["by_year"]) == totals[key]
    assert totals["folders"] == len(doc["folders"]) == len(inv.folders)
    assert len(doc["largest_messages"]) == min(top, totals["messages"])


@settings(max_examples=25, deadline=None)
@given(
    inventories(),
    st.integers(min_value=60, max_value=200),
    st.text(alphabet="[]/ab\x1b\n", max_size=12),
)
def test_table_renders_any_report_within_its_width(inv: Inventory, width: int, name: str) -> None:
    text = table_text(summarize(inv), width)
    assert all(cell_len(line) <= width for line in text.splitlines())
    assert "\x1b" not in text
    # Any target survives the header literally (after control characters are neutralised).
    target = Inventory(target=name or "x", scanned_at=0, folders=())
    assert printable(name or "x") in table_text(summarize(target), 200)


def test_missing_sender_is_named_not_blank() -> None:
    inv = Inventory(
        target="t",
        scanned_at=0,
        folders=(folder("INBOX", msg("INBOX", 1, 10, "2024-01-01", "")),),
    )
    text = table_text(summarize(inv))
    senders = text[text.index("Senders, by size") : text.index("Sender domains")]
    assert "(no sender)" in senders
    assert "(no domain)" in text[text.index("Sender domains") :]
