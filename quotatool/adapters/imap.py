"""IMAP source: the only module that imports imapclient.

imapclient handles the connection, TLS, authentication and the small commands (LIST,
EXAMINE, GETQUOTAROOT). The one big command of a scan, the metadata ``UID FETCH``, is written
to the socket directly and its responses are read by :mod:`quotatool.adapters.fetch_parser`:
imapclient's general response parser costs about 0.3 ms per message, which turns a
100,000-message scan into half a minute (measured; see bench/scan.py).
"""

from __future__ import annotations

import contextlib
import functools
import imaplib
import select
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer as Buffer

import imapclient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from quotatool.adapters.fetch_parser import FetchStreamParser, RawFetch
from quotatool.config.targets import AuthMechanism, ImapTarget
from quotatool.core.bodystructure import BodystructureError, summarize
from quotatool.core.headers import parse_header_fields
from quotatool.errors import (
    AuthError,
    ConfigError,
    FolderNotFoundError,
    ProtocolError,
    QuotatoolError,
    ServerUnavailableError,
    TlsError,
)
from quotatool.model import (
    FolderRef,
    FolderStatus,
    MessageInfo,
    QuotaResource,
    Uid,
    UidValidity,
)
from quotatool.ports import Progress, WarningSink

TraceSink = Callable[[str], None]
SecretProvider = Callable[[], str]

# The six fields DESIGN.md §1 names: enough for the sender, year, list and subject reports.
HEADER_FIELDS = b"FROM TO SUBJECT DATE MESSAGE-ID LIST-ID"
FETCH_ITEMS = (
    b"UID RFC822.SIZE INTERNALDATE FLAGS BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS ("
    + HEADER_FIELDS
    + b")]"
)
_READ_CHUNK = 256 * 1024
# Feed the parser at least this much when it has already arrived (see _read_ready).
_FEED_AT_LEAST = 64 * 1024
_SPECIAL_USE = frozenset(
    {"\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash"}
)
_TRACE_LINE_MAX = 300


@dataclass(frozen=True, slots=True)
class ImapConnectOptions:
    """How to reach and log in to an IMAP account."""

    target: ImapTarget
    """Host, port, user and TLS mode."""
    secret: SecretProvider
    """Called once, at login, for the password or access token."""
    auth: AuthMechanism = "login"
    """SASL mechanism or plain LOGIN."""
    ca_file: Path | None = None
    """An extra CA certificate to trust (Dovecot's self-signed one in tests)."""
    timeout: float = 60.0
    """Seconds to wait for the server before giving up."""
    trace: TraceSink | None = None
    """Receives the redacted protocol conversation (``--debug``)."""


class _Trace:
    """A redacting protocol trace (SAFETY.md fact 9).

    imapclient's logger redacts LOGIN and AUTHENTICATE but logs everything else, bodies
    included, and imaplib's own debug output prints the password; so the trace hooks the
    connection's send/readline/read itself. After a LOGIN or AUTHENTICATE command every client
    line is redacted until the server's tagged answer; literals are never shown, only sizes.
    """

    def __init__(self, sink: TraceSink) -> None:
        self._sink = sink
        self._redact_until: bytes | None = None

    def client(self, data: bytes) -> None:
        for line in data.split(b"\r\n"):
            if not line:
                continue
            words = line.split(b" ", 3)
            command = words[1].upper() if len(words) > 1 else b""
            if command in (b"LOGIN", b"AUTHENTICATE"):
                shown = b" ".join(words[:2] + ([words[2]] if command == b"AUTHENTICATE" else []))
                self._redact_until = words[0]
                self._sink("> " + shown.decode("ascii", "replace") + " [redacted]")
            elif self._redact_until is not None:
                self._sink("> [redacted]")
            else:
                self._sink("> " + _clip(line))

    def server(self, line: bytes) -> None:
        stripped = line.rstrip(b"\r\n ")
        if self._redact_until is not None and stripped.startswith(self._redact_until + b" "):
            self._redact_until = None
        self._sink("< " + _clip(stripped))

    def literal(self, size: int) -> None:
        self._sink(f"< [literal of {size} bytes not shown]")

    def note(self, text: str) -> None:
        self._sink("* " + text)


def _clip(line: bytes) -> str:
    text = line.decode("utf-8", "replace")
    if len(text) > _TRACE_LINE_MAX:
        return text[:_TRACE_LINE_MAX] + f"... [{len(text) - _TRACE_LINE_MAX} more]"
    return text


