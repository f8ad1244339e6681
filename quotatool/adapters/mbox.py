"""Read mbox files (mboxo / mboxrd) as a MailSource, strictly read-only and streaming.

A message starts at a ``From `` line at the start of the file or after an empty line
(RFC 4155 §2, as mutt and Dovecot split). mboxrd quotes ``From `` lines inside a message as
``>From `` (and ``>From `` as ``>>From ``); one ``>`` is removed again here, so sizes count the
message as it was delivered, with CRLF line ends as IMAP counts them.

``mailbox.mbox`` was rejected: it does not undo the ``>From`` quoting (SAFETY.md fact 7), and
its index keeps the whole table of contents plus a parsed message object per read; this module
finds the message offsets in one pass of ``bytes.find`` over 1 MiB chunks and then reads one
message at a time, so a 2 GB mbox never sits in memory.
"""

from __future__ import annotations

import calendar
import os
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from quotatool.adapters.maildir import INBOX, bare_lf_count, header_block, special_use_for
from quotatool.adapters.mime_local import mime_tree_from_bytes, plain_type
from quotatool.core.bodystructure import find_attachments
from quotatool.core.headers import parse_header_fields
from quotatool.errors import FolderNotFoundError, ParseError, SourceNotFoundError
from quotatool.model import (
    Attachment,
    FolderRef,
    FolderStatus,
    MessageInfo,
    QuotaResource,
    Uid,
    UidValidity,
)
from quotatool.ports import Progress, WarningSink

__all__ = ["MboxSource", "message_offsets"]

_CHUNK = 1024 * 1024
_SEP = b"\nFrom "
_QUOTED = re.compile(rb"^>(>*From )", re.MULTILINE)
# The From_ line's date is asctime() output (``Thu Mar 22 10:11:12 2007``), sometimes with a
# zone name or offset before the year; it is taken as UTC.
_FROM_DATE = re.compile(
    rb"([A-Z][a-z]{2}) +([A-Z][a-z]{2}) +([0-9]{1,2}) +([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?"
    rb"(?: +[A-Za-z]{1,5}| +[+-][0-9]{4})? +([0-9]{4})"
)
_MONTHS = {m.encode(): i for i, m in enumerate(calendar.month_abbr) if m}
_STATUS = re.compile(rb"(?im)^(x-status|status|x-keywords)[ \t]*:[ \t]*([^\r\n]*)")
# Status: R read, O old (no IMAP flag). X-Status: A answered, F flagged, T draft, D deleted
# (the letters mutt and Dovecot's mbox driver write).
_STATUS_FLAGS = {"R": "\\Seen"}
_X_STATUS_FLAGS = {"A": "\\Answered", "F": "\\Flagged", "T": "\\Draft", "D": "\\Deleted"}


def message_offsets(fh: BinaryIO, chunk_size: int = _CHUNK) -> list[int]:
    """Return the offset of every ``From `` line that starts a message, in one streaming pass."""
    offsets: list[int] = []
    fh.seek(0)
    first = fh.read(5)
    if first == b"From ":
        offsets.append(0)
    fh.seek(0)
    tail = b""
    pos = 0  # file offset of the chunk's first byte
    while True:
        chunk = fh.read(chunk_size)
        if not chunk:
            break
        buf = tail + chunk
        base = pos - len(tail)
        i = buf.find(_SEP)
        while i >= 0:
            # Matches wholly inside ``tail`` were found with the previous chunk.
            if i + len(_SEP) > len(tail):
                # The line before must be empty ("" or "\r"), or the file's start.
                at = base + i  # file offset of the LF
                prev = buf[i - 1 : i] if at > 0 else b"\n"
                if prev == b"\r":
                    prev = buf[i - 2 : i - 1] if at > 1 else b"\n"
                if prev == b"\n":
                    offsets.append(base + i + 1)
            i = buf.find(_SEP, i + 1)
        pos += len(chunk)
        tail = buf[-8:]
    return offsets


