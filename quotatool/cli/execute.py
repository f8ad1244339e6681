"""The real run of a plan, for ``quotatool clean`` (without ``--dry-run``, or with ``--plan``).

:func:`run_clean` wires what :func:`~quotatool.services.execute.execute_plan` needs: the
account lock, the journal in the state directory, the read-write IMAP session and the local
archive writer; it asks for confirmation, renders the result and returns the exit code.
"""

from __future__ import annotations

import sys
import time

from quotatool.adapters.archive_local import LocalArchiveWriter
from quotatool.adapters.imap_write import ImapMailbox
from quotatool.adapters.journal import SqliteJournal, journal_path
from quotatool.adapters.lock import AccountLock, lock_file_name
from quotatool.cli.console import make_progress, stdout_console, stop_progress
from quotatool.cli.wiring import ConnectionOptions, imap_options, resolve_account
from quotatool.config.accounts import Config
from quotatool.config.paths import state_dir
from quotatool.config.stores import resolve_store
from quotatool.config.targets import LocalTarget
from quotatool.errors import ExitCode, UsageError
from quotatool.model import Plan
from quotatool.report.result_json import render_result_json
from quotatool.report.result_table import render_result_table
from quotatool.report.text import iec
from quotatool.services.execute import DEFAULT_BATCH, ExecutionResult, check_caps, execute_plan
from quotatool.services.offload import StoreOpener
from quotatool.storage import Store, open_store

__all__ = ["confirm_text", "exit_code_for", "run_clean", "store_opener"]


def store_opener(config: Config) -> StoreOpener:
    """Return what opens a rule's ``offload_to`` (a URL or a ``[stores.NAME]``) for a run."""

    def open_(ref: str) -> tuple[Store, str | None]:
        url, store_config = resolve_store(ref, config)
        return open_store(url, store_config), store_config.link_url

    return open_


def confirm_text(plan: Plan, where: str) -> str:
    """Return the question asked before a real run."""
    kinds: dict[str, int] = {}
    for a in plan.actions:
        kinds[a.action.kind] = kinds.get(a.action.kind, 0) + 1
    what = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
    return (
        f"{what} message(s) in {where}, planned to free {iec(plan.summary.frees_bytes)}. "
        "Proceed? [y/N] "
    )


def exit_code_for(result: ExecutionResult) -> int:
    """Return 0 when every step is done (now or earlier), 3 (partial) otherwise."""
    return int(ExitCode.PARTIAL if result.partial else ExitCode.OK)


def _confirm(plan: Plan, where: str) -> None:
    if not sys.stdin.isatty():
        raise UsageError(
            "refusing to change the mailbox without confirmation: no terminal to ask on",
            hint="check the plan with --dry-run, then pass --yes (as in cron)",
        )
    sys.stderr.write(confirm_text(plan, where))
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise UsageError("nothing was changed: not confirmed")


def run_clean(
    plan: Plan,
    target: str,
    options: ConnectionOptions,
    config: Config,
    *,
    yes: bool,
    max_messages: int | None,
    max_bytes: int | None,
    json_: bool,
    debug: bool = False,
    batch_size: int = DEFAULT_BATCH,
) -> int:
    """Execute ``plan`` on the account ``target`` names; return the exit code (0 or 3).

    Errors (lock held, refused server, lost connection, journal failure) are raised as
    QuotatoolErrors for the command's ``@reports_errors`` to print.
    """
    check_caps(plan, max_messages=max_messages, max_bytes=max_bytes)
    account = resolve_account(target, config)
    where = account.target
    if isinstance(where, LocalTarget):
        raise UsageError(
            f"{where.display()}: the real run changes IMAP accounts only",
            hint="local Maildir and mbox sources can be scanned and planned with --dry-run",
        )
    if not plan.actions:
        sys.stderr.write("Nothing to do: the plan has no actions.\n")
        return int(ExitCode.OK)
    # The journal (and its lock) belong to the account, not the way to it: a rerun through
    # another port or TLS mode must find the same journal. The second lock uses the key
    # `check` and the multi-account commands lock with (the URL), so they exclude a clean.
    key = f"{where.user}@{where.host.lower()}"
    if not yes:
        _confirm(plan, where.display())
    directory = state_dir()
    with AccountLock(key, directory), AccountLock(where.display(), directory):
        journal = SqliteJournal(journal_path(directory, lock_file_name(key)))
        if debug:
            sys.stderr.write(f"journal: {journal.path}\n")
        try:
            mailbox = ImapMailbox(imap_options(account, where, options))
            progress = make_progress(quiet=json_)
            try:
                result = execute_plan(
                    plan,
                    mailbox,
                    journal,
                    LocalArchiveWriter(),
                    max_messages=max_messages,
                    max_bytes=max_bytes,
                    batch_size=batch_size,
                    progress=progress,
                    stores=store_opener(config),
                    now=int(time.time()),
                )
            finally:
                stop_progress(progress)
                mailbox.close()
        finally:
            journal.close()
    code = exit_code_for(result)
    if json_:
        sys.stdout.write(render_result_json(result, code))
        sys.stdout.flush()
    else:
        render_result_table(result, stdout_console())
    return code
