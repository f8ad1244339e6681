"""The scan use case: read a mailbox's metadata into an Inventory."""

from __future__ import annotations

import fnmatch
import gc
from collections.abc import Iterable, Sequence

from quotatool.errors import FolderNotFoundError
from quotatool.model import FolderRef, FolderScan, Inventory, MessageInfo
from quotatool.ports import MailSource, NullProgress, Progress

# Warnings beyond this many are summarised: a mailbox full of odd messages must not flood
# the report (or memory) with 100,000 lines.
MAX_WARNINGS = 1000


def _canonical_inbox(text: str) -> str:
    # RFC 3501 §5.1: INBOX is case-insensitive; every other name is case-sensitive.
    if text[:5].upper() == "INBOX" and (len(text) == 5 or not text[5].isalnum()):
        return "INBOX" + text[5:]
    return text


def folder_matches(name: str, patterns: Sequence[str]) -> bool:
    """Return True when a folder name matches one of the shell-style globs."""
    canonical = _canonical_inbox(name)
    return any(fnmatch.fnmatchcase(canonical, _canonical_inbox(p)) for p in patterns)


def select_folders(
    folders: Sequence[FolderRef], include: Sequence[str], exclude: Sequence[str]
) -> list[FolderRef]:
    """Keep selectable folders that match ``include`` (all when empty) and no ``exclude``."""
    chosen = []
    for folder in folders:
        if not folder.selectable:
            continue
        if include and not folder_matches(folder.name, include):
            continue
        if exclude and folder_matches(folder.name, exclude):
            continue
        chosen.append(folder)
    return chosen


class _Warnings:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.dropped = 0

    def __call__(self, line: str) -> None:
        if len(self.lines) < MAX_WARNINGS:
            self.lines.append(line)
        else:
            self.dropped += 1

    def result(self) -> tuple[str, ...]:
        if self.dropped:
            return (*self.lines, f"... and {self.dropped} more warnings")
        return tuple(self.lines)


def _settled(messages: Iterable[MessageInfo]) -> tuple[MessageInfo, ...]:
    """Collect a folder's messages with the cyclic garbage collector paused.

    Scanning allocates many small containers (each BODYSTRUCTURE is nested tuples) that
    reference counting frees, and no reference cycles; the collector would only walk them
    over and over: pausing it took about 3% off a 100,000-message scan (bench/scan.py). The
    messages then live as long as the command, so they are frozen out of its generations:
    left in, every full collection walks all of them again, a third of the plan's time and
    half of its JSON (bench/plan.py). Reference counting still frees them.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        out = tuple(messages)
    finally:
        if was_enabled:
            gc.enable()
    gc.freeze()
    return out


def scan(
    source: MailSource,
    *,
    now: int,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    progress: Progress | None = None,
) -> Inventory:
    """Scan every chosen folder of ``source`` read-only and return what was found.

    A folder that vanishes between the listing and its scan is reported as a warning; the
    scan goes on with the next folder.
    """
    progress = progress or NullProgress()
    warnings = _Warnings()
    quota = source.quota()
    folders = select_folders(source.list_folders(), include, exclude)
    scans: list[FolderScan] = []
    for folder in folders:
        try:
            status, messages = source.scan_folder(folder, warnings, progress)
            progress.start(status.messages, folder.name)
            scans.append(FolderScan(status=status, messages=_settled(messages)))
        except FolderNotFoundError as exc:
            warnings(f"{folder.name}: skipped: {exc.message}")
        finally:
            progress.finish()
    return Inventory(
        target=source.describe(),
        scanned_at=now,
        folders=tuple(scans),
        quota=quota,
        capabilities=source.capabilities(),
        warnings=warnings.result(),
    )
