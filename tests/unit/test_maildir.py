"""MaildirSource: folders, UIDs, flags, sizes and attachments of a Maildir++ tree, read-only."""

from __future__ import annotations

import datetime
import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from imapclient import IMAPClient, imap_utf7

from quotatool.adapters.maildir import MaildirSource, bare_lf_count
from quotatool.core.bodystructure import summarize
from quotatool.errors import FolderNotFoundError, SourceNotFoundError
from quotatool.model import FolderRef, MessageInfo
from quotatool.ports import NullProgress
from tests.fakes import RecordingProgress
from tests.unit.test_mime_local import _plain, dovecot, sample_messages

__all__ = ["dovecot"]  # the private Dovecot fixture, shared with test_mime_local

PLAIN = b"From: Anna <anna@example.org>\nSubject: hi\nDate: Mon, 02 Mar 2020 10:00:00 +0000\n\nx\n"


def _maildir(path: Path) -> Path:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def _put(folder: Path, sub: str, name: str, data: bytes, mtime: int = 1_600_000_000) -> Path:
    target = folder / sub / name
    target.write_bytes(data)
    os.utime(target, (mtime, mtime))
    return target


def _scan(source: MaildirSource, name: str) -> tuple[list[MessageInfo], list[str]]:
    warnings: list[str] = []
    folder = next(f for f in source.list_folders() if f.name == name)
    _, messages = source.scan_folder(folder, warnings.append, NullProgress())
    return list(messages), warnings


def _snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            st = p.stat()
            out[str(p)] = (st.st_size, st.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        out[dirpath] = (0, Path(dirpath).stat().st_mtime_ns, "")
    return out


# -- layout --------------------------------------------------------------------------------------


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="does not exist"):
        MaildirSource(tmp_path / "nope")


def test_directory_without_maildir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "something").mkdir()
    with pytest.raises(SourceNotFoundError, match="is not a Maildir"):
        MaildirSource(tmp_path)


def test_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "mbox").write_bytes(b"From x\n")
    with pytest.raises(SourceNotFoundError, match="not a directory"):
        MaildirSource(tmp_path / "mbox")


def test_maildirpp_folders_are_decoded_with_parents(tmp_path: Path) -> None:
    root = _maildir(tmp_path)
    _maildir(tmp_path / ".Sent")
    _maildir(tmp_path / ".Archive.2019")
    _maildir(tmp_path / ("." + imap_utf7.encode("Reisen/Überblick").decode().replace("/", ".")))
    (tmp_path / ".Reisen").mkdir()  # a stray directory without cur/ is no folder
    (tmp_path / "dovecot.index").write_bytes(b"")
    folders = MaildirSource(root).list_folders()
    assert folders == [
        FolderRef("INBOX", "/"),
        FolderRef("Archive", "/", selectable=False),
        FolderRef("Archive/2019", "/"),
        FolderRef("Reisen", "/", selectable=False),
        FolderRef("Reisen/Überblick", "/"),
        FolderRef("Sent", "/", special_use="\\Sent"),
    ]
    dotted = MaildirSource(root, delimiter=".").list_folders()
    assert "Archive.2019" in [f.name for f in dotted]


def test_plain_maildir_is_inbox(tmp_path: Path) -> None:
    root = _maildir(tmp_path / "md")
    _put(root, "new", "1.a.host", PLAIN)
    source = MaildirSource(root)
    assert [f.name for f in source.list_folders()] == ["INBOX"]
    messages, _ = _scan(source, "INBOX")
    assert len(messages) == 1
    assert messages[0].subject == "hi"
    assert source.describe() == f"maildir:{root}"
    assert source.quota() is None
    assert source.capabilities() == frozenset()


def test_unknown_folder_raises_folder_not_found(tmp_path: Path) -> None:
    source = MaildirSource(_maildir(tmp_path))
    with pytest.raises(FolderNotFoundError):
        source.scan_folder(FolderRef("Nope", "/"), print, NullProgress())


# -- messages ------------------------------------------------------------------------------------


