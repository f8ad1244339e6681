r"""Read the bulk metadata ``UID FETCH`` responses straight from the socket's bytes.

A scan reads 100,000 responses of the form (RFC 3501 §7.4.2)::

    * 12 FETCH (UID 34 RFC822.SIZE 4711 INTERNALDATE "28-Nov-2026 07:23:36 +0100"
      FLAGS (\Seen) BODYSTRUCTURE (...) BODY[HEADER.FIELDS (FROM ...)] {300}
      <300 octets>)

imapclient's ``parse_fetch_response`` was rejected for this one command: it walks the input a
byte at a time through Python generators (about 0.3 ms per message, measured in
bench/parse_micro.py), needs imaplib's whole-response buffering (no bound on a literal's size on
Python 3.11, gh-119511) and recurses once per parenthesis (``RecursionError`` on a deep
BODYSTRUCTURE). This parser works in two steps that both lean on C code:

1. *Framing*: ``bytearray.find`` locates each line end; a line ending in ``{n}`` is followed by an
   ``n``-octet literal that is jumped over, so a response is found without looking at its
   content. A literal larger than ``max_literal`` (or a response over the size bounds) is dropped
   as it streams past: memory stays bounded whatever the server sends.
2. *Parsing* one complete response: a single compiled regular expression splits the text between
   literals into tokens; a flat loop with an explicit stack (no recursion, depth checked) builds
   nested tuples of ``bytes | int | None | tuple``, the same values imapclient's lexer yields.

A response that cannot be parsed becomes a :class:`RawFetch` with ``error`` set (UID and size
salvaged when they can be found); the parser resynchronises at the next ``\r\n* `` and goes on
(SAFETY.md fact 8, promise 15).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from operator import itemgetter

__all__ = ["FetchStreamParser", "RawFetch"]

_CRLF = b"\r\n"
# Longest literal marker we look back for at a line end: "~{" + 20 digits + "+}".
_MARKER_WINDOW = 26
# Bounds for the text outside literals: a BODYSTRUCTURE of a message with thousands of parts is
# tens of KiB; anything beyond these is hostile or broken and is skipped, not buffered.
_MAX_LINE = 1024 * 1024
_MAX_UNTAGGED = 1000
_SHAPES_MAX = 4096
# Numbers for the shape key: "0123" is not a number to imapclient (nor here), so a leading
# zero splits into "0" and "123", which leaves "##" in the key and sends it the general way.
_NUMBER = re.compile(rb"(0|[1-9][0-9]*)")
# "#" stays inside an atom here, so a number glued to text ("a1", "7BIT", "0123") shows as an
# atom holding "#" and the shape is refused.
_SHAPE_TOKEN = re.compile(rb'[()"]|[^\s()"]+')
_MAX_UNTAGGED_LINE = 1024
_SALVAGE_WINDOW = 64 * 1024

# One token per match (RFC 3501 §9 formal syntax, lenient where servers are):
#   ( or )                            list delimiters
#   "..." with \" and \\ escapes      quoted string (8-bit octets allowed, as servers send them)
#   atom, optionally with [section] and <partial>, e.g. BODY[HEADER.FIELDS (FROM TO)]
#   any other single non-space octet  only ever produced by malformed input: an error
_TOKEN = re.compile(
    rb'[()]|"[^"\\]*(?:\\.[^"\\]*)*"|[^\s()"{\[\]]+(?:\[[^\]]*\](?:<[0-9.]*>)?)?|\S',
    re.DOTALL,
)
_findall = _TOKEN.findall
_UNESCAPE = re.compile(rb'\\([\\"])')
_FETCH_HEAD = re.compile(rb"\* ([0-9]+) FETCH \(", re.IGNORECASE)
# The items in the order Dovecot sends them for our command (checked on 2.3.19); any other
# order takes the general path.
_FAST_HEAD = re.compile(
    rb'\* ([0-9]+) FETCH \(UID ([0-9]{1,20}) RFC822\.SIZE ([0-9]{1,20}) INTERNALDATE "([^"\\]*)" '
    rb"FLAGS \(([^()\"{}]*)\) (?:MODSEQ \(([0-9]{1,20})\) )?BODYSTRUCTURE \("
)
# One whole response in Dovecot's usual shape, up to its header literal: the items of
# _FAST_HEAD, a BODYSTRUCTURE without literals or braces, and the header item. No CR or LF
# before the literal marker, so this is one line to the framing loop too; the item name holds
# no "[", so the " BODY[" after the BODYSTRUCTURE is the last one, as _parse_fast finds it.
_WHOLE = re.compile(
    rb"\* ([0-9]+) FETCH \(UID ([0-9]{1,20}) RFC822\.SIZE ([0-9]{1,20}) "
    rb'INTERNALDATE "([^"\\\r\n]*)" '
    rb"FLAGS \(([^()\"{}\r\n]*)\) (?:MODSEQ \(([0-9]{1,20})\) )?"
    rb'BODYSTRUCTURE (\([^\r\n{}]*\)) BODY\[[^\[\]"\r\n{}]*\] \{([0-9]{1,20})\}\r\n'
)
_UID_SALVAGE = re.compile(rb"[( ]UID ([0-9]{1,20})[ )]", re.IGNORECASE)
_SIZE_SALVAGE = re.compile(rb"[( ]RFC822\.SIZE ([0-9]{1,20})[ )]", re.IGNORECASE)
# RFC 3501 §9 date-time: "dd-Mon-yyyy hh:mm:ss +zzzz", day space-padded or one digit.
_INTERNALDATE = re.compile(
    rb" ?([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4}) "
    rb"([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        b"jan feb mar apr may jun jul aug sep oct nov dec".split(),
        start=1,
    )
}
_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
_CACHE_MAX = 8192


# Item names a response must carry to be one of ours (rather than an unsolicited FLAGS update).
_K_UID, _K_SIZE, _K_DATE, _K_FLAGS, _K_BS, _K_MODSEQ, _K_HEADER = range(7)
_KEYS = {
    b"UID": _K_UID,
    b"RFC822.SIZE": _K_SIZE,
    b"INTERNALDATE": _K_DATE,
    b"FLAGS": _K_FLAGS,
    b"BODYSTRUCTURE": _K_BS,
    b"MODSEQ": _K_MODSEQ,
}


@dataclass(slots=True)
class RawFetch:
    """One message's FETCH response, decoded just enough to be cheap."""

    seq: int
    """Message sequence number from ``* n FETCH``."""
    uid: int
    """UID; 0 when a broken response did not reveal it."""
    size: int
    """RFC822.SIZE; 0 when a broken response did not reveal it."""
    internaldate: int
    """INTERNALDATE as POSIX seconds."""
    flags: tuple[str, ...]
    """Flags as sent, e.g. ``("\\\\Seen", "$Junk")``."""
    modseq: int | None
    """MODSEQ when it was fetched (CONDSTORE)."""
    bodystructure: object
    """The BODYSTRUCTURE s-expression as nested tuples of ``bytes | int | None | tuple``."""
    header: bytes
    """The ``BODY[HEADER.FIELDS ...]`` data (``b""`` when the server sent NIL)."""
    error: str | None = None
    """Why this message's response could not be parsed; the other fields are then partial."""


