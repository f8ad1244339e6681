"""``quotatool clean``: what the rules would delete, archive or offload, and what that frees."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from quotatool.cli.console import make_progress, stdout_console, stop_progress
from quotatool.cli.errors import print_warning, reports_errors
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
)
from quotatool.cli.render import choose_format
from quotatool.cli.wiring import (
    ConnectionOptions,
    load_cli_config,
    open_source,
    resolve_account,
)
from quotatool.config.rules_file import load_rules
from quotatool.errors import UsageError
from quotatool.report.format import OutputFormat
from quotatool.report.plan_json import render_plan_json
from quotatool.report.plan_table import render_plan_table
from quotatool.services.plan import plan_cleanup, write_plan_file

__all__ = ["NowOpt", "RulesOpt", "clean_command", "parse_now"]

_STDERR_WARNINGS = 5

RulesOpt = Annotated[
    Path,
    typer.Option(
        "--rules",
        help="The rules file (see rules.example.toml; check it with: quotatool rules check).",
        show_default=False,
    ),
]
NowOpt = Annotated[
    str | None,
    typer.Option(
        "--now",
        help="Evaluate ages as of this moment (YYYY-MM-DD, midnight UTC, or "
        "YYYY-MM-DDTHH:MM:SSZ) instead of the clock: the same mailbox and rules then give "
        "the same plan, byte for byte.",
        show_default=False,
    ),
]
DryRunOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Show the plan and change nothing (the mailbox is opened read-only).",
    ),
]
ExplainOpt = Annotated[
    bool,
    typer.Option(
        "--explain",
        help="Also list every planned message with the rule that matched it, and every "
        "matched message the plan leaves alone, with the reason.",
    ),
]
SavePlanOpt = Annotated[
    Path | None,
    typer.Option(
        "--save-plan",
        help="Also write the plan as JSON (quotatool.plan/1) to this file (mode 0600).",
        show_default=False,
    ),
]
FormatOpt = Annotated[OutputFormat, typer.Option("--format", help="Output format.")]


def parse_now(text: str | None) -> int:
    """Return ``--now`` as POSIX seconds; the clock when it is not given."""
    if text is None:
        return int(time.time())
    try:
        if len(text) == len("2026-11-28"):
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
            return int(day.timestamp())
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise UsageError(
            f"--now: expected a date like 2026-11-28 or 2026-11-28T12:00:00Z, got {text!r}",
            hint="a time needs its zone (Z or +01:00), so the plan does not depend on the machine",
        )
    return int(moment.timestamp())


@reports_errors
def clean_command(
    target: TargetArg,
    rules: RulesOpt,
    dry_run: DryRunOpt = False,
    explain: ExplainOpt = False,
    save_plan: SavePlanOpt = None,
    now: NowOpt = None,
    folder: FolderOpt = None,
    exclude: ExcludeOpt = None,
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
    """Plan a cleanup by rules: what would go, and how much quota it frees."""
    if not dry_run:
        # Refuse before reading anything: the real run is a separate, journaled executor.
        raise UsageError(
            "clean without --dry-run is not available yet: this version only plans",
            hint="add --dry-run to see the plan; --save-plan FILE keeps it for the real run",
        )
    ruleset = load_rules(rules)
    today = parse_now(now)
    cfg = load_cli_config(config)
    account = resolve_account(target, cfg).name
    options = ConnectionOptions(
        config=config,
        ca_file=ca_file,
        tls=tls,
        auth=auth,
        password_command=password_command,
        timeout=timeout,
        debug=debug,
    )
    source = open_source(target, options, cfg)
    progress = make_progress()
    try:
        result = plan_cleanup(
            source,
            ruleset,
            now=today,
            rules_file=str(rules),
            account=account,
            include=folder or (),
            exclude=exclude or (),
            progress=progress,
        )
    finally:
        stop_progress(progress)
        source.close()
    plan = result.plan
    if save_plan is not None:
        write_plan_file(plan, save_plan)
    warnings = result.inventory.warnings
    if choose_format(fmt, json_) is OutputFormat.JSON:
        sys.stdout.write(render_plan_json(plan))
        sys.stdout.flush()
        for line in warnings[:_STDERR_WARNINGS]:
            print_warning(line)
        if len(warnings) > _STDERR_WARNINGS:
            print_warning(f"{len(warnings) - _STDERR_WARNINGS} more scan warnings")
        return
    render_plan_table(plan, stdout_console(), explain=explain, warnings=warnings)
    if save_plan is not None:
        sys.stderr.write(f"Plan saved to {save_plan}.\n")
