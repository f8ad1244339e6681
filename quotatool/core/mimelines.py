"""Walk the MIME tree of a raw message by byte offset: boundary lines, headers, bodies.

Hand-written because :mod:`email` keeps no byte offsets (SAFETY.md fact 6). Both readers of
raw bytes build on this: :mod:`quotatool.adapters.mime_local` (the BODYSTRUCTURE a local
message would get) and :mod:`quotatool.core.splice` (where each part lies, to replace it).
The rules are Dovecot's, so sections agree with its BODYSTRUCTURE (RFC 3501 §6.4.5): a
boundary line only has to *start* with ``--boundary``, the longest matching boundary wins, an
enclosing boundary ends every part inside it, and only LF ends a line (a CR before it is part
of the line end, a bare CR is data).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from quotatool.errors import ParseError

__all__ = ["MAX_DEPTH", "BoundaryHit", "HeaderView", "LineWalker", "TreeWalker"]

# Deeper than any real message; refusing is better than a RecursionError (SAFETY.md fact 8:
# hostile nesting must become "skip this message").
MAX_DEPTH = 100
# RFC 3501 §7.4.2 / Dovecot's message parser: only an unencoded message/rfc822 is looked into.
_IDENTITY = frozenset({"7bit", "8bit", "binary"})


class HeaderView(Protocol):
    """What the walk needs to know of a part's header block."""

    @property
    def content_type(self) -> str:
        """Lower-case ``type/subtype``, the default type when the field is absent."""
        ...

    @property
    def encoding(self) -> str:
        """Lower-case Content-Transfer-Encoding, ``7bit`` when absent."""
        ...


H = TypeVar("H", bound=HeaderView)
P = TypeVar("P")


@dataclass(slots=True)
class BoundaryHit:
    """A boundary line found in the raw message."""

    start: int
    """Offset of the line's first ``-``."""
    end: int
    """Offset just after the line's LF (or the end of the message)."""
    boundary: bytes
    closing: bool
    """``--boundary--``: the multipart ends here."""
    complete: bool
    """The line ends with LF; Dovecot starts no new part after a boundary cut off by EOF."""