class _Malformed(Exception):
    """One response cannot be parsed (internal: it becomes ``RawFetch.error``)."""


class FetchStreamParser:
    """Incrementally parse the responses to one ``UID FETCH`` command.

    Feed it the bytes read from the socket in chunks of any size; each :meth:`feed` returns the
    messages its chunk completed. Memory stays bounded by ``max_literal`` plus about 2 MiB.
    """

    def __init__(
        self, tag: bytes, *, max_literal: int = 8 * 1024 * 1024, max_depth: int = 64
    ) -> None:
        self.tag = tag
        self.max_literal = max_literal
        self.max_depth = max_depth
        self.done = False
        """True once the tagged response for ``tag`` arrived."""
        self.status: tuple[str, str] | None = None
        """``("OK" | "NO" | "BAD", rest of line)`` of the tagged response."""
        self.untagged: list[bytes] = []
        """Other untagged responses (EXISTS, EXPUNGE, OK [...], unsolicited FETCH), bounded."""
        self.untagged_dropped = 0
        """Untagged responses not kept because ``untagged`` was full."""
        self._tag_sp = tag + b" "
        self._buf = bytearray()
        self._pos = 0  # start of the current (incomplete) response in _buf
        self._line = 0  # start of the current line (after the last literal)
        self._scan = 0  # where the search for the next CRLF resumes
        self._lits: list[tuple[int, int, int]] = []  # (marker, start, end) of each literal
        self._max_response = max_literal + 2 * _MAX_LINE
        # Discard mode: the rest of one response is dropped as it streams past.
        self._discarding = False
        self._skip = 0  # literal octets still to drop
        self._tail = b""  # end of the current line, to spot a literal marker across chunks
        self._bad_head = b""
        self._bad_error = ""
        self._flag_cache: dict[tuple[bytes, ...], tuple[str, ...]] = {}
        self._flag_text_cache: dict[bytes, tuple[str, ...]] = {}
        self._shapes: dict[bytes, _Shape | None] = {}
        self._day_cache: dict[bytes, int] = {}

    # -- framing --------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[RawFetch]:
        """Consume ``data`` and return every message it completed, in stream order."""
        out: list[RawFetch] = []
        while data and not self.done:
            if self._discarding:
                data = self._discard(data, out)
            else:
                self._buf += data
                data = self._frame(out)
        return out

    def _frame(self, out: list[RawFetch]) -> bytes:
        """Parse every complete response in the buffer; return bytes left for discard mode."""
        buf = self._buf
        pos, line, scan, lits = self._pos, self._line, self._scan, self._lits
        leftover = b""
        whole = _WHOLE.match
        while True:
            if scan == pos and not lits:
                # At the start of a response: most are one regex match away (see _whole).
                m = whole(buf, pos)
                if m is not None:
                    nxt = self._whole(buf, pos, m, out)
                    if nxt:
                        pos = line = scan = nxt
                        continue
            i = buf.find(_CRLF, scan)
            if i < 0:
                if len(buf) - line > _MAX_LINE or len(buf) - pos > self._max_response:
                    self._bad_head = bytes(buf[pos : pos + _SALVAGE_WINDOW])
                    leftover = bytes(buf[max(len(buf) - _MARKER_WINDOW, line) :])
                    self._enter_discard(0, f"response line longer than {_MAX_LINE} octets")
                    pos = len(buf)
                    break
                scan = max(len(buf) - 1, line)
                break
            if i > line and buf[i - 1] == 0x7D:  # "}": maybe a literal marker
                j = buf.rfind(b"{", max(line, i - _MARKER_WINDOW), i)
                digits = bytes(buf[j + 1 : i - 1]).removesuffix(b"+") if j >= 0 else b""
                if digits.isdigit() and len(digits) <= 20:
                    n = int(digits)
                    marker = j - 1 if j > line and buf[j - 1] == 0x7E else j  # "~{n}" literal8
                    start = i + 2
                    end = start + n
                    if n > self.max_literal or end - pos > self._max_response:
                        self._bad_head = bytes(buf[pos : min(marker, pos + _SALVAGE_WINDOW)])
                        if n > self.max_literal:
                            error = (
                                f"literal of {n} octets exceeds the {self.max_literal}-octet limit"
                            )
                        else:
                            error = f"response exceeds the {self._max_response}-octet limit"
                        leftover = bytes(buf[start:])
                        self._enter_discard(n, error)
                        pos = len(buf)
                        break
                    if end > len(buf):
                        if not self._tagged_line_at_end(buf, start):
                            scan = i  # re-examine this marker when more data arrived
                            break
                        # The literal count cannot be right: the command has already ended.
                        # Resynchronise at the next line that starts a response.
                        cut = self._resync(buf, pos, len(buf))
                        self._broken_at(buf, pos, cut, lits, "literal runs past the response", out)
                        pos = line = scan = cut + 2
                        lits = []
                        continue
                    lits.append((marker, start, end))
                    scan = line = end
                    continue
            end = i + 2
            nxt = self._response(buf, pos, end, lits, out)
            pos = line = scan = nxt
            lits = []
            if self.done:
                break
        if pos:
            del buf[:pos]
            line -= pos
            scan -= pos
            lits = [(m - pos, s - pos, e - pos) for m, s, e in lits]
        self._pos, self._line, self._scan, self._lits = 0, max(line, 0), max(scan, 0), lits
        if self._discarding or self.done:
            buf.clear()
            self._pos = self._line = self._scan = 0
            self._lits = []
        return leftover

    def _resync(self, buf: bytearray, pos: int, end: int) -> int:
        """Return where the line after ``pos`` that starts a response begins, minus 2 (its CRLF).

        RFC 3501 §2.2.2: every response starts a line with "* " or a tag. After a broken
        response this is the only landmark left; ``end - 2`` when there is none.
        """
        k = buf.find(b"\r\n* ", pos + 1, end - 2)
        t = buf.find(b"\r\n" + self._tag_sp, pos + 1, end - 2)
        return min(x for x in (k, t, end - 2) if x >= 0)

    def _broken_at(
        self,
        buf: bytearray,
        pos: int,
        cut: int,
        lits: list[tuple[int, int, int]],
        error: str,
        out: list[RawFetch],
    ) -> None:
        """Report ``buf[pos:cut]`` as one broken response."""
        head = _FETCH_HEAD.match(buf, pos)
        if head is not None:
            texts = _segments(buf, pos, cut, lits)
            out.append(_broken(int(head[1]), texts, error))
        elif buf.startswith(b"* ", pos):
            self._keep_untagged(bytes(buf[pos:cut]))

    def _tagged_line_at_end(self, buf: bytearray, start: int) -> bool:
        """Tell whether the buffered data ends with our tagged completion line."""
        if not buf.endswith(_CRLF):
            return False
        k = buf.rfind(_CRLF, start, len(buf) - 2)
        line_start = start if k < 0 else k + 2
        return self._is_tagged(bytes(buf[line_start : line_start + 64]))

    def _is_tagged(self, line: bytes) -> bool:
        if not line.startswith(self._tag_sp):
            return False
        word = line[len(self._tag_sp) :].split(b" ", 1)[0].split(b"\r", 1)[0].upper()
        return word in (b"OK", b"NO", b"BAD")

    def _enter_discard(self, skip: int, error: str) -> None:
        self._discarding = True
        self._skip = skip
        self._tail = b""
        self._bad_error = error

    def _discard(self, data: bytes, out: list[RawFetch]) -> bytes:
        """Drop the rest of an oversized response; return the bytes after it."""
        while data:
            if self._skip:
                if len(data) <= self._skip:
                    self._skip -= len(data)
                    if self._ends_with_tagged(data):
                        # A literal count larger than the stream: the command already ended.
                        self._skip = 0
                        return self._end_discard(out, data[data.rfind(_CRLF, 0, -2) + 2 :])
                    return b""
                data = data[self._skip :]
                self._skip = 0
                self._tail = b""
            probe = self._tail + data
            i = probe.find(_CRLF)
            if i < 0:
                self._tail = probe[-_MARKER_WINDOW:]
                return b""
            head = probe[max(0, i - _MARKER_WINDOW) : i]
            m = re.search(rb"\{([0-9]{1,20})\+?\}\Z", head)
            data = probe[i + 2 :]
            if m:
                self._skip = int(m[1])
                self._tail = b""
                continue
            return self._end_discard(out, data)
        return b""

    def _ends_with_tagged(self, data: bytes) -> bool:
        if not data.endswith(_CRLF):
            return False
        k = data.rfind(_CRLF, 0, len(data) - 2)
        return self._is_tagged(data[k + 2 : k + 66])

    def _end_discard(self, out: list[RawFetch], rest: bytes) -> bytes:
        self._discarding = False
        self._tail = b""
        head = self._bad_head
        self._bad_head = b""
        m = _FETCH_HEAD.match(head)
        if m is not None:
            out.append(_broken(int(m[1]), [head], self._bad_error))
        elif head.startswith(self._tag_sp):
            self._other(head[:_MAX_UNTAGGED_LINE])
        return rest

    # -- one response ---------------------------------------------------------------------

    def _response(
        self,
        buf: bytearray,
        pos: int,
        end: int,
        lits: list[tuple[int, int, int]],
        out: list[RawFetch],
    ) -> int:
        """Handle the complete response ``buf[pos:end]``; return where the next one starts."""
        head = _FAST_HEAD.match(buf, pos)
        try:
            if head is not None:
                raw = self._parse_fast(buf, head, end, lits)
            else:
                head = _FETCH_HEAD.match(buf, pos)
                if head is None:
                    self._other(bytes(buf[pos:end]))
                    return end
                raw = self._parse(buf, int(head[1]), head.end() - 1, end, lits)
        except _Malformed as exc:
            # A wrong literal count may have swallowed the responses that follow.
            cut = self._resync(buf, pos, end)
            self._broken_at(buf, pos, cut, lits, str(exc), out)
            return cut + 2
        if raw is None:
            self._keep_untagged(bytes(buf[pos:end]))
        else:
            out.append(raw)
        return end

    def _whole(self, buf: bytearray, pos: int, m: re.Match[bytes], out: list[RawFetch]) -> int:
        """Take a response that ``_WHOLE`` matched at ``pos``; return its end, 0 to decline.

        The result is what the framing loop and :meth:`_parse_fast` give for the same bytes
        (the literal is the line's only one, the same checks bound it); anything they would
        treat differently, or that is incomplete, is declined and takes that general way.
        """
        start = m.end()
        n = int(m[8])
        lend = start + n
        end = lend + 3
        if (
            end > len(buf)
            or not buf.startswith(b")\r\n", lend)
            or n > self.max_literal
            or lend - pos > self._max_response
        ):
            return 0
        bs = self._bodystructure(m[7])
        if bs is None:
            return 0
        flag_text = m[5]
        flags = self._flag_text_cache.get(flag_text)
        if flags is None:
            if len(self._flag_text_cache) > _CACHE_MAX:
                self._flag_text_cache.clear()
            flags = self._flag_text_cache[flag_text] = self._flags(tuple(flag_text.split()))
        try:
            date = self._internaldate(m[4])
        except _Malformed:
            return 0
        modseq = m[6]
        out.append(
            RawFetch(
                int(m[1]),
                int(m[2]),
                int(m[3]),
                date,
                flags,
                None if modseq is None else int(modseq),
                bs,
                bytes(buf[start:lend]),
            )
        )
        return end

    def _other(self, line: bytes) -> None:
        """Handle a response that is not a FETCH: the tagged completion or an untagged line."""
        if line.startswith(self._tag_sp):
            word, _, rest = line[len(self._tag_sp) :].rstrip(b"\r\n").partition(b" ")
            state = word.decode("ascii", "replace").upper()
            if state in ("OK", "NO", "BAD"):
                self.done = True
                self.status = (state, rest.decode("utf-8", "replace"))
                return
        if line.startswith(b"* "):
            self._keep_untagged(line)
        # Anything else (a "+" continuation, stray text after a broken literal) is noise.

    def _keep_untagged(self, line: bytes) -> None:
        if len(self.untagged) < _MAX_UNTAGGED:
            self.untagged.append(line[:_MAX_UNTAGGED_LINE].rstrip(b"\r\n"))
        else:
            self.untagged_dropped += 1

    def _build(self, text: bytes, stack: list[list[object]], cur: list[object]) -> list[object]:
        """Add the values in ``text`` (no literals in it) to ``cur``; return the open list.

        Fast path, all in C but the final loop: pad parentheses with spaces, split at double
        quotes (odd pieces are the quoted strings) and split the rest at white space. It only
        applies when no quoted string holds a backslash (an escape) or a parenthesis; the regular
        expression tokenizer handles those.
        """
        if 34 in text:  # '"'
            parts = text.replace(b"(", b" ( ").replace(b")", b" ) ").split(b'"')
            quoted = b"".join(parts[1::2])
            if not len(parts) & 1 or 92 in quoted or 40 in quoted or 41 in quoted:
                return self._build_slow(text, stack, cur)
        else:
            parts = [text.replace(b"(", b" ( ").replace(b")", b" ) ")]
        max_depth = self.max_depth
        brackets = 91 in text  # "[": the BODY[HEADER.FIELDS (...)] item name
        last = len(parts) - 1
        for i in range(0, last + 1, 2):
            part = parts[i]
            if brackets and 91 in part:
                toks = _findall(part.replace(b" ( ", b"(").replace(b" ) ", b")"))
            else:
                toks = part.split()
            for t in toks:
                c = t[0]
                if c == 40:  # "("
                    if len(stack) >= max_depth:
                        raise _Malformed(f"nested deeper than {max_depth} levels")
                    stack.append(cur)
                    cur = []
                elif c == 41:  # ")"
                    if not stack:
                        raise _Malformed("unbalanced ')'")
                    done = tuple(cur)
                    cur = stack.pop()
                    cur.append(done)
                elif t == b"NIL":
                    cur.append(None)
                elif 48 <= c <= 57 and t.isdigit() and (c != 48 or len(t) == 1):
                    cur.append(int(t))
                elif c == 123 or c == 91 or c == 93:  # "{", "[", "]" cannot start an atom
                    raise _Malformed(f"unexpected {_show(t)}")
                else:
                    cur.append(t)
            if i < last:
                cur.append(parts[i + 1])
        return cur

    def _build_slow(
        self, text: bytes, stack: list[list[object]], cur: list[object]
    ) -> list[object]:
        """Tokenize ``text`` with the regular expression (escapes, odd input) and build."""
        max_depth = self.max_depth
        for t in _findall(text):
            c = t[0]
            if c == 34:  # '"'
                if len(t) < 2:
                    raise _Malformed("unterminated quoted string")
                # RFC 3501 §4.3: only \" and \\ are escapes (others kept, as imapclient does)
                cur.append(_UNESCAPE.sub(rb"\1", t[1:-1]) if 92 in t else t[1:-1])
            elif c == 40:  # "("
                if len(stack) >= max_depth:
                    raise _Malformed(f"nested deeper than {max_depth} levels")
                stack.append(cur)
                cur = []
            elif c == 41:  # ")"
                if not stack:
                    raise _Malformed("unbalanced ')'")
                done = tuple(cur)
                cur = stack.pop()
                cur.append(done)
            elif t == b"NIL":
                cur.append(None)
            elif 48 <= c <= 57 and t.isdigit() and (c != 48 or len(t) == 1):
                cur.append(int(t))
            elif c == 123 or c == 91 or c == 93:  # "{", "[", "]" cannot start an atom
                raise _Malformed(f"unexpected {_show(t)}")
            else:
                cur.append(t)
        return cur

    def _build_range(
        self, buf: bytearray, start: int, end: int, lits: list[tuple[int, int, int]], depth: int
    ) -> tuple[object, ...]:
        """Build the list that opens ``depth`` levels down at ``buf[start]``; return its items.

        ``buf[start:end]`` is the rest of one response, CRLF included; ``depth`` is 0 when
        ``start`` is at the opening parenthesis, 1 when the caller consumed it.
        """
        top: list[object] = []
        stack: list[list[object]] = [top] if depth else []
        cur: list[object] = [] if depth else top
        for marker, lstart, lend in lits:
            if marker < start:
                continue
            cur = self._build(bytes(buf[start:marker]), stack, cur)
            cur.append(bytes(buf[lstart:lend]))
            start = lend
        if end - start == 3 and buf[start] == 41:  # ")" CRLF: the usual end after a literal
            if not stack:
                raise _Malformed("unbalanced ')'")
            done = tuple(cur)
            cur = stack.pop()
            cur.append(done)
        else:
            cur = self._build(bytes(buf[start : end - 2]), stack, cur)
        if stack:
            raise _Malformed("response ends inside a parenthesised list")
        if len(cur) != 1 or type(cur[0]) is not tuple:
            raise _Malformed(f"unexpected data after the FETCH list: {_show(cur[1:])}")
        return cur[0]

    def _parse_fast(
        self, buf: bytearray, head: re.Match[bytes], end: int, lits: list[tuple[int, int, int]]
    ) -> RawFetch | None:
        """Parse a response whose first items come in Dovecot's order (one regex match)."""
        flag_text = bytes(head[5])
        flags = self._flag_text_cache.get(flag_text)
        if flags is None:
            if len(self._flag_text_cache) > _CACHE_MAX:
                self._flag_text_cache.clear()
            flags = self._flag_text_cache[flag_text] = self._flags(tuple(flag_text.split()))
        modseq = head[6]
        # The usual shape: BODYSTRUCTURE without literals, then the header item and its
        # literal, then ")". The BODYSTRUCTURE then takes the shape cache (see _Shape).
        if len(lits) == 1:
            marker, lstart, lend = lits[0]
            if end - lend == 3 and buf[lend] == 41:  # ")"
                seg = bytes(buf[head.end() - 1 : marker])
                k = seg.rfind(b" BODY[")
                if k > 0 and seg.endswith(b"] ") and 34 not in seg[k:]:
                    bs = self._bodystructure(seg[:k])
                    if bs is not None:
                        return RawFetch(
                            int(head[1]),
                            int(head[2]),
                            int(head[3]),
                            self._internaldate(bytes(head[4])),
                            flags,
                            None if modseq is None else int(modseq),
                            bs,
                            bytes(buf[lstart:lend]),
                        )
        items = self._build_range(buf, head.end() - 15, end, lits, 1)
        vals: list[object] = [None] * 7
        vals[_K_UID] = int(head[2])
        vals[_K_SIZE] = int(head[3])
        vals[_K_DATE] = bytes(head[4])
        seen = 0b0000111
        if modseq is not None:
            vals[_K_MODSEQ] = (int(modseq),)
            seen |= 1 << _K_MODSEQ
        return self._finish(int(head[1]), items, vals, seen, flags)

    def _bodystructure(self, text: bytes) -> tuple[object, ...] | None:
        """Build a literal-free BODYSTRUCTURE through the shape cache; ``None``: not possible.

        The text is split at double quotes (odd pieces are the quoted strings) and at numbers;
        what remains, its *shape*, repeats across a mailbox (a few hundred shapes for 100,000
        messages). A compiled shape builds the nested tuples with ``operator.itemgetter``, in C.
        """
        if 92 in text:  # a backslash: quoted strings with escapes take the general path
            return None
        parts = text.split(b'"')
        if not len(parts) & 1:
            return None
        pieces = _NUMBER.split(b'"'.join(parts[0::2]))
        key = b"#".join(pieces[0::2])
        try:
            shape = self._shapes[key]
        except KeyError:
            if len(self._shapes) >= _SHAPES_MAX:
                self._shapes.clear()
            shape = self._shapes[key] = _Shape.compile(key, self.max_depth)
        if shape is None or len(pieces) >> 1 != shape.numbers:
            return None
        vals: list[object] = parts[1::2]  # type: ignore[assignment]
        vals += map(int, pieces[1::2])
        vals += shape.consts
        for step in shape.steps:
            vals.append(step(vals))
        return vals[-1]  # type: ignore[return-value]

    def _parse(
        self, buf: bytearray, seq: int, start: int, end: int, lits: list[tuple[int, int, int]]
    ) -> RawFetch | None:
        """Parse ``(item value ...)`` from ``buf[start]``; ``None`` when not one of ours."""
        items = self._build_range(buf, start, end, lits, 0)
        return self._finish(seq, items, [None] * 7, 0, None)

    def _finish(
        self,
        seq: int,
        items: tuple[object, ...],
        vals: list[object],
        seen: int,
        flags: tuple[str, ...] | None,
    ) -> RawFetch | None:
        """Check the item values and build the RawFetch."""
        if len(items) & 1:
            raise _Malformed("odd number of FETCH items")
        for k in range(0, len(items), 2):
            key = items[k]
            slot = _KEYS.get(key)  # type: ignore[call-overload]
            if slot is None:
                if type(key) is not bytes:
                    raise _Malformed(f"FETCH item name expected, got {_show(key)}")
                upper = key.upper()
                slot = _KEYS.get(upper)
                if slot is None:
                    if upper.startswith((b"BODY[", b"BINARY[")):
                        slot = _K_HEADER
                    else:
                        continue  # an item we did not ask for: ignore (RFC 3501 §7.4.2)
            if seen >> slot & 1:
                # A server sends each item once; twice means a wrong literal count swallowed
                # the next response, which resynchronisation can still recover.
                raise _Malformed(f"FETCH item {_show(key)} appears twice")
            vals[slot] = items[k + 1]
            seen |= 1 << slot

        uid = vals[_K_UID]
        if type(uid) is not int or not seen & 0b1010110:  # no SIZE, DATE, BS or HEADER
            return None  # an unsolicited FETCH (e.g. FLAGS set by another client)
        missing = [
            n
            for n, s in (("RFC822.SIZE", 1), ("INTERNALDATE", 2), ("BODYSTRUCTURE", 4))
            if not seen >> s & 1
        ]
        if missing:
            raise _Malformed(f"FETCH response lacks {', '.join(missing)}")
        size = vals[_K_SIZE]
        if type(size) is not int:
            raise _Malformed(f"RFC822.SIZE is not a number: {_show(size)}")
        bs = vals[_K_BS]
        if type(bs) is not tuple:
            raise _Malformed(f"BODYSTRUCTURE is not a list: {_show(bs)}")
        header = vals[_K_HEADER]
        if header is None:
            header = b""
        elif type(header) is not bytes:
            raise _Malformed(f"header fields are not a string: {_show(header)}")
        date = vals[_K_DATE]
        if type(date) is not bytes:
            raise _Malformed(f"INTERNALDATE is not a string: {_show(date)}")
        modseq: int | None = None
        if seen >> _K_MODSEQ & 1:
            mv = vals[_K_MODSEQ]
            if type(mv) is not tuple or len(mv) != 1 or type(mv[0]) is not int:
                raise _Malformed(f"MODSEQ is not (number): {_show(mv)}")
            modseq = mv[0]
        return RawFetch(
            seq,
            uid,
            size,
            self._internaldate(date),
            self._flags(vals[_K_FLAGS]) if flags is None else flags,
            modseq,
            bs,
            header,
        )

    def _flags(self, value: object) -> tuple[str, ...]:
        if value is None:
            return ()
        if type(value) is not tuple:
            raise _Malformed(f"FLAGS is not a list: {_show(value)}")
        flags = self._flag_cache.get(value)
        if flags is None:
            if not all(type(f) is bytes for f in value):
                raise _Malformed(f"FLAGS holds a non-atom: {_show(value)}")
            if len(self._flag_cache) > _CACHE_MAX:
                self._flag_cache.clear()
            flags = self._flag_cache[value] = tuple(f.decode("utf-8", "replace") for f in value)
        return flags

    def _internaldate(self, value: bytes) -> int:
        """Convert an RFC 3501 date-time to POSIX seconds, honouring its zone."""
        m = _INTERNALDATE.fullmatch(value)
        if m is None:
            raise _Malformed(f"INTERNALDATE not understood: {_show(value)}")
        dkey = value[:-15]
        days = self._day_cache.get(dkey)
        if days is None:
            month = _MONTHS.get(m[2].lower())
            try:
                if month is None:
                    raise ValueError(m[2])
                days = datetime.date(int(m[3]), month, int(m[1])).toordinal() - _EPOCH_ORDINAL
            except ValueError:
                raise _Malformed(f"INTERNALDATE not understood: {_show(value)}") from None
            if len(self._day_cache) > _CACHE_MAX:
                self._day_cache.clear()
            self._day_cache[dkey] = days
        hh, mm, ss = int(m[4]), int(m[5]), int(m[6])
        if hh > 23 or mm > 59 or ss > 60:
            raise _Malformed(f"INTERNALDATE not understood: {_show(value)}")
        zone = int(m[8]) * 3600 + int(m[9]) * 60
        if m[7] == b"-":
            zone = -zone
        return days * 86400 + hh * 3600 + mm * 60 + ss - zone


