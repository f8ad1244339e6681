"""Output formats and the dispatch from a format to its renderer.

Adding a format means one enum member and one renderer module; the ``assert_never`` below
makes mypy name every dispatch that does not handle the new member yet.
"""

from __future__ import annotations

from enum import StrEnum
from typing import assert_never

from rich.console import Console

from quotatool.core.usage import ScanReport
from quotatool.report.scan_json import render_scan_json
from quotatool.report.scan_table import render_scan_table


class OutputFormat(StrEnum):
    """What ``--format`` accepts."""

    TABLE = "table"
    """A report for people, drawn with rich."""
    JSON = "json"
    """One JSON document per run, with a ``schema`` key."""


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
