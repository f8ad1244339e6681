"""The mutating IMAP session of a real run (ports_write.MailboxWriter).

It reuses :class:`~quotatool.adapters.imap.ImapSource` for everything up to a logged-in,
CONDSTORE-enabled connection (verified TLS, STARTTLS fail-closed, the redacting ``--debug``
trace) and adds the few commands a clean needs, every one by UID.

imapclient's own helpers are avoided where SAFETY.md found them unsafe: ``expunge()`` with an
empty list sends a folder-wide EXPUNGE (fact 1), so :meth:`ImapMailbox.uid_expunge` sends
``UID EXPUNGE`` itself and refuses an empty set; ``copy()`` and ``move()`` return ``None``
and leave COPYUID in ``untagged_responses`` among older entries (fact 3), so those commands
are sent through imaplib with the response codes cleared first and read from both the
untagged and the tagged reply. ``add_flags()`` cannot send ``UNCHANGEDSINCE`` (RFC 7162
§3.1.3) and would not report ``[MODIFIED]`` (fact 2), so STORE is sent here too.
"""

from __future__ import annotations

import imaplib
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from imapclient.exceptions import IMAPClientAbortError, IMAPClientError
from imapclient.response_parser import parse_fetch_response

from quotatool.adapters.imap import ImapConnectOptions, ImapSource
from quotatool.errors import FolderNotFoundError, ProtocolError, QuotatoolError
from quotatool.model import Uid, UidValidity
from quotatool.ports_write import AppendedMessage, DestinationError, MessageState, OpenedFolder

__all__ = ["MAX_UIDS_PER_COMMAND", "ImapMailbox", "parse_uid_set", "uid_set"]

MAX_UIDS_PER_COMMAND = 2000
"""UIDs per command line: Dovecot refuses lines over 64 KB (DOVECOT-NOTES.md)."""

_STATE_ITEMS = [b"RFC822.SIZE", b"FLAGS", b"INTERNALDATE", b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]
_HEADER_KEY = b"BODY[HEADER.FIELDS (MESSAGE-ID)]"
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*?)\s*$", re.IGNORECASE | re.MULTILINE | re.DOTALL)
_CODE = re.compile(rb"\[(COPYUID|MODIFIED) ([^\]]*)\]")
_APPENDUID = re.compile(rb"\[APPENDUID ([0-9]+) ([0-9]+)\]")
# RFC 3501 §9 atom-specials plus the quoted-string specials: a header name must be a plain atom.
_FIELD_NAME = re.compile(r"\A[A-Za-z0-9-]{1,76}\Z")
_SEARCH_VALUE = re.compile(r"\A[\x20-\x7e]{0,200}\Z")


def uid_set(uids: Iterable[int]) -> str:
    """Return an explicit IMAP UID set (``1:3,7``), never ``*`` and never empty."""
    ordered = sorted(set(uids))
    if not ordered:
        raise ValueError("an empty UID set would address the whole folder")
    if ordered[0] < 1:
        raise ValueError(f"not a UID: {ordered[0]}")
    parts: list[str] = []
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        parts.append(f"{start}:{prev}" if prev > start else str(start))
        start = prev = uid
    parts.append(f"{start}:{prev}" if prev > start else str(start))
    return ",".join(parts)


def parse_uid_set(text: str) -> list[int]:
    """Expand a UID set from a response code (``1:3,7`` → ``[1, 2, 3, 7]``), in order."""
    out: list[int] = []
    for part in text.split(","):
        if ":" in part:
            a, b = (int(x) for x in part.split(":"))
            # RFC 3501 §9: a:b means the same as b:a; COPYUID sets are in the source's order.
            step = 1 if b >= a else -1
            out.extend(range(a, b + step, step))
        elif part:
            out.append(int(part))
    return out


def _chunks(uids: Sequence[Uid]) -> Iterable[list[Uid]]:
    ordered = sorted(set(uids))
    for start in range(0, len(ordered), MAX_UIDS_PER_COMMAND):
        yield ordered[start : start + MAX_UIDS_PER_COMMAND]


def _message_id(header: object) -> str | None:
    if not isinstance(header, bytes):
        return None
    match = _MESSAGE_ID.search(header)
    if match is None:
        return None
    value = b" ".join(match.group(1).split())
    return value.decode("utf-8", "replace") or None


