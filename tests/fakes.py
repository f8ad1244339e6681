"""Fakes that implement quotatool.ports for unit tests of the services."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from quotatool.errors import FolderNotFoundError
from quotatool.model import (
    FolderRef,
    FolderStatus,
    MessageInfo,
    QuotaResource,
    UidValidity,
)
from quotatool.ports import Progress, WarningSink


@dataclass
class FakeSource:
    """An in-memory MailSource; ``vanish`` names folders that disappear after the listing."""

    folders: dict[str, list[MessageInfo]]
    refs: Sequence[FolderRef] = ()
    quota_resources: tuple[QuotaResource, ...] | None = None
    vanish: set[str] = field(default_factory=set)
    closed: bool = False
    opened: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return "fake:"

    def capabilities(self) -> frozenset[str]:
        return frozenset({"IMAP4REV1", "QUOTA"})

    def quota(self) -> tuple[QuotaResource, ...] | None:
        return self.quota_resources

    def list_folders(self) -> list[FolderRef]:
        return list(self.refs) or [FolderRef(name=n, delimiter="/") for n in self.folders]

    def scan_folder(
        self, folder: FolderRef, warn: WarningSink, progress: Progress
    ) -> tuple[FolderStatus, Iterator[MessageInfo]]:
        if folder.name in self.vanish:
            raise FolderNotFoundError(f"folder {folder.name!r} does not exist")
        self.opened.append(folder.name)
        messages = self.folders[folder.name]
        status = FolderStatus(name=folder.name, uidvalidity=UidValidity(7), messages=len(messages))

        def iterate() -> Iterator[MessageInfo]:
            for m in messages:
                if m.unparsed:
                    warn(f"{folder.name}: UID {m.uid}: unparsed")
                progress.advance(1)
                yield m

        return status, iterate()

    def close(self) -> None:
        self.closed = True


@dataclass
class RecordingProgress:
    events: list[tuple[str, object]] = field(default_factory=list)

    def start(self, total: int, description: str) -> None:
        self.events.append(("start", (total, description)))

    def advance(self, amount: int) -> None:
        self.events.append(("advance", amount))

    def finish(self) -> None:
        self.events.append(("finish", None))
