"""The plan for people: what each rule does, per folder, in total, and the quota it leaves.

Values from the mailbox and the rules file (folder names, subjects, senders, rule names) go
into ``rich.text.Text`` cells through :func:`~quotatool.report.scan_table.data`, never through
markup: rich would eat ``[urgent]`` in a subject or ``[old] lists`` in a rule name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from rich import box
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from quotatool.core.rules import Explanation
from quotatool.model import (
    Archive,
    MessageInfo,
    Offload,
    Plan,
    PlannedAction,
    QuotaProjection,
    SkippedMessage,
)
from quotatool.report.scan_table import data
from quotatool.report.text import count, iec, percent, printable, utc_date, utc_minute

__all__ = ["render_plan_table", "render_verdict_table"]

_MAX_WIDTH = 150
_SHOWN_SKIP_REASONS = 5
_SHOWN_WARNINGS = 5
# Plan notes say this when archiving to an IMAP folder frees nothing; rule rows point at it.
_SAME_ROOT_MARK = "*"


def _table(title: str, *columns: Column, width: int | None = None) -> Table:
    # Summaries take their natural width; the per-message lists fill ``width``.
    return Table(
        *columns,
        title=Text(title, style="bold"),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 2, 0, 0),
        header_style="bold",
        width=width,
    )


def _text_col(header: str, ratio: int = 1, min_width: int = 6) -> Column:
    return Column(header, ratio=ratio, min_width=min_width, no_wrap=True, overflow="ellipsis")


def _num_col(header: str) -> Column:
    return Column(header, justify="right", no_wrap=True)


def _width(console: Console) -> int:
    return min(console.width, _MAX_WIDTH)


def _amount(q: QuotaProjection, n: int) -> str:
    # RFC 9208 §5.1: STORAGE is a size (octets here); MESSAGE and the rest are counts.
    return iec(n) if q.resource == "STORAGE" else count(n)


def _share(q: QuotaProjection, n: int) -> str:
    return "" if not q.limit else f" ({percent(n, q.limit)})"


def _quota(plan: Plan) -> Text:
    if plan.quota is None:
        return Text("The source reports no quota.")
    text = Text("Quota", style="bold")
    for q in plan.quota:
        text.append("\n  ")
        text.append(data(q.resource + (f" {q.root}" if q.root else "")))
        text.append(": now ")
        text.append(_amount(q, q.usage) + _share(q, q.usage))
        if q.projected_usage is None:
            text.append(", after the plan: not predicted")
        else:
            text.append(", after the plan ")
            text.append(_amount(q, q.projected_usage) + _share(q, q.projected_usage), style="bold")
        text.append(", limit " + ("none" if q.limit is None else _amount(q, q.limit)))
    return text


def _frees_nothing(plan: Plan, rule: str) -> bool:
    """Return whether ``rule`` archives to IMAP folders, which frees no quota."""
    return any(
        a.rule == rule and isinstance(a.action, Archive) and not a.action.local
        for a in plan.actions
    )


def _by_rule(plan: Plan) -> Table:
    table = _table(
        "By rule, in file order (the first matching rule wins)",
        _text_col("Rule", ratio=3, min_width=10),
        Column("Action", no_wrap=True),
        _num_col("Msgs"),
        _num_col("Frees"),
        _num_col("Left alone"),
    )
    for r in plan.summary.by_rule:
        frees = Text(iec(r.frees_bytes))
        if _frees_nothing(plan, r.rule):
            frees.append(_SAME_ROOT_MARK)
        table.add_row(
            data(r.rule), Text(r.action), Text(count(r.messages)), frees, Text(count(r.skipped))
        )
    s = plan.summary
    table.add_section()
    table.add_row(
        Text("Total"),
        Text(""),
        Text(count(s.messages)),
        Text(iec(s.frees_bytes)),
        Text(count(s.skipped)),
        style="bold",
    )
    return table


def _by_folder(plan: Plan) -> Table:
    table = _table(
        "By folder",
        _text_col("Folder", ratio=3, min_width=10),
        _num_col("Msgs"),
        _num_col("Frees"),
    )
    for f in plan.summary.by_folder:
        table.add_row(data(f.folder), Text(count(f.messages)), Text(iec(f.frees_bytes)))
    return table


def _detail(a: PlannedAction) -> str:
    act = a.action
    if isinstance(act, Archive):
        return f"to {act.destination}"
    if isinstance(act, Offload):
        names = ", ".join(p.filename or p.section for p in act.parts)
        return f"{len(act.parts)} part(s) to {act.store}: {names}"
    return ""


def _what(a: PlannedAction) -> Text:
    detail = _detail(a)
    return data(f"{a.action.kind} {detail}" if detail else a.action.kind)


def _actions(plan: Plan, width: int) -> Table:
    table = _table(
        "Every planned message",
        _text_col("Folder", ratio=2, min_width=8),
        _num_col("UID"),
        _text_col("Rule", ratio=2, min_width=10),
        _text_col("Action", ratio=2, min_width=10),
        _num_col("Frees"),
        _num_col("Date"),
        _text_col("From", ratio=2, min_width=10),
        _text_col("Subject", ratio=3, min_width=10),
        width=width,
    )
    for a in plan.actions:
        table.add_row(
            data(a.folder),
            Text(str(a.uid)),
            data(a.rule),
            _what(a),
            Text(iec(a.frees_bytes)),
            Text(utc_date(a.date)),
            data(a.from_addr),
            data(a.subject),
        )
    return table


def _skipped(plan: Plan, width: int) -> Table:
    table = _table(
        "Matched but left alone",
        _text_col("Folder", ratio=2),
        _num_col("UID"),
        _text_col("Rule", ratio=2),
        _num_col("Size"),
        _text_col("Why", ratio=4),
        width=width,
    )
    for k in plan.skipped:
        table.add_row(
            data(k.folder), Text(str(k.uid)), data(k.rule), Text(iec(k.size)), data(k.reason)
        )
    return table


def _skip_reasons(plan: Plan) -> Text:
    reasons = Counter(f"{k.rule}: {k.reason}" for k in plan.skipped)
    n = len(plan.skipped)
    text = Text(f"{count(n)} matched message{'s' if n != 1 else ''} left alone:")
    # Most frequent first; equal counts in text order, so the output never depends on hashing.
    ordered = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    for reason, k in ordered[:_SHOWN_SKIP_REASONS]:
        text.append(f"\n  {count(k)} × ")
        text.append(data(reason))
    if len(ordered) > _SHOWN_SKIP_REASONS:
        text.append(f"\n  … and {len(ordered) - _SHOWN_SKIP_REASONS} more reasons (--explain)")
    return text


def _notes(plan: Plan) -> Text:
    text = Text()
    for i, note in enumerate(plan.notes):
        if i:
            text.append("\n")
        text.append(f"{_SAME_ROOT_MARK} " if "frees nothing" in note else "Note: ")
        text.append(data(note))
    return text


def _warnings(warnings: Sequence[str]) -> Text:
    n = len(warnings)
    text = Text(f"{count(n)} scan warning{'s' if n != 1 else ''}:", style="yellow")
    for line in warnings[:_SHOWN_WARNINGS]:
        text.append("\n  ")
        text.append(data(line))
    if n > _SHOWN_WARNINGS:
        text.append(f"\n  … and {count(n - _SHOWN_WARNINGS)} more")
    return text


def render_plan_table(
    plan: Plan,
    console: Console,
    *,
    explain: bool = False,
    warnings: Sequence[str] = (),
) -> None:
    """Print ``plan`` for people on ``console``, then the scan's ``warnings``.

    With ``explain``, also list every planned message with its rule, and every message a rule
    matched but the plan leaves alone, with the reason.
    """
    width = _width(console)
    header = Text()
    header.append("Plan for ", style="bold")
    header.append(data(plan.target, "bold"))
    header.append(" with rules ")
    header.append(data(plan.rules_file))
    header.append(f"  evaluated {utc_minute(plan.created_at)}", style="dim")
    console.print(header, soft_wrap=True)
    console.print(Text("Dry run: nothing has been changed.", style="dim"))
    console.print()
    console.print(_quota(plan))
    console.print()
    console.print(_by_rule(plan))
    if plan.summary.by_folder:
        console.print()
        console.print(_by_folder(plan))
    if plan.notes:
        console.print()
        console.print(_notes(plan))
    if explain:
        if plan.actions:
            console.print()
            console.print(_actions(plan, width))
        if plan.skipped:
            console.print()
            console.print(_skipped(plan, width))
    elif plan.skipped:
        console.print()
        console.print(_skip_reasons(plan))
    if warnings:
        console.print()
        console.print(_warnings(warnings))


def render_verdict_table(
    *,
    message: MessageInfo,
    special_use: str | None,
    explanations: Sequence[Explanation],
    rule_lines: Mapping[str, int],
    rules_file: str,
    action: PlannedAction | None,
    skipped: SkippedMessage | None,
    console: Console,
) -> None:
    """Print which rule claims one message and why every other rule does not.

    ``rule_lines`` maps each rule to the line of its ``[[rule]]`` header, shown as
    ``FILE:LINE`` so an editor can jump to it.
    """
    head = Text()
    head.append(data(message.folder, "bold"))
    if special_use:
        head.append(" ")
        head.append(data(special_use, "dim"))
    head.append(f" UID {message.uid}", style="bold")
    head.append(f"  {iec(message.size)}, {utc_date(message.internaldate)}")
    console.print(head, soft_wrap=True)
    for label, value in (
        (
            "From",
            f"{message.from_name} <{message.from_addr}>"
            if message.from_name
            else message.from_addr,
        ),
        ("Subject", message.subject),
        ("Flags", " ".join(sorted(message.flags)) or "(none)"),
    ):
        line = Text(f"  {label}: ")
        line.append(data(value))
        console.print(line, soft_wrap=True)
    console.print()
    table = _table(
        "Rules, in file order",
        _num_col("Line"),
        _text_col("Rule", ratio=2, min_width=10),
        Column("", no_wrap=True),
        Column("Why", ratio=5, overflow="fold"),
        width=_width(console),
    )
    for e in explanations:
        line_no = rule_lines.get(e.rule, 0)
        table.add_row(
            Text(f"{rules_file}:{line_no}" if line_no else ""),
            data(e.rule),
            Text("matches" if e.matched else "no", style="bold" if e.matched else "dim"),
            data(e.reason),
        )
    console.print(table)
    console.print()
    console.print(_verdict_line(explanations, action, skipped), soft_wrap=True)


def _verdict_line(
    explanations: Sequence[Explanation],
    action: PlannedAction | None,
    skipped: SkippedMessage | None,
) -> Text:
    text = Text("Verdict: ", style="bold")
    if action is not None:
        text.append(f'rule "{printable(action.rule)}" would {action.action.kind} it')
        detail = _detail(action)
        if detail:
            text.append(" ")
            text.append(data(detail))
        text.append(f", freeing {iec(action.frees_bytes)}")
        if action.note:
            text.append(" (")
            text.append(data(action.note))
            text.append(")")
        text.append(".")
    elif skipped is not None:
        text.append(f'rule "{printable(skipped.rule)}" claims it but leaves it alone: ')
        text.append(data(skipped.reason))
        text.append(".")
    elif any(e.matched for e in explanations):
        text.append("a rule claims it, but the plan does not act on it.")
    else:
        text.append("no rule matches; the message stays.")
    return text