def _timestamp(value: object) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp())
    return 0


class ImapMailbox(ImapSource):
    """A read-write session on one IMAP account (ports_write.MailboxWriter)."""

    def __init__(self, options: ImapConnectOptions) -> None:
        super().__init__(options)
        # Time-zone aware INTERNALDATE values: comparisons must not depend on the local zone.
        self._client.normalise_times = False
        self._condstore = "CONDSTORE" in self.capabilities()

    # -- folders ------------------------------------------------------------------------------

    def _open(self, folder: str, readonly: bool) -> OpenedFolder:
        verb = "EXAMINE" if readonly else "SELECT"
        try:
            response = self._client.select_folder(folder, readonly=readonly)
        except IMAPClientError as exc:
            if isinstance(exc, IMAPClientAbortError):
                raise self._error(exc, f"{verb} {folder}") from exc
            raise FolderNotFoundError(f"folder {folder!r} cannot be opened: {exc}") from exc
        except Exception as exc:
            raise self._error(exc, f"{verb} {folder}") from exc
        return OpenedFolder(
            name=folder,
            uidvalidity=UidValidity(int(response.get(b"UIDVALIDITY", 0))),
            uidnext=_int(response.get(b"UIDNEXT")),
            highestmodseq=_int(response.get(b"HIGHESTMODSEQ")),
        )

    def select(self, folder: str) -> OpenedFolder:
        return self._open(folder, readonly=False)

    def examine(self, folder: str) -> OpenedFolder:
        return self._open(folder, readonly=True)

    def status(self, folder: str) -> OpenedFolder | None:
        try:
            if not self._client.folder_exists(folder):
                return None
            response = self._client.folder_status(folder, [b"UIDVALIDITY", b"UIDNEXT"])
        except Exception as exc:
            raise self._error(exc, f"STATUS {folder}") from exc
        return OpenedFolder(
            name=folder,
            uidvalidity=UidValidity(int(response.get(b"UIDVALIDITY", 0))),
            uidnext=_int(response.get(b"UIDNEXT")),
        )

    def create(self, folder: str) -> None:
        try:
            self._client.create_folder(folder)
        except IMAPClientAbortError as exc:
            raise self._error(exc, f"CREATE {folder}") from exc
        except IMAPClientError as exc:
            raise DestinationError(f"cannot create archive folder {folder!r}: {exc}") from exc
        except Exception as exc:
            raise self._error(exc, f"CREATE {folder}") from exc

    # -- reading ------------------------------------------------------------------------------

    def _fetch(self, message_set: list[Uid] | str, items: list[bytes], doing: str) -> Any:
        try:
            return self._client.fetch(message_set, items)
        except Exception as exc:
            raise self._error(exc, doing) from exc

    def _states(self, response: Any) -> dict[Uid, MessageState]:
        out: dict[Uid, MessageState] = {}
        for uid, data in response.items():
            flags = frozenset(
                f.decode("utf-8", "replace") if isinstance(f, bytes) else str(f)
                for f in data.get(b"FLAGS", ())
            )
            modseq = data.get(b"MODSEQ")
            if isinstance(modseq, tuple | list):
                modseq = modseq[0] if modseq else None
            out[Uid(int(uid))] = MessageState(
                uid=Uid(int(uid)),
                size=int(data.get(b"RFC822.SIZE", -1)),
                flags=flags,
                internaldate=_timestamp(data.get(b"INTERNALDATE")),
                message_id=_message_id(data.get(_HEADER_KEY)),
                modseq=int(modseq) if modseq is not None else None,
            )
        return out

    def _items(self) -> list[bytes]:
        return [*_STATE_ITEMS, b"MODSEQ"] if self._condstore else list(_STATE_ITEMS)

    def states(self, uids: Sequence[Uid]) -> dict[Uid, MessageState]:
        out: dict[Uid, MessageState] = {}
        for chunk in _chunks(uids):
            response = self._fetch(chunk, self._items(), "UID FETCH")
            # A FETCH by UID set may include unasked UIDs only as unsolicited updates.
            wanted = set(chunk)
            out.update({u: s for u, s in self._states(response).items() if u in wanted})
        return out

    def states_from(self, first_uid: int) -> dict[Uid, MessageState]:
        # "n:*" would also match the highest UID when it is below n (RFC 3501 §6.4.8), hence
        # the filter; imapclient refuses range strings, so send it through imaplib.
        response = self._raw_fetch(f"{max(first_uid, 1)}:*")
        return {u: s for u, s in response.items() if u >= first_uid}

    def _raw_fetch(self, message_set: str) -> dict[Uid, MessageState]:
        wanted = " ".join(i.decode() for i in self._items())
        try:
            typ, data = self._client._imap.uid("FETCH", message_set, f"({wanted})")
        except Exception as exc:
            raise self._error(exc, "UID FETCH") from exc
        if typ != "OK":
            raise ProtocolError(f"{self._where}: UID FETCH {message_set} failed: {data!r}")
        items = [d for d in data if d is not None]
        parsed = parse_fetch_response(items, normalise_times=False, uid_is_key=True)
        return self._states(parsed)

    def present(self, uids: Sequence[Uid]) -> set[Uid]:
        found: set[Uid] = set()
        for chunk in _chunks(uids):
            typ, data = self._command("SEARCH", "UID", uid_set(chunk))
            for line in self._client._imap.untagged_responses.pop("SEARCH", []):
                found.update(Uid(int(n)) for n in line.split())
            if typ != "OK":
                raise ProtocolError(f"{self._where}: UID SEARCH failed: {_text(data)}")
        return found & set(uids)

    def fetch_raw(self, uids: Sequence[Uid]) -> dict[Uid, bytes]:
        out: dict[Uid, bytes] = {}
        for chunk in _chunks(uids):
            response = self._fetch(chunk, [b"BODY.PEEK[]"], "UID FETCH BODY.PEEK[]")
            for uid, data in response.items():
                raw = data.get(b"BODY[]")
                if isinstance(raw, bytes) and Uid(int(uid)) in chunk:
                    out[Uid(int(uid))] = raw
        return out

    def search_header(self, name: str, value: str) -> list[Uid]:
        # imapclient's search() would send the value as a literal when it has odd characters;
        # both are checked to be printable ASCII here, so a quoted string is enough.
        if not _FIELD_NAME.match(name) or not _SEARCH_VALUE.match(value):
            raise ValueError(f"cannot search for header {name!r} = {value!r}")
        quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        typ, data = self._command("SEARCH", "HEADER", name, quoted)
        found: list[Uid] = []
        for line in self._client._imap.untagged_responses.pop("SEARCH", []):
            found.extend(Uid(int(n)) for n in line.split())
        if typ != "OK":
            raise ProtocolError(f"{self._where}: UID SEARCH HEADER failed: {_text(data)}")
        return sorted(set(found))

    # -- mutating -----------------------------------------------------------------------------

    def append(
        self, folder: str, raw: bytes, flags: frozenset[str], internaldate: int
    ) -> AppendedMessage:
        when = datetime.fromtimestamp(internaldate, UTC)
        # RFC 3501 §6.3.11: \Recent cannot be set by a client.
        wanted = tuple(sorted(f for f in flags if f.lower() != "\\recent"))
        try:
            response = self._client.append(folder, raw, flags=wanted, msg_time=when)
        except IMAPClientAbortError as exc:
            raise self._error(exc, f"APPEND to {folder}") from exc
        except IMAPClientError as exc:
            # NO [OVERQUOTA], NO [TOOBIG], a refused folder: nothing was stored.
            raise DestinationError(f"APPEND to {folder!r} refused: {exc}") from exc
        except Exception as exc:
            raise self._error(exc, f"APPEND to {folder}") from exc
        text = response if isinstance(response, bytes) else str(response).encode()
        match = _APPENDUID.search(text)
        if match is None:
            # SAFETY.md fact 2: without APPENDUID nothing says which message is ours.
            raise ProtocolError(
                f"{self._where}: APPEND to {folder} gave no APPENDUID (UIDPLUS): {_text([text])}"
            )
        return AppendedMessage(
            uidvalidity=UidValidity(int(match.group(1))), uid=Uid(int(match.group(2)))
        )

    def _command(self, *args: str) -> tuple[str, list[Any]]:
        """Send ``UID <args>`` with the response codes we read cleared first (fact 3)."""
        imap = self._client._imap
        for code in ("COPYUID", "MODIFIED", "SEARCH"):
            imap.untagged_responses.pop(code, None)
        try:
            typ, data = imap._simple_command("UID", *args)
        except imaplib.IMAP4.error as exc:
            if isinstance(exc, imaplib.IMAP4.abort):
                raise self._error(exc, f"UID {args[0]}") from exc
            raise ProtocolError(f"{self._where}: UID {args[0]} failed: {exc}") from exc
        except QuotatoolError:
            raise
        except Exception as exc:
            raise self._error(exc, f"UID {args[0]}") from exc
        return str(typ), list(data)

    def _codes(self, code: str, tagged: list[Any]) -> list[bytes]:
        found = [
            d if isinstance(d, bytes) else str(d).encode()
            for d in self._client._imap.untagged_responses.pop(code, [])
        ]
        for line in tagged:
            if isinstance(line, bytes):
                found += [m.group(2) for m in _CODE.finditer(line) if m.group(1).decode() == code]
        return found

    def mark_deleted(self, uids: Sequence[Uid], unchanged_since: int | None) -> set[Uid]:
        modified: set[Uid] = set()
        for chunk in _chunks(uids):
            args = ["STORE", uid_set(chunk)]
            if unchanged_since is not None and self._condstore:
                args.append(f"(UNCHANGEDSINCE {unchanged_since})")
            args += ["+FLAGS.SILENT", "(\\Deleted)"]
            typ, data = self._command(*args)
            self._client._imap.untagged_responses.pop("FETCH", None)
            if typ != "OK":
                raise ProtocolError(f"{self._where}: UID STORE failed: {_text(data)}")
            for text in self._codes("MODIFIED", data):
                modified.update(Uid(u) for u in parse_uid_set(text.decode().strip()))
        return modified

    def uid_expunge(self, uids: Sequence[Uid]) -> None:
        if not uids:
            # SAFETY.md fact 1 / promise 1: never anything that could mean "the whole folder".
            raise ValueError("refusing UID EXPUNGE of an empty set")
        for chunk in _chunks(uids):
            typ, data = self._command("EXPUNGE", uid_set(chunk))
            self._client._imap.untagged_responses.pop("EXPUNGE", None)
            if typ != "OK":
                raise ProtocolError(f"{self._where}: UID EXPUNGE failed: {_text(data)}")

    def _transfer(self, verb: str, uids: Sequence[Uid], destination: str) -> dict[Uid, Uid]:
        mapping: dict[Uid, Uid] = {}
        folder = self._client._normalise_folder(destination)
        name = folder.decode("ascii") if isinstance(folder, bytes) else str(folder)
        for chunk in _chunks(uids):
            typ, data = self._command(verb, uid_set(chunk), name)
            self._client._imap.untagged_responses.pop("EXPUNGE", None)
            if typ != "OK":
                # NO [OVERQUOTA], NO [TRYCREATE], permissions: nothing was copied or moved.
                raise DestinationError(
                    f"UID {verb} to {destination!r} refused: {_text(data)}; the originals stay"
                )
            for text in self._codes("COPYUID", data):
                fields = text.decode().split()
                if len(fields) != 3:
                    continue
                sources, targets = parse_uid_set(fields[1]), parse_uid_set(fields[2])
                if len(sources) == len(targets):
                    mapping.update((Uid(s), Uid(t)) for s, t in zip(sources, targets, strict=True))
        return mapping

    def move(self, uids: Sequence[Uid], destination: str) -> dict[Uid, Uid]:
        return self._transfer("MOVE", uids, destination)

    def copy(self, uids: Sequence[Uid], destination: str) -> dict[Uid, Uid]:
        return self._transfer("COPY", uids, destination)


def _int(value: object) -> int | None:
    if isinstance(value, tuple | list):
        value = value[0] if value else None
    if isinstance(value, bytes | str | int):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _text(data: list[Any]) -> str:
    parts = [d.decode("utf-8", "replace") if isinstance(d, bytes) else str(d) for d in data]
    return " ".join(p for p in parts if p).strip() or "no reason given"