class _Shape:
    """How to build the nested tuples of one BODYSTRUCTURE shape from its values.

    A shape is the BODYSTRUCTURE text with every quoted string reduced to ``"`` and every
    number to ``#``. Values are laid out in one list: quoted strings, numbers, constants
    (NIL, ``()``, atoms), then each sub-list as it is built, innermost first.
    """

    __slots__ = ("consts", "numbers", "steps")

    def __init__(
        self, consts: list[object], numbers: int, steps: list[Callable[[list[object]], object]]
    ) -> None:
        self.consts = consts
        self.numbers = numbers
        self.steps = steps

    @classmethod
    def compile(cls, key: bytes, max_depth: int) -> _Shape | None:
        """Compile ``key``; ``None`` when it is not one plain list (the general path decides)."""
        consts: list[object] = [None, ()]
        lists: list[list[tuple[str, int]]] = []
        stack: list[list[tuple[str, int]]] = []
        cur: list[tuple[str, int]] = []
        quoted = numbers = 0
        for t in _SHAPE_TOKEN.findall(key):
            if t == b"(":
                if len(stack) >= max_depth:
                    return None
                stack.append(cur)
                cur = []
            elif t == b")":
                if not stack:
                    return None
                done = cur
                cur = stack.pop()
                if done:
                    lists.append(done)
                    cur.append(("s", len(lists) - 1))
                else:
                    cur.append(("c", 1))
            elif t == b'"':
                cur.append(("q", quoted))
                quoted += 1
            elif t == b"#":
                cur.append(("n", numbers))
                numbers += 1
            elif t == b"NIL":
                cur.append(("c", 0))
            elif 35 in t or t[0] in b"[]{}":  # "#" inside an atom: digits glued to text
                return None
            else:
                consts.append(t)
                cur.append(("c", len(consts) - 1))
        if stack or len(cur) != 1 or cur[0] != ("s", len(lists) - 1):
            return None
        base = {"q": 0, "n": quoted, "c": quoted + numbers, "s": quoted + numbers + len(consts)}
        steps: list[Callable[[list[object]], object]] = []
        for items in lists:
            index = [base[kind] + i for kind, i in items]
            if len(index) == 1:
                steps.append(partial(_one, index[0]))
            else:
                steps.append(itemgetter(*index))
        return cls(consts, numbers, steps)


def _one(i: int, vals: list[object]) -> tuple[object]:
    return (vals[i],)


def _segments(buf: bytearray, pos: int, end: int, lits: list[tuple[int, int, int]]) -> list[bytes]:
    """Return the text of ``buf[pos:end]`` outside literals (where UID and size may be found)."""
    parts: list[bytes] = []
    for marker, _, lend in lits:
        if marker >= end:
            break
        parts.append(bytes(buf[pos : min(marker, pos + _SALVAGE_WINDOW)]))
        pos = lend
    if pos < end:
        parts.append(bytes(buf[pos : min(end, pos + _SALVAGE_WINDOW)]))
    return parts


def _broken(seq: int, texts: list[bytes], error: str) -> RawFetch:
    """Build the RawFetch of a broken response, salvaging its UID and size when visible."""
    uid = size = 0
    for text in texts:
        window = text[:_SALVAGE_WINDOW]
        if not uid and (m := _UID_SALVAGE.search(window)):
            uid = int(m[1])
        if not size and (m := _SIZE_SALVAGE.search(window)):
            size = int(m[1])
    return RawFetch(seq, uid, size, 0, (), None, None, b"", error=error)


def _show(value: object) -> str:
    """Quote an offending token for an error message, shortened."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
