"""``quotatool rules check`` and ``quotatool rules explain``: the rules file on its own."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from quotatool.cli.clean import NowOpt, RulesOpt, parse_now
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
    load_cli_config,
    load_cli_rules,
    open_source,
    resolve_account,
)
from quotatool.errors import UsageError
from quotatool.model import Uid
from quotatool.report.plan_json import render_verdict_json
from quotatool.report.plan_table import render_verdict_table
from quotatool.report.scan_table import data
from quotatool.services.plan import explain_message

__all__ = ["check_command", "explain_command", "parse_uid", "rules_app"]

rules_app = typer.Typer(
    name="rules",
    help="Check a rules file, or see which rule matches a message and why.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)

RulesFileArg = Annotated[
    Path, typer.Argument(help="The rules file to validate.", show_default=False)
]
UidOpt = Annotated[
    str,
    typer.Option(
        "--uid",
        help="The message, as FOLDER:UID (e.g. INBOX:1234; the last colon separates).",
        show_default=False,
    ),
]


def parse_uid(text: str) -> tuple[str, Uid]:
    """Split ``FOLDER:UID`` at the last colon (folder names may contain colons)."""
    folder, sep, number = text.rpartition(":")
    if not sep or not folder or not number.isdigit() or int(number) < 1:
        raise UsageError(
            f"--uid: expected FOLDER:UID like INBOX:1234, got {text!r}",
            hint="quotatool scan --json lists folders and UIDs",
        )
    return folder, Uid(int(number))


@reports_errors
def check_command(file: RulesFileArg, debug: DebugOpt = False) -> None:
    """Validate a rules file without connecting anywhere."""
    ruleset = load_cli_rules(file)
    console = stdout_console()
    n = len(ruleset.rules)
    head = Text()
    head.append(data(str(file)))
    head.append(f": ok, {n} rule{'s' if n != 1 else ''}")
    console.print(head, soft_wrap=True)
    for rule in ruleset.rules:
        line = Text(f"  {file}:{rule.line}: ")
        line.append(data(rule.name))
        line.append(f": {rule.action.value}")
        if rule.archive_to:
            line.append(" to ")
            line.append(data(rule.archive_to))
        if rule.offload_to:
            line.append(" to ")
            line.append(data(rule.offload_to))
        console.print(line, soft_wrap=True)


@reports_errors
def explain_command(
    target: TargetArg,
    rules: RulesOpt,
    uid: UidOpt,
    now: NowOpt = None,
    json_: JsonOpt = False,
    config: ConfigOpt = None,
    ca_file: CaFileOpt = None,
    tls: TlsOpt = None,
    auth: AuthOpt = None,
    password_command: PasswordCommandOpt = None,
    timeout: TimeoutOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Show which rule matches one message, and why each other rule does not."""
    folder, number = parse_uid(uid)
    ruleset = load_cli_rules(rules)
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
        verdict = explain_message(
            source,
            ruleset,
            folder=folder,
            uid=number,
            now=today,
            rules_file=str(rules),
            account=account,
            progress=progress,
        )
    finally:
        stop_progress(progress)
        source.close()
    rule_lines = {r.name: r.line for r in ruleset.rules}
    if json_:
        sys.stdout.write(
            render_verdict_json(
                message=verdict.message,
                uidvalidity=verdict.folder.uidvalidity,
                special_use=verdict.folder.special_use,
                explanations=verdict.explanations,
                rule_lines=rule_lines,
                rules_file=str(rules),
                action=verdict.action,
                skipped=verdict.skipped,
            )
        )
        sys.stdout.flush()
        return
    render_verdict_table(
        message=verdict.message,
        special_use=verdict.folder.special_use,
        explanations=verdict.explanations,
        rule_lines=rule_lines,
        rules_file=str(rules),
        action=verdict.action,
        skipped=verdict.skipped,
        console=stdout_console(),
    )


rules_app.command("check")(check_command)
rules_app.command("explain")(explain_command)
