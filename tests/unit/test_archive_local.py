"""Our own mboxrd and Maildir writers: exact bytes, synced, verified, idempotent, repairable."""

from __future__ import annotations

import gzip
import hashlib
import mailbox
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quotatool.adapters.archive_local import (
    LocalArchiveWriter,
    decode_mboxrd,
    encode_mboxrd,
    maildir_name,
)
from quotatool.ports_write import ArchiveBlock, ArchiveItem, DestinationError

TRICKY = (
    b"From: a@b\r\nSubject: x\r\n\r\nFrom the start\r\n>From once\r\n>>From twice\r\n"
    b"From\r\n>From\r\n"
)


def _item(raw: bytes, key: str = "k1", flags: frozenset[str] = frozenset()) -> ArchiveItem:
    return ArchiveItem(key, raw, hashlib.sha256(raw).hexdigest(), 1_600_000_000, flags)


@given(
    st.lists(st.sampled_from([b"From ", b">", b"From", b"x", b"\n", b"\r\n", b" "]), max_size=40)
)
@settings(max_examples=300)
def test_mboxrd_round_trip_is_exact(parts: list[bytes]) -> None:
    raw = b"".join(parts) + b"\n"
    assert decode_mboxrd(encode_mboxrd(_item(raw))) == raw


def test_mboxrd_quotes_and_stdlib_reads_it(tmp_path: Path) -> None:
    entry = encode_mboxrd(_item(TRICKY))
    assert entry.startswith(b"From MAILER-DAEMON Sun Sep 13 12:26:40 2020\n")
    assert b"\n>From the start" in entry
    assert b"\n>>>From twice" in entry
    # The standard library (mboxo reader) still splits it into one message.
    (tmp_path / "a.mbox").write_bytes(entry + encode_mboxrd(_item(b"x\n", "k2")))
    box = mailbox.mbox(str(tmp_path / "a.mbox"))
    try:
        assert len(box) == 2
    finally:
        box.close()


@pytest.mark.parametrize("name", ["a.mbox", "a.mbox.gz"])
def test_mbox_write_appends_verifies_and_is_private(tmp_path: Path, name: str) -> None:
    writer = LocalArchiveWriter()
    dest = f"mbox:{tmp_path}/deep/er/{name}"
    items = [_item(TRICKY, "k1"), _item(b"Subject: y\r\n\r\nno final line end", "k2")]
    block = writer.prepare(dest, items)
    assert block is not None
    assert block.offset == 0
    writer.write(dest, items, block)
    second = [_item(b"Subject: z\r\n\r\nz\r\n", "k3")]
    block2 = writer.prepare(dest, second)
    assert block2 is not None
    assert block2.offset == block.length
    writer.write(dest, second, block2)
    path = tmp_path / "deep" / "er" / name
    data = path.read_bytes()
    if name.endswith(".gz"):
        data = gzip.decompress(data)  # two members read as one stream
    assert data == b"".join(encode_mboxrd(i) for i in items + second)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "deep").stat().st_mode) == 0o700
    assert writer.repair(dest, block2) is True


def test_mbox_repair_cuts_a_torn_batch_only(tmp_path: Path) -> None:
    writer = LocalArchiveWriter()
    dest = f"mbox:{tmp_path}/a.mbox"
    first = [_item(b"one\n", "k1")]
    writer.write(dest, first, writer.prepare(dest, first))
    torn_items = [_item(b"two\n" * 100, "k2")]
    block = writer.prepare(dest, torn_items)
    assert block is not None
    path = tmp_path / "a.mbox"
    with path.open("ab") as f:  # a crash mid-write: half the batch reached the file
        f.write(encode_mboxrd(torn_items[0])[:50])
    assert writer.repair(dest, block) is False
    assert path.read_bytes() == encode_mboxrd(first[0])
    # Something after the block that is not ours: refuse to cut.
    with path.open("ab") as f:
        f.write(b"x" * (block.length + 10))
    with pytest.raises(DestinationError, match="refusing to cut"):
        writer.repair(dest, block)


def test_mbox_write_refuses_a_file_that_moved(tmp_path: Path) -> None:
    writer = LocalArchiveWriter()
    dest = f"mbox:{tmp_path}/a.mbox"
    items = [_item(b"one\n")]
    block = writer.prepare(dest, items)
    (tmp_path / "a.mbox").write_bytes(b"someone else\n")
    with pytest.raises(DestinationError, match="changed size"):
        writer.write(dest, items, block)


def test_mbox_symlink_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"")
    (tmp_path / "a.mbox").symlink_to(victim)
    writer = LocalArchiveWriter()
    items = [_item(b"one\n")]
    with pytest.raises(DestinationError):
        writer.write(f"mbox:{tmp_path}/a.mbox", items, ArchiveBlock(0, 0, ""))
    assert victim.read_bytes() == b""


def test_maildir_write_is_exact_idempotent_and_keeps_flags(tmp_path: Path) -> None:
    writer = LocalArchiveWriter()
    dest = f"maildir:{tmp_path}/md"
    seen = _item(TRICKY, "k1", frozenset({"\\Seen", "\\Flagged", "\\Deleted"}))
    plain = _item(b"x\r\n", "k2")
    assert writer.prepare(dest, [seen, plain]) is None
    writer.write(dest, [seen, plain], None)
    writer.write(dest, [seen, plain], None)  # a rerun finds them and writes nothing twice
    cur = list((tmp_path / "md" / "cur").iterdir())
    new = list((tmp_path / "md" / "new").iterdir())
    assert [p.name for p in cur] == ["".join(maildir_name(seen))]
    assert cur[0].name.endswith(":2,FS")  # no T: the archived copy is not deleted
    assert cur[0].read_bytes() == TRICKY
    assert [p.read_bytes() for p in new] == [b"x\r\n"]
    assert list((tmp_path / "md" / "tmp").iterdir()) == []
    assert stat.S_IMODE(cur[0].stat().st_mode) == 0o600
    # A mail reader moved the new one to cur/ and added flags: still found, not rewritten.
    new[0].rename(tmp_path / "md" / "cur" / (new[0].name + ":2,S"))
    writer.write(dest, [plain], None)
    assert list((tmp_path / "md" / "new").iterdir()) == []


def test_unwritable_destination_is_a_destination_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(DestinationError, match="cannot create archive directory"):
        LocalArchiveWriter().prepare(f"mbox:{tmp_path}/file/sub/a.mbox", [_item(b"x\n")])
    with pytest.raises(DestinationError, match="not a local archive"):
        LocalArchiveWriter().prepare("Archive/2020", [_item(b"x\n")])
