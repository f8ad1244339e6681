"""Protocols the services need; adapters implement them, tests fake them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from quotatool.model import FolderRef, FolderStatus, MessageInfo, QuotaResource

WarningSink = Callable[[str], None]
"""Receives one human-readable line per non-fatal problem (the scan goes on)."""


class Progress(Protocol):
    """Observer through which long-running services report progress to the UI."""

    def start(self, total: int, description: str) -> None:
        """Begin a phase of ``total`` units of work."""

    def advance(self, amount: int) -> None:
        """Record ``amount`` units done."""

    def finish(self) -> None:
        """End the current phase."""


class NullProgress:
    """A Progress that shows nothing (cron, JSON output, tests)."""

    def start(self, total: int, description: str) -> None:
        return None

    def advance(self, amount: int) -> None:
        return None

    def finish(self) -> None:
        return None


class MailSource(Protocol):
    """A mailbox that can be scanned read-only: IMAP, Maildir or mbox."""

    def describe(self) -> str:
        """Return the target as the user may see it (never with secrets)."""

    def capabilities(self) -> frozenset[str]:
        """Return upper-case capabilities (empty for local sources)."""

    def quota(self) -> tuple[QuotaResource, ...] | None:
        """Return the INBOX's quota resources, or ``None`` when none is reported."""

    def list_folders(self) -> list[FolderRef]:
        """Return every folder, selectable or not, in the source's order."""

    def scan_folder(
        self, folder: FolderRef, warn: WarningSink, progress: Progress
    ) -> tuple[FolderStatus, Iterator[MessageInfo]]:
        """Open ``folder`` read-only and yield the metadata of each of its messages.

        Raises FolderNotFoundError when the folder is gone. Messages that cannot be parsed are
        yielded with ``unparsed=True`` (and reported through ``warn``), never raised.
        Progress is advanced by the number of messages read.
        """

    def close(self) -> None:
        """Release the connection or files."""
