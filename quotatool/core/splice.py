"""Find every MIME part's bytes in a raw message, and splice new bytes in place of some parts.

SAFETY.md fact 6 is why this is hand-written instead of parsing with :mod:`email` and
generating the result: ``email`` keeps no byte offsets, and a parse-then-generate round trip
changed 32 of 70 real messages (folded headers re-wrapped, boundaries and line ends rewritten),
which promise 5 forbids: the rewritten message must keep its header block and every untouched
part byte for byte. So :func:`locate` walks the raw bytes (RFC 2046 §5.1.1) to find where each
part's header block and body start and end, and :func:`rewrite` copies everything outside the
replaced ranges unchanged. :mod:`email` is used only to read each part's header fields.

The boundary rules are Dovecot's, as in :mod:`quotatool.adapters.mime_local`, so that sections
here are the ones a BODYSTRUCTURE gives (RFC 3501 §6.4.5): a boundary line only has to *start*
with ``--boundary``, the longest matching boundary wins, an enclosing boundary ends every part
inside it, and only LF ends a line (a CR before it is part of the line end, a bare CR is data).
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from quotatool.core.mimelines import TreeWalker
from quotatool.errors import ParseError

__all__ = [
    "MARKER_FIELD",
    "PartSpan",
    "SpliceError",
    "check_untouched",
    "eol_of",
    "locate",
    "marker_of",
    "rewrite",
]

MARKER_FIELD = "X-Quotatool-Op"
"""Header field every message quotatool writes carries (DESIGN.md §5, SAFETY.md fact 4)."""

# An operation id goes into a header field: RFC 5322 §2.2 field bodies must not hold CR or LF,
# and SAFETY.md promise 15 wants no control characters at all. A token keeps it searchable.
_OP_ID = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,127}\Z")
_MARKER_LINE = re.compile(rb"(?i)x-quotatool-op[ \t]*:")

_header_parser = email.parser.Parser(policy=email.policy.compat32)


class SpliceError(ParseError):
    """A part cannot be located or replaced, or a rewrite changed what it must keep."""


@dataclass(frozen=True, slots=True)
class PartSpan:
    """Where one MIME part lies in the raw message: offsets into the message's bytes."""

    section: str
    """IMAP part specifier (RFC 3501 §6.4.5); ``""`` for a multipart message's top level."""
    content_type: str
    """Lower-case ``type/subtype`` (the default type when the field is absent)."""
    encoding: str
    """Lower-case Content-Transfer-Encoding, ``7bit`` when absent."""
    start: int
    """First octet of the part's header block (just after the boundary line's line end)."""
    header_end: int
    """End of the header fields: after the last field's line end, before the empty line."""
    body_start: int
    """First octet of the body, after the empty line (``header_end`` when there is none)."""
    end: int
    """End of the body: the line end before the next boundary line belongs to that line."""
    boundary: bytes | None = None
    """A multipart's boundary, ``None`` for other parts."""
    children: tuple[PartSpan, ...] = ()
    """Parts of a multipart, or the enclosed message of a ``message/rfc822``."""
    own_headers: bool = False
    """True when the part has a header block of its own (it sits between boundary lines)."""

    def walk(self) -> Iterator[PartSpan]:
        """Yield this part and every part below it, in tree order."""
        stack = [self]
        while stack:
            span = stack.pop()
            yield span
            stack.extend(reversed(span.children))


@dataclass(frozen=True, slots=True)
class _Headers:
    content_type: str
    boundary: bytes | None
    encoding: str


def _read_headers(block: bytes, default_type: str) -> _Headers:
    # RFC 6532 allows UTF-8 in header fields; older 8-bit mail is often Latin-1.
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        text = block.decode("latin-1")
    msg = _header_parser.parsestr(text, headersonly=True)
    msg.set_default_type(default_type)
    ctype = msg.get_content_type()
    boundary = msg.get_boundary() if ctype.startswith("multipart/") else None
    cte = msg.get("content-transfer-encoding")
    encoding = " ".join(str(cte).split()).lower() if cte is not None else ""
    return _Headers(
        content_type=ctype,
        boundary=boundary.encode("utf-8", "surrogateescape") if boundary else None,
        encoding=encoding or "7bit",
    )


