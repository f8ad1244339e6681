"""Protocols the real run needs, and the values that cross them.

Kept apart from :mod:`quotatool.ports` (the read-only scan ports) so the read path stays
small. Like ``ports.py`` this module imports only the model: adapters implement these,
``services/execute.py`` uses them, tests fake them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from quotatool.errors import ExitCode, QuotatoolError
from quotatool.model import QuotaResource, StoredObject, Uid, UidValidity

__all__ = [
    "AppendedMessage",
    "ArchiveBlock",
    "ArchiveItem",
    "Data",
    "DestinationError",
    "JournalRecord",
    "LocalArchive",
    "MailboxWriter",
    "MessageState",
    "ObjectMismatchError",
    "ObjectMissingError",
    "ObjectStore",
    "OpenedFolder",
    "StepState",
    "StoreConfig",
    "StoreError",
    "StoreUnavailableError",
    "WriteJournal",
]

StepState = Literal["intent", "copied", "written", "appended", "aborted", "done"]
"""Where a step stands in the journal.

``intent``: about to send the mutating command(s); ``copied``: the archive copy in an IMAP
folder is verified (COPY fallback); ``written``: the local archive file is written, synced and
verified; ``appended``: the rewritten message of an offload or restore was APPENDed (its UID
is in the detail) but not yet verified; ``aborted``: a torn local write was rolled back, the
step starts over; ``done``: the original is gone and the archive or rewritten copy verified.
"""


class DestinationError(QuotatoolError):
    """An archive destination refused the copy: the originals of that batch stay.

    The server said NO to CREATE, COPY or MOVE (over quota, no permission), or a local archive
    could not be written, synced or verified. The run goes on with the other batches and ends
    as partial; any other error (a lost connection, a journal that cannot be written) stops it.
    """


@dataclass(frozen=True, slots=True)
class OpenedFolder:
    """A folder as SELECT, EXAMINE or STATUS describes it."""

    name: str
    """Decoded folder name."""
    uidvalidity: UidValidity
    """UIDVALIDITY now."""
    uidnext: int | None = None
    """UIDNEXT now: every message added later gets a UID at least this large."""
    highestmodseq: int | None = None
    """HIGHESTMODSEQ with CONDSTORE."""


@dataclass(frozen=True, slots=True)
class MessageState:
    """One message as a FETCH describes it right before it is touched."""

    uid: Uid
    """The UID."""
    size: int
    """RFC822.SIZE."""
    flags: frozenset[str]
    """Flags now."""
    internaldate: int
    """INTERNALDATE as POSIX seconds (COPY and MOVE keep it, RFC 3501 §6.4.7)."""
    message_id: str | None = None
    """``Message-ID`` header value, stripped, or ``None``."""
    modseq: int | None = None
    """MODSEQ with CONDSTORE."""

    def identity(self) -> tuple[int, int, str | None]:
        """Return what a copy of this message in another folder shares with it."""
        return (self.size, self.internaldate, self.message_id)


class MailboxWriter(Protocol):
    """A read-write IMAP session: every mutation by UID, in the selected folder."""

    def describe(self) -> str:
        """Return the target as the user may see it (never with secrets)."""

    def capabilities(self) -> frozenset[str]:
        """Return upper-case capabilities after login."""

    def quota(self) -> tuple[QuotaResource, ...] | None:
        """Return the INBOX's quota resources, or ``None`` when none is reported."""

    def select(self, folder: str) -> OpenedFolder:
        """SELECT ``folder`` read-write; FolderNotFoundError when it does not exist."""

    def examine(self, folder: str) -> OpenedFolder:
        """EXAMINE ``folder`` (read-only), to verify copies made into it."""

    def status(self, folder: str) -> OpenedFolder | None:
        """Return STATUS UIDVALIDITY UIDNEXT of a folder, ``None`` when it does not exist."""

    def create(self, folder: str) -> None:
        """CREATE ``folder`` (an archive destination)."""

    def states(self, uids: Sequence[Uid]) -> dict[Uid, MessageState]:
        """FETCH size, flags, dates (and MODSEQ) of ``uids`` in the selected folder.

        UIDs that no longer exist are absent from the result.
        """

    def states_from(self, first_uid: int) -> dict[Uid, MessageState]:
        """FETCH the same for every message with a UID of at least ``first_uid``."""

    def mark_deleted(self, uids: Sequence[Uid], unchanged_since: int | None) -> set[Uid]:
        r"""``UID STORE uids [(UNCHANGEDSINCE m)] +FLAGS.SILENT (\Deleted)``.

        Returns the UIDs the server reported as MODIFIED (not flagged).
        """

    def uid_expunge(self, uids: Sequence[Uid]) -> None:
        """``UID EXPUNGE uids`` of a non-empty set; never a bare EXPUNGE (SAFETY.md fact 1)."""

    def present(self, uids: Sequence[Uid]) -> set[Uid]:
        """Return which of ``uids`` still exist in the selected folder (UID SEARCH)."""

    def move(self, uids: Sequence[Uid], destination: str) -> dict[Uid, Uid]:
        """``UID MOVE``; return the COPYUID map source UID → destination UID."""

    def copy(self, uids: Sequence[Uid], destination: str) -> dict[Uid, Uid]:
        """``UID COPY``; return the COPYUID map source UID → destination UID."""

    def fetch_raw(self, uids: Sequence[Uid]) -> dict[Uid, bytes]:
        """Return the raw messages (``BODY.PEEK[]``, which sets no Seen flag)."""

    def append(
        self, folder: str, raw: bytes, flags: frozenset[str], internaldate: int
    ) -> AppendedMessage:
        """APPEND ``raw`` with ``flags`` and INTERNALDATE; return what APPENDUID says.

        Raises DestinationError when the server refuses (over quota, too big): nothing was
        stored. A lost connection raises ServerUnavailableError: the message may or may not
        be stored, and the caller must search for its marker before anything else (fact 4).
        """

    def search_header(self, name: str, value: str) -> list[Uid]:
        """``UID SEARCH HEADER name value`` in the selected folder (a substring match).

        An empty ``value`` finds every message that has the field (RFC 3501 §6.4.4).
        """

    def close(self) -> None:
        """Log out (LOGOUT never expunges, unlike CLOSE: RFC 3501 §6.4.2)."""


