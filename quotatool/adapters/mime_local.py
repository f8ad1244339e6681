"""Build the MIME tree of a raw message the way an IMAP server's BODYSTRUCTURE describes it.

Local sources (Maildir, mbox) have no server to ask, so this module answers what Dovecot would:
the same RFC 3501 §6.4.5 section numbers, lower-case types, decoded parameters and file names,
and part sizes in octets *as the server counts them* (every line end as CRLF, RFC 3501 §2.3.4).
The result equals :func:`quotatool.core.bodystructure.to_mime_tree` applied to Dovecot's
BODYSTRUCTURE for the same message (the tests check this against a real Dovecot).

Why the boundaries are split here and not by :mod:`email`: the ``email`` parser keeps no byte
offsets, and a part's size cannot be recovered from its parsed payload (``get_payload`` drops
the line end before a boundary inconsistently, and re-serialising changes the bytes; see
SAFETY.md fact 6). So the raw bytes are walked by :mod:`quotatool.core.mimelines` (shared with
the splicer) to find each part's header block and body range (RFC 2046 §5.1.1, with Dovecot's
leniencies: a boundary line only has to *start* with ``--boundary``, the longest matching
boundary wins, and an enclosing boundary ends every part inside it), and :mod:`email` is used
only to read each part's header fields.
"""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from quotatool.core.headers import decode_words
from quotatool.core.mimelines import TreeWalker
from quotatool.errors import ParseError
from quotatool.model import MimePart

__all__ = [
    "MimeParseError",
    "PartHeaders",
    "mime_tree_from_bytes",
    "plain_type",
    "read_part_headers",
]

# Dovecot adds this parameter to every text/* part that names no charset (imap-bodystructure.c,
# params_write; RFC 2045 §5.2 makes us-ascii the default).
_DEFAULT_CHARSET = ("charset", "us-ascii")

_header_parser = email.parser.Parser(policy=email.policy.compat32)
_CONTENT_FIELD = re.compile(rb"(?im)^content-(?:type|disposition)[ \t]*:")
_TEXT_TYPE = re.compile(
    rb"(?i)(?:^|\n)content-type[ \t]*:[ \t]*(text/[a-z0-9.+-]+)[ \t]*(?:;|\r?\n)"
)
_CACHE_MAX = 512
_CACHE_BLOCK = 400
_cache: dict[tuple[bytes, str], PartHeaders] = {}


class MimeParseError(ParseError):
    """A message whose MIME structure cannot be read."""


@dataclass(frozen=True, slots=True)
class PartHeaders:
    """The MIME header fields of one part, decoded."""

    content_type: str
    """Lower-case ``type/subtype`` (the default when the field is absent or invalid)."""
    params: tuple[tuple[str, str], ...]
    """Content-Type parameters: names lower-case, RFC 2231 / RFC 2047 values decoded."""
    encoding: str
    """Lower-case Content-Transfer-Encoding, ``7bit`` by default."""
    disposition: str | None
    """Lower-case Content-Disposition value, ``None`` when absent."""
    disposition_params: tuple[tuple[str, str], ...]
    """Content-Disposition parameters, decoded like ``params``."""
    content_id: str | None
    """Content-ID as written, unfolded."""

    @property
    def boundary(self) -> str | None:
        return dict(self.params).get("boundary") if self.content_type[:10] == "multipart/" else None

    @property
    def filename(self) -> str | None:
        """Return the disposition's ``filename``, else the type's ``name`` (as Dovecot does)."""
        name = dict(self.disposition_params).get("filename")
        if name is None:
            name = dict(self.params).get("name")
        return name


def _text(raw: bytes) -> str:
    # RFC 6532 headers are UTF-8; older 8-bit mail is mostly Latin-1, which decodes any octet.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _decode_param_list(raw: Sequence[tuple[str, Any]] | None) -> tuple[tuple[str, str], ...]:
    if not raw:
        return ()
    out: list[tuple[str, str]] = []
    # The first pair is the field's main value (the type or the disposition itself).
    for name, value in raw[1:]:
        if not name:
            continue
        # email joins RFC 2231 continuations and returns (charset, language, text) for
        # extended values; collapse_rfc2231_value decodes those to str.
        text = email.utils.collapse_rfc2231_value(value)
        out.append((name.lower(), decode_words(text)))
    return tuple(out)


def read_part_headers(block: bytes, default_type: str = "text/plain") -> PartHeaders:
    """Read the MIME fields of a raw header block (LF or CRLF line ends).

    Raises MimeParseError (a ParseError) when the block cannot be read, and nothing else.
    """
    try:
        return _read_part_headers(block, default_type)
    except Exception as exc:
        # See mime_tree_from_bytes: any exception from the email package means "unreadable".
        raise MimeParseError(f"header fields not readable: {type(exc).__name__}: {exc}") from exc


