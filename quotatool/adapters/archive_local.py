"""Local archives: our own mboxrd (optionally gzip) and Maildir writers, synced and verified.

The standard library's ``mailbox`` module was rejected (SAFETY.md fact 7): ``mailbox.mbox``
writes mboxo, whose "From " quoting cannot be undone, and re-serializes messages through
``email``; ``mailbox.Maildir.add`` never fsyncs the directory. Here a message's bytes are
written exactly as fetched, never parsed (fact 6), and the original is deleted only after the
file and its directory are fsynced and the re-read bytes hash equal to the fetched ones
(promise 4).

* **mbox** is mboxrd (https://www.loc.gov/preservation/digital/formats/fdd/fdd000385.shtml):
  each line matching ``>*From `` gets one more ``>``, so reading removes exactly one. Lines keep
  the line ends the server sent (CRLF): converting them would make the copy differ from the
  original. A message that does not end in a line end gets one before the separating empty
  line, as every mbox writer must. A path ending in ``.gz`` gets each batch as one gzip member;
  concatenated members are one valid gzip stream (RFC 1952 §2.2), so appending never rewrites.
  Before a batch is written its offset, length and hash go to the journal; a crash mid-write
  is repaired by cutting the file back to that offset (:meth:`LocalArchiveWriter.repair`).
* **Maildir** (https://cr.yp.to/proto/maildir.html): ``tmp/`` → fsync → link into ``cur/``
  (with the message's flags as info letters) or ``new/`` (no flags) → fsync the directories.
  The file name is derived from the message's folder, UIDVALIDITY and UID, so a rerun finds a
  message it already wrote instead of writing it twice.

Files are created 0600 and directories 0700, without following a symlink at the final name
(promise 14).
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import re
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from quotatool.ports_write import ArchiveBlock, ArchiveItem, DestinationError

__all__ = [
    "LocalArchiveWriter",
    "archive_path",
    "decode_mboxrd",
    "encode_mboxrd",
    "maildir_name",
]

_QUOTE = re.compile(rb"^(>*From )", re.MULTILINE)
_UNQUOTE = re.compile(rb"^>(>*From )", re.MULTILINE)
# Maildir info letters (https://cr.yp.to/proto/maildir.html), in the required ASCII order.
# \Deleted (T) is left out on purpose: the archived copy is not a message to be deleted.
_INFO = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S"}
_FILE_MODE = 0o600
_DIR_MODE = 0o700
_READ = 1024 * 1024


def archive_path(destination: str) -> tuple[str, Path]:
    """Split ``mbox:PATH`` / ``maildir:PATH`` into the kind and the expanded path."""
    kind, sep, raw = destination.partition(":")
    if not sep or kind not in ("mbox", "maildir") or not raw:
        raise DestinationError(f"not a local archive destination: {destination!r}")
    return kind, Path(raw).expanduser()


def _from_line(item: ArchiveItem) -> bytes:
    # The classic envelope line: sender, then asctime() in UTC. The sender is not known from
    # IMAP (Return-Path may be missing), and mail readers use the line only as a separator.
    stamp = time.asctime(time.gmtime(item.internaldate))
    return f"From MAILER-DAEMON {stamp}\n".encode("ascii")


def encode_mboxrd(item: ArchiveItem) -> bytes:
    """Return one mboxrd entry: the From line, the quoted message, an empty line."""
    body = _QUOTE.sub(rb">\1", item.raw)
    if not body.endswith(b"\n"):
        body += b"\n"
    return _from_line(item) + body + b"\n"


def decode_mboxrd(entry: bytes) -> bytes:
    """Return the message of one mboxrd entry as :func:`encode_mboxrd` wrote it."""
    _, _, rest = entry.partition(b"\n")
    if rest.endswith(b"\n"):
        rest = rest[:-1]
    return _UNQUOTE.sub(rb"\1", rest)


def _matches(item: ArchiveItem, decoded: bytes) -> bool:
    if hashlib.sha256(decoded).hexdigest() == item.sha256:
        return True
    # The one change the format forces: a line end added to a message that had none.
    return not item.raw.endswith(b"\n") and decoded == item.raw + b"\n"


def maildir_name(item: ArchiveItem) -> tuple[str, str]:
    """Return the stable base name of a message's Maildir file and its info suffix."""
    base = f"{item.internaldate}.qt_{item.key}.quotatool"
    letters = "".join(sorted(letter for flag, letter in _INFO.items() if flag in item.flags))
    return base, (f":2,{letters}" if letters else "")


