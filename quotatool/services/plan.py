"""The plan use case: scan a mailbox, evaluate the rules, and say what a clean run would do.

Also what ``quotatool rules explain`` needs: one message's verdict from every rule, and the
plan's final word on it. ``keep_newest`` depends on the other messages a rule claims (in the
folder, or with ``per = "sender"`` in every folder), so the verdict comes from a real plan over
a real scan, never from the single message alone.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from quotatool.core.glob import normalize_inbox
from quotatool.core.plan import build_plan, plan_to_json
from quotatool.core.rules import Explanation, RuleSet, compile_rules, explain
from quotatool.errors import FolderNotFoundError, QuotatoolError
from quotatool.model import (
    FolderStatus,
    Inventory,
    MessageInfo,
    Plan,
    PlannedAction,
    RuleSummary,
    SkippedMessage,
    Uid,
)
from quotatool.ports import MailSource, Progress
from quotatool.services.scan import scan

__all__ = [
    "MessageVerdict",
    "PlanResult",
    "explain_message",
    "plan_cleanup",
    "reclaimable",
    "write_plan_file",
]


@dataclass(frozen=True, slots=True)
class PlanResult:
    """A scan and the plan made from it."""

    inventory: Inventory
    """What the scan found (its warnings belong in the report)."""
    plan: Plan
    """What a clean run would do."""


def plan_cleanup(
    source: MailSource,
    ruleset: RuleSet,
    *,
    now: int,
    rules_file: str,
    account: str,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    progress: Progress | None = None,
) -> PlanResult:
    """Scan ``source`` read-only and plan ``ruleset`` over it at ``now``.

    ``rules_file`` is the rules file as the user named it (the plan records it), ``account``
    what ``{account}`` expands to in archive templates; ``include`` and ``exclude`` are folder
    globs as for :func:`~quotatool.services.scan.scan`.
    """
    inventory = scan(source, now=now, include=include, exclude=exclude, progress=progress)
    plan = build_plan(inventory, ruleset, now=now, rules_file=rules_file, account=account)
    return PlanResult(inventory=inventory, plan=plan)


def reclaimable(
    inventory: Inventory, ruleset: RuleSet, *, now: int, rules_file: str, account: str
) -> tuple[RuleSummary, ...]:
    """Return what each rule of ``ruleset`` would free in a scanned mailbox, in file order.

    The same plan ``clean --dry-run`` makes from the same scan, so the numbers agree; no server
    is asked anything more.
    """
    plan = build_plan(inventory, ruleset, now=now, rules_file=rules_file, account=account)
    return plan.summary.by_rule


@dataclass(frozen=True, slots=True)
class MessageVerdict:
    """What the rules say about one message, rule by rule, and what the plan does with it."""

    folder: FolderStatus
    """The message's folder as scanned."""
    message: MessageInfo
    """The message."""
    explanations: tuple[Explanation, ...]
    """One entry per rule, in file order."""
    action: PlannedAction | None
    """The planned action, ``None`` when the plan leaves the message alone."""
    skipped: SkippedMessage | None
    """Why a rule that claims the message does nothing (``keep_newest``, signed...)."""
    scanned_folders: int
    """How many folders were scanned to decide (more than one for ``per = "sender"``)."""

    @property
    def claimed_by(self) -> str | None:
        """Name of the rule that claims the message, ``None`` when no rule does."""
        return next((e.rule for e in self.explanations if e.matched), None)


def _literal_glob(name: str) -> str:
    # scan() takes shell-style globs; a folder named "[archive]" or "a*b" must match only itself.
    return glob.escape(name)


def _find(inventory: Inventory, folder: str, uid: Uid) -> tuple[FolderStatus, MessageInfo]:
    wanted = normalize_inbox(folder)
    for fs in inventory.folders:
        if normalize_inbox(fs.status.name) != wanted:
            continue
        for m in fs.messages:
            if m.uid == uid:
                return fs.status, m
        raise FolderNotFoundError(
            f"folder {fs.status.name!r} has no message with UID {uid}",
            hint=f"quotatool scan lists messages; UIDVALIDITY is {fs.status.uidvalidity}",
        )
    raise FolderNotFoundError(
        f"folder {folder!r} does not exist",
        hint="folder names are case-sensitive (except INBOX); quotatool scan lists them",
    )


def explain_message(
    source: MailSource,
    ruleset: RuleSet,
    *,
    folder: str,
    uid: Uid,
    now: int,
    rules_file: str,
    account: str,
    progress: Progress | None = None,
) -> MessageVerdict:
    """Explain which rule claims message ``uid`` of ``folder`` and why the others do not.

    Scans the message's folder; when the claiming rule keeps the newest messages per sender,
    every folder is scanned, because that rule counts the sender's messages everywhere.

    Raises:
        FolderNotFoundError: the folder, or the UID in it, does not exist.

    """
    inventory = scan(source, now=now, include=[_literal_glob(folder)], progress=progress)
    status, message = _find(inventory, folder, uid)
    compiled = compile_rules(ruleset, now)
    explanations = tuple(explain(message, compiled, now, special_use=status.special_use))
    claimed = next((e.rule for e in explanations if e.matched), None)
    rule = next((r for r in ruleset.rules if r.name == claimed), None)
    if rule is not None and rule.keep_newest is not None and rule.per == "sender":
        inventory = scan(source, now=now, progress=progress)
        status, message = _find(inventory, folder, uid)
    plan = build_plan(inventory, ruleset, now=now, rules_file=rules_file, account=account)
    key = (status.name, message.uid)
    action = next((a for a in plan.actions if (a.folder, a.uid) == key), None)
    skipped = next((s for s in plan.skipped if (s.folder, s.uid) == key), None)
    return MessageVerdict(
        folder=status,
        message=message,
        explanations=explanations,
        action=action,
        skipped=skipped,
        scanned_folders=len(inventory.folders),
    )


def write_plan_file(plan: Plan, path: Path) -> None:
    """Write ``plan`` as JSON to ``path``: private (0600), complete or not at all.

    The plan is written to a new file beside ``path`` (created exclusively, so no symlink is
    followed), synced, then renamed over ``path``: a crash leaves the old file or the new one,
    never half of one, and a symlink at ``path`` is replaced rather than written through
    (SAFETY.md promise 14).
    """
    path = Path(path).expanduser()
    directory = path.parent
    text = plan_to_json(plan).encode("utf-8")
    try:
        # mkstemp: O_CREAT | O_EXCL with mode 0600 and a name nobody can predict.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise QuotatoolError(f"cannot write plan file {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise QuotatoolError(f"cannot write plan file {path}: {exc.strerror or exc}") from exc