def _strip_separator(data: bytes, last: bool) -> bytes:
    """Drop the empty line that separates a message from the next From_ line."""
    if data.endswith(b"\r\n\r\n") or (not last and data.endswith(b"\n\r\n")):
        return data[:-2]
    if data.endswith(b"\n\n") or (not last and data.endswith(b"\n")):
        return data[:-1]
    return data


def _from_line_date(line: bytes) -> int | None:
    m = _FROM_DATE.search(line)
    if m is None:
        return None
    month = _MONTHS.get(m[2])
    if month is None:
        return None
    try:
        return calendar.timegm(
            (int(m[7]), month, int(m[3]), int(m[4]), int(m[5]), int(m[6] or 0), 0, 0, 0)
        )
    except (ValueError, OverflowError):
        return None


def _flags(header: bytes) -> frozenset[str]:
    flags: set[str] = set()
    for name, value in _STATUS.findall(header):
        field = name.lower()
        text = value.decode("latin-1").strip()
        if field == b"status":
            flags.update(_STATUS_FLAGS[c] for c in text if c in _STATUS_FLAGS)
        elif field == b"x-status":
            flags.update(_X_STATUS_FLAGS[c] for c in text if c in _X_STATUS_FLAGS)
        else:  # X-Keywords: Dovecot's keywords, separated by spaces or commas
            flags.update(k for k in re.split(r"[\s,]+", text) if k)
    return frozenset(flags)


def _is_mbox(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            start = fh.read(5)
    except OSError:
        return False
    return start in (b"From ", b"")


class MboxSource:
    """One mbox file (one folder) or a directory of them, scanned read-only."""

    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        if not self._path.exists():
            raise SourceNotFoundError(
                f"mbox {self._path} does not exist", hint="check the path after mbox:"
            )
        self._files = self._find_files()

    def _find_files(self) -> dict[str, Path]:
        path = self._path
        if path.is_file():
            if not _is_mbox(path):
                raise SourceNotFoundError(
                    f"{path} is not an mbox file: it does not start with a 'From ' line",
                    hint="for a Maildir (a directory with cur/ and new/), use maildir:PATH",
                )
            return {self._folder_name(Path(path.name)): path}
        if not path.is_dir():
            raise SourceNotFoundError(f"mbox {path} is neither a file nor a directory")
        files: dict[str, Path] = {}
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                candidate = Path(dirpath) / name
                if name.startswith(".") or not candidate.is_file() or not _is_mbox(candidate):
                    continue
                files.setdefault(self._folder_name(candidate.relative_to(path)), candidate)
        if not files:
            raise SourceNotFoundError(
                f"{path} holds no mbox files",
                hint="name an mbox file, or a directory of them",
            )
        return files

    @staticmethod
    def _folder_name(relative: Path) -> str:
        name = relative.as_posix()
        if name.upper() == INBOX or name == "mbox":
            return INBOX
        return name

    # -- MailSource ------------------------------------------------------------------------------

    def describe(self) -> str:
        return f"mbox:{self._path}"

    def capabilities(self) -> frozenset[str]:
        return frozenset()

    def quota(self) -> tuple[QuotaResource, ...] | None:
        return None

    def list_folders(self) -> list[FolderRef]:
        names = sorted(self._files, key=lambda n: (n != INBOX, n))
        return [FolderRef(name=n, delimiter="/", special_use=special_use_for(n)) for n in names]

    def scan_folder(
        self, folder: FolderRef, warn: WarningSink, progress: Progress
    ) -> tuple[FolderStatus, Iterator[MessageInfo]]:
        path = self._file(folder.name)
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                offsets = message_offsets(fh)
        except FileNotFoundError as exc:
            raise FolderNotFoundError(f"folder {folder.name!r} ({path}) vanished") from exc
        except OSError as exc:
            raise FolderNotFoundError(f"folder {folder.name!r} cannot be read: {exc}") from exc
        status = FolderStatus(
            name=folder.name,
            uidvalidity=UidValidity(_uidvalidity(st)),
            messages=len(offsets),
            uidnext=len(offsets) + 1,
            special_use=folder.special_use,
        )
        return status, self._messages(folder.name, path, st, offsets, warn, progress)

    def close(self) -> None:
        return None

    def read_raw(self, folder: str, uid: int) -> bytes:
        """Return message ``uid`` (1-based file position) without its From_ line, unquoted."""
        with open(self._file(folder), "rb") as fh:
            offsets = message_offsets(fh)
            if not 1 <= uid <= len(offsets):
                raise SourceNotFoundError(f"{folder}: no message with UID {uid}")
            _, data = _read_message(fh, offsets, uid - 1)
            return data

    # -- internals -------------------------------------------------------------------------------

    def _file(self, name: str) -> Path:
        path = self._files.get(name)
        if path is None:
            raise FolderNotFoundError(f"folder {name!r} does not exist in {self._path}")
        return path

    def _messages(
        self,
        folder: str,
        path: Path,
        listed: os.stat_result,
        offsets: list[int],
        warn: WarningSink,
        progress: Progress,
    ) -> Iterator[MessageInfo]:
        if not offsets:
            return
        try:
            fh = open(path, "rb")  # noqa: SIM115 -- a generator: closed in the finally below
        except OSError as exc:
            warn(f"{folder}: {path} could not be opened again: {exc}; skipped")
            return
        try:
            st = os.fstat(fh.fileno())
            if (st.st_ino, st.st_mtime_ns, st.st_size) != (
                listed.st_ino,
                listed.st_mtime_ns,
                listed.st_size,
            ):
                # The offsets no longer describe this file.
                warn(f"{folder}: {path} changed during the scan; skipped")
                return
            for k in range(len(offsets)):
                try:
                    from_line, data = _read_message(fh, offsets, k)
                except OSError as exc:
                    warn(f"{folder}: the file could not be read any further: {exc}")
                    return
                info = _message_info(folder, k + 1, from_line, data, int(st.st_mtime), warn)
                progress.advance(1)
                yield info
        finally:
            fh.close()


def _uidvalidity(st: os.stat_result) -> int:
    # UIDs are file positions: any change to the file may shift them, so UIDVALIDITY follows
    # the file's identity and modification time, making an older plan stale (and skipped).
    seed = f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}".encode()
    return (zlib.crc32(seed) & 0x7FFFFFFF) or 1


