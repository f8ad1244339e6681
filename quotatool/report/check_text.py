"""Check results as monitoring-plugin status lines.

``QUOTA OK - alice 41% (20.5 MiB of 50.0 MiB) | storage=21495808B;41943040;49807360;0;52428800``

The format is the Nagios plugin API (also read by Icinga, Naemon, Sensu and Zabbix): the
service name, the status, a dash and a readable text; after ``|`` performance data as
``'label'=value[UOM];warn;crit;min;max``. With several accounts the first line sums them up
(monitoring systems read the first line as the status) and one line per account follows.
"""

from __future__ import annotations

import math

from quotatool.core.thresholds import AccountCheck, CheckRun, FolderCheck, Status
from quotatool.report.text import iec, printable

__all__ = ["render_check_text", "status_line"]

SERVICE = "QUOTA"


def _label(name: str) -> str:
    # Plugin guidelines: a label with spaces or special characters is single-quoted, a quote
    # inside it doubled; "=" ends the label, so it is replaced.
    safe = printable(name).replace("=", "_").replace("'", "''")
    return f"'{safe}'"


def _num(value: int | None) -> str:
    return "" if value is None else str(value)


def _perfdata(result: AccountCheck) -> str:
    if result.usage is None:
        return ""
    parts = [
        f"storage={result.usage}B;{_num(result.warning)};{_num(result.critical)};0;"
        f"{_num(result.limit)}"
    ]
    parts.extend(
        f"{_label(f.folder)}={f.octets}B;{_num(f.warning)};{f.limit};0;" for f in result.folders
    )
    return " | " + " ".join(parts)


def _percent(result: AccountCheck) -> str:
    pct = result.percent
    # Floor: "95%" is printed only once 95% is reached, so the text never contradicts a status
    # whose threshold is compared exactly.
    return "" if pct is None else f"{math.floor(pct)}% "


def _usage(result: AccountCheck) -> str:
    assert result.usage is not None
    if result.limit:
        return f"{_percent(result)}({iec(result.usage)} of {iec(result.limit)})"
    return f"{iec(result.usage)} (no limit)"


def _folder(f: FolderCheck) -> str:
    if f.status is Status.CRITICAL:
        return f"folder {printable(f.folder)} {iec(f.octets)} over its {iec(f.limit)} limit"
    return f"folder {printable(f.folder)} {iec(f.octets)} near its {iec(f.limit)} limit"


def _text(result: AccountCheck) -> str:
    name = printable(result.account)
    if result.usage is None:
        return f"{name}: {printable(result.error or 'not checked')}"
    text = f"{name} {_usage(result)}"
    notes = [_folder(f) for f in result.folders if f.status is not Status.OK]
    if result.error:
        notes.insert(0, printable(result.error))
    return ", ".join([text, *notes])


def status_line(result: AccountCheck) -> str:
    """Return one account's status line (no newline)."""
    return f"{SERVICE} {result.status.name} - {_text(result)}{_perfdata(result)}"


def _summary(run: CheckRun) -> str:
    counts = [
        f"{run.count(s)} {s.name.lower()}"
        for s in (Status.CRITICAL, Status.WARNING, Status.UNKNOWN, Status.OK)
        if run.count(s)
    ]
    n = len(run.results)
    return f"{SERVICE} {run.status.name} - {n} accounts: {', '.join(counts)}"


def render_check_text(run: CheckRun, *, quiet: bool = False) -> str:
    """Return the status lines of a run, each ending in a newline.

    ``quiet`` keeps only accounts that are not OK (nothing at all when every one is OK).
    """
    shown = [r for r in run.results if not quiet or r.status is not Status.OK]
    if not shown:
        return ""
    lines = [status_line(r) for r in shown]
    if len(run.results) > 1:
        lines.insert(0, _summary(run))
    return "\n".join(lines) + "\n"
