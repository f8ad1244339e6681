"""Parse the few header fields a scan fetches (FROM TO SUBJECT DATE MESSAGE-ID LIST-ID)."""

from __future__ import annotations

import email.header
import email.utils
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HeaderFields:
    """The decoded header fields a scan needs."""

    from_addr: str = ""
    """Lower-case sender address."""
    from_name: str = ""
    """Decoded display name of the sender."""
    to: tuple[str, ...] = ()
    """Lower-case recipient addresses."""
    subject: str = ""
    """Decoded subject."""
    date: int | None = None
    """``Date:`` as POSIX seconds, ``None`` when absent or unparseable."""
    message_id: str | None = None
    """Message-ID as written."""
    list_id: str | None = None
    """List-ID, decoded."""


def _decode(value: str) -> str:
    if "=?" not in value:
        return value.strip()
    try:
        return str(email.header.make_header(email.header.decode_header(value))).strip()
    except (ValueError, LookupError, UnicodeError):
        return value.strip()


def parse_header_fields(raw: bytes) -> HeaderFields:
    """Parse a raw header block (CRLF or LF line ends, folded lines allowed)."""
    fields: dict[str, str] = {}
    text = raw.decode("utf-8", "surrogateescape").replace("\r\n", "\n")
    current: str | None = None
    for line in text.split("\n"):
        if not line:
            if current is not None:
                current = None
            continue
        if line[0] in " \t" and current is not None:
            fields[current] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            current = None
            continue
        key = name.strip().lower()
        if key in fields:  # first occurrence wins, as mail clients show it
            current = None
            continue
        fields[key] = value.strip()
        current = key
    from_name, from_addr = email.utils.parseaddr(fields.get("from", ""))
    to = tuple(
        addr.lower() for _, addr in email.utils.getaddresses([fields.get("to", "")]) if addr
    )
    date: int | None = None
    if "date" in fields:
        try:
            parsed = email.utils.parsedate_to_datetime(fields["date"])
            date = int(parsed.timestamp())
        except (TypeError, ValueError, IndexError, OverflowError):
            date = None
    return HeaderFields(
        from_addr=from_addr.lower(),
        from_name=_decode(from_name),
        to=to,
        subject=_decode(fields.get("subject", "")),
        date=date,
        message_id=fields.get("message-id") or None,
        list_id=_decode(fields["list-id"]) if "list-id" in fields else None,
    )
