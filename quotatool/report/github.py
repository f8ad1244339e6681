"""GitHub Actions output: workflow-command annotations and a Markdown job summary.

Annotations (``::error title=...::message``) are read from a step's stdout; the job summary
is Markdown appended to the file ``$GITHUB_STEP_SUMMARY`` names. See
https://docs.github.com/actions/reference/workflow-commands-for-github-actions .
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from quotatool.report.text import printable

__all__ = ["Annotation", "render_annotations", "render_summary"]

Level = Literal["notice", "warning", "error"]


@dataclass(frozen=True, slots=True)
class Annotation:
    """One annotation on the workflow run."""

    level: Level
    """``notice``, ``warning`` or ``error``."""
    title: str
    """Short title (the account)."""
    message: str
    """One line of text."""


def _data(text: str) -> str:
    # Workflow commands end at a line break, and "%" starts an escape: escape all three so a
    # folder name cannot end the annotation or inject another workflow command.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    # Property values additionally end at ":" and ",".
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def render_annotations(annotations: Sequence[Annotation]) -> str:
    """Return one workflow command per annotation, each ending in a newline."""
    return "".join(
        f"::{a.level} title={_property(a.title)}::{_data(a.message)}\n" for a in annotations
    )


def _cell(text: str) -> str:
    # Markdown tables: a "|" would start a new cell; printable() keeps the row on one line.
    return printable(text).replace("\\", "\\\\").replace("|", "\\|")


def render_summary(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return a Markdown section: a heading and one table."""
    lines = [f"### {_cell(title)}", "", "| " + " | ".join(_cell(h) for h in header) + " |"]
    lines.append("|" + "|".join(" --- " for _ in header) + "|")
    lines.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
    return "\n".join(lines) + "\n\n"
