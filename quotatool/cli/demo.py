"""``quotatool demo``: the whole job on a generated sample mailbox, no server needed."""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from quotatool.adapters.maildir import MaildirSource
from quotatool.adapters.sample import write_sample_maildir
from quotatool.cli.console import make_progress, stderr_console, stop_progress
from quotatool.cli.errors import reports_errors
from quotatool.cli.options import DebugOpt, JsonOpt, TopOpt
from quotatool.cli.render import choose_format, render_scan
from quotatool.core.usage import summarize
from quotatool.errors import UsageError
from quotatool.report.format import OutputFormat
from quotatool.services.scan import scan

PathOpt = Annotated[
    Path | None,
    typer.Option(
        "--path",
        help="Write the sample Maildir here (an empty or new directory) [default: a temporary "
        "directory].",
        show_default=False,
    ),
]
NowOpt = Annotated[
    str | None,
    typer.Option(
        "--now",
        help="Pretend today is this date (YYYY-MM-DD), for reproducible output.",
        show_default=False,
    ),
]


def _parse_now(text: str | None) -> int:
    if text is None:
        return int(time.time())
    try:
        return int(datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())
    except ValueError as exc:
        raise UsageError(f"--now: expected a date like 2026-11-28, got {text!r}") from exc


@reports_errors
def demo_command(
    path: PathOpt = None,
    now: NowOpt = None,
    top: TopOpt = 10,
    json_: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Scan a generated sample mailbox and show the report: no server, no config."""
    today = _parse_now(now)
    if path is None:
        path = Path(tempfile.mkdtemp(prefix="quotatool-demo-")) / "Maildir"
    elif path.exists() and any(path.iterdir()):
        raise UsageError(f"--path {path} is not empty", hint="name a new or empty directory")
    err = stderr_console()
    summary = write_sample_maildir(path, now=today)
    if not json_:
        err.print(
            f"Sample mailbox written to {summary.path} "
            f"({summary.messages} messages in {len(summary.folders)} folders).",
            markup=False,
            highlight=False,
        )
    source = MaildirSource(path)
    progress = make_progress()
    try:
        inventory = scan(source, now=today, progress=progress)
    finally:
        stop_progress(progress)
        source.close()
    render_scan(summarize(inventory, top=top), choose_format(OutputFormat.TABLE, json_))