def test_flags_keywords_sizes_and_dates(tmp_path: Path) -> None:
    root = _maildir(tmp_path)
    (root / "dovecot-keywords").write_text("0 $Label1\n1 Rechnung\n")
    _put(root, "cur", "100.M1P1.h,S=78,W=83:2,FRSab", PLAIN, mtime=1_500_000_000)
    _put(root, "cur", "101.M1P1.h:2,T", PLAIN.replace(b"\n", b"\r\n"))
    _put(root, "new", "102.M1P1.h:2,S", PLAIN)  # new/ is unseen whatever the name says
    _put(root, "new", "103.M1P1.h", PLAIN)
    messages, warnings = _scan(MaildirSource(root), "INBOX")
    assert warnings == []
    assert [m.uid for m in messages] == [1, 2, 3, 4]
    assert messages[0].flags == {"\\Flagged", "\\Answered", "\\Seen", "$Label1", "Rechnung"}
    assert messages[0].size == 83  # the W= field, not the file size
    assert messages[0].internaldate == 1_500_000_000
    assert messages[0].date == 1583143200
    assert messages[0].from_addr == "anna@example.org"
    assert messages[1].flags == {"\\Deleted"}
    assert messages[1].size == len(PLAIN.replace(b"\n", b"\r\n"))
    assert messages[2].flags == frozenset()
    assert messages[3].flags == frozenset()
    assert messages[3].size == len(PLAIN) + PLAIN.count(b"\n")


def test_dovecot_uidlist_gives_uids(tmp_path: Path) -> None:
    root = _maildir(tmp_path)
    (root / "dovecot-uidlist").write_text(
        "3 V1234567 N20 G0123456789abcdef\n7 :200.M1P1.h,S=78,W=83\n9 W83 :100.M1P1.h,S=78,W=83\n"
    )
    _put(root, "cur", "100.M1P1.h,S=78,W=83:2,S", PLAIN)
    _put(root, "cur", "200.M1P1.h,S=78,W=83:2,", PLAIN)
    _put(root, "new", "050.M1P1.h,S=78,W=83", PLAIN)  # not yet in the list
    source = MaildirSource(root)
    status, it = source.scan_folder(FolderRef("INBOX", "/"), print, NullProgress())
    messages = list(it)
    assert status.uidvalidity == 1234567
    assert [m.uid for m in messages] == [7, 9, 20]
    assert messages[1].flags == {"\\Seen"}
    assert status.uidnext == 21
    assert source.read_raw("INBOX", 9) == PLAIN


def test_synthetic_uidvalidity_changes_when_a_file_goes(tmp_path: Path) -> None:
    root = _maildir(tmp_path)
    for k in range(3):
        _put(root, "cur", f"{k}.M1P1.h:2,S", PLAIN)
    source = MaildirSource(root)
    first, _ = source.scan_folder(FolderRef("INBOX", "/"), print, NullProgress())
    again, _ = source.scan_folder(FolderRef("INBOX", "/"), print, NullProgress())
    assert first.uidvalidity == again.uidvalidity
    (root / "cur" / "1.M1P1.h:2,S").unlink()
    after, _ = source.scan_folder(FolderRef("INBOX", "/"), print, NullProgress())
    assert after.uidvalidity != first.uidvalidity


def test_vanished_file_is_skipped_with_a_warning(tmp_path: Path) -> None:
    root = _maildir(tmp_path)
    _put(root, "cur", "1.M1P1.h:2,S", PLAIN)
    doomed = _put(root, "cur", "2.M1P1.h:2,S", PLAIN)
    renamed = _put(root, "new", "3.M1P1.h", PLAIN)
    progress = RecordingProgress()
    warnings: list[str] = []
    status, it = MaildirSource(root).scan_folder(FolderRef("INBOX", "/"), warnings.append, progress)
    doomed.unlink()
    renamed.rename(root / "cur" / "3.M1P1.h:2,S")  # a client read it meanwhile
    messages = list(it)
    assert status.messages == 3
    assert [m.uid for m in messages] == [1, 3]
    assert len(warnings) == 1
    assert "2.M1P1.h:2,S" in warnings[0]
    assert progress.events.count(("advance", 1)) == 3


def test_attachments_come_from_the_mime_tree(tmp_path: Path) -> None:
    root = _maildir(tmp_path)
    raw = sample_messages()[2]
    _put(root, "cur", "1.M1P1.h:2,S", raw)
    _put(root, "cur", "2.M1P1.h:2,S", b"Content-Type: multipart/mixed; boundary=\n\n--\n")
    messages, warnings = _scan(MaildirSource(root), "INBOX")
    assert [a.filename for a in messages[0].attachments] == [
        "invoice 2020.pdf",
        "Grüße.txt",
        "Fotos Köln.jpg",
    ]
    assert messages[0].content_type == "multipart/mixed"
    assert messages[0].size == len(raw) + bare_lf_count(raw)
    assert not messages[1].unparsed or warnings


