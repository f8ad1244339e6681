"""Render results in the chosen format (data on stdout or --output, problems on stderr)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import assert_never

from quotatool.cli.console import stdout_console
from quotatool.cli.errors import print_warning
from quotatool.core.usage import ScanReport
from quotatool.report.atomic import write_atomic
from quotatool.report.format import OutputFormat, Rendered
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


def emit(rendered: Rendered, output: Path | None) -> None:
    """Write ``rendered`` to ``output`` atomically, or to stdout; add the GitHub job summary.

    The job summary is Markdown appended to the file GitHub Actions names in
    ``$GITHUB_STEP_SUMMARY``; it is only written under GitHub Actions (``GITHUB_ACTIONS=true``).
    """
    if output is not None:
        write_atomic(output, rendered.text)
    elif rendered.text:
        sys.stdout.write(rendered.text)
        sys.stdout.flush()
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if rendered.summary and os.environ.get("GITHUB_ACTIONS") == "true" and summary_file:
        try:
            with open(summary_file, "a", encoding="utf-8") as out:
                out.write(rendered.summary)
        except OSError as exc:
            print_warning(f"cannot write the GitHub job summary {summary_file}: {exc.strerror}")
