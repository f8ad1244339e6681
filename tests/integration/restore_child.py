"""``python -m tests.integration.restore_child restore TARGET ...``: the restore command alone.

The command is registered in quotatool's own app by the CLI module; this small app lets the
tests run it as a user would (parsing, ``@reports_errors``, exit codes) in a child process.
"""

from __future__ import annotations

import typer

from quotatool.cli.restore import restore_command

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
app.command("restore")(restore_command)


@app.command("version")
def version() -> None:
    """Keep this a group, so the first argument names the command as in quotatool."""


if __name__ == "__main__":
    app()
