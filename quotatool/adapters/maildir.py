"""Read a Maildir++ tree (or a single plain maildir) as a MailSource, strictly read-only.

Layout (Maildir++, as Dovecot writes it with ``LAYOUT=maildir++``, the default): the root's
``cur/ new/ tmp/`` are INBOX; every subfolder is a directory ``.Name`` or ``.Parent.Child`` next
to them, ``.`` separating the hierarchy on disk and each name stored in modified UTF-7
(RFC 3501 §5.1.3). Message files are named ``<unique>[,S=<size>][,W=<vsize>][:2,<flags>]``
(https://cr.yp.to/proto/maildir.html; Dovecot adds ``S=``/``W=``, the file size and the size
with CRLF line ends that IMAP reports as RFC822.SIZE).

``mailbox.Maildir`` from the standard library was rejected: it knows neither Dovecot's UIDs
(``dovecot-uidlist``), keywords (``dovecot-keywords``) nor the ``W=`` size, and reading a
message through it parses the whole file into an ``email`` object, which a scan never needs.
Nothing here ever writes, renames or creates a file.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from imapclient import imap_utf7

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

__all__ = ["INBOX", "MaildirSource", "bare_lf_count", "header_block", "special_use_for"]

INBOX = "INBOX"

# The names Debian's Dovecot marks with RFC 6154 special-use attributes
# (/etc/dovecot/conf.d/15-mailboxes.conf), plus RFC 6154's \Archive under its usual name.
# A Maildir keeps no special-use on disk, so the name is all there is to go by.
_SPECIAL_USE = {
    "Drafts": "\\Drafts",
    "Junk": "\\Junk",
    "Trash": "\\Trash",
    "Sent": "\\Sent",
    "Sent Messages": "\\Sent",
    "Archive": "\\Archive",
}
# Maildir info flags (https://cr.yp.to/proto/maildir.html) and their IMAP flags.
_FLAG_LETTERS = {
    "S": "\\Seen",
    "R": "\\Answered",
    "F": "\\Flagged",
    "D": "\\Draft",
    "T": "\\Deleted",
}
_VSIZE = re.compile(r",W=([0-9]+)")
_HEADER_CHUNK = 16 * 1024
# A header block larger than this is cut there: the fields a scan needs come first in practice,
# and a file without any blank line must not be read whole just to find its headers.
_HEADER_MAX = 1024 * 1024


def special_use_for(name: str) -> str | None:
    """Return the RFC 6154 attribute Dovecot's default config gives a top-level folder name."""
    return _SPECIAL_USE.get(name)


def bare_lf_count(data: bytes) -> int:
    """Count LF octets not preceded by CR: each one is a CRLF in IMAP's RFC822.SIZE."""
    return data.count(b"\n") - data.count(b"\r\n")


def header_block(data: bytes) -> tuple[bytes, bool]:
    """Return the header block at the start of ``data`` and whether its end was found."""
    if data.startswith((b"\n", b"\r\n")):
        return b"", True
    lf = data.find(b"\n\n")
    crlf = data.find(b"\n\r\n")
    ends = [i for i in (lf, crlf) if i >= 0]
    if not ends:
        return data, False
    return data[: min(ends) + 1], True


@dataclass(frozen=True, slots=True)
class _Entry:
    """One message file found in a folder."""

    uid: int
    sub: str
    """``cur`` or ``new``."""
    name: str
    """The file name as found (it changes when flags change)."""
    base: str
    """The name without the ``:2,`` info: stable for the life of the message."""


@dataclass(frozen=True, slots=True)
class _Listing:
    uidvalidity: int
    uidnext: int
    entries: tuple[_Entry, ...]


def _base_and_info(name: str) -> tuple[str, str | None]:
    base, sep, info = name.partition(":")
    if not sep:
        return name, None
    return base, info[2:] if info.startswith("2,") else None


