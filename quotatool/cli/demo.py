"""``quotatool demo``: the whole job on a generated sample mailbox, no server needed.

The demo scans the sample, then dry-runs ``rules.example.toml`` over it (the copy shipped in
the package, kept byte-identical to the repository's by a test). With ``--json`` it prints one
document, ``{"schema": "quotatool.demo/1", "scan": ..., "plan": ...}``, whose two halves are what
``scan --json`` and ``clean --dry-run --json`` print.
"""

from __future__ import annotations

import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from quotatool.adapters.maildir import MaildirSource
from quotatool.adapters.sample import SAMPLE_ACCOUNT, write_sample_maildir
from quotatool.cli.clean import parse_now
from quotatool.cli.console import make_progress, stderr_console, stdout_console, stop_progress
from quotatool.cli.errors import reports_errors
from quotatool.cli.options import DebugOpt, JsonOpt, TopOpt
from quotatool.cli.render import choose_format, render_scan
from quotatool.cli.wiring import with_default_store
from quotatool.config.rules_file import parse_rules
from quotatool.core.usage import summarize
from quotatool.errors import UsageError
from quotatool.report.format import OutputFormat
from quotatool.report.plan_json import render_demo_json
from quotatool.report.plan_table import render_plan_table
from quotatool.services.plan import plan_cleanup

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


EXAMPLE_RULES = "rules.example.toml"
"""The rules the demo plans with, shipped as package data (``quotatool/data``)."""


def example_rules_text() -> str:
    """Return the text of the packaged ``rules.example.toml``."""
    return (resources.files("quotatool") / "data" / EXAMPLE_RULES).read_text(encoding="utf-8")


@reports_errors
def demo_command(
    path: PathOpt = None,
    now: NowOpt = None,
    top: TopOpt = 10,
    json_: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Scan a generated sample mailbox, then dry-run rules.example.toml over it."""
    today = parse_now(now)
    ruleset = with_default_store(parse_rules(example_rules_text(), EXAMPLE_RULES))
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
        result = plan_cleanup(
            source,
            ruleset,
            now=today,
            rules_file=EXAMPLE_RULES,
            account=SAMPLE_ACCOUNT,
            progress=progress,
        )
    finally:
        stop_progress(progress)
        source.close()
    report = summarize(result.inventory, top=top)
    if json_:
        sys.stdout.write(render_demo_json(report, result.plan))
        sys.stdout.flush()
        return
    render_scan(report, choose_format(OutputFormat.TABLE, json_))
    out = stdout_console()
    out.print()
    out.print()
    render_plan_table(result.plan, out)