def _read_message(fh: BinaryIO, offsets: list[int], k: int) -> tuple[bytes, bytes]:
    """Return (From_ line, message bytes unquoted) of the ``k``-th message."""
    start = offsets[k]
    fh.seek(start)
    last = k + 1 == len(offsets)
    data = fh.read() if last else fh.read(offsets[k + 1] - start)
    eol = data.find(b"\n")
    from_line, body = (data, b"") if eol < 0 else (data[:eol], data[eol + 1 :])
    body = _strip_separator(body, last)
    if b">From " in body:
        body = _QUOTED.sub(rb"\1", body)
    return from_line, body


def _message_info(
    folder: str, uid: int, from_line: bytes, data: bytes, mtime: int, warn: WarningSink
) -> MessageInfo:
    header, _ = header_block(data)
    fields = parse_header_fields(header)
    content_type = "text/plain"
    attachments: tuple[Attachment, ...] = ()
    unparsed = False
    try:
        plain = plain_type(header)
        if plain is not None:
            content_type = plain
        else:
            tree = mime_tree_from_bytes(data)
            content_type = tree.content_type
            attachments = find_attachments(tree)
    except ParseError as exc:
        unparsed = True
        warn(f"{folder}: UID {uid}: {exc}; counted with its full size as unparsed")
    internaldate = _from_line_date(from_line)
    if internaldate is None:
        internaldate = fields.date if fields.date is not None else mtime
    return MessageInfo(
        folder=folder,
        uid=Uid(uid),
        size=len(data) + bare_lf_count(data),
        internaldate=internaldate,
        flags=_flags(header),
        date=fields.date,
        from_addr=fields.from_addr,
        from_name=fields.from_name,
        to=fields.to,
        subject=fields.subject,
        message_id=fields.message_id,
        list_id=fields.list_id,
        attachments=attachments,
        content_type=content_type,
        unparsed=unparsed,
    )
