"""Turn every failure into one readable line and an exit code (never a traceback)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from quotatool.errors import ExitCode, QuotatoolError

P = ParamSpec("P")
R = TypeVar("R")

MARKER = "__quotatool_reports_errors__"


def print_error(message: str, hint: str | None = None) -> None:
    """Write ``quotatool: error: ...`` (and a hint) to stderr as plain text."""
    sys.stderr.write(f"quotatool: error: {_one_line(message)}\n")
    if hint:
        sys.stderr.write(f"hint: {_one_line(hint)}\n")
    sys.stderr.flush()


def print_warning(message: str) -> None:
    sys.stderr.write(f"quotatool: warning: {_one_line(message)}\n")
    sys.stderr.flush()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Map errors of a command to one line and an exit code.

    A decorator on each command rather than a wrapper around ``main()``: typer's CliRunner
    calls the commands directly, so a ``main()`` wrapper would be bypassed in tests.
    With ``--debug`` an unexpected exception keeps its traceback (never with locals: they may
    hold a password).
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except QuotatoolError as exc:
            print_error(exc.message, exc.hint)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            sys.stderr.write("quotatool: interrupted\n")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if kwargs.get("debug"):
                raise
            print_error(
                f"unexpected {type(exc).__name__}: {exc}",
                "this is a bug; rerun with --debug for the details and report it",
            )
            raise typer.Exit(int(ExitCode.ERROR)) from None

    setattr(wrapper, MARKER, True)
    return wrapper
