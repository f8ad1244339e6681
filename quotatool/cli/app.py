"""The ``quotatool`` command: parse, wire, call one service, render."""

from __future__ import annotations

from typing import Annotated

import typer

from quotatool import __version__
from quotatool.cli.check import CheckCommand, check_command
from quotatool.cli.clean import clean_command
from quotatool.cli.demo import demo_command
from quotatool.cli.restore import restore_command
from quotatool.cli.rules_cmd import rules_app
from quotatool.cli.scan import scan_command

app = typer.Typer(
    name="quotatool",
    help="Find out where mailbox storage went, and safely get it back.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"quotatool {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Find out where mailbox storage went, and safely get it back."""


app.command("scan")(scan_command)
app.command("demo")(demo_command)
app.command("check", cls=CheckCommand)(check_command)
app.command("clean")(clean_command)
app.command("restore")(restore_command)
app.add_typer(rules_app, name="rules")


def main() -> None:
    """Run the command line."""
    app()
