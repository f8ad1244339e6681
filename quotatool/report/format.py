"""Output formats and the dispatch from a format to its renderer.

Adding a format means one enum member and one renderer module; the ``assert_never`` below
makes mypy name every dispatch that does not handle the new member yet.

Two enums: :class:`OutputFormat` (``table``, ``json``) for every command, and
:class:`ReportFormat`, which adds the machine formats for monitoring and CI, for the commands
that report on accounts (``scan``, ``check``). A command that cannot write Prometheus metrics
does not offer ``--format prometheus``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import assert_never

from rich.console import Console

from quotatool.core.thresholds import AccountCheck, CheckRun, Status
from quotatool.core.usage import ScanReport
from quotatool.report.check_json import render_check_json
from quotatool.report.check_text import render_check_text, status_line
from quotatool.report.github import Annotation, Level, render_annotations, render_summary
from quotatool.report.junit import JunitCase, render_junit
from quotatool.report.prometheus import AccountMetrics, render_prometheus
from quotatool.report.scan_json import render_scan_json, scan_document
from quotatool.report.scan_table import render_scan_table
from quotatool.report.text import count, iec, printable

__all__ = [
    "MULTI_SCAN_SCHEMA",
    "AccountScan",
    "OutputFormat",
    "Rendered",
    "ReportFormat",
    "render_check",
    "render_scan",
    "render_scans",
]

MULTI_SCAN_SCHEMA = "quotatool.scans/1"


class OutputFormat(StrEnum):
    """What ``--format`` accepts."""

    TABLE = "table"
    """A report for people, drawn with rich."""
    JSON = "json"
    """One JSON document per run, with a ``schema`` key."""


class ReportFormat(StrEnum):
    """What ``--format`` accepts for ``scan`` and ``check``."""

    TABLE = "table"
    """For people: tables (scan) or monitoring-plugin status lines (check)."""
    JSON = "json"
    """One JSON document per run, with a ``schema`` key."""
    PROMETHEUS = "prometheus"
    """Prometheus text format, for node_exporter's textfile collector."""
    JUNIT = "junit"
    """JUnit XML: a test case per account and check, for CI systems."""
    GITHUB = "github"
    """GitHub Actions annotations, plus a job summary under GitHub Actions."""


def render_scan(report: ScanReport, fmt: OutputFormat, console: Console) -> None:
    """Write ``report`` in ``fmt`` to ``console`` (machine formats go to its file verbatim)."""
    if fmt is OutputFormat.TABLE:
        render_scan_table(report, console)
    elif fmt is OutputFormat.JSON:
        # Straight to the file: console.print would wrap long lines and highlight numbers.
        console.file.write(render_scan_json(report))
        console.file.flush()
    else:
        assert_never(fmt)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered run: the output, and Markdown for a GitHub job summary when there is one."""

    text: str
    """What goes to stdout or ``--output``."""
    summary: str | None = None
    """GitHub job summary Markdown (``--format github`` only)."""


# -- scan ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountScan:
    """One account's scan in a run over several accounts: a report, or why there is none."""

    account: str
    """The account as the user named it."""
    scanned_at: int
    """When its scan started, POSIX seconds."""
    report: ScanReport | None = None
    """The report; ``None`` when the account could not be scanned."""
    error: str | None = None
    """Why it could not be scanned, one line."""


def _storage(report: ScanReport) -> list[tuple[str, int, int | None]]:
    return [(q.root, q.usage, q.limit) for q in report.quota or () if q.resource == "STORAGE"]


def _scan_line(report: ScanReport) -> str:
    t = report.totals
    line = (
        f"{count(t.messages)} message{'s' if t.messages != 1 else ''}, {iec(t.bytes)} "
        f"in {count(t.folders)} folder{'s' if t.folders != 1 else ''}"
    )
    for root, usage, limit in _storage(report):
        where = f" {root}" if root else ""
        if limit:
            line += f"; quota{where} {iec(usage)} of {iec(limit)} ({100 * usage / limit:.1f}%)"
        else:
            line += f"; quota{where} {iec(usage)}, no limit"
    return line


