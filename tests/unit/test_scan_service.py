from __future__ import annotations

from quotatool.model import FolderRef, MessageInfo, Uid
from quotatool.services.scan import MAX_WARNINGS, folder_matches, scan, select_folders
from tests.fakes import FakeSource, RecordingProgress


def _msg(folder: str, uid: int, size: int = 100, *, unparsed: bool = False) -> MessageInfo:
    return MessageInfo(
        folder=folder, uid=Uid(uid), size=size, internaldate=1_600_000_000, unparsed=unparsed
    )


def test_globs_and_inbox_case() -> None:
    assert folder_matches("INBOX", ["inbox"])
    assert folder_matches("inbox/Sub", ["INBOX/*"])
    assert folder_matches("Archive/2023", ["Archive/*"])
    assert not folder_matches("archive/2023", ["Archive/*"])
    assert not folder_matches("Inboxes", ["INBOX"])


def test_select_skips_noselect_and_applies_include_exclude() -> None:
    refs = [
        FolderRef("INBOX"),
        FolderRef("Archive", selectable=False),
        FolderRef("Archive/2022"),
        FolderRef("Archive/2023"),
        FolderRef("Trash"),
    ]
    names = [f.name for f in select_folders(refs, ["Archive/*", "INBOX"], ["*/2022"])]
    assert names == ["INBOX", "Archive/2023"]
    assert [f.name for f in select_folders(refs, [], [])] == [
        "INBOX",
        "Archive/2022",
        "Archive/2023",
        "Trash",
    ]


def test_scan_collects_every_folder_and_reports_progress() -> None:
    source = FakeSource({"INBOX": [_msg("INBOX", 1), _msg("INBOX", 2)], "Sent": [_msg("Sent", 5)]})
    progress = RecordingProgress()
    inventory = scan(source, now=42, progress=progress)
    assert inventory.scanned_at == 42
    assert [f.status.name for f in inventory.folders] == ["INBOX", "Sent"]
    assert [m.uid for m in inventory.iter_messages()] == [1, 2, 5]
    assert ("start", (2, "INBOX")) in progress.events
    assert sum(a for e, a in progress.events if e == "advance") == 3  # type: ignore[misc]


def test_vanished_folder_is_a_warning_and_the_scan_goes_on() -> None:
    source = FakeSource({"INBOX": [_msg("INBOX", 1)], "Gone": [], "Sent": [_msg("Sent", 1)]})
    source.vanish.add("Gone")
    inventory = scan(source, now=0)
    assert [f.status.name for f in inventory.folders] == ["INBOX", "Sent"]
    assert inventory.warnings == ("Gone: skipped: folder 'Gone' does not exist",)


def test_warnings_are_bounded() -> None:
    many = [_msg("INBOX", i, unparsed=True) for i in range(1, MAX_WARNINGS + 11)]
    inventory = scan(FakeSource({"INBOX": many}), now=0)
    assert len(inventory.warnings) == MAX_WARNINGS + 1
    assert inventory.warnings[-1] == "... and 10 more warnings"
    assert len(inventory.folders[0].messages) == MAX_WARNINGS + 10