def _read_uidlist(path: Path) -> tuple[int, int, dict[str, int]] | None:
    """Read Dovecot's ``dovecot-uidlist``: (UIDVALIDITY, next UID, base name -> UID).

    Version 3 (Dovecot >= 1.0): ``3 V<uidvalidity> N<nextuid> [G<guid>]``, then
    ``<uid> [<ext>...] :<base name>``; version 1: ``1 <uidvalidity> <nextuid>``, then
    ``<uid> <base name>``. ``None`` when the file is absent or unreadable.
    """
    try:
        text = path.read_text("utf-8", errors="surrogateescape")
    except OSError:
        return None
    lines = text.splitlines()
    if not lines:
        return None
    head = lines[0].split()
    uidvalidity = nextuid = 0
    version = head[0] if head else ""
    if version == "3":
        for field in head[1:]:
            if field[:1] == "V" and field[1:].isdigit():
                uidvalidity = int(field[1:])
            elif field[:1] == "N" and field[1:].isdigit():
                nextuid = int(field[1:])
    elif version == "1" and len(head) >= 3 and head[1].isdigit() and head[2].isdigit():
        uidvalidity, nextuid = int(head[1]), int(head[2])
    else:
        return None
    uids: dict[str, int] = {}
    for line in lines[1:]:
        uid_text, _, rest = line.partition(" ")
        if not uid_text.isdigit():
            continue
        if version == "3":
            _, colon, base = rest.partition(":")
            if not colon:
                continue
        else:
            base = rest.strip()
        uids[_base_and_info(base)[0]] = int(uid_text)
    if uidvalidity <= 0:
        return None
    return uidvalidity, nextuid, uids


def _read_keywords(path: Path) -> dict[str, str]:
    """Read ``dovecot-keywords``: ``<index> <name>`` lines; index 0 is the letter ``a``."""
    try:
        text = path.read_text("utf-8", errors="replace")
    except OSError:
        return {}
    keywords: dict[str, str] = {}
    for line in text.splitlines():
        index, _, name = line.partition(" ")
        if index.isdigit() and int(index) < 26 and name:
            keywords[chr(ord("a") + int(index))] = name
    return keywords


