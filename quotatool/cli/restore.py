"""``quotatool restore``: put offloaded attachments back into their messages.

    quotatool restore TARGET [--folder F]... (--uid U... | --all) [--dry-run] [--yes] [--json]

Runs under the same account lock and journal as ``clean``; the stores are the ones the stubs
name (their credentials from a ``[stores.NAME]`` table with the same URL, if there is one).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from quotatool.cli.console import make_progress, stdout_console, stop_progress
from quotatool.cli.errors import reports_errors
from quotatool.cli.options import (
    AuthOpt,
    CaFileOpt,
    ConfigOpt,
    DebugOpt,
    JsonOpt,
    PasswordCommandOpt,
    TargetArg,
    TimeoutOpt,
    TlsOpt,
)
from quotatool.cli.wiring import (
    ConnectionOptions,
    imap_options,
    load_cli_config,
    resolve_account,
)
from quotatool.config.accounts import Config
from quotatool.config.paths import state_dir
from quotatool.config.targets import LocalTarget
from quotatool.errors import ExitCode, UsageError
from quotatool.model import Uid
from quotatool.ports_write import ObjectStore
from quotatool.report.text import iec

if TYPE_CHECKING:
    from quotatool.services.restore import RestoreResult, RestoreStatus

__all__ = ["restore_command", "restore_document"]

SCHEMA = "quotatool.restore/1"

RestoreFolderOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--folder",
        help="The folder to restore in (repeatable) [default: INBOX with --uid, every folder "
        "with --all].",
        show_default=False,
    ),
]
UidOpt = Annotated[
    list[int] | None,
    typer.Option("--uid", min=1, help="Restore this message (repeatable).", show_default=False),
]
AllMessagesOpt = Annotated[
    bool, typer.Option("--all", help="Restore every message with offloaded attachments.")
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="List what would be restored and change nothing.")
]
YesOpt = Annotated[
    bool, typer.Option("--yes", help="Do not ask for confirmation (for cron and scripts).")
]


def _store_opener(config: Config) -> Callable[[str], ObjectStore]:
    from quotatool.config.stores import resolve_store
    from quotatool.storage import open_store

    def open_(root: str) -> ObjectStore:
        url, store_config = resolve_store(root, config)
        return open_store(url, store_config)

    return open_


def _confirm(where: str) -> None:
    if not sys.stdin.isatty():
        raise UsageError(
            "refusing to change the mailbox without confirmation: no terminal to ask on",
            hint="check with --dry-run, then pass --yes (as in cron)",
        )
    sys.stderr.write(f"Restore offloaded attachments in {where}? [y/N] ")
    sys.stderr.flush()
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise UsageError("nothing was changed: not confirmed")


@reports_errors
def restore_command(
    target: TargetArg,
    folder: RestoreFolderOpt = None,
    uid: UidOpt = None,
    all_: AllMessagesOpt = False,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    json_: JsonOpt = False,
    config: ConfigOpt = None,
    ca_file: CaFileOpt = None,
    tls: TlsOpt = None,
    auth: AuthOpt = None,
    password_command: PasswordCommandOpt = None,
    timeout: TimeoutOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Put offloaded attachments back into their messages (verified, byte for byte)."""
    if bool(uid) == all_:
        raise UsageError("give exactly one of --uid UID (repeatable) and --all")
    cfg = load_cli_config(config)
    account = resolve_account(target, cfg)
    where = account.target
    if isinstance(where, LocalTarget):
        raise UsageError(f"{where.display()}: restore changes IMAP accounts only")
    options = ConnectionOptions(
        config=config,
        ca_file=ca_file,
        tls=tls,
        auth=auth,
        password_command=password_command,
        timeout=timeout,
        debug=debug,
    )
    if not dry_run and not yes:
        _confirm(where.display())
    # Imported here, not at the top: they cost every other command its start-up time.
    from quotatool.adapters.imap_write import ImapMailbox
    from quotatool.adapters.journal import SqliteJournal, journal_path
    from quotatool.adapters.lock import AccountLock, lock_file_name
    from quotatool.services.restore import restore

    key = f"{where.user}@{where.host.lower()}"
    directory = state_dir()
    with AccountLock(key, directory), AccountLock(where.display(), directory):
        journal = SqliteJournal(journal_path(directory, lock_file_name(key)))
        try:
            mailbox = ImapMailbox(imap_options(account, where, options))
            progress = make_progress(quiet=json_)
            try:
                if folder:
                    folders = list(folder)
                elif uid:
                    folders = ["INBOX"]
                else:
                    folders = [f.name for f in mailbox.list_folders() if f.selectable]
                result = restore(
                    mailbox,
                    journal,
                    _store_opener(cfg),
                    folders=folders,
                    uids=[Uid(u) for u in uid] if uid else None,
                    run_id=f"restore-{int(time.time())}",
                    dry_run=dry_run,
                    progress=progress,
                )
            finally:
                stop_progress(progress)
                mailbox.close()
        finally:
            journal.close()
    code = int(ExitCode.PARTIAL if result.partial else ExitCode.OK)
    if json_:
        sys.stdout.write(json.dumps(restore_document(result, code), indent=2) + "\n")
        sys.stdout.flush()
    else:
        _render(result)
    if code:
        raise typer.Exit(code)


def restore_document(result: RestoreResult, exit_code: int) -> dict[str, Any]:
    """Return the JSON document (schema ``quotatool.restore/1``) of a restore."""
    return {
        "schema": SCHEMA,
        "target": result.target,
        "dry_run": result.dry_run,
        "exit_code": exit_code,
        "counts": {
            s: result.count(s) for s in ("planned", "done", "already_done", "skipped", "failed")
        },
        "messages": [
            {
                "folder": o.folder,
                "uid": int(o.uid),
                "status": o.status,
                "reason": o.reason,
                "new_uid": None if o.new_uid is None else int(o.new_uid),
                "resumed": o.resumed,
                "parts": [
                    {"section": s.section, "size": s.size, "sha256": s.sha256, "url": s.url}
                    for s in (o.item.stubs if o.item else ())
                ],
            }
            for o in result.outcomes
        ],
        "notes": list(result.notes),
    }


def _render(result: RestoreResult) -> None:
    console = stdout_console()
    verb = "Would restore" if result.dry_run else "Restored"
    for o in result.outcomes:
        size = iec(o.item.restore_bytes) if o.item else "-"
        line = Text(f"{o.status:<12} {o.folder} UID {o.uid} ({size})")
        if o.new_uid is not None:
            line.append(f" -> UID {o.new_uid}")
        if o.reason:
            line.append(f": {o.reason}")
        console.print(line)
    for note in result.notes:
        console.print(Text(f"note: {note}"))
    wanted: RestoreStatus = "planned" if result.dry_run else "done"
    total = sum(o.item.restore_bytes for o in result.outcomes if o.item and o.status == wanted)
    console.print(Text(f"{verb} {result.count(wanted)} message(s), {iec(total)} of attachments."))