class _Walker(TreeWalker[_Headers, PartSpan]):
    """Cut a raw message into part spans."""

    def read_headers(self, block: bytes, default_type: str) -> _Headers:
        return _read_headers(block, default_type)

    def boundary_of(self, headers: _Headers) -> bytes | None:
        return headers.boundary

    def error(self, message: str) -> ParseError:
        return SpliceError(message)

    def leaf(
        self,
        headers: _Headers,
        section: str,
        span: tuple[int, int, int, int],
        children: tuple[PartSpan, ...],
        whole_message: bool,
    ) -> PartSpan:
        start, header_end, body_start, end = span
        return PartSpan(
            section=section,
            content_type=headers.content_type,
            encoding=headers.encoding,
            start=start,
            header_end=header_end,
            body_start=body_start,
            end=end,
            children=children,
            own_headers=not whole_message,
        )

    def multipart(
        self,
        headers: _Headers,
        section: str,
        span: tuple[int, int, int, int],
        boundary: bytes,
        children: list[PartSpan],
        whole_message: bool,
    ) -> PartSpan:
        start, header_end, body_start, end = span
        return PartSpan(
            section=section,
            content_type=headers.content_type,
            encoding="7bit",
            start=start,
            header_end=header_end,
            body_start=body_start,
            end=end,
            boundary=boundary,
            children=tuple(children),
            own_headers=not whole_message,
        )


def locate(raw: bytes) -> PartSpan:
    """Return the tree of part spans of a raw message (LF, CRLF or mixed line ends).

    The root has section ``""`` when the message is a multipart, else ``"1"``, like
    :func:`quotatool.core.bodystructure.to_mime_tree`. A ``message/rfc822`` part and a multipart
    message inside it share a section number (RFC 3501 §6.4.5); :func:`find` returns the outer.
    Raises SpliceError (a ParseError) when the structure cannot be read.
    """
    try:
        span = _Walker(raw).walk()
    except ParseError:
        raise
    except Exception as exc:
        # The email header parser has raised many kinds of exception on hostile input; any of
        # them means "this message cannot be read", which the caller reports and skips.
        raise SpliceError(f"MIME structure not readable: {type(exc).__name__}: {exc}") from exc
    return span


def _index(root: PartSpan) -> dict[str, PartSpan]:
    index: dict[str, PartSpan] = {}
    for span in root.walk():
        index.setdefault(span.section, span)  # tree order: the outer part comes first
    return index


def find(root: PartSpan, section: str) -> PartSpan:
    """Return the part with ``section``; raise SpliceError naming it when there is none."""
    span = _index(root).get(section)
    if span is None:
        raise SpliceError(f"part {section or 'TEXT'} not found in the message")
    return span


def eol_of(raw: bytes) -> bytes:
    """Return the line end the message's first line uses (CRLF unless it is a bare LF)."""
    lf = raw.find(b"\n")
    return b"\n" if lf >= 0 and (lf == 0 or raw[lf - 1] != 0x0D) else b"\r\n"


def _split_lf(block: bytes) -> list[bytes]:
    # Only LF ends a line here (a bare CR is data to the server): bytes.splitlines would also
    # split at CR, VT, FF and others.
    parts = block.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _fields(block: bytes) -> list[bytes]:
    fields: list[bytes] = []
    for line in _split_lf(block):
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1] += line
        else:
            fields.append(line)
    return fields


def marker_of(raw: bytes) -> str | None:
    """Return the ``X-Quotatool-Op`` value of the message's top-level header, if any."""
    root = locate(raw)
    for field in _fields(raw[: root.header_end]):
        if _MARKER_LINE.match(field):
            value = field.split(b":", 1)[1]
            return b" ".join(value.split()).decode("ascii", "replace")
    return None


