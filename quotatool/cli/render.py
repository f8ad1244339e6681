"""Render a scan report in the chosen format (data on stdout, problems on stderr)."""

from __future__ import annotations

import sys
from typing import assert_never

from quotatool.cli.console import stdout_console
from quotatool.cli.errors import print_warning
from quotatool.core.usage import ScanReport
from quotatool.report.format import OutputFormat
from quotatool.report.scan_json import render_scan_json
from quotatool.report.scan_table import render_scan_table

_STDERR_WARNINGS = 5


def choose_format(fmt: OutputFormat, json_flag: bool) -> OutputFormat:
    return OutputFormat.JSON if json_flag else fmt


def render_scan(report: ScanReport, fmt: OutputFormat) -> None:
    if fmt is OutputFormat.TABLE:
        render_scan_table(report, stdout_console())
    elif fmt is OutputFormat.JSON:
        sys.stdout.write(render_scan_json(report))
        sys.stdout.flush()
        # The JSON carries every warning; people watching stderr get the first few too.
        for line in report.warnings[:_STDERR_WARNINGS]:
            print_warning(line)
        if len(report.warnings) > _STDERR_WARNINGS:
            print_warning(f"{len(report.warnings) - _STDERR_WARNINGS} more warnings in the JSON")
    else:
        assert_never(fmt)
