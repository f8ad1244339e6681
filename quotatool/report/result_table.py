"""The result of a real run for people: counts, what was skipped or failed, and the quota.

The quota line reconciles what the server reports now against what the plan promised.

Folder names, subjects and reasons are data cells (``rich.text.Text``), never markup.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from quotatool.report.scan_table import data
from quotatool.report.text import iec
from quotatool.services.execute import ExecutionResult, StepOutcome

__all__ = ["render_result_table"]

_SHOWN = 20


def _table(title: str, *headers: str) -> Table:
    table = Table(
        title=Text(title, style="bold"),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        header_style="bold",
    )
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def _steps(console: Console, title: str, outcomes: tuple[StepOutcome, ...]) -> None:
    if not outcomes:
        return
    table = _table(f"{title} ({len(outcomes)})", "Folder", "UID", "Action", "Subject", "Reason")
    for o in outcomes[:_SHOWN]:
        a = o.action
        table.add_row(
            data(a.folder), str(a.uid), a.action.kind, data(a.subject), data(o.reason or "")
        )
    console.print(table)
    if len(outcomes) > _SHOWN:
        console.print(Text(f"... and {len(outcomes) - _SHOWN} more (see --json)"))


def render_result_table(result: ExecutionResult, console: Console) -> None:
    """Print the summary, the skipped and failed steps, and the quota reconciliation."""
    summary = _table(f"Clean of {result.target}", "Outcome", "Messages", "Planned to free")
    for label, outcomes in (
        ("done", result.done),
        ("already done earlier", result.already_done),
        ("skipped", result.skipped),
        ("failed", result.failed),
    ):
        summary.add_row(label, str(len(outcomes)), iec(sum(o.action.frees_bytes for o in outcomes)))
    console.print(summary)
    _steps(console, "Skipped", result.skipped)
    _steps(console, "Failed", result.failed)
    freed = result.freed_bytes
    if freed is None:
        console.print(Text("The server reports no quota: nothing to reconcile."))
    else:
        console.print(
            Text(
                f"Quota: the plan promised {iec(result.done_bytes)} for the steps done now; "
                f"the server's STORAGE usage went down by {iec(freed)}."
            )
        )