def _install_trace(imap: imaplib.IMAP4, trace: _Trace) -> None:
    """Wrap the imaplib connection's I/O methods so every byte passes the redacting trace."""
    send, readline, read = imap.send, imap.readline, imap.read

    def traced_send(data: Buffer) -> None:
        trace.client(bytes(data))
        send(data)

    def traced_readline() -> bytes:
        line = readline()
        trace.server(line)
        return line

    def traced_read(size: int) -> bytes:
        trace.literal(size)
        return read(size)

    imap.send = traced_send  # type: ignore[method-assign]
    imap.readline = traced_readline  # type: ignore[method-assign]
    imap.read = traced_read  # type: ignore[method-assign]


@functools.lru_cache(maxsize=8)
def _ssl_context(ca_file: Path | None) -> ssl.SSLContext:
    """Return the verifying client context, one per CA file for the whole process.

    Loading the system CA bundle costs ~50 ms and holds the GIL; ``check --all --jobs N``
    connects to many accounts at once. An SSLContext is safe to share between threads.
    """
    context = ssl.create_default_context(purpose=ssl.Purpose.SERVER_AUTH)
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load CA file {ca_file}: {exc}") from exc
    return context


def _connection_error(exc: BaseException, where: str) -> QuotatoolError:
    """Translate a connect-time exception into one readable error."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TlsError(
            f"certificate of {where} is not trusted: {exc.verify_message}",
            hint="if the server uses a private CA, pass its certificate with --ca-file PATH",
        )
    if isinstance(exc, ssl.SSLError):
        return TlsError(f"TLS handshake with {where} failed: {exc.reason or exc}")
    if isinstance(exc, ConnectionRefusedError):
        return ServerUnavailableError(f"connection to {where} refused", hint="is the server up?")
    if isinstance(exc, socket.gaierror):
        return ServerUnavailableError(f"cannot resolve the host of {where}: {exc.strerror}")
    if isinstance(exc, TimeoutError | socket.timeout):
        return ServerUnavailableError(f"connection to {where} timed out")
    if isinstance(exc, imaplib.IMAP4.abort | IMAPClientAbortError | EOFError):
        return ServerUnavailableError(f"connection to {where} was closed: {exc}")
    if isinstance(exc, OSError):
        return ServerUnavailableError(f"cannot connect to {where}: {exc.strerror or exc}")
    return ProtocolError(f"{where}: {exc}")


class ImapSource:
    """A read-only view of an IMAP account (ports.MailSource)."""

    def __init__(self, options: ImapConnectOptions) -> None:
        self._options = options
        self._where = f"{options.target.host}:{options.target.port}"
        self._trace = _Trace(options.trace) if options.trace else None
        self._client: Any = self._connect()
        self._capabilities: frozenset[str] = frozenset()
        try:
            self._login()
            self._capabilities = frozenset(
                c.decode("ascii", "replace").upper() for c in self._client.capabilities()
            )
            if "CONDSTORE" in self._capabilities and "ENABLE" in self._capabilities:
                # RFC 7162 §3.1: after ENABLE CONDSTORE, EXAMINE reports HIGHESTMODSEQ.
                self._client.enable("CONDSTORE")
        except QuotatoolError:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise _connection_error(exc, self._where) from exc

    # -- connection -------------------------------------------------------------------------

    def _connect(self) -> Any:
        target = self._options.target
        timeout = imapclient.SocketTimeout(self._options.timeout, self._options.timeout)
        context = _ssl_context(self._options.ca_file) if target.tls != "none" else None
        try:
            client = imapclient.IMAPClient(
                target.host,
                port=target.port,
                ssl=target.tls == "implicit",
                ssl_context=context,
                timeout=timeout,
            )
        except Exception as exc:
            raise _connection_error(exc, self._where) from exc
        # imapclient sends every imaplib line to a logger at debug level; we trace ourselves.
        client._imap._mesg = lambda *_args: None
        if self._trace is not None:
            self._trace.note(f"connected to {self._where} ({target.tls} TLS)")
            self._trace.server(client.welcome)
            _install_trace(client._imap, self._trace)
        if target.tls == "starttls":
            self._starttls(client, context)
        return client

    def _starttls(self, client: Any, context: ssl.SSLContext | None) -> None:
        # SAFETY.md promise 12: fail closed before any credential is sent.
        if client.welcome.upper().startswith(b"* PREAUTH"):
            client.shutdown()
            raise TlsError(
                f"{self._where} greeted with PREAUTH, so STARTTLS is impossible; "
                "refusing to continue unencrypted"
            )
        try:
            offered = b"STARTTLS" in client.capabilities()
        except Exception as exc:
            client.shutdown()
            raise _connection_error(exc, self._where) from exc
        if not offered:
            client.shutdown()
            raise TlsError(
                f"{self._where} does not offer STARTTLS",
                hint="use imaps:// if the server has implicit TLS; plain text needs --tls none",
            )
        try:
            client.starttls(context)
        except Exception as exc:
            with contextlib.suppress(OSError):
                client.shutdown()
            raise _connection_error(exc, self._where) from exc

    def _login(self) -> None:
        options = self._options
        user = options.target.user
        secret = options.secret()
        try:
            if options.auth == "login":
                self._client.login(user, secret)
            elif options.auth == "plain":
                self._client.plain_login(user, secret)
            elif options.auth == "xoauth2":
                self._client.oauth2_login(user, secret)
            else:
                self._client.oauthbearer_login(user, secret)
        except LoginError as exc:
            raise AuthError(
                f"{self._where} refused the login of {user!r}: {_server_text(exc)}",
                hint="check the user name and the password (or token) source",
            ) from exc

    # -- MailSource -------------------------------------------------------------------------

    def describe(self) -> str:
        return self._options.target.display()

    def capabilities(self) -> frozenset[str]:
        return self._capabilities

    def quota(self) -> tuple[QuotaResource, ...] | None:
        if "QUOTA" not in self._capabilities:
            return None
        try:
            _roots, quotas = self._client.get_quota_root("INBOX")
        except Exception as exc:
            raise self._error(exc, "GETQUOTAROOT INBOX") from exc
        result: list[QuotaResource] = []
        for q in quotas:
            resource = str(q.resource).upper()
            # RFC 9208 §5.1: STORAGE counts units of 1024 octets.
            factor = 1024 if resource == "STORAGE" else 1
            limit = int(q.limit) * factor if q.limit is not None else None
            result.append(
                QuotaResource(
                    root=str(q.quota_root),
                    resource=resource,
                    usage=int(q.usage) * factor,
                    limit=limit,
                )
            )
        return tuple(result) if result else None

    def list_folders(self) -> list[FolderRef]:
        try:
            listing = self._client.list_folders()
        except Exception as exc:
            raise self._error(exc, "LIST") from exc
        folders: list[FolderRef] = []
        for flags, delimiter, name in listing:
            names = {
                f.decode("ascii", "replace") if isinstance(f, bytes) else str(f) for f in flags
            }
            lower = {n.lower() for n in names}
            special = next((n for n in sorted(names) if n in _SPECIAL_USE), None)
            folders.append(
                FolderRef(
                    name=str(name),
                    delimiter=delimiter.decode("ascii", "replace")
                    if isinstance(delimiter, bytes)
                    else delimiter,
                    special_use=special,
                    selectable=not ({"\\noselect", "\\nonexistent"} & lower),
                )
            )
        return folders

    def scan_folder(
        self, folder: FolderRef, warn: WarningSink, progress: Progress
    ) -> tuple[FolderStatus, Iterator[MessageInfo]]:
        try:
            response = self._client.select_folder(folder.name, readonly=True)
        except IMAPClientError as exc:
            if isinstance(exc, IMAPClientAbortError):
                raise self._error(exc, f"EXAMINE {folder.name}") from exc
            raise FolderNotFoundError(
                f"folder {folder.name!r} cannot be opened: {_server_text(exc)}"
            ) from exc
        except Exception as exc:
            raise self._error(exc, f"EXAMINE {folder.name}") from exc
        status = FolderStatus(
            name=folder.name,
            uidvalidity=UidValidity(int(response.get(b"UIDVALIDITY", 0))),
            messages=int(response.get(b"EXISTS", 0)),
            uidnext=_opt_int(response.get(b"UIDNEXT")),
            highestmodseq=_opt_int(response.get(b"HIGHESTMODSEQ")),
            special_use=folder.special_use,
        )
        return status, self._fetch_all(folder.name, status, warn, progress)

    def close(self) -> None:
        client = getattr(self, "_client", None)
        if client is None:
            return
        self._client = None
        try:
            client.logout()
        except Exception:
            with contextlib.suppress(Exception):
                client.shutdown()

    # -- the bulk FETCH ---------------------------------------------------------------------

    def _fetch_all(
        self, folder: str, status: FolderStatus, warn: WarningSink, progress: Progress
    ) -> Iterator[MessageInfo]:
        if status.messages == 0:
            return
        imap = self._client._imap
        items = FETCH_ITEMS + (b" MODSEQ" if "CONDSTORE" in self._capabilities else b"")
        tag: bytes = imap._new_tag()
        command = tag + b" UID FETCH 1:* (" + items + b")\r\n"
        parser = FetchStreamParser(tag)
        flag_sets: dict[tuple[str, ...], frozenset[str]] = {}
        received = 0
        try:
            # Bypass the traced imap.send: the trace is written here, once.
            imap.sock.sendall(command)
            if self._trace is not None:
                self._trace.client(command)
            reader = imap.file
            while not parser.done:
                data = _read_ready(reader, imap.sock)
                if not data:
                    raise ServerUnavailableError(
                        f"{self._where} closed the connection while {folder!r} was read"
                    )
                received += len(data)
                batch = parser.feed(data)
                for raw in batch:
                    yield _to_message(folder, raw, flag_sets, warn)
                if batch:
                    progress.advance(len(batch))
        except QuotatoolError:
            raise
        except Exception as exc:
            raise self._error(exc, f"UID FETCH in {folder}") from exc
        finally:
            imap.tagged_commands.pop(tag, None)
        if self._trace is not None:
            self._trace.note(f"{received} bytes of FETCH responses read (not shown)")
            state, text = parser.status or ("?", "")
            self._trace.server(tag + b" " + f"{state} {text}".encode())
        if parser.status is not None and parser.status[0] != "OK":
            warn(f"{folder}: the server ended the FETCH with {parser.status[0]} {parser.status[1]}")

    def _error(self, exc: BaseException, doing: str) -> QuotatoolError:
        if isinstance(exc, QuotatoolError):
            return exc
        if isinstance(exc, IMAPClientAbortError | imaplib.IMAP4.abort | OSError | EOFError):
            return ServerUnavailableError(f"connection to {self._where} lost during {doing}")
        return ProtocolError(f"{self._where}: {doing} failed: {_server_text(exc)}")


def _read_ready(reader: Any, sock: socket.socket) -> bytes:
    """Read what the server sent: wait for some bytes, then take what has arrived since.

    A TLS socket hands over one record per read, and Dovecot's records are a few KiB; the
    parser's cost per call made feeding it record by record an eighth of the scan's CPU
    (bench/scan.py: 3.49 s against 3.08 s for 100,000 messages, same rounds).
    Only bytes already decrypted or waiting in the kernel are added, so nothing waits longer.
    """
    data = reader.read1(_READ_CHUNK)
    if not data or len(data) >= _FEED_AT_LEAST:
        return bytes(data)
    pieces = [data]
    size = len(data)
    pending = getattr(sock, "pending", None)
    poller = select.poll()  # not select.select: no limit on the descriptor's number
    poller.register(sock, select.POLLIN)
    while size < _FEED_AT_LEAST:
        if not (pending is not None and pending()) and not poller.poll(0):
            break
        more = reader.read1(_READ_CHUNK)
        if not more:
            break
        pieces.append(more)
        size += len(more)
    return b"".join(pieces)


def _to_message(
    folder: str,
    raw: RawFetch,
    flag_sets: dict[tuple[str, ...], frozenset[str]],
    warn: WarningSink,
) -> MessageInfo:
    """Turn one parsed FETCH response into a MessageInfo; a bad one becomes ``unparsed``."""
    flags = flag_sets.get(raw.flags)
    if flags is None:
        # Most messages share one of a handful of flag sets: share the frozensets too.
        flags = flag_sets[raw.flags] = frozenset(raw.flags)
    content_type = "text/plain"
    attachments: tuple[Any, ...] = ()
    unparsed = False
    if raw.error is not None:
        unparsed = True
        warn(f"{folder}: UID {raw.uid}: {raw.error}; counted with its full size as unparsed")
    else:
        try:
            content_type, attachments = summarize(raw.bodystructure)
        except BodystructureError as exc:
            unparsed = True
            warn(
                f"{folder}: UID {raw.uid}: BODYSTRUCTURE not understood ({exc}); "
                "counted with its full size as unparsed"
            )
    fields = parse_header_fields(raw.header)
    # Positional, in field order: 1.5 µs a message less than keywords (100,000 per scan); the
    # order is checked field by field in tests/unit/test_imap_message.py.
    return MessageInfo(
        folder,
        Uid(raw.uid),
        raw.size,
        raw.internaldate,
        flags,
        fields.date,
        fields.from_addr,
        fields.from_name,
        fields.to,
        fields.subject,
        fields.message_id,
        fields.list_id,
        attachments,
        content_type,
        raw.modseq,
        unparsed,
    )


def _opt_int(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, tuple | list):
        value = value[0] if value else None
    if isinstance(value, bytes | str | int):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _server_text(exc: BaseException) -> str:
    text = str(exc)
    for prefix in ("login failed: ", "select failed: ", "examine failed: "):
        if text.lower().startswith(prefix):
            text = text[len(prefix) :]
    return text.strip() or exc.__class__.__name__
