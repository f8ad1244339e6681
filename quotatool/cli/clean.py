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
    load_cli_rules,
    open_source,
    resolve_account,
)
from quotatool.config.accounts import Config
from quotatool.config.targets import LocalTarget
from quotatool.core.plan import plan_from_json
from quotatool.errors import ConfigError, UsageError
from quotatool.model import Plan
from quotatool.report.format import OutputFormat
from quotatool.report.plan_json import render_plan_json
from quotatool.report.plan_table import render_plan_table
from quotatool.services.plan import plan_cleanup, write_plan_file
from quotatool.units import UnitError, parse_size

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
CleanRulesOpt = Annotated[
    Path | None,
    typer.Option(
        "--rules",
        help="The rules file to make the plan from (see rules.example.toml; check it with: "
        "quotatool rules check).",
        show_default=False,
    ),
]
PlanFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--plan",
        help="Execute this saved plan (from --dry-run --save-plan) exactly, without "
        "evaluating rules again.",
        show_default=False,
    ),
]
YesOpt = Annotated[
    bool, typer.Option("--yes", help="Do not ask for confirmation (for cron and scripts).")
]
MaxMessagesOpt = Annotated[
    int | None,
    typer.Option(
        "--max-messages",
        min=0,
        help="Refuse a plan with more messages than this.",
        show_default=False,
    ),
]
MaxBytesOpt = Annotated[
    str | None,
    typer.Option(
        "--max-bytes",
        help="Refuse a plan that frees or moves more than this (e.g. 2GiB, 500MB).",
        show_default=False,
    ),
]


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
    rules: CleanRulesOpt = None,
    plan_file: PlanFileOpt = None,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    max_messages: MaxMessagesOpt = None,
    max_bytes: MaxBytesOpt = None,
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
    """Clean up by rules: show the plan (--dry-run) or carry it out safely."""
    if (rules is None) == (plan_file is None):
        raise UsageError(
            "give exactly one of --rules FILE (make a plan) and --plan FILE (run a saved one)"
        )
    try:
        byte_cap = parse_size(max_bytes) if max_bytes is not None else None
    except UnitError as exc:
        raise UsageError(f"--max-bytes: {exc}") from exc
    cfg = load_cli_config(config)
    resolved = resolve_account(target, cfg)
    account = resolved.name
    if not dry_run and isinstance(resolved.target, LocalTarget):
        # Refuse before reading anything: local sources are for scans and plans only.
        raise UsageError(
            f"{resolved.target.display()}: the real run changes IMAP accounts only",
            hint="add --dry-run to see the plan for a local Maildir or mbox",
        )
    options = ConnectionOptions(
        config=config,
        ca_file=ca_file,
        tls=tls,
        auth=auth,
        password_command=password_command,
        timeout=timeout,
        debug=debug,
    )
    as_json = choose_format(fmt, json_) is OutputFormat.JSON
    if plan_file is not None:
        plan = _load_plan(plan_file, target, account)
        if dry_run:
            _render(plan, as_json=as_json, explain=explain, warnings=())
            return
    else:
        assert rules is not None
        plan, warnings = _make_plan(
            target, options, cfg, rules, account, parse_now(now), folder, exclude
        )
        if save_plan is not None:
            write_plan_file(plan, save_plan)
        if dry_run:
            _render(plan, as_json=as_json, explain=explain, warnings=warnings)
            if save_plan is not None and not as_json:
                sys.stderr.write(f"Plan saved to {save_plan}.\n")
            return
    # Imported here: the real run's modules (journal, IMAP writes) cost every other command
    # its start-up time.
    from quotatool.cli.execute import run_clean

    code = run_clean(
        plan,
        target,
        options,
        cfg,
        yes=yes,
        max_messages=max_messages,
        max_bytes=byte_cap,
        json_=as_json,
        debug=debug,
    )
    if code:
        raise typer.Exit(code)


def _load_plan(path: Path, target: str, account: str) -> Plan:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read plan file {path}: {exc.strerror or exc}") from exc
    try:
        plan = plan_from_json(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: not a quotatool plan: {exc}") from exc
    if plan.target not in (target, account) and plan.account != account:
        raise UsageError(
            f"{path} is a plan for {plan.target}, not for {target}",
            hint="run a plan only against the account it was made for",
        )
    return plan


def _make_plan(
    target: str,
    options: ConnectionOptions,
    cfg: Config,
    rules: Path,
    account: str,
    today: int,
    folder: list[str] | None,
    exclude: list[str] | None,
) -> tuple[Plan, tuple[str, ...]]:
    ruleset = load_cli_rules(rules)
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
    return result.plan, result.inventory.warnings


def _render(plan: Plan, *, as_json: bool, explain: bool, warnings: tuple[str, ...]) -> None:
    if as_json:
        sys.stdout.write(render_plan_json(plan))
        sys.stdout.flush()
        for line in warnings[:_STDERR_WARNINGS]:
            print_warning(line)
        if len(warnings) > _STDERR_WARNINGS:
            print_warning(f"{len(warnings) - _STDERR_WARNINGS} more scan warnings")
        return
    render_plan_table(plan, stdout_console(), explain=explain, warnings=warnings)