def _marked_header(block: bytes, op_id: str | None, eol: bytes) -> bytes:
    """Return the top-level header block without marker fields, plus the new marker."""
    kept = b"".join(f for f in _fields(block) if not _MARKER_LINE.match(f))
    if op_id is None:
        return kept
    if not _OP_ID.match(op_id):
        raise SpliceError(f"operation id {op_id!r} is not a plain token")
    if kept and not kept.endswith(b"\n"):
        kept += eol
    return kept + f"{MARKER_FIELD}: {op_id}".encode("ascii") + eol


def rewrite(raw: bytes, replacements: Mapping[str, bytes], *, op_id: str | None) -> bytes:
    """Replace whole parts (header block and body) by new bytes, and set the marker.

    Every octet outside the replaced ranges is copied unchanged, except the top-level header
    block: its ``X-Quotatool-Op`` fields are removed and, when ``op_id`` is given, one new field
    is added at its end (a rerun searches for it, SAFETY.md fact 4). A replacement must not end
    with a line end: the line end before the next boundary line belongs to that line
    (RFC 2046 §5.1.1) and is kept.

    Only parts that sit between boundary lines can be replaced: the single body of a
    non-multipart message shares its header block with the message (or the enclosed
    message), which must stay as it is. Raises SpliceError for such a part, an unknown section
    or two replacements that overlap.
    """
    root = locate(raw)
    index = _index(root)
    spans: list[PartSpan] = []
    for section in replacements:
        span = index.get(section)
        if span is None:
            raise SpliceError(f"part {section or 'TEXT'} not found in the message")
        if not span.own_headers:
            raise SpliceError(
                f"part {section} is the body of a message, not a part of a multipart; "
                "it cannot be replaced without changing the message's own header"
            )
        spans.append(span)
    spans.sort(key=lambda s: s.start)
    for before, after in itertools.pairwise(spans):
        if after.start < before.end:
            raise SpliceError(f"parts {before.section} and {after.section} overlap")
    eol = eol_of(raw)
    out = [_marked_header(raw[: root.header_end], op_id, eol)]
    pos = root.header_end
    for span in spans:
        out.append(raw[pos : span.start])
        out.append(replacements[span.section])
        pos = span.end
    out.append(raw[pos:])
    return b"".join(out)


def check_untouched(original: bytes, rewritten: bytes, replaced: set[str]) -> None:
    """Check that ``rewritten`` keeps every part of ``original`` outside ``replaced``.

    Compared byte for byte: the top-level header block without its marker field, the header
    block of every other part, and the body of every leaf not under a replaced section
    (SAFETY.md promise 5). Raises SpliceError naming the first part that differs.
    """
    old_root, new_root = locate(original), locate(rewritten)
    if _marked_header(original[: old_root.header_end], None, b"") != _marked_header(
        rewritten[: new_root.header_end], None, b""
    ):
        raise SpliceError("the message's header block changed")
    # Walk both trees side by side: a replaced part is one part in both, so positions match
    # (sections alone are ambiguous where a message/rfc822 and its multipart share one).
    stack = [(old_root, new_root)]
    while stack:
        old, new = stack.pop()
        name = old.section or "TEXT"
        if old.section in replaced and old.own_headers:
            if new.section != old.section:
                raise SpliceError(f"part {name} moved")
            continue
        if new.section != old.section or new.content_type != old.content_type:
            raise SpliceError(f"part {name} is missing or changed its type")
        if old.own_headers and (
            original[old.start : old.body_start] != rewritten[new.start : new.body_start]
        ):
            raise SpliceError(f"part {name}: its header block changed")
        if not old.children and old.boundary is None:
            if original[old.body_start : old.end] != rewritten[new.body_start : new.end]:
                raise SpliceError(f"part {name}: its body changed")
        elif len(old.children) != len(new.children):
            raise SpliceError(f"part {name}: it has a different number of parts")
        stack.extend(zip(old.children, new.children, strict=True))
