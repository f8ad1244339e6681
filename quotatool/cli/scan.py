"""``quotatool scan``: where did the space go?"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from quotatool.cli.console import make_progress, stop_progress
from quotatool.cli.errors import reports_errors
from quotatool.cli.options import (
    AuthOpt,
    CaFileOpt,
    ConfigOpt,
    DebugOpt,
    ExcludeOpt,
    FolderOpt,
    JsonOpt,
    PasswordCommandOpt,
    TargetArg,
    TimeoutOpt,
    TlsOpt,
    TopOpt,
)
from quotatool.cli.render import choose_format, render_scan
from quotatool.cli.wiring import ConnectionOptions, load_cli_config, open_source
from quotatool.core.usage import summarize
from quotatool.report.format import OutputFormat
from quotatool.services.scan import scan

FormatOpt = Annotated[OutputFormat, typer.Option("--format", help="Output format.")]


@reports_errors
def scan_command(
    target: TargetArg,
    folder: FolderOpt = None,
    exclude: ExcludeOpt = None,
    top: TopOpt = 10,
    fmt: FormatOpt = OutputFormat.TABLE,
    json_: JsonOpt = False,
    config: ConfigOpt = None,
    ca_file: CaFileOpt = None,
    tls: TlsOpt = None,
    auth: AuthOpt = None,
    password_command: PasswordCommandOpt = None,
    timeout: TimeoutOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Show where the mailbox space went: quota, folders, senders, years, attachments."""
    options = ConnectionOptions(
        config=config,
        ca_file=ca_file,
        tls=tls,
        auth=auth,
        password_command=password_command,
        timeout=timeout,
        debug=debug,
    )
    source = open_source(target, options, load_cli_config(config))
    progress = make_progress()
    try:
        inventory = scan(
            source,
            now=int(time.time()),
            include=folder or (),
            exclude=exclude or (),
            progress=progress,
        )
    finally:
        stop_progress(progress)
        source.close()
    render_scan(summarize(inventory, top=top), choose_format(fmt, json_))