def _mkdirs(path: Path) -> None:
    # Path.mkdir(parents=True) gives missing parents the default mode, not ``mode``: create
    # each missing level ourselves so every directory we make is 0700 (promise 14).
    missing = [p for p in (path, *path.parents) if not p.exists()]
    try:
        for level in reversed(missing):
            level.mkdir(mode=_DIR_MODE, exist_ok=True)
    except OSError as exc:
        raise DestinationError(
            f"cannot create archive directory {path}: {exc.strerror or exc}"
        ) from exc
    if not path.is_dir():
        raise DestinationError(f"archive path {path} exists and is not a directory")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256_file(path: Path, start: int = 0, length: int | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        f.seek(start)
        remaining = length
        while remaining is None or remaining > 0:
            chunk = f.read(_READ if remaining is None else min(_READ, remaining))
            if not chunk:
                break
            digest.update(chunk)
            if remaining is not None:
                remaining -= len(chunk)
    return digest.hexdigest()


class LocalArchiveWriter:
    """ports_write.LocalArchive for ``mbox:PATH`` (``.gz``: gzip) and ``maildir:PATH``."""

    def prepare(self, destination: str, items: Sequence[ArchiveItem]) -> ArchiveBlock | None:
        kind, path = archive_path(destination)
        if kind == "maildir":
            for sub in ("", "tmp", "new", "cur"):
                _mkdirs(path / sub if sub else path)
            return None
        _mkdirs(path.parent)
        try:
            offset = path.lstat().st_size
        except FileNotFoundError:
            offset = 0
        except OSError as exc:
            raise DestinationError(f"cannot read archive {path}: {exc.strerror}") from exc
        data = self._block_bytes(path, items)
        return ArchiveBlock(
            offset=offset, length=len(data), sha256=hashlib.sha256(data).hexdigest()
        )

    def write(
        self, destination: str, items: Sequence[ArchiveItem], block: ArchiveBlock | None
    ) -> None:
        kind, path = archive_path(destination)
        try:
            if kind == "maildir":
                self._write_maildir(path, items)
            else:
                if block is None:
                    raise DestinationError(f"{destination}: an mbox batch needs its block")
                self._write_mbox(path, items, block)
        except OSError as exc:
            raise DestinationError(
                f"cannot write archive {path}: {exc.strerror or exc}; the originals stay"
            ) from exc

    def repair(self, destination: str, block: ArchiveBlock) -> bool:
        kind, path = archive_path(destination)
        if kind != "mbox":
            return False  # Maildir writes are idempotent by name: nothing to cut back.
        try:
            size = path.lstat().st_size
        except FileNotFoundError:
            return False
        end = block.offset + block.length
        if size >= end and _sha256_file(path, block.offset, block.length) == block.sha256:
            return True
        if size <= block.offset:
            return False
        if size > end:
            raise DestinationError(
                f"archive {path} changed after an interrupted write at offset {block.offset}; "
                "refusing to cut it back",
                hint="check the end of the file by hand, then run again",
            )
        # A torn batch and nothing after it (we hold the account lock): cut it off.
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.ftruncate(fd, block.offset)
            os.fsync(fd)
        finally:
            os.close(fd)
        return False

    # -- mbox ---------------------------------------------------------------------------------

    @staticmethod
    def _block_bytes(path: Path, items: Sequence[ArchiveItem]) -> bytes:
        data = b"".join(encode_mboxrd(item) for item in items)
        if path.suffix == ".gz":
            # mtime=0: the same batch compresses to the same bytes, so its hash can be journaled.
            return gzip.compress(data, compresslevel=6, mtime=0)
        return data

    def _write_mbox(self, path: Path, items: Sequence[ArchiveItem], block: ArchiveBlock) -> None:
        data = self._block_bytes(path, items)
        if len(data) != block.length or hashlib.sha256(data).hexdigest() != block.sha256:
            raise DestinationError(f"archive {path}: the batch changed since it was journaled")
        fd = os.open(
            path,
            os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC,
            _FILE_MODE,
        )
        try:
            if os.fstat(fd).st_size != block.offset:
                raise DestinationError(
                    f"archive {path} changed size since the batch was journaled; not written"
                )
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(path.parent)
        self._verify_mbox(path, items, block)

    def _verify_mbox(self, path: Path, items: Sequence[ArchiveItem], block: ArchiveBlock) -> None:
        with path.open("rb") as f:
            f.seek(block.offset)
            stored = f.read(block.length)
        if hashlib.sha256(stored).hexdigest() != block.sha256:
            raise DestinationError(
                f"archive {path}: the re-read batch differs from what was written"
            )
        if path.suffix == ".gz":
            try:
                stored = zlib.decompress(stored, wbits=31)
            except zlib.error as exc:
                raise DestinationError(
                    f"archive {path}: the gzip member does not decompress"
                ) from exc
        position = 0
        for item in items:
            length = len(encode_mboxrd(item))
            entry = stored[position : position + length]
            position += length
            if not _matches(item, decode_mboxrd(entry)):
                raise DestinationError(
                    f"archive {path}: message {item.key} read back differs from the original"
                )

    # -- Maildir ------------------------------------------------------------------------------

    @staticmethod
    def _existing(path: Path, base: str) -> Iterator[Path]:
        for sub in ("cur", "new"):
            for name in os.listdir(path / sub):
                if name == base or name.startswith(base + ":"):
                    yield path / sub / name

    def _write_maildir(self, path: Path, items: Sequence[ArchiveItem]) -> None:
        for sub in ("tmp", "new", "cur"):
            _mkdirs(path / sub)
        finals: list[tuple[ArchiveItem, Path]] = []
        for item in items:
            base, info = maildir_name(item)
            existing = next(self._existing(path, base), None)
            if existing is not None:
                finals.append((item, existing))  # written by an earlier, interrupted run
                continue
            tmp = path / "tmp" / base
            fd = os.open(
                tmp,
                os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                _FILE_MODE,
            )
            try:
                view = memoryview(item.raw)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            final = path / ("cur" if info else "new") / (base + info)
            try:
                os.link(tmp, final)
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise
            os.unlink(tmp)
            finals.append((item, final))
        for sub in ("new", "cur", "tmp"):
            _fsync_dir(path / sub)
        for item, final in finals:
            if _sha256_file(final) != item.sha256:
                raise DestinationError(
                    f"archive {final}: the re-read message differs from the original"
                )