class LineWalker:
    """One pass over a raw message; positions handed around are always at a line start."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.n = len(raw)

    def next_boundary(self, pos: int, stack: list[bytes]) -> BoundaryHit | None:
        """Find the first boundary line of ``stack`` at or after line start ``pos``."""
        if not stack:
            return None
        raw = self.raw
        at = pos if raw.startswith(b"--", pos) else -1
        while True:
            if at < 0:
                i = raw.find(b"\n--", pos)
                if i < 0:
                    return None
                at = i + 1
            best: bytes | None = None
            # Dovecot's boundary_find: search innermost first; the longest prefix wins.
            for b in reversed(stack):
                if (best is None or len(b) > len(best)) and raw.startswith(b, at + 2):
                    best = b
            if best is not None:
                eol = raw.find(b"\n", at)
                return BoundaryHit(
                    start=at,
                    end=self.n if eol < 0 else eol + 1,
                    boundary=best,
                    closing=raw.startswith(b"--", at + 2 + len(best)),
                    complete=eol >= 0,
                )
            pos = at + 2
            at = -1

    def body_end(self, body_start: int, hit: BoundaryHit | None) -> int:
        """Return where a body stops: before the line end that precedes the boundary line.

        RFC 2046 §5.1.1: the CRLF preceding the boundary delimiter line belongs to the delimiter.
        """
        if hit is None:
            return self.n
        end = hit.start
        raw = self.raw
        if end > body_start and raw[end - 1] == 0x0A:
            end -= 1
            if end > body_start and raw[end - 1] == 0x0D:
                end -= 1
        return end

    def split_header(self, pos: int, limit: int) -> tuple[int, int]:
        """Return (end of the header block, start of the body) within ``raw[pos:limit]``.

        The first empty line ends the header block, whether it ends with CRLF or a bare LF.
        Without one, the whole range is header and the body is empty.
        """
        raw = self.raw
        if raw.startswith(b"\n", pos):
            return pos, pos + 1
        if raw.startswith(b"\r\n", pos):
            return pos, pos + 2
        lf = raw.find(b"\n\n", pos, limit)
        # Look for a CRLF empty line only up to the first LF one: a header block is short, a
        # body (searched to its end when the part is LF-only) may be megabytes. The end lf + 2
        # lets a "\n\r\n" that starts just before the "\n\n" win, as in "\r\n\r\n\n" where the
        # CRLF empty line comes first and the bare LF after it is the body's first line.
        crlf = raw.find(b"\n\r\n", pos, lf + 2 if lf >= 0 else limit)
        if crlf >= 0:
            return crlf + 1, crlf + 3
        if lf >= 0:
            return lf + 1, lf + 2
        return limit, limit


class TreeWalker(LineWalker, ABC, Generic[H, P]):
    """The recursive walk over parts (RFC 2046 §5.1, RFC 3501 §6.4.5 section numbers).

    Subclasses say how to read a header block and what node to build for a part; the walk
    itself (which boundary ends what, section numbers, looking into message/rfc822) is here
    once, so every reader of raw bytes cuts a message into the same parts.
    """

    @abstractmethod
    def read_headers(self, block: bytes, default_type: str) -> H:
        """Read a part's header block."""

    @abstractmethod
    def boundary_of(self, headers: H) -> bytes | None:
        """Return a multipart's boundary, ``None`` for any other part."""

    @abstractmethod
    def error(self, message: str) -> ParseError:
        """Return the exception to raise for a message that cannot be walked."""

    @abstractmethod
    def leaf(
        self,
        headers: H,
        section: str,
        span: tuple[int, int, int, int],
        children: tuple[P, ...],
        whole_message: bool,
    ) -> P:
        """Build a part that is not a multipart.

        ``span`` is (start, header end, body start, body end); ``children`` holds the message
        enclosed in an unencoded message/rfc822 part.
        """

    @abstractmethod
    def multipart(
        self,
        headers: H,
        section: str,
        span: tuple[int, int, int, int],
        boundary: bytes,
        children: list[P],
        whole_message: bool,
    ) -> P:
        """Build a multipart from its parts (``span`` as for :meth:`leaf`)."""

    def walk(self) -> P:
        """Return the root: section ``""`` for a multipart message, else ``"1"``."""
        node, _ = self.entity(0, "", [], "text/plain", 0, whole_message=True)
        return node

    def entity(
        self,
        pos: int,
        section: str,
        stack: list[bytes],
        default_type: str,
        depth: int,
        *,
        whole_message: bool,
    ) -> tuple[P, BoundaryHit | None]:
        """Read the part whose header block starts at ``pos``, and the boundary that ends it.

        For a ``whole_message`` (the top level or the body of a message/rfc822), RFC 3501
        §6.4.5 numbers a multipart body like the message itself and its parts
        ``section.N``, but a single-part body ``section.1`` (``1`` at the top level).
        """
        if depth > MAX_DEPTH:
            raise self.error(f"part {section or 'TEXT'}: nested deeper than {MAX_DEPTH} levels")
        hit = self.next_boundary(pos, stack)
        limit = hit.start if hit is not None else self.n
        header_end, body_start = self.split_header(pos, limit)
        headers = self.read_headers(self.raw[pos:header_end], default_type)
        own = self.boundary_of(headers)
        if own:
            children, hit = self._parts(
                own, headers.content_type, body_start, section, stack, depth
            )
            span = (pos, header_end, body_start, self.body_end(body_start, hit))
            return self.multipart(headers, section, span, own, children, whole_message), hit
        if whole_message:
            section = f"{section}.1" if section else "1"
        inner: tuple[P, ...] = ()
        if headers.content_type == "message/rfc822" and headers.encoding in _IDENTITY:
            # The enclosed message is read with the same enclosing boundaries: one of them
            # ends it, as it ends this part (Dovecot's message parser does the same).
            node, hit = self.entity(
                body_start, section, stack, "text/plain", depth + 1, whole_message=True
            )
            inner = (node,)
        span = (pos, header_end, body_start, self.body_end(body_start, hit))
        return self.leaf(headers, section, span, inner, whole_message), hit

    def _parts(
        self,
        own: bytes,
        content_type: str,
        body_start: int,
        section: str,
        outer: list[bytes],
        depth: int,
    ) -> tuple[list[P], BoundaryHit | None]:
        stack = [*outer, own]
        # RFC 2046 §5.1.5: in a digest, a part without Content-Type is a message/rfc822.
        default_type = "message/rfc822" if content_type == "multipart/digest" else "text/plain"
        children: list[P] = []
        hit = self.next_boundary(body_start, stack)  # skips the preamble
        while hit is not None and hit.boundary == own and not hit.closing and hit.complete:
            child_section = f"{section}.{len(children) + 1}" if section else str(len(children) + 1)
            child, hit = self.entity(
                hit.end, child_section, stack, default_type, depth + 1, whole_message=False
            )
            children.append(child)
        if hit is not None and hit.boundary == own:
            # The close delimiter: the epilogue runs to an enclosing boundary or the end.
            hit = self.next_boundary(hit.end, outer)
        return children, hit
