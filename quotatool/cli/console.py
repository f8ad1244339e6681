"""Consoles and the progress bar: colour and bars only on a terminal, NO_COLOR honoured."""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from quotatool.ports import NullProgress
from quotatool.ports import Progress as ProgressPort


def stdout_console() -> Console:
    """Return the console for data; wide enough for tables when piped to a file."""
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "120"))
    return Console(
        file=sys.stdout,
        width=width,
        no_color=bool(os.environ.get("NO_COLOR")),
        highlight=False,
        soft_wrap=False,
    )


def stderr_console() -> Console:
    return Console(
        file=sys.stderr, stderr=True, no_color=bool(os.environ.get("NO_COLOR")), highlight=False
    )


class RichProgress:
    """ports.Progress on a rich progress bar (stderr), one task per phase."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task: TaskID | None = None
        self._progress.start()

    def start(self, total: int, description: str) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
        # Folder names are user data: never rich markup.
        label = Text(description).plain
        self._task = self._progress.add_task(label, total=total)

    def advance(self, amount: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)

    def finish(self) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None

    def stop(self) -> None:
        self._progress.stop()


def make_progress(quiet: bool = False) -> ProgressPort:
    """Return a progress bar on a terminal, a silent observer otherwise (cron, pipes)."""
    console = stderr_console()
    if quiet or not console.is_terminal:
        return NullProgress()
    return RichProgress(console)


def stop_progress(progress: ProgressPort) -> None:
    if isinstance(progress, RichProgress):
        progress.stop()