@dataclass(frozen=True, slots=True)
class AppendedMessage:
    """Where an APPEND put a message, from its ``APPENDUID`` response code (RFC 4315 §3)."""

    uidvalidity: UidValidity
    """The destination's UIDVALIDITY as the server reported it."""
    uid: Uid
    """The new message's UID."""


@dataclass(frozen=True, slots=True)
class ArchiveItem:
    """One message to append to a local archive."""

    key: str
    """Stable, unique name of the message (folder, UIDVALIDITY, UID), safe in a file name."""
    raw: bytes
    """The message exactly as fetched."""
    sha256: str
    """Hex SHA-256 of ``raw``."""
    internaldate: int
    """INTERNALDATE, for the mbox ``From`` line and the Maildir file name."""
    flags: frozenset[str] = frozenset()
    """IMAP flags, kept as Maildir info letters."""


@dataclass(frozen=True, slots=True)
class ArchiveBlock:
    """Where one batch goes in an mbox file, recorded in the journal before it is written."""

    offset: int
    """File size before the batch: a torn write is cut back to here."""
    length: int
    """Octets the batch adds."""
    sha256: str
    """Hex SHA-256 of those octets."""


class LocalArchive(Protocol):
    """Local mbox (mboxrd, optionally gzip) and Maildir archives."""

    def prepare(self, destination: str, items: Sequence[ArchiveItem]) -> ArchiveBlock | None:
        """Return where ``items`` will go in an mbox (``None`` for a Maildir).

        Raises ArchiveError when the destination cannot be created.
        """

    def write(
        self, destination: str, items: Sequence[ArchiveItem], block: ArchiveBlock | None
    ) -> None:
        """Append ``items``, fsync file and directory, re-read and verify every hash.

        Idempotent for a Maildir (stable file names). Raises ArchiveError on any failure.
        """

    def repair(self, destination: str, block: ArchiveBlock) -> bool:
        """Settle an mbox batch whose write may have been torn by a crash.

        Returns True when the whole block is there and verified; otherwise cuts the file back
        to ``block.offset`` (only when nothing follows the block) and returns False.
        """


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One line of the journal: a step of one message, before or after it acts."""

    plan_id: str
    """The plan this step belongs to."""
    folder: str
    """Decoded source folder."""
    uidvalidity: UidValidity
    """Its UIDVALIDITY."""
    uid: Uid
    """The message."""
    action: str
    """``delete``, ``archive``, ``offload`` or ``restore``."""
    destination: str | None
    """Archive destination (folder or ``mbox:``/``maildir:`` path), ``None`` for delete."""
    state: StepState
    """Where the step stands."""
    detail: Mapping[str, Any] = field(default_factory=dict)
    """What a resume needs: destination UIDNEXT, COPYUID, SHA-256, mbox block."""


class WriteJournal(Protocol):
    """A durable record of each step, written before and after it acts."""

    def write(self, records: Sequence[JournalRecord]) -> None:
        """Store ``records`` durably as one transaction, or raise JournalError."""

    def latest(
        self, folder: str, uidvalidity: UidValidity, uids: Sequence[Uid]
    ) -> dict[Uid, JournalRecord]:
        """Return the last record of each UID (from any plan), if there is one."""

    def pending_local(self) -> list[JournalRecord]:
        """Return the local-archive steps whose last record is ``intent``."""


# -- object stores (offload and restore) -----------------------------------------------------------

Data = bytes | Iterable[bytes]
"""A payload: whole, or as chunks streamed from elsewhere."""


class StoreError(QuotatoolError):
    """An object store failed or refused an operation."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached (server down, network, timeout)."""

    exit_code = ExitCode.UNAVAILABLE