def render_scan_tables(scans: Sequence[AccountScan], console: Console) -> None:
    """Print each account's report (or its error) on ``console``, one after the other."""
    for i, scan in enumerate(scans):
        if i:
            console.print()
        if scan.report is not None:
            render_scan_table(scan.report, console)
        else:
            console.print(
                f"{printable(scan.account)}: not scanned: {printable(scan.error or '')}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )


def _scans_json(scans: Sequence[AccountScan]) -> str:
    doc = {
        "schema": MULTI_SCAN_SCHEMA,
        "accounts": [
            {
                "account": s.account,
                "ok": s.report is not None,
                "error": s.error,
                "report": None if s.report is None else scan_document(s.report),
            }
            for s in scans
        ],
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def _scan_metrics(s: AccountScan) -> AccountMetrics:
    if s.report is None:
        return AccountMetrics(account=s.account, success=False, timestamp=s.scanned_at)
    return AccountMetrics(
        account=s.account,
        success=True,
        timestamp=s.scanned_at,
        storage=_storage(s.report),
        folders=[(f.name, f.bytes) for f in s.report.folders],
        reclaimable=[(r.rule, r.frees_bytes) for r in s.report.reclaimable or ()],
    )


def _scan_case(s: AccountScan) -> JunitCase:
    if s.report is None:
        return JunitCase(classname=s.account, name="scan", error=s.error or "not scanned")
    return JunitCase(classname=s.account, name="scan", output=_scan_line(s.report))


def _scan_github(scans: Sequence[AccountScan], quiet: bool) -> Rendered:
    notes: list[Annotation] = []
    rows: list[list[str]] = []
    for s in scans:
        if s.report is None:
            notes.append(Annotation("error", f"scan {s.account}", s.error or "not scanned"))
            rows.append([s.account, "not scanned", s.error or ""])
            continue
        line = _scan_line(s.report)
        if not quiet:
            notes.append(Annotation("notice", f"scan {s.account}", line))
        rows.append([s.account, "scanned", line])
    summary = render_summary("quotatool scan", ["Account", "Result", "Details"], rows)
    return Rendered(render_annotations(notes), summary)


def render_scans(
    scans: Sequence[AccountScan], fmt: ReportFormat, *, width: int = 120, quiet: bool = False
) -> Rendered:
    """Return a run's scans in ``fmt``; one scanned account in JSON is its own document.

    ``quiet`` drops the per-account notices of ``github``; data formats are never filtered.
    """
    if fmt is ReportFormat.TABLE:
        buf = io.StringIO()
        console = Console(file=buf, width=width, no_color=True, highlight=False, soft_wrap=False)
        render_scan_tables(scans, console)
        return Rendered(buf.getvalue())
    if fmt is ReportFormat.JSON:
        if len(scans) == 1 and scans[0].report is not None:
            return Rendered(render_scan_json(scans[0].report))
        return Rendered(_scans_json(scans))
    if fmt is ReportFormat.PROMETHEUS:
        return Rendered(render_prometheus([_scan_metrics(s) for s in scans]))
    if fmt is ReportFormat.JUNIT:
        stamp = min((s.scanned_at for s in scans), default=0)
        return Rendered(
            render_junit("quotatool scan", [_scan_case(s) for s in scans], timestamp=stamp)
        )
    if fmt is ReportFormat.GITHUB:
        return _scan_github(scans, quiet)
    assert_never(fmt)


# -- check ---------------------------------------------------------------------------------------


def _check_metrics(r: AccountCheck) -> AccountMetrics:
    return AccountMetrics(
        account=r.account,
        success=r.reached,
        timestamp=r.checked_at,
        storage=[(q.root, q.usage, q.limit) for q in r.quota or () if q.resource == "STORAGE"],
        folders=sorted(r.folder_sizes.items()),
        status=int(r.status),
    )


def _check_cases(r: AccountCheck) -> list[JunitCase]:
    line = status_line(r)
    if r.storage_status is Status.UNKNOWN:
        storage = JunitCase(r.account, "storage quota", error=r.error or "unknown", output=line)
    elif r.storage_status is Status.OK:
        storage = JunitCase(r.account, "storage quota", output=line)
    else:
        storage = JunitCase(r.account, "storage quota", (r.storage_status.name, line), output=line)
    cases = [storage]
    for f in r.folders:
        name = f"folder {f.folder}"
        what = f"{f.folder}: {iec(f.octets)} of its {iec(f.limit)} limit"
        failure = None if f.status is Status.OK else (f.status.name, what)
        cases.append(JunitCase(r.account, name, failure, output=what))
    return cases


_LEVELS: dict[Status, Level] = {
    Status.OK: "notice",
    Status.WARNING: "warning",
    Status.CRITICAL: "error",
    Status.UNKNOWN: "error",
}


def _check_github(run: CheckRun, quiet: bool) -> Rendered:
    notes = [
        Annotation(_LEVELS[r.status], f"quota {r.account}", status_line(r))
        for r in run.results
        if not (quiet and r.status is Status.OK)
    ]
    rows = []
    for r in run.results:
        pct = r.percent
        rows.append(
            [
                r.account,
                r.status.name,
                "" if r.usage is None else iec(r.usage),
                "" if r.limit is None else iec(r.limit),
                "" if pct is None else f"{pct:.1f}%",
                r.error or "",
            ]
        )
    header = ["Account", "Status", "Used", "Limit", "Use", "Note"]
    summary = render_summary(f"quotatool check: {run.status.name}", header, rows)
    return Rendered(render_annotations(notes), summary)


def render_check(run: CheckRun, fmt: ReportFormat, *, quiet: bool = False) -> Rendered:
    """Return a check run in ``fmt``; ``table`` is the monitoring-plugin status lines.

    ``quiet`` keeps only problems in ``table`` and ``github``; data formats are never filtered.
    """
    if fmt is ReportFormat.TABLE:
        return Rendered(render_check_text(run, quiet=quiet))
    if fmt is ReportFormat.JSON:
        return Rendered(render_check_json(run))
    if fmt is ReportFormat.PROMETHEUS:
        return Rendered(render_prometheus([_check_metrics(r) for r in run.results]))
    if fmt is ReportFormat.JUNIT:
        cases = [c for r in run.results for c in _check_cases(r)]
        return Rendered(render_junit("quotatool check", cases, timestamp=run.checked_at))
    if fmt is ReportFormat.GITHUB:
        return _check_github(run, quiet)
    assert_never(fmt)
