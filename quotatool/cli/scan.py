"""``quotatool scan``: where did the space go? For one account or many (``--all``)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from quotatool.cli.console import make_progress, stdout_console, stop_progress
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
    lock_key,
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
    ExcludeOpt,
    FolderOpt,
    JsonOpt,
    PasswordCommandOpt,
    TimeoutOpt,
    TlsOpt,
    TopOpt,
)
from quotatool.cli.render import emit, render_scan
from quotatool.cli.wiring import (
    ConnectionOptions,
    load_cli_config,
    load_cli_rules,
    open_source,
    resolve_account,
)
from quotatool.config.accounts import Config
from quotatool.core.rules import RuleSet
from quotatool.core.usage import ScanReport, summarize
from quotatool.errors import ExitCode, QuotatoolError, UsageError
from quotatool.model import Inventory
from quotatool.report.format import (
    AccountScan,
    OutputFormat,
    ReportFormat,
    render_scan_tables,
    render_scans,
)
from quotatool.services.plan import reclaimable
from quotatool.services.scan import scan

FormatOpt = Annotated[ReportFormat, typer.Option("--format", help="Output format.")]
ScanRulesOpt = Annotated[
    Path | None,
    typer.Option(
        "--rules",
        help="Also show what each rule of this rules file would free (the plan clean --dry-run "
        "makes, from the same scan): a table, 'reclaimable' in JSON, "
        "quotatool_reclaimable_bytes in Prometheus.",
        show_default=False,
    ),
]
TargetsArg = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="TARGET",
        help="Account name from the config file, or imaps://USER@HOST[:PORT], "
        "imap://USER@HOST[:PORT] (STARTTLS), maildir:PATH, mbox:PATH; several are scanned "
        "one after the other (see --jobs).",
        show_default=False,
    ),
]


@reports_errors
def scan_command(
    targets: TargetsArg = None,
    folder: FolderOpt = None,
    exclude: ExcludeOpt = None,
    top: TopOpt = 10,
    fmt: FormatOpt = ReportFormat.TABLE,
    json_: JsonOpt = False,
    rules: ScanRulesOpt = None,
    all_: AllOpt = False,
    users_from: UsersFromOpt = None,
    jobs: JobsOpt = 4,
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
    """Show where the mailbox space went: quota, folders, senders, years, attachments."""
    chosen = ReportFormat.JSON if json_ else fmt
    options = ConnectionOptions(
        config=config,
        ca_file=ca_file,
        tls=tls,
        auth=auth,
        password_command=password_command,
        timeout=timeout,
        debug=debug,
    )
    cfg = load_cli_config(config)
    # Read before any connection: a broken rules file is an error of its own (exit 4).
    ruleset = None if rules is None else _Rules(rules, load_cli_rules(rules))
    names = targets or []
    if all_ or users_from is not None or len(names) > 1:
        jobs_list = plan_jobs(names, all_accounts=all_, users_from=users_from, config=cfg)
        code = _scan_many(
            jobs_list,
            options,
            include=folder or (),
            exclude=exclude or (),
            top=top,
            fmt=chosen,
            output=output,
            quiet=quiet,
            max_jobs=jobs,
            rules=ruleset,
        )
        if code is not ExitCode.OK:
            raise typer.Exit(int(code))
        return
    if not names:
        raise UsageError("no TARGET given", hint="name an account or a URL, or use --all")
    _scan_one(
        names[0],
        options,
        cfg,
        include=folder or (),
        exclude=exclude or (),
        top=top,
        fmt=chosen,
        output=output,
        quiet=quiet,
        rules=ruleset,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class _Rules:
    path: Path
    ruleset: RuleSet


def _report(inventory: Inventory, rules: _Rules | None, account: str, *, top: int) -> ScanReport:
    """Return the scan report; with ``--rules``, also what each rule would free."""
    report = summarize(inventory, top=top)
    if rules is None:
        return report
    freed = reclaimable(
        inventory,
        rules.ruleset,
        now=inventory.scanned_at,
        rules_file=str(rules.path),
        account=account,
    )
    return dataclasses.replace(report, reclaimable=freed)


def _scan_one(
    target: str,
    options: ConnectionOptions,
    cfg: Config,
    *,
    include: Sequence[str],
    exclude: Sequence[str],
    top: int,
    fmt: ReportFormat,
    output: Path | None,
    quiet: bool,
    rules: _Rules | None,
) -> None:
    """Scan one account; its errors end the command with their own exit code."""
    now = int(time.time())
    account = resolve_account(target, cfg)
    with account_lock(AccountJob(target, account, lock_key(account.target)), lock_directory()):
        source = open_source(target, options, cfg)
        progress = make_progress(quiet)
        try:
            inventory = scan(source, now=now, include=include, exclude=exclude, progress=progress)
        finally:
            stop_progress(progress)
            source.close()
    report = _report(inventory, rules, account.name, top=top)
    if output is None and fmt in (ReportFormat.TABLE, ReportFormat.JSON):
        render_scan(report, OutputFormat(fmt.value))
        return
    emit(render_scans([AccountScan(target, now, report=report)], fmt, quiet=quiet), output)


def _scan_many(
    jobs: Sequence[AccountJob],
    options: ConnectionOptions,
    *,
    include: Sequence[str],
    exclude: Sequence[str],
    top: int,
    fmt: ReportFormat,
    output: Path | None,
    quiet: bool,
    max_jobs: int,
    rules: _Rules | None,
) -> ExitCode:
    """Scan every account; one failing does not stop the others. Return the exit code."""
    now = int(time.time())
    locks = lock_directory()
    secret = shared_secret_for(jobs, options)

    def work(job: AccountJob) -> tuple[AccountScan, ExitCode]:
        try:
            with account_lock(job, locks):
                source = open_job_source(job, options, shared_secret=secret)
                try:
                    inventory = scan(source, now=now, include=include, exclude=exclude)
                finally:
                    source.close()
        except QuotatoolError as exc:
            print_error(f"{job.name}: {exc.message}", exc.hint)
            return AccountScan(job.name, now, error=exc.message), exc.exit_code
        report = _report(inventory, rules, job.name, top=top)
        return AccountScan(job.name, now, report=report), ExitCode.OK

    done = run_parallel(jobs, work, max_jobs)
    scans = [s for s, _ in done]
    if output is None and fmt is ReportFormat.TABLE:
        render_scan_tables(scans, stdout_console())
    else:
        emit(render_scans(scans, fmt, quiet=quiet), output)
    failed = {code for _, code in done if code is not ExitCode.OK}
    if not failed:
        return ExitCode.OK
    if any(code is ExitCode.OK for _, code in done):
        return ExitCode.PARTIAL
    # Every account failed: their common reason's code, or the generic one.
    return failed.pop() if len(failed) == 1 else ExitCode.ERROR