def _read_part_headers(block: bytes, default_type: str) -> PartHeaders:
    # Part headers repeat a lot (``Content-Type: text/plain; charset=utf-8``) and the email
    # parser costs ~100 µs a block: remember the short ones.
    key = (block, default_type)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    headers = _parse_part_headers(block, default_type)
    if len(block) <= _CACHE_BLOCK:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[key] = headers
    return headers


def _parse_part_headers(block: bytes, default_type: str) -> PartHeaders:
    msg = _header_parser.parsestr(_text(block), headersonly=True)
    msg.set_default_type(default_type)
    ctype = msg.get_content_type()
    params = _decode_param_list(msg.get_params(header="content-type"))
    if ctype[:5] == "text/" and not any(name == "charset" for name, _ in params):
        params = (*params, _DEFAULT_CHARSET)
    cte = msg.get("content-transfer-encoding")
    encoding = " ".join(str(cte).split()).lower() if cte is not None else ""
    disposition = msg.get_content_disposition()
    cid = msg.get("content-id")
    return PartHeaders(
        content_type=ctype,
        params=params,
        encoding=encoding or "7bit",
        disposition=disposition,
        disposition_params=_decode_param_list(msg.get_params(header="content-disposition"))
        if disposition is not None
        else (),
        content_id=" ".join(str(cid).split()) or None if cid is not None else None,
    )


class _Walker(TreeWalker[PartHeaders, MimePart]):
    """Build the MIME tree of a raw message, sizes counted as the server counts them."""

    def vsize(self, start: int, end: int) -> int:
        """Count ``raw[start:end]`` as the server does, every bare LF as CRLF."""
        if end <= start:
            return 0
        raw = self.raw
        return end - start + raw.count(b"\n", start, end) - raw.count(b"\r\n", start, end)

    def read_headers(self, block: bytes, default_type: str) -> PartHeaders:
        return _read_part_headers(block, default_type)

    def boundary_of(self, headers: PartHeaders) -> bytes | None:
        boundary = headers.boundary
        return boundary.encode("utf-8", "surrogateescape") if boundary else None

    def error(self, message: str) -> ParseError:
        return MimeParseError(message)

    def leaf(
        self,
        headers: PartHeaders,
        section: str,
        span: tuple[int, int, int, int],
        children: tuple[MimePart, ...],
        whole_message: bool,
    ) -> MimePart:
        return MimePart(
            section=section,
            content_type=headers.content_type,
            params=headers.params,
            encoding=headers.encoding,
            size=self.vsize(span[2], span[3]),
            disposition=headers.disposition,
            filename=headers.filename,
            content_id=headers.content_id,
            children=children,
        )

    def multipart(
        self,
        headers: PartHeaders,
        section: str,
        span: tuple[int, int, int, int],
        boundary: bytes,
        children: list[MimePart],
        whole_message: bool,
    ) -> MimePart:
        if not children:
            # Dovecot describes a multipart without parts as one empty text/plain part
            # (imap-bodystructure.c, EMPTY_BODYSTRUCTURE).
            children.append(
                MimePart(
                    section=f"{section}.1" if section else "1",
                    content_type="text/plain",
                    params=(_DEFAULT_CHARSET,),
                )
            )
        kids = tuple(children)
        return MimePart(
            section=section,
            content_type=headers.content_type,
            params=headers.params,
            encoding="7bit",
            size=sum(kid.size for kid in kids),
            disposition=headers.disposition,
            filename=dict(headers.disposition_params).get("filename"),
            children=kids,
        )


def plain_type(header: bytes) -> str | None:
    """Return the content type when a message's header block alone says it has no attachment.

    That is a message without MIME fields (text/plain) or a ``text/*`` one without a
    disposition and without any ``name``: most mail, which then needs no MIME parse. ``None``
    means "parse the whole message to know".
    """
    if _CONTENT_FIELD.search(header) is None:
        return "text/plain"
    text = _TEXT_TYPE.search(header)
    lower = header.lower()
    if text is not None and b"name" not in lower and b"content-disposition" not in lower:
        return text.group(1).decode("ascii").lower()
    return None


def mime_tree_from_bytes(raw: bytes) -> MimePart:
    """Return the MIME tree of a raw message (LF or CRLF line ends), sized as IMAP counts.

    The root has section ``""`` when the message is a multipart, else ``"1"``, exactly like
    :func:`quotatool.core.bodystructure.to_mime_tree`. Raises MimeParseError (a ParseError)
    for a message that cannot be read, and never anything else.
    """
    try:
        part = _Walker(raw).walk()
    except ParseError:
        raise
    except Exception as exc:
        # The email package's header parsing has raised many kinds of exception on hostile
        # input over the years (IndexError, ValueError, LookupError...); any of them means
        # "this message cannot be read", which the caller reports and skips.
        raise MimeParseError(f"MIME structure not readable: {type(exc).__name__}: {exc}") from exc
    return part