class MaildirSource:
    """A Maildir++ tree (or one plain maildir, shown as INBOX), scanned read-only."""

    def __init__(self, path: Path, *, delimiter: str = "/") -> None:
        self._path = Path(path)
        self._delimiter = delimiter
        self._dirs: dict[str, Path] | None = None
        if not self._path.exists():
            raise SourceNotFoundError(
                f"Maildir {self._path} does not exist", hint="check the path after maildir:"
            )
        if not self._path.is_dir():
            raise SourceNotFoundError(
                f"Maildir {self._path} is not a directory",
                hint="for a single mailbox file, use mbox:PATH",
            )
        if not (self._path / "cur").is_dir() and not self._folder_dirs():
            raise SourceNotFoundError(
                f"{self._path} is not a Maildir: it has no cur/ directory and no .Folder "
                "subdirectories",
                hint="name the directory that holds cur/, new/ and tmp/",
            )

    # -- MailSource ------------------------------------------------------------------------------

    def describe(self) -> str:
        return f"maildir:{self._path}"

    def capabilities(self) -> frozenset[str]:
        return frozenset()

    def quota(self) -> tuple[QuotaResource, ...] | None:
        return None

    def list_folders(self) -> list[FolderRef]:
        dirs = self._scan_dirs()
        folders: list[FolderRef] = []
        known = set(dirs)
        for name in dirs:
            # Maildir++ may hold .A.B without .A: IMAP LIST shows A as \Noselect.
            parts = name.split(self._delimiter)
            for k in range(1, len(parts)):
                parent = self._delimiter.join(parts[:k])
                if parent not in known:
                    known.add(parent)
                    folders.append(
                        FolderRef(name=parent, delimiter=self._delimiter, selectable=False)
                    )
            folders.append(
                FolderRef(
                    name=name,
                    delimiter=self._delimiter,
                    special_use=special_use_for(name),
                )
            )
        return sorted(folders, key=lambda f: (f.name != INBOX, f.name))

    def scan_folder(
        self, folder: FolderRef, warn: WarningSink, progress: Progress
    ) -> tuple[FolderStatus, Iterator[MessageInfo]]:
        directory = self._folder_dir(folder.name)
        listing = self._list(directory, folder.name)
        status = FolderStatus(
            name=folder.name,
            uidvalidity=UidValidity(listing.uidvalidity),
            messages=len(listing.entries),
            uidnext=listing.uidnext,
            special_use=folder.special_use or special_use_for(folder.name),
        )
        keywords = _read_keywords(directory / "dovecot-keywords")
        return status, self._messages(folder.name, directory, listing, keywords, warn, progress)

    def close(self) -> None:
        self._dirs = None

    # -- raw access ------------------------------------------------------------------------------

    def read_raw(self, folder: str, uid: int) -> bytes:
        """Return the message file's bytes as stored (line ends untouched)."""
        directory = self._folder_dir(folder)
        listing = self._list(directory, folder)
        for entry in listing.entries:
            if entry.uid == uid:
                data = self._read(directory, entry, whole=True)
                if data is None:
                    break
                return data
        raise SourceNotFoundError(f"{folder}: no message with UID {uid} in {directory}")

    # -- folders ---------------------------------------------------------------------------------

    def _folder_dirs(self) -> list[Path]:
        try:
            entries = list(os.scandir(self._path))
        except OSError as exc:
            raise SourceNotFoundError(f"Maildir {self._path} cannot be read: {exc}") from exc
        return [
            Path(e.path)
            for e in entries
            if e.name.startswith(".")
            and e.name not in (".", "..")
            and len(e.name) > 1
            and e.is_dir()
            and os.path.isdir(os.path.join(e.path, "cur"))
        ]

    def _display_name(self, dirname: str) -> str:
        parts = []
        for raw in dirname[1:].split("."):
            try:
                parts.append(imap_utf7.decode(raw.encode("ascii")))
            except (UnicodeError, ValueError):
                # Not valid modified UTF-7 (written by something other than an IMAP server):
                # show it as it is on disk.
                parts.append(raw)
        return self._delimiter.join(parts)

    def _scan_dirs(self) -> dict[str, Path]:
        dirs: dict[str, Path] = {}
        if (self._path / "cur").is_dir():
            dirs[INBOX] = self._path
        for path in sorted(self._folder_dirs()):
            name = self._display_name(path.name)
            if name and name not in dirs:
                dirs[name] = path
        self._dirs = dirs
        return dirs

    def _folder_dir(self, name: str) -> Path:
        dirs = self._dirs if self._dirs is not None else self._scan_dirs()
        path = dirs.get(name)
        if path is None:
            path = self._scan_dirs().get(name)  # created since the last listing?
        if path is None or not (path / "cur").is_dir():
            raise FolderNotFoundError(f"folder {name!r} does not exist in {self._path}")
        return path

    # -- messages --------------------------------------------------------------------------------

    def _list(self, directory: Path, folder: str) -> _Listing:
        found: list[tuple[str, str, str]] = []
        for sub in ("cur", "new"):
            try:
                names = os.listdir(directory / sub)
            except FileNotFoundError as exc:
                raise FolderNotFoundError(f"folder {folder!r} vanished from {directory}") from exc
            except OSError as exc:
                raise FolderNotFoundError(f"folder {folder!r} cannot be read: {exc}") from exc
            # Dot files are never messages (maildir spec); Dovecot keeps none there either.
            found.extend((_base_and_info(n)[0], sub, n) for n in names if not n.startswith("."))
        found.sort()
        uidlist = _read_uidlist(directory / "dovecot-uidlist")
        entries: list[_Entry] = []
        if uidlist is not None:
            uidvalidity, nextuid, known = uidlist
            # Files Dovecot has not seen yet get the UIDs it would give them next, in name
            # order (Dovecot's own order for new files: their names start with the time).
            assigned = max(nextuid - 1, max(known.values(), default=0))
            for base, sub, name in found:
                uid = known.get(base)
                if uid is None:
                    assigned += 1
                    uid = assigned
                entries.append(_Entry(uid, sub, name, base))
            entries.sort(key=lambda e: e.uid)
            uidnext = max(nextuid, assigned + 1)
        else:
            # No UIDs on disk: number the files in name order. Such UIDs shift when a file
            # is removed, so UIDVALIDITY covers the set of names as well as the directory's
            # identity (inode, ctime): any change to the set makes an older plan stale, which
            # is then skipped rather than applied to the wrong message (SAFETY.md promise 3).
            st = directory.stat()
            digest = hashlib.sha256(
                "\n".join(base for base, _, _ in found).encode("utf-8", "surrogateescape")
            ).digest()
            seed = f"{st.st_ino}:{st.st_ctime_ns}:".encode() + digest
            uidvalidity = (zlib.crc32(seed) & 0x7FFFFFFF) or 1
            entries = [
                _Entry(k, sub, name, base) for k, (base, sub, name) in enumerate(found, start=1)
            ]
            uidnext = len(entries) + 1
        return _Listing(uidvalidity, uidnext, tuple(entries))

    @staticmethod
    def _flags(
        entry: _Entry,
        keywords: dict[str, str],
        cache: dict[tuple[str, str | None], frozenset[str]],
    ) -> frozenset[str]:
        info = _base_and_info(entry.name)[1]
        key = (entry.sub, info)
        flags = cache.get(key)
        if flags is None:
            found = set()
            for letter in info or "":
                if letter in _FLAG_LETTERS:
                    found.add(_FLAG_LETTERS[letter])
                elif letter in keywords:
                    found.add(keywords[letter])
            if entry.sub == "new":
                # Mail in new/ has not been seen by any client yet.
                found.discard("\\Seen")
            # Most messages share one of a handful of flag sets: share the frozensets too.
            flags = cache[key] = frozenset(found)
        return flags

    def _locate(self, directory: Path, entry: _Entry) -> Path | None:
        """Find a file again after a client renamed it (flag change, new/ -> cur/)."""
        for sub in ("cur", "new"):
            try:
                names = os.listdir(directory / sub)
            except OSError:
                continue
            for name in names:
                if _base_and_info(name)[0] == entry.base:
                    return directory / sub / name
        return None

    def _read(self, directory: Path, entry: _Entry, *, whole: bool) -> bytes | None:
        """Read the file (or its start); ``None`` when it is gone."""
        path = directory / entry.sub / entry.name
        for _ in range(2):
            try:
                with open(path, "rb") as fh:
                    if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                        return None
                    if whole:
                        return fh.read()
                    data = fh.read(_HEADER_CHUNK)
                    while len(data) < _HEADER_MAX and not header_block(data)[1]:
                        more = fh.read(_HEADER_CHUNK * 4)
                        if not more:
                            break
                        data += more
                    return data
            except FileNotFoundError:
                found = self._locate(directory, entry)
                if found is None:
                    return None
                path = found
        return None

    def _messages(
        self,
        folder: str,
        directory: Path,
        listing: _Listing,
        keywords: dict[str, str],
        warn: WarningSink,
        progress: Progress,
    ) -> Iterator[MessageInfo]:
        cache: dict[tuple[str, str | None], frozenset[str]] = {}
        for entry in listing.entries:
            info = self._message(folder, directory, entry, keywords, cache, warn)
            progress.advance(1)
            if info is not None:
                yield info

    def _message(
        self,
        folder: str,
        directory: Path,
        entry: _Entry,
        keywords: dict[str, str],
        cache: dict[tuple[str, str | None], frozenset[str]],
        warn: WarningSink,
    ) -> MessageInfo | None:
        match = _VSIZE.search(entry.base)
        path = directory / entry.sub / entry.name
        try:
            mtime = int(os.stat(path).st_mtime)
        except FileNotFoundError:
            found = self._locate(directory, entry)
            try:
                mtime = int(os.stat(found).st_mtime) if found is not None else -1
            except FileNotFoundError:
                mtime = -1
        head = self._read(directory, entry, whole=match is None) if mtime >= 0 else None
        if head is None:
            warn(f"{folder}: {entry.name}: the file vanished during the scan; skipped")
            return None
        header, _ = header_block(head)
        whole: bytes | None = None
        if match is not None:
            size = int(match.group(1))
        else:
            whole = head
            size = len(whole) + bare_lf_count(whole)
        content_type = "text/plain"
        attachments: tuple[Attachment, ...] = ()
        unparsed = False
        try:
            plain = plain_type(header)
            if plain is not None:
                content_type = plain
            else:
                if whole is None:
                    whole = self._read(directory, entry, whole=True)
                if whole is None:
                    warn(f"{folder}: {entry.name}: the file vanished during the scan; skipped")
                    return None
                tree = mime_tree_from_bytes(whole)
                content_type = tree.content_type
                attachments = find_attachments(tree)
        except ParseError as exc:
            unparsed = True
            warn(f"{folder}: UID {entry.uid}: {exc}; counted with its full size as unparsed")
        fields = parse_header_fields(header)
        return MessageInfo(
            folder=folder,
            uid=Uid(entry.uid),
            size=size,
            internaldate=mtime,
            flags=self._flags(entry, keywords, cache),
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
