"""``quotatool check``: is any mailbox near its quota? For monitoring, cron and CI.

Exit codes are the monitoring-plugin ones, whatever goes wrong: 0 OK, 1 WARNING, 2 CRITICAL,
3 UNKNOWN. A bad option, a config error, a server that is down, a refused login and a lock
held by another run are all UNKNOWN (3): click's usage exit 2 would read as CRITICAL, so
:class:`CheckCommand` maps it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.exceptions import UsageError as ClickUsageError
from typer.core import TyperCommand

from quotatool.cli.errors import print_error, reports_errors
from quotatool.cli.multi import (
    AccountJob,
    AllOpt,
    JobsOpt,
    OutputOpt,
    QuietOpt,
    UsersFromOpt,
    account_lock,
    lock_directory,
    open_job_source,
    plan_jobs,
    run_parallel,
    shared_secret_for,
)
from quotatool.cli.options import (
    AuthOpt,
    CaFileOpt,
    ConfigOpt,
    DebugOpt,
    JsonOpt,
    PasswordCommandOpt,
    TimeoutOpt,
    TlsOpt,
)
from quotatool.cli.render import emit
from quotatool.cli.wiring import ConnectionOptions, load_cli_config
from quotatool.core.thresholds import (
    AccountCheck,
    Status,
    ThresholdSettings,
    parse_folder_limit,
    parse_threshold,
    resolve_policy,
    summarize_run,
    unknown,
)
from quotatool.errors import LockHeldError, QuotatoolError, UsageError
from quotatool.report.check_text import SERVICE, status_line
from quotatool.report.format import ReportFormat, render_check
from quotatool.report.text import printable
from quotatool.services.check import check_account
from quotatool.units import UnitError

__all__ = ["CheckCommand", "check_command"]


class CheckCommand(TyperCommand):
    """The check command's click class: a usage error exits UNKNOWN (3), not 2.

    ``parse_args`` is where click raises every usage error of a subcommand (unknown option,
    missing or invalid value), and it runs inside the group's ``main``, so mapping it here
    also works under ``CliRunner``. ``typer._click`` is the click that typer vendors; typer
    does not re-export ``UsageError`` (only its subclass ``BadParameter``).
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except ClickUsageError as exc:
            exc.exit_code = int(Status.UNKNOWN)
            # Monitoring systems show stdout: say UNKNOWN there too; click explains on stderr.
            sys.stdout.write(
                f"{SERVICE} UNKNOWN - usage error: {printable(exc.format_message())}\n"
            )
            sys.stdout.flush()
            raise


TargetsArg = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="TARGET",
        help="Account names from the config file, or URLs (imaps://USER@HOST, imap://..., "
        "maildir:PATH, mbox:PATH).",
        show_default=False,
    ),
]
WarningOpt = Annotated[
    str | None,
    typer.Option(
        "--warning",
        help="WARNING at this use of the quota: a percentage (80%) or a size (8GiB) "
        "[default: 80%, or the config file's].",
        show_default=False,
    ),
]
CriticalOpt = Annotated[
    str | None,
    typer.Option(
        "--critical",
        help="CRITICAL at this use of the quota: a percentage (95%) or a size (9GiB) "
        "[default: 95%, or the config file's].",
        show_default=False,
    ),
]
FolderLimitOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--folder-limit",
        help="FOLDER=SIZE: CRITICAL when the folder (or the folders a glob matches, together) "
        "reaches SIZE (repeatable).",
        show_default=False,
    ),
]
CheckFormatOpt = Annotated[
    ReportFormat,
    typer.Option(
        "--format",
        help="Output format; 'table' is one monitoring-plugin status line per account.",
    ),
]