def test_scan_writes_nothing(tmp_path: Path) -> None:
    root = _maildir(tmp_path)
    _maildir(root / ".Sent")
    _put(root, "new", "1.M1P1.h", sample_messages()[3])
    _put(root / ".Sent", "cur", "2.M1P1.h:2,S", PLAIN)
    before = _snapshot(root)
    source = MaildirSource(root)
    for folder in source.list_folders():
        _, it = source.scan_folder(folder, print, NullProgress())
        list(it)
    source.read_raw("INBOX", 1)
    source.close()
    assert _snapshot(root) == before


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=200))
def test_any_file_content_is_read_or_marked_unparsed(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = _maildir(Path(tmp))
        _put(root, "cur", "1.M1P1.h:2,S", b"Content-Type: multipart/mixed; boundary=q\n\n" + data)
        messages, _ = _scan(MaildirSource(root), "INBOX")
        assert len(messages) == 1
        assert messages[0].size >= len(data)


# -- against Dovecot -----------------------------------------------------------------------------


def _fetch_all(port: int, folder: str) -> tuple[int, dict[int, dict[bytes, object]]]:
    with IMAPClient("127.0.0.1", port=port, ssl=False) as client:
        client.login("alice", "secret")
        info = client.select_folder(folder, readonly=True)
        uids = client.search("ALL")
        data = client.fetch(uids, ["RFC822.SIZE", "FLAGS", "INTERNALDATE", "BODYSTRUCTURE"])
        return int(info[b"UIDVALIDITY"]), data


@pytest.fixture(scope="module")
def seeded(dovecot: tuple[int, Path]) -> tuple[int, Path]:
    port, conf = dovecot
    folders = ["INBOX", "Sent", "Reisen/Überblick", "Archive/2019"]
    messages = sample_messages()
    when = datetime.datetime(2019, 5, 17, 12, 30, tzinfo=datetime.UTC)
    flag_sets: list[tuple[str, ...]] = [
        ("\\Seen",),
        ("\\Flagged", "$Label1"),
        (),
        ("\\Seen", "\\Answered", "Rechnung"),
        ("\\Draft",),
        ("\\Deleted", "\\Seen"),
    ]
    with IMAPClient("127.0.0.1", port=port, ssl=False) as client:
        client.login("alice", "secret")
        for folder in folders:
            if folder != "INBOX":
                client.create_folder(folder)
            for k, raw in enumerate(messages):
                client.append(folder, raw, flags=flag_sets[k % len(flag_sets)], msg_time=when)
            # An expunge leaves a gap in the UIDs; a flag change renames a file.
            client.select_folder(folder)
            client.add_flags([1], ["\\Deleted"])
            client.uid_expunge([1])
            client.add_flags([3], ["\\Seen"])
    return port, conf.parent / "home" / "Maildir"


@pytest.mark.integration
def test_scan_equals_dovecots_fetch(seeded: tuple[int, Path]) -> None:
    port, maildir = seeded
    source = MaildirSource(maildir)
    names = {f.name for f in source.list_folders() if f.selectable}
    assert {"INBOX", "Sent", "Reisen/Überblick", "Archive/2019"} <= names
    for name in ("INBOX", "Sent", "Reisen/Überblick", "Archive/2019"):
        uidvalidity, fetched = _fetch_all(port, name)
        status, it = source.scan_folder(FolderRef(name, "/"), print, NullProgress())
        messages: dict[int, MessageInfo] = {m.uid: m for m in it}
        assert status.uidvalidity == uidvalidity, name
        assert set(messages) == set(fetched), name
        for uid, data in fetched.items():
            mine = messages[uid]
            assert mine.size == data[b"RFC822.SIZE"], (name, uid)
            flags = {f.decode() for f in data[b"FLAGS"]} - {"\\Recent"}  # type: ignore[attr-defined]
            assert mine.flags == flags, (name, uid)
            internal = data[b"INTERNALDATE"]
            assert isinstance(internal, datetime.datetime)
            assert mine.internaldate == int(internal.timestamp()), (name, uid)
            ctype, attachments = summarize(_plain(data[b"BODYSTRUCTURE"]))
            assert mine.content_type == ctype, (name, uid)
            assert mine.attachments == attachments, (name, uid)
