"""The command tree as a whole: every command reports errors as one line, and is documented."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer.main
from typer.testing import CliRunner

from quotatool import __version__
from quotatool.cli.app import app
from quotatool.cli.errors import MARKER

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")


def commands() -> Iterator[tuple[str, Any]]:
    def walk(prefix: str, command: Any) -> Iterator[tuple[str, Any]]:
        subcommands = getattr(command, "commands", None)  # a group (typer may vendor click)
        if subcommands is not None:
            for name, sub in subcommands.items():
                yield from walk(f"{prefix} {name}".strip(), sub)
        else:
            yield prefix, command

    yield from walk("", typer.main.get_command(app))


def test_there_are_commands_to_check() -> None:
    names = {name for name, _ in commands()}
    assert {"scan", "demo"} <= names


def test_every_command_maps_errors_to_one_line() -> None:
    for name, command in commands():
        callback = command.callback
        # typer wraps the function; the marker sits on the decorated original.
        original = getattr(callback, "__wrapped__", callback)
        assert getattr(original, MARKER, False) or getattr(callback, MARKER, False), name


def test_the_readme_names_every_command_and_option() -> None:
    for name, command in commands():
        assert re.search(rf"quotatool {re.escape(name)}\b", README), f"command {name!r}"
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--"):
                    assert opt in README, f"{name}: option {opt} is not in README.md"


def test_version_and_help() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"quotatool {__version__}"
    result = runner.invoke(app, ["scan", "--help"])
    assert result.exit_code == 0
    assert "--password" not in result.output.replace("--password-command", "")


def test_a_usage_error_is_exit_2() -> None:
    result = CliRunner().invoke(app, ["scan", "imaps://nobody@host", "--top", "0"])
    assert result.exit_code == 2