def _cli_settings(
    warning: str | None, critical: str | None, folder_limits: list[str] | None
) -> ThresholdSettings:
    try:
        warn = parse_threshold(warning) if warning is not None else None
    except UnitError as exc:
        raise UsageError(f"--warning: {exc}") from exc
    try:
        crit = parse_threshold(critical) if critical is not None else None
    except UnitError as exc:
        raise UsageError(f"--critical: {exc}") from exc
    try:
        limits = tuple(parse_folder_limit(text) for text in folder_limits or ())
    except UnitError as exc:
        raise UsageError(f"--folder-limit: {exc}") from exc
    return ThresholdSettings(warning=warn, critical=crit, folder_limits=limits)


def _unknown(message: str, hint: str | None, *, quiet_stdout: bool) -> typer.Exit:
    print_error(message, hint)
    if not quiet_stdout:
        sys.stdout.write(f"{SERVICE} UNKNOWN - {printable(' '.join(message.split()))}\n")
        sys.stdout.flush()
    return typer.Exit(int(Status.UNKNOWN))


@reports_errors
def check_command(
    targets: TargetsArg = None,
    warning: WarningOpt = None,
    critical: CriticalOpt = None,
    folder_limit: FolderLimitOpt = None,
    all_: AllOpt = False,
    users_from: UsersFromOpt = None,
    jobs: JobsOpt = 4,
    fmt: CheckFormatOpt = ReportFormat.TABLE,
    json_: JsonOpt = False,
    output: OutputOpt = None,
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
    ca_file: CaFileOpt = None,
    tls: TlsOpt = None,
    auth: AuthOpt = None,
    password_command: PasswordCommandOpt = None,
    timeout: TimeoutOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Check quota use against thresholds; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."""
    chosen = ReportFormat.JSON if json_ else fmt
    # The UNKNOWN line goes to stdout only where stdout carries status lines.
    machine = chosen is not ReportFormat.TABLE or output is not None
    try:
        status = _run(
            targets or [],
            _cli_settings(warning, critical, folder_limit),
            all_accounts=all_,
            users_from=users_from,
            max_jobs=jobs,
            fmt=chosen,
            output=output,
            quiet=quiet,
            config_path=config,
            options=ConnectionOptions(
                config=config,
                ca_file=ca_file,
                tls=tls,
                auth=auth,
                password_command=password_command,
                timeout=timeout,
                debug=debug,
            ),
        )
    except QuotatoolError as exc:
        raise _unknown(exc.message, exc.hint, quiet_stdout=machine) from None
    except Exception as exc:
        if debug:
            raise
        raise _unknown(
            f"unexpected {type(exc).__name__}: {exc}",
            "this is a bug; rerun with --debug for the details and report it",
            quiet_stdout=machine,
        ) from None
    raise typer.Exit(int(status))


def _run(
    targets: list[str],
    cli: ThresholdSettings,
    *,
    all_accounts: bool,
    users_from: Path | None,
    max_jobs: int,
    fmt: ReportFormat,
    output: Path | None,
    quiet: bool,
    config_path: Path | None,
    options: ConnectionOptions,
) -> Status:
    now = int(time.time())
    config = load_cli_config(config_path)
    jobs = plan_jobs(targets, all_accounts=all_accounts, users_from=users_from, config=config)
    locks = lock_directory()
    secret = shared_secret_for(jobs, options)

    def work(job: AccountJob) -> AccountCheck:
        policy = resolve_policy(cli, job.account.thresholds, config.check)
        try:
            with account_lock(job, locks):
                return check_account(
                    job.name,
                    lambda: open_job_source(job, options, shared_secret=secret),
                    policy,
                    now=now,
                )
        except LockHeldError as exc:
            return unknown(job.name, exc.message, now=now)

    run = summarize_run(run_parallel(jobs, work, max_jobs), now=now)
    emit(render_check(run, fmt, quiet=quiet), output)
    if output is not None or fmt is not ReportFormat.TABLE:
        # stdout holds only the requested output; problems still reach cron's mail.
        for result in run.results:
            if result.status is not Status.OK:
                sys.stderr.write(status_line(result) + "\n")
        sys.stderr.flush()
    return run.status
