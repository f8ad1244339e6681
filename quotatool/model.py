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


# -- the plan: what a clean run would do, message by message ------------------------------------


@dataclass(frozen=True, slots=True)
class Delete:
    r"""Remove the message (``UID STORE +FLAGS.SILENT (\Deleted)`` then ``UID EXPUNGE``)."""

    @property
    def kind(self) -> str:
        """The action's name in rules files and plans."""
        return "delete"


@dataclass(frozen=True, slots=True)
class Archive:
    """Move the message to an IMAP folder or append it to a local mbox/Maildir."""

    destination: str
    """Expanded destination: a folder name, or ``mbox:PATH`` / ``maildir:PATH``."""
    local: bool
    """True for an ``mbox:`` / ``maildir:`` destination outside the mailbox."""

    @property
    def kind(self) -> str:
        """The action's name in rules files and plans."""
        return "archive"


@dataclass(frozen=True, slots=True)
class OffloadPart:
    """One attachment part that an offload moves to the store."""

    section: str
    """IMAP part specifier of the part."""
    filename: str | None
    """Decoded filename, if the part names one."""
    content_type: str
    """Lower-case ``type/subtype``."""
    size: int
    """Encoded body octets the part holds on the server now."""
    stub_size: int
    """Estimated octets the stub that replaces this part adds to the message."""


@dataclass(frozen=True, slots=True)
class Offload:
    """Move attachment parts to an object store and leave a stub in the rewritten message."""

    store: str
    """Store URL (``file://...``, ``s3://...``) or the name of a store in the config file."""
    parts: tuple[OffloadPart, ...]
    """The parts to move, in section order."""
    include_signed: bool = False
    """The rule opted in to rewriting parts under a signed or encrypted structure."""

    @property
    def kind(self) -> str:
        """The action's name in rules files and plans."""
        return "offload"

    @property
    def stub_size(self) -> int:
        """Estimated octets all stubs add to the message."""
        return sum(p.stub_size for p in self.parts)


Action = Delete | Archive | Offload
"""What a rule does to a message."""


@dataclass(frozen=True, slots=True)
class PlannedAction:
    """One message and what the plan does to it; the real run re-checks all of it first."""

    rule: str
    """Name of the rule that matched."""
    action: Action
    """What to do."""
    folder: str
    """Decoded folder name."""
    uidvalidity: UidValidity
    """The folder's UIDVALIDITY when planned: a different one means the UID is stale."""
    uid: Uid
    """The message's UID."""
    size: int
    """RFC822.SIZE when planned: a different size means the message changed."""
    frees_bytes: int
    """Octets the action is expected to free in the account's quota."""
    flags: tuple[str, ...] = ()
    """The message's flags when planned, sorted."""
    modseq: int | None = None
    """MODSEQ when planned (CONDSTORE), for ``UNCHANGEDSINCE``."""
    date: int = 0
    """The date the rules aged the message by (INTERNALDATE or ``Date:``), POSIX seconds."""
    message_id: str | None = None
    """``Message-ID``, to recognise the message (and copies of it) later."""
    from_addr: str = ""
    """Sender address, for people reading the plan."""
    subject: str = ""
    """Decoded subject, for people reading the plan."""
    note: str | None = None
    """Why ``frees_bytes`` is what it is, when that is not obvious (e.g. same quota root)."""


@dataclass(frozen=True, slots=True)
class SkippedMessage:
    """A message a rule matched but the plan leaves alone, and why."""

    rule: str
    """Name of the rule that matched."""
    folder: str
    """Decoded folder name."""
    uidvalidity: UidValidity
    """The folder's UIDVALIDITY."""
    uid: Uid
    """The message's UID."""
    size: int
    """RFC822.SIZE."""
    reason: str
    """One line: why nothing is done (kept by ``keep_newest``, signed, nothing to offload...)."""


@dataclass(frozen=True, slots=True)
class RuleSummary:
    """What one rule contributes to the plan."""

    rule: str
    """The rule's name."""
    action: str
    """``delete``, ``archive`` or ``offload``."""
    messages: int
    """Messages the plan acts on by this rule."""
    frees_bytes: int
    """Octets those actions free."""
    skipped: int = 0
    """Messages the rule matched but left alone (see :class:`SkippedMessage`)."""


@dataclass(frozen=True, slots=True)
class FolderSummary:
    """What the plan does in one folder."""

    folder: str
    """Decoded folder name."""
    messages: int
    """Messages the plan acts on in this folder."""
    frees_bytes: int
    """Octets those actions free."""


@dataclass(frozen=True, slots=True)
class QuotaProjection:
    """One quota resource now and as the plan projects it afterwards."""

    root: str
    """Quota root name."""
    resource: str
    """Upper-case resource name (``STORAGE``, ``MESSAGE``)."""
    usage: int
    """Usage now (STORAGE in octets)."""
    limit: int | None
    """Limit in the same unit, ``None`` when unlimited."""
    projected_usage: int | None
    """Usage after the plan; ``None`` for resources the plan cannot predict."""


@dataclass(frozen=True, slots=True)
class PlanSummary:
    """Totals of a plan."""

    messages: int
    """Messages the plan acts on."""
    frees_bytes: int
    """Octets the plan is expected to free in total."""
    by_rule: tuple[RuleSummary, ...]
    """One entry per rule, in rules-file order (rules that matched nothing included)."""
    by_folder: tuple[FolderSummary, ...]
    """One entry per folder with actions, in inventory order."""
    skipped: int = 0
    """Messages matched but left alone."""


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything a clean run would do: the dry run prints it, the real run executes it."""

    target: str
    """The TARGET the inventory was scanned from."""
    account: str
    """Account name used for ``{account}`` in archive templates."""
    rules_file: str
    """The rules file the plan was made from, as the user named it."""
    created_at: int
    """The ``now`` the rules were evaluated at, POSIX seconds."""
    quota: tuple[QuotaProjection, ...] | None
    """Quota now and projected; ``None`` when the source reports no quota."""
    actions: tuple[PlannedAction, ...]
    """Planned actions, folder by folder in inventory order, then by UID."""
    skipped: tuple[SkippedMessage, ...]
    """Matched messages left alone, in the same order."""
    summary: PlanSummary
    """Totals."""
    notes: tuple[str, ...] = ()
    """Plan-wide remarks (e.g. that archiving within the quota root frees nothing)."""


# -- offloaded objects ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredObject:
    """An object as verified in a store."""

    key: str
    """Content-addressed key."""
    size: int
    """Octets, counted by us."""
    sha256: str
    """SHA-256 in lower-case hex, computed by us."""
    url: str
    """Where it is, as a URL (``file://...``, ``s3://...``): what a stub records."""
