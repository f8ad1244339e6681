"""Boundary lines and header/body splits in a raw MIME message, by byte offset.

Hand-written because :mod:`email` keeps no byte offsets (SAFETY.md fact 6). Both readers of
raw bytes build on this: :mod:`quotatool.adapters.mime_local` (the BODYSTRUCTURE a local
message would get) and :mod:`quotatool.core.splice` (where each part lies, to replace it).
The rules are Dovecot's, so sections agree with its BODYSTRUCTURE (RFC 3501 §6.4.5): a
boundary line only has to *start* with ``--boundary``, the longest matching boundary wins, an
enclosing boundary ends every part inside it, and only LF ends a line (a CR before it is part
of the line end, a bare CR is data).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BoundaryHit", "LineWalker"]


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
