"""The data that flows between the layers: frozen, slotted, typed.

Dates are POSIX seconds (UTC) as ``int``: 100,000 messages must scan in seconds, and an
``int`` is both the cheapest thing to build and the easiest to compare in rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NewType

Uid = NewType("Uid", int)
"""An IMAP UID (or a Maildir/mbox position standing in for one), unique within a folder."""

UidValidity = NewType("UidValidity", int)
"""A folder's UIDVALIDITY: UIDs are only meaningful together with it."""


@dataclass(frozen=True, slots=True)
class FolderRef:
    """A folder as the source lists it."""

    name: str
    """Decoded display name (UTF-8), with the source's own hierarchy delimiter."""
    delimiter: str | None = None
    """Hierarchy delimiter, ``None`` for a flat namespace."""
    special_use: str | None = None
    """RFC 6154 special-use attribute such as ``\\Trash``, if any."""
    selectable: bool = True
    """False for ``\\Noselect`` / ``\\NonExistent`` folders, which hold no messages."""


@dataclass(frozen=True, slots=True)
class FolderStatus:
    """What the source says about one folder when it is opened read-only."""

    name: str
    """Decoded display name."""
    uidvalidity: UidValidity
    """UIDVALIDITY at scan time."""
    messages: int
    """Number of messages the server reports (EXISTS)."""
    uidnext: int | None = None
    """UIDNEXT, when known."""
    highestmodseq: int | None = None
    """HIGHESTMODSEQ when the server has CONDSTORE."""
    special_use: str | None = None
    """RFC 6154 special-use attribute, copied from the listing."""


@dataclass(frozen=True, slots=True)
class MimePart:
    """One node of a message's MIME tree, as BODYSTRUCTURE describes it."""

    section: str
    """IMAP part specifier (``"1"``, ``"2.1"``); ``""`` for the message's own top level."""
    content_type: str
    """Lower-case ``type/subtype``."""
    params: tuple[tuple[str, str], ...] = ()
    """Content-Type parameters, names lower-case, values decoded."""
    encoding: str = "7bit"
    """Lower-case Content-Transfer-Encoding."""
    size: int = 0
    """Encoded body octets as the server stores them (for multiparts: sum of children)."""
    disposition: str | None = None
    """Lower-case Content-Disposition value (``attachment``, ``inline``) or ``None``."""
    filename: str | None = None
    """Decoded filename (RFC 2231 / RFC 2047), from the disposition or the ``name`` param."""
    content_id: str | None = None
    """Content-ID, when present."""
    children: tuple[MimePart, ...] = ()
    """Sub-parts of a multipart, or the single enclosed body of a ``message/rfc822``."""


@dataclass(frozen=True, slots=True)
class Attachment:
    """A leaf part that a person would call an attachment."""

    section: str
    """IMAP part specifier, to fetch or replace exactly this part."""
    content_type: str
    """Lower-case ``type/subtype``."""
    filename: str | None
    """Decoded filename, if the part names one."""
    size: int
    """Encoded octets stored on the server."""
    decoded_size: int
    """Estimated size after removing the transfer encoding."""
    encoding: str = "7bit"
    """Lower-case Content-Transfer-Encoding."""


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """Metadata of one message: everything scan and rules need, no body."""

    folder: str
    """Decoded folder name."""
    uid: Uid
    """UID in ``folder`` (valid with the folder's UIDVALIDITY)."""
    size: int
    """RFC822.SIZE in octets (CRLF line endings, as quota counts it)."""
    internaldate: int
    """INTERNALDATE as POSIX seconds."""
    flags: frozenset[str] = frozenset()
    """System flags and keywords, e.g. ``\\Seen``."""
    date: int | None = None
    """``Date:`` header as POSIX seconds, ``None`` when absent or unparseable."""
    from_addr: str = ""
    """Lower-case sender address (``user@example.org``), ``""`` when absent."""
    from_name: str = ""
    """Decoded sender display name."""
    to: tuple[str, ...] = ()
    """Lower-case recipient addresses from ``To:``."""
    subject: str = ""
    """Decoded subject."""
    message_id: str | None = None
    """``Message-ID`` including angle brackets."""
    list_id: str | None = None
    """``List-ID`` value, decoded."""
    attachments: tuple[Attachment, ...] = ()
    """Attachment leaves found in the BODYSTRUCTURE."""
    content_type: str = "text/plain"
    """Top-level ``type/subtype`` of the message."""
    modseq: int | None = None
    """MODSEQ when the server has CONDSTORE."""
    unparsed: bool = False
    """True when the BODYSTRUCTURE could not be parsed; ``attachments`` is then empty."""

    @property
    def sender_domain(self) -> str:
        """Domain part of ``from_addr``, lower-case, ``""`` when unknown."""
        _, _, domain = self.from_addr.rpartition("@")
        return domain

    @property
    def attachment_bytes(self) -> int:
        """Sum of the encoded sizes of all attachments."""
        return sum(a.size for a in self.attachments)

    @property
    def seen(self) -> bool:
        return "\\Seen" in self.flags


@dataclass(frozen=True, slots=True)
class QuotaResource:
    """One resource of one quota root (RFC 9208)."""

    root: str
    """Quota root name (often ``""`` or ``"User quota"``)."""
    resource: str
    """Upper-case resource name: ``STORAGE``, ``MESSAGE``, ..."""
    usage: int
    """Current usage; STORAGE converted to octets (the server counts 1024-octet units)."""
    limit: int | None
    """Limit in the same unit as ``usage``; ``None`` when unlimited."""

    @property
    def percent(self) -> float | None:
        """Usage as a percentage of the limit, ``None`` without a (non-zero) limit."""
        if not self.limit:
            return None
        return 100.0 * self.usage / self.limit


@dataclass(frozen=True, slots=True)
class FolderScan:
    """One folder's scan result."""

    status: FolderStatus
    """The folder as the server described it."""
    messages: tuple[MessageInfo, ...]
    """Every message's metadata, in UID order."""


@dataclass(frozen=True, slots=True)
class Inventory:
    """Everything a scan learned about one mailbox."""

    target: str
    """The TARGET as the user named it (account name or URL without secrets)."""
    scanned_at: int
    """When the scan started, POSIX seconds."""
    folders: tuple[FolderScan, ...]
    """Scanned folders, in listing order."""
    quota: tuple[QuotaResource, ...] | None = None
    """Quota resources of the INBOX's roots; ``None`` when the server reports no quota."""
    capabilities: frozenset[str] = frozenset()
    """Server capabilities (upper-case) after login; empty for local sources."""
    warnings: tuple[str, ...] = field(default=())
    """One line per problem met during the scan (vanished folders, unparsed messages)."""

    def iter_messages(self) -> tuple[MessageInfo, ...]:
        """Return every message of every folder, folder by folder."""
        return tuple(m for f in self.folders for m in f.messages)
