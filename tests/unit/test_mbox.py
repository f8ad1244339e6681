"""MboxSource: splitting, mboxrd unquoting, sizes, flags and dates of mbox files."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quotatool.adapters.mbox import MboxSource, message_offsets
from quotatool.errors import FolderNotFoundError, SourceNotFoundError
from quotatool.model import FolderRef, MessageInfo
from quotatool.ports import NullProgress
from tests.fakes import RecordingProgress
from tests.unit.test_mime_local import sample_messages

PLAIN = (
    b"From: Anna <anna@example.org>\nSubject: hi\nDate: Mon, 02 Mar 2020 10:00:00 +0000\n\n"
    b"line one\nFrom the start, this line was quoted.\n>From here too.\n"
)


def _mboxrd(messages: list[bytes], from_lines: list[bytes] | None = None) -> bytes:
    """Write messages as mboxrd: quote ``>*From `` lines, end each with an empty line."""
    out = []
    for k, msg in enumerate(messages):
        line = from_lines[k] if from_lines else b"From MAILER-DAEMON Thu Mar 22 10:11:12 2007"
        quoted = re.sub(rb"(?m)^(>*From )", rb">\1", msg)
        if not quoted.endswith(b"\n"):
            quoted += b"\n"
        out.append(line + b"\n" + quoted + b"\n")
    return b"".join(out)


def _crlf_size(msg: bytes) -> int:
    return len(msg) + msg.count(b"\n") - msg.count(b"\r\n")


def _scan(source: MboxSource, name: str) -> list[MessageInfo]:
    _, it = source.scan_folder(FolderRef(name, "/"), print, NullProgress())
    return list(it)


def test_missing_and_wrong_paths_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="does not exist"):
        MboxSource(tmp_path / "nope")
    (tmp_path / "notes.txt").write_bytes(b"hello\n")
    with pytest.raises(SourceNotFoundError, match="not an mbox file"):
        MboxSource(tmp_path / "notes.txt")
    with pytest.raises(SourceNotFoundError, match="holds no mbox files"):
        MboxSource(tmp_path)


def test_messages_sizes_unquoting_and_dates(tmp_path: Path) -> None:
    messages = [PLAIN, sample_messages()[2], PLAIN.replace(b"\n", b"\r\n")]
    path = tmp_path / "mbox"
    path.write_bytes(_mboxrd(messages))
    source = MboxSource(path)
    assert [f.name for f in source.list_folders()] == ["INBOX"]
    progress = RecordingProgress()
    status, it = source.scan_folder(FolderRef("INBOX", "/"), print, progress)
    found = list(it)
    assert status.messages == 3
    assert [m.uid for m in found] == [1, 2, 3]
    assert [m.size for m in found] == [_crlf_size(m) for m in messages]
    assert found[0].internaldate == 1174558272  # the From_ line, Thu Mar 22 10:11:12 2007 UTC
    assert found[0].date == 1583143200
    assert [a.filename for a in found[1].attachments] == [
        "invoice 2020.pdf",
        "Grüße.txt",
        "Fotos Köln.jpg",
    ]
    assert progress.events.count(("advance", 1)) == 3
    assert source.read_raw("INBOX", 1) == PLAIN
    assert source.read_raw("INBOX", 3) == PLAIN.replace(b"\n", b"\r\n")
    with pytest.raises(SourceNotFoundError):
        source.read_raw("INBOX", 4)


def test_flags_from_status_fields(tmp_path: Path) -> None:
    msgs = [
        b"Status: RO\nX-Status: AF\nX-Keywords: $Label1 Rechnung\nSubject: a\n\nx\n",
        b"Status: O\nX-Status: DT\nSubject: b\n\nx\n",
        b"Subject: c\n\nx\n",
    ]
    path = tmp_path / "Work"
    path.write_bytes(_mboxrd(msgs))
    found = _scan(MboxSource(path), "Work")
    assert found[0].flags == {"\\Seen", "\\Answered", "\\Flagged", "$Label1", "Rechnung"}
    assert found[1].flags == {"\\Deleted", "\\Draft"}
    assert found[2].flags == frozenset()


def test_date_falls_back_to_header_then_mtime(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(_mboxrd([PLAIN, b"Subject: no date\n\nx\n"], [b"From a", b"From b"]))
    os.utime(path, (1_600_000_000, 1_600_000_000))
    found = _scan(MboxSource(path), "x")
    assert found[0].internaldate == 1583143200
    assert found[1].internaldate == 1_600_000_000


def test_directory_of_mbox_files(tmp_path: Path) -> None:
    (tmp_path / "INBOX").write_bytes(_mboxrd([PLAIN]))
    (tmp_path / "Archive").mkdir()
    (tmp_path / "Archive" / "2019").write_bytes(_mboxrd([PLAIN, PLAIN]))
    (tmp_path / "Sent").write_bytes(b"")  # an empty mbox is an empty folder
    (tmp_path / ".imap").mkdir()
    (tmp_path / ".imap" / "INBOX").write_bytes(_mboxrd([PLAIN]))
    (tmp_path / "dovecot.index.log").write_bytes(b"\x01\x02")
    source = MboxSource(tmp_path)
    assert [(f.name, f.special_use) for f in source.list_folders()] == [
        ("INBOX", None),
        ("Archive/2019", None),
        ("Sent", "\\Sent"),
    ]
    assert len(_scan(source, "Archive/2019")) == 2
    assert _scan(source, "Sent") == []
    with pytest.raises(FolderNotFoundError):
        _scan(source, "Nope")


def test_uidvalidity_changes_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "box"
    path.write_bytes(_mboxrd([PLAIN, PLAIN]))
    source = MboxSource(path)
    first, _ = source.scan_folder(FolderRef("box", "/"), print, NullProgress())
    again, _ = source.scan_folder(FolderRef("box", "/"), print, NullProgress())
    assert first.uidvalidity == again.uidvalidity
    path.write_bytes(_mboxrd([PLAIN]))
    os.utime(path, ns=(1, 1))
    later, _ = source.scan_folder(FolderRef("box", "/"), print, NullProgress())
    assert later.uidvalidity != first.uidvalidity


def test_unparsable_message_is_marked(tmp_path: Path) -> None:
    deep = b"Content-Type: multipart/mixed; boundary=b0\n\n" + b"".join(
        f"--b{k}\nContent-Type: multipart/mixed; boundary=b{k + 1}\n\n".encode() for k in range(150)
    )
    path = tmp_path / "box"
    path.write_bytes(_mboxrd([deep, PLAIN]))
    warnings: list[str] = []
    _, it = MboxSource(path).scan_folder(FolderRef("box", "/"), warnings.append, NullProgress())
    found = list(it)
    assert [m.unparsed for m in found] == [True, False]
    assert len(warnings) == 1


def _naive_offsets(data: bytes) -> list[int]:
    offsets = []
    pos = 0
    previous_blank = True
    for line in io.BytesIO(data):
        if line.startswith(b"From ") and previous_blank:
            offsets.append(pos)
        previous_blank = line in (b"\n", b"\r\n")
        pos += len(line)
    return offsets


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(
        st.sampled_from([b"From x\n", b"\n", b"\r\n", b"From", b" ", b"a", b"\r"]), max_size=40
    ),
    chunk=st.integers(min_value=1, max_value=9),
)
def test_offsets_match_a_line_by_line_split(pieces: list[bytes], chunk: int) -> None:
    data = b"".join(pieces)
    assert message_offsets(io.BytesIO(data), chunk) == _naive_offsets(data)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=80).map(lambda b: b"Subject: x\n\n" + b), max_size=5))
def test_round_trip_of_arbitrary_bodies(
    tmp_path_factory: pytest.TempPathFactory, bodies: list[bytes]
) -> None:
    path = tmp_path_factory.mktemp("rt") / "box"
    path.write_bytes(_mboxrd(bodies))
    source = MboxSource(path)
    found = _scan(source, "box")
    expected = [b if b.endswith(b"\n") else b + b"\n" for b in bodies]
    assert len(found) == len(bodies)
    for k, msg in enumerate(expected, start=1):
        assert source.read_raw("box", k) == msg
        assert found[k - 1].size == _crlf_size(msg)