class ObjectMissingError(StoreError):
    """The object is not in the store."""

    exit_code = ExitCode.NOT_FOUND


class ObjectMismatchError(StoreError):
    """Data does not match its recorded size or SHA-256 (on the way in, or as stored)."""


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """How to reach a store, beyond its URL (a ``[stores.NAME]`` table of the config file).

    Secrets arrive resolved: the config layer resolves secret specs when a store is opened.
    """

    endpoint: str | None = None
    """S3 API endpoint URL (MinIO, R2, B2, Wasabi...); ``None`` for AWS."""
    region: str | None = None
    """S3 region; ``None`` lets the library decide (``us-east-1`` for most non-AWS servers)."""
    access_key_id: str | None = field(default=None, repr=False)
    """S3 access key id; ``None`` to use the environment or instance credentials."""
    secret_access_key: str | None = field(default=None, repr=False)
    """S3 secret access key."""
    session_token: str | None = field(default=None, repr=False)
    """S3 session token for temporary credentials."""
    virtual_hosted: bool = False
    """Use ``bucket.host`` URLs instead of ``host/bucket`` (path style works everywhere)."""
    allow_http: bool = False
    """Allow a plain-HTTP endpoint (a loopback test server); off by default."""
    timeout: float = 60.0
    """Seconds one request may take."""
    retries: int = 3
    """Retries of a failed request before the store is reported unavailable."""
    link_url: str | None = None
    """Template of a human-facing link shown in the stub (``{key}``, ``{sha256}``...)."""


class ObjectStore(Protocol):
    """A place that keeps payloads under content-addressed keys (``quotatool.storage``)."""

    def describe(self) -> str:
        """Return the store as the user may see it (never with secrets)."""

    def url_for(self, key: str) -> str:
        """Return the URL of ``key`` in this store (recorded in stubs)."""

    def put(self, key: str, data: Data, *, sha256: str, size: int) -> StoredObject:
        """Store ``data`` under ``key`` and return it verified.

        The data's SHA-256 and size are computed while it streams; when they differ from
        ``sha256`` / ``size`` nothing is stored (ObjectMismatchError). An object already
        stored under ``key`` with the right content is kept (a retry is idempotent); one that
        does not verify is replaced.
        """

    def get(self, key: str) -> Iterator[bytes]:
        """Yield the object's octets in chunks; ObjectMissingError when there is none."""

    def head(self, key: str) -> int | None:
        """Return the stored object's size, ``None`` when there is none."""

    def verify(self, key: str, *, sha256: str, size: int) -> StoredObject:
        """Read the object back and check size and SHA-256 (ObjectMismatchError if not)."""
