"""FetchStreamParser: equal to imapclient on generated streams, robust on broken ones."""

from __future__ import annotations

import datetime
import re
import tracemalloc
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from imapclient.response_parser import parse_fetch_response, parse_response

from quotatool.adapters.fetch_parser import FetchStreamParser, RawFetch

TAG = b"A7"
KEY = b"BODY[HEADER.FIELDS (FROM TO SUBJECT DATE MESSAGE-ID LIST-ID)]"
TAGGED = TAG + b" OK Fetch completed (0.001 + 0.000 secs).\r\n"

# Captured from Dovecot 2.3.19 (`UID FETCH 1:* (... MODSEQ)` after ENABLE CONDSTORE): note the
# literals it uses for strings holding a double quote or 8-bit octets.
DOVECOT = (
    b'* 1 FETCH (UID 1 RFC822.SIZE 263 INTERNALDATE "05-Mar-2026 10:12:13 +0000" FLAGS (\\Seen'
    b' \\Recent) MODSEQ (12) BODYSTRUCTURE ("text" "plain" ("charset" "utf-8") NIL NIL "8bit" 26'
    b" 2 NIL NIL NIL NIL) BODY[HEADER.FIELDS (FROM TO SUBJECT DATE MESSAGE-ID LIST-ID)] {144}\r\n"
    b"From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nDate: Tue, 03 Mar 2026 10:00:00"
    b" +0100\r\nMessage-ID: <plain@example.org>\r\nSubject: plain\r\n\r\n)\r\n"
    b'* 7 FETCH (UID 7 RFC822.SIZE 730 INTERNALDATE "05-Mar-2026 10:12:13 +0000" FLAGS (\\Seen'
    b' \\Recent) MODSEQ (12) BODYSTRUCTURE (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit"'
    b' 3 0 NIL NIL NIL NIL)("message" "rfc822" NIL NIL NIL "7bit" 398 ("Mon, 02 Mar 2026 09:00:00'
    b' +0000" {13}\r\nthe "numbers" (("Carol" NIL "carol" "example.net")) (("Carol" NIL "carol"'
    b' "example.net")) (("Carol" NIL "carol" "example.net")) ((NIL NIL "alice" "example.org")) NIL'
    b' NIL NIL "<inner@example.net>") (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 16 0'
    b' NIL NIL NIL NIL)("text" "csv" ("name" "numbers.csv" "charset" "us-ascii") NIL NIL "7bit" 8'
    b' 1 NIL ("attachment" ("filename" "numbers.csv")) NIL NIL) "mixed" ("boundary" "IN") NIL NIL'
    b' NIL) 19 NIL ("inline" NIL) NIL NIL) "mixed" ("boundary" "MIX") NIL NIL NIL)'
    b" BODY[HEADER.FIELDS (FROM TO SUBJECT DATE MESSAGE-ID LIST-ID)] {149}\r\n"
    b"From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nDate: Tue, 03 Mar 2026 10:00:00"
    b" +0100\r\nMessage-ID: <fwd@example.org>\r\nSubject: Fwd: numbers\r\n\r\n)\r\n"
    b'* 11 FETCH (UID 11 RFC822.SIZE 360 INTERNALDATE "05-Mar-2026 10:12:13 +0000" FLAGS (\\Seen'
    b' \\Recent) MODSEQ (12) BODYSTRUCTURE (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit"'
    b' 1 0 NIL NIL NIL NIL)("application" "octet-stream" ("name" {8}\r\ncaf\xe9.txt) NIL NIL "7bit"'
    b' 3 NIL ("attachment" NIL) NIL NIL) "mixed" ("boundary" "MIX") NIL NIL NIL)'
    b" BODY[HEADER.FIELDS (FROM TO SUBJECT DATE MESSAGE-ID LIST-ID)] {143}\r\n"
    b"From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nDate: Tue, 03 Mar 2026 10:00:00"
    b" +0100\r\nMessage-ID: <lat@example.org>\r\nSubject: latin1\r\n\r\n)\r\n"
    b"a5 OK Fetch completed (0.001 + 0.000 secs).\r\n"
)


def feed_all(
    parser: FetchStreamParser, stream: bytes, cuts: list[int] | None = None
) -> list[RawFetch]:
    points = sorted({c for c in (cuts or []) if 0 < c < len(stream)})
    out: list[RawFetch] = []
    start = 0
    for point in [*points, len(stream)]:
        out += parser.feed(stream[start:point])
        start = point
    return out


# -- an independent framing of the stream into imaplib's records, for imapclient ------------


def imaplib_responses(stream: bytes) -> list[list[bytes | tuple[bytes, bytes]]]:
    """Split a stream into responses shaped as imaplib hands them to imapclient."""
    responses: list[list[bytes | tuple[bytes, bytes]]] = []
    pos = 0
    while pos < len(stream):
        records: list[bytes | tuple[bytes, bytes]] = []
        while True:
            eol = stream.index(b"\r\n", pos)
            line = stream[pos:eol]
            m = re.search(rb"\{(\d+)\}\Z", line)
            if m is None:
                records.append(line)
                pos = eol + 2
                break
            size = int(m[1])
            records.append((line, stream[eol + 2 : eol + 2 + size]))
            pos = eol + 2 + size
        responses.append(records)
    return responses


def imapclient_fetch(records: list[bytes | tuple[bytes, bytes]]) -> tuple[object, ...]:
    """Parse one ``* n FETCH (...)`` response with imapclient's own lexer and parser."""
    first = records[0]
    text = first[0] if isinstance(first, tuple) else first
    m = re.match(rb"\* (\d+) FETCH ", text)
    assert m is not None
    stripped = m[1] + b" " + text[m.end() :]
    fixed = [(stripped, first[1]) if isinstance(first, tuple) else stripped, *records[1:]]
    parsed: tuple[object, ...] = parse_response(fixed)
    return parsed


# -- generated streams --------------------------------------------------------------------


@dataclass
class Msg:
    seq: int
    uid: int
    size: int
    when: datetime.datetime
    flags: tuple[bytes, ...]
    modseq: int | None
    bs: object
    header: bytes


text_bytes = st.binary(min_size=0, max_size=12)
quoted_safe = st.lists(
    st.sampled_from([*b"abcxyz019 -_./=(){}[]%*~", *b"\\", *b'"', 0xE9, 0xC3, 0xA9, 0x80, 0xFF]),
    max_size=12,
).map(bytes)
values = st.one_of(
    st.none(),
    st.integers(min_value=0, max_value=2**40),
    quoted_safe,
    text_bytes,
)


def body_parts() -> st.SearchStrategy[object]:
    leaf = st.tuples(
        st.sampled_from([b"text", b"application", b"image", b"TEXT"]),
        st.sampled_from([b"plain", b"pdf", b"html", b"png"]),
        st.one_of(st.none(), st.lists(quoted_safe, min_size=2, max_size=4).map(tuple)),
        st.one_of(st.none(), quoted_safe),
        st.none(),
        st.sampled_from([b"7bit", b"base64", b"quoted-printable"]),
        st.integers(min_value=0, max_value=10**9),
        st.lists(values, max_size=4).map(tuple),
    ).map(lambda t: (*t[:7], *t[7]))

    def extend(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
        multipart = st.tuples(
            st.lists(children, min_size=1, max_size=3),
            st.sampled_from([b"mixed", b"alternative", b"related"]),
            st.lists(values, max_size=3),
        ).map(lambda t: (*t[0], t[1], *t[2]))
        message = st.tuples(children, st.integers(min_value=0, max_value=10**6)).map(
            lambda t: (
                b"message",
                b"rfc822",
                None,
                None,
                None,
                b"7bit",
                t[1],
                (b"date", b"subj", ((b"n", None, b"u", b"h"),), None, (), None),
                t[0],
                3,
                None,
                (b"attachment", (b"filename", b"x.eml")),
            )
        )
        return st.one_of(multipart, message)

    return st.recursive(leaf, extend, max_leaves=6)


@st.composite
def messages(draw: st.DrawFn, seq: int) -> Msg:
    zone = datetime.timezone(datetime.timedelta(minutes=draw(st.integers(-12 * 60, 14 * 60))))
    when = draw(
        st.datetimes(
            min_value=datetime.datetime(1990, 1, 1),
            max_value=datetime.datetime(2090, 1, 1),
        )
    ).replace(microsecond=0, tzinfo=zone)
    return Msg(
        seq=seq,
        uid=draw(st.integers(min_value=1, max_value=2**32 - 1)),
        size=draw(st.integers(min_value=0, max_value=2**31)),
        when=when,
        flags=tuple(
            draw(
                st.lists(
                    st.sampled_from([b"\\Seen", b"\\Flagged", b"$Junk", b"\\Recent"]), max_size=3
                )
            )
        ),
        modseq=draw(st.one_of(st.none(), st.integers(min_value=1, max_value=2**63))),
        bs=draw(body_parts()),
        header=draw(st.binary(max_size=200)),
    )


def quote(value: bytes) -> bytes:
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def render_string(value: bytes, as_literal: bool) -> bytes:
    if as_literal or any(c in value for c in b"\r\n\x00"):
        return b"{%d}\r\n%s" % (len(value), value)
    return quote(value)


def render(value: object, literal: st.DrawFn | None = None) -> bytes:
    if value is None:
        return b"NIL"
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, bytes):
        use_literal = literal is not None and literal(st.integers(0, 9)) == 0
        return render_string(value, use_literal)
    assert isinstance(value, tuple)
    return b"(" + b" ".join(render(v, literal) for v in value) + b")"


def internaldate(when: datetime.datetime, pad: bool) -> bytes:
    day = f"{when.day:2d}" if pad else f"{when.day:02d}"
    return (day + when.strftime("-%b-%Y %H:%M:%S %z")).encode()


@st.composite
def fetch_response(draw: st.DrawFn, msg: Msg) -> bytes:
    items = [
        b"UID %d" % msg.uid,
        b"RFC822.SIZE %d" % msg.size,
        b'INTERNALDATE "%s"' % internaldate(msg.when, draw(st.booleans())),
        b"FLAGS (%s)" % b" ".join(msg.flags),
    ]
    if msg.modseq is not None:
        items.append(b"MODSEQ (%d)" % msg.modseq)
    items.append(b"BODYSTRUCTURE " + render(msg.bs, draw if draw(st.booleans()) else None))
    items.append(KEY + b" {%d}\r\n%s" % (len(msg.header), msg.header))
    if draw(st.booleans()):  # any order is allowed (RFC 3501 §7.4.2); Dovecot's is the fast path
        items = draw(st.permutations(items))
    return b"* %d FETCH (%s)\r\n" % (msg.seq, b" ".join(items))


UNTAGGED = [
    b"* 3 EXISTS",
    b"* 2 EXPUNGE",
    b"* OK [HIGHESTMODSEQ 99] x",
    b"* 9 FETCH (UID 90 FLAGS (\\Seen))",
]


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[Msg], list[bytes]]:
    count = draw(st.integers(min_value=1, max_value=5))
    msgs = [draw(messages(seq)) for seq in range(1, count + 1)]
    parts: list[bytes] = []
    untagged: list[bytes] = []
    for msg in msgs:
        if draw(st.integers(0, 4)) == 0:
            line = draw(st.sampled_from(UNTAGGED))
            untagged.append(line)
            parts.append(line + b"\r\n")
        parts.append(draw(fetch_response(msg)))
    return b"".join(parts) + TAGGED, msgs, untagged


def expected(msg: Msg) -> RawFetch:
    return RawFetch(
        seq=msg.seq,
        uid=msg.uid,
        size=msg.size,
        internaldate=int(msg.when.timestamp()),
        flags=tuple(f.decode() for f in msg.flags),
        modseq=msg.modseq,
        bodystructure=msg.bs,
        header=msg.header,
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.lists(st.integers(min_value=1, max_value=5000), max_size=12))
def test_generated_streams_parse_like_imapclient(
    case: tuple[bytes, list[Msg], list[bytes]], cuts: list[int]
) -> None:
    stream, msgs, untagged = case
    parser = FetchStreamParser(TAG)
    got = feed_all(parser, stream, cuts)

    assert parser.done
    assert parser.status == ("OK", "Fetch completed (0.001 + 0.000 secs).")
    assert parser.untagged == untagged
    assert got == [expected(m) for m in msgs]

    # The same bytes through imapclient's lexer and parser give the same values.
    fetches = [r for r in imaplib_responses(stream[: -len(TAGGED)]) if b"RFC822.SIZE" in _text(r)]
    assert len(fetches) == len(got)
    for records, raw in zip(fetches, got, strict=True):
        seq, items = imapclient_fetch(records)
        assert seq == raw.seq
        by_key = dict(zip(items[::2], items[1::2], strict=True))  # type: ignore[index]
        assert by_key[b"UID"] == raw.uid
        assert by_key[b"RFC822.SIZE"] == raw.size
        assert by_key[b"BODYSTRUCTURE"] == raw.bodystructure
        assert by_key[KEY] == raw.header
        assert tuple(f.decode() for f in by_key[b"FLAGS"]) == raw.flags
        if raw.modseq is not None:
            assert by_key[b"MODSEQ"] == (raw.modseq,)
        # imapclient's own date conversion agrees on the instant
        first = records[0]
        text = first[0] if isinstance(first, tuple) else first
        fixed = (
            [(text[2:].replace(b" FETCH ", b" ", 1), first[1])] if isinstance(first, tuple) else []
        )
        if fixed:
            full = parse_fetch_response([*fixed, *records[1:]], normalise_times=False)
            assert int(full[raw.uid][b"INTERNALDATE"].timestamp()) == raw.internaldate


def _text(records: list[bytes | tuple[bytes, bytes]]) -> bytes:
    return b"".join(r[0] if isinstance(r, tuple) else r for r in records)


@settings(max_examples=50, deadline=None)
@given(streams(), st.data())
def test_any_chunking_gives_the_same_result(
    case: tuple[bytes, list[Msg], list[bytes]], data: st.DataObject
) -> None:
    stream = case[0]
    whole = feed_all(FetchStreamParser(TAG), stream)
    bytewise = FetchStreamParser(TAG)
    one_by_one = [m for i in range(len(stream)) for m in bytewise.feed(stream[i : i + 1])]
    cuts = data.draw(st.lists(st.integers(1, len(stream) - 1), max_size=30))
    assert one_by_one == whole
    assert feed_all(FetchStreamParser(TAG), stream, cuts) == whole


def test_dovecot_capture() -> None:
    parser = FetchStreamParser(b"a5")
    got = feed_all(parser, DOVECOT, list(range(0, len(DOVECOT), 7)))
    assert parser.done
    assert parser.status == ("OK", "Fetch completed (0.001 + 0.000 secs).")
    assert [(m.seq, m.uid, m.size, m.modseq, m.error) for m in got] == [
        (1, 1, 263, 12, None),
        (7, 7, 730, 12, None),
        (11, 11, 360, 12, None),
    ]
    assert got[0].flags == ("\\Seen", "\\Recent")
    assert got[0].internaldate == int(
        datetime.datetime(2026, 3, 5, 10, 12, 13, tzinfo=datetime.UTC).timestamp()
    )
    assert got[0].bodystructure == (
        b"text",
        b"plain",
        (b"charset", b"utf-8"),
        None,
        None,
        b"8bit",
        26,
        2,
        None,
        None,
        None,
        None,
    )
    envelope = got[1].bodystructure[1][7]  # type: ignore[index]
    assert envelope[1] == b'the "numbers"'
    assert got[2].bodystructure[1][2] == (b"name", b"caf\xe9.txt")  # type: ignore[index]
    assert got[2].header.endswith(b"Subject: latin1\r\n\r\n")


# -- details of the grammar ---------------------------------------------------------------

ONE = (
    b'* 4 FETCH (UID 40 RFC822.SIZE 100 INTERNALDATE "28-Nov-2026 07:23:36 +0100" FLAGS ()'
    b' BODYSTRUCTURE ("text" "plain" NIL NIL NIL "7bit" 10 1 NIL NIL NIL NIL) '
    + KEY
    + b" {5}\r\nabcde)\r\n"
)


def one(stream: bytes, **kw: int) -> tuple[FetchStreamParser, list[RawFetch]]:
    parser = FetchStreamParser(TAG, **kw)
    return parser, feed_all(parser, stream + TAGGED)


def test_internaldate_honours_the_zone() -> None:
    _, [msg] = one(ONE)
    assert msg.internaldate == int(
        datetime.datetime(2026, 11, 28, 6, 23, 36, tzinfo=datetime.UTC).timestamp()
    )
    assert msg.flags == ()


@pytest.mark.parametrize(
    "marker", [b"{5}", b"{5+}", b"~{5}"], ids=["synchronising", "literal+", "literal8"]
)
def test_literal_forms(marker: bytes) -> None:
    _, [msg] = one(ONE.replace(b"{5}", marker))
    assert msg.header == b"abcde"
    assert msg.error is None


@pytest.mark.parametrize(
    "variant",
    [
        ONE,
        ONE.replace(b"FLAGS ()", b"FLAGS (\\Seen $Junk) MODSEQ (77)"),
        ONE.replace(b'"7bit"', b'"7b\\"it"'),  # an escape: the general path builds it
        ONE.replace(b'"7bit"', b'"a) BODY[X] {2}"'),  # an item name inside a string
        ONE.replace(b"BODY[HEADER.FIELDS (FROM", b"BODY[HEADER.FIELDS ([FROM"),
        ONE.replace(b"{5}\r\nabcde)", b"{5}\r\nabcde x)"),  # more after the literal
        ONE.replace(b"{5}\r\nabcde)", b"{4}\r\nabcde)"),  # a wrong literal count
        ONE.replace(b"07:23:36", b"27:23:36"),  # a bad INTERNALDATE
        ONE.replace(b"FLAGS ()", b"FLAGS (\r\n)"),  # a line break before the literal
    ],
)
def test_whole_response_path_agrees_with_the_framing_loop(variant: bytes) -> None:
    stream = ONE + variant + ONE.replace(b"* 4 ", b"* 5 ") + TAGGED
    whole = feed_all(FetchStreamParser(TAG), stream)
    # Fed a byte at a time, no response is ever complete at its start: the general way.
    bytewise = FetchStreamParser(TAG)
    assert [m for i in range(len(stream)) for m in bytewise.feed(stream[i : i + 1])] == whole
    assert [m.seq for m in whole][-1] == 5


@pytest.mark.parametrize("atom", [b"7BIT", b"0123", b"00", b"a1", b"1a", b"#", b"1#2"])
def test_atoms_holding_digits_are_atoms_like_imapclient(atom: bytes) -> None:
    bs = b'("text" "plain" NIL NIL NIL %s 10 1 NIL NIL NIL NIL)' % atom
    _, [msg] = one(ONE.replace(b'("text" "plain" NIL NIL NIL "7bit" 10 1 NIL NIL NIL NIL)', bs))
    assert msg.error is None
    assert msg.bodystructure == parse_response([bs])[0]


def test_items_in_any_order_and_case() -> None:
    stream = (
        b"* 4 FETCH (body[HEADER.FIELDS (FROM)] {3}\r\nxyz flags (\\Seen) bodystructure"
        b' ("TEXT" {5}\r\nPLAIN NIL NIL NIL "7bit" 0 0) internaldate " 1-Jan-2001 00:00:00 -0000"'
        b" rfc822.size 9 uid 41 modseq (77))\r\n"
    )
    _, [msg] = one(stream)
    assert (msg.uid, msg.size, msg.modseq, msg.header, msg.flags) == (
        41,
        9,
        77,
        b"xyz",
        ("\\Seen",),
    )
    assert msg.bodystructure == (b"TEXT", b"PLAIN", None, None, None, b"7bit", 0, 0)
    assert msg.internaldate == 978307200


def test_quoted_escapes_and_nil_header() -> None:
    stream = ONE.replace(b'"7bit"', b'"a\\"b\\\\c"').replace(b" {5}\r\nabcde)", b" NIL)")
    _, [msg] = one(stream)
    assert msg.bodystructure[5] == b'a"b\\c'  # type: ignore[index]
    assert msg.header == b""


def test_untagged_lines_and_unsolicited_fetch_are_kept_aside() -> None:
    stream = b"* 9 EXISTS\r\n* 3 FETCH (FLAGS (\\Deleted))\r\n" + ONE + b"* 1 EXPUNGE\r\n"
    parser, msgs = one(stream)
    assert [m.uid for m in msgs] == [40]
    assert parser.untagged == [b"* 9 EXISTS", b"* 3 FETCH (FLAGS (\\Deleted))", b"* 1 EXPUNGE"]


def test_untagged_list_is_bounded() -> None:
    parser, _ = one(b"* 1 EXISTS\r\n" * 5000)
    assert len(parser.untagged) == 1000
    assert parser.untagged_dropped == 4000


@pytest.mark.parametrize(
    ("state", "rest"), [("NO", "[SERVERBUG] oops"), ("BAD", "Error in IMAP command")]
)
def test_tagged_failure(state: str, rest: str) -> None:
    parser = FetchStreamParser(TAG)
    assert parser.feed(ONE + TAG + f" {state} {rest}\r\n".encode()) != []
    assert parser.done
    assert parser.status == (state, rest)
    assert parser.feed(ONE) == []  # nothing after the tagged response belongs to us


def test_other_tags_do_not_end_the_command() -> None:
    parser = FetchStreamParser(TAG)
    parser.feed(b"A6 OK old\r\n" + ONE)
    assert not parser.done


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ((b"BODYSTRUCTURE (", b"BODYSTRUCTURE "), "unbalanced"),
        ((b" FLAGS ()", b" FLAGS () X"), "odd number"),
        ((b'"28-Nov-2026 07:23:36 +0100"', b'"31-Feb-2026 07:23:36 +0100"'), "INTERNALDATE"),
        ((b'"28-Nov-2026 07:23:36 +0100"', b"NIL"), "INTERNALDATE"),
        ((b"RFC822.SIZE 100", b"RFC822.SIZE x"), "RFC822.SIZE"),
        ((b" BODYSTRUCTURE (", b" XBODYSTRUCTURE ("), "lacks BODYSTRUCTURE"),
        ((b"NIL NIL NIL NIL)", b"NIL NIL NIL NIL"), "parenthesised"),
        ((b"FLAGS ()", b"FLAGS ())"), ""),
        ((b'"text"', b'"te{xt" ]'), "unexpected"),
        ((b'"text"', b'"text'), ""),
        ((b"FLAGS ()", b"FLAGS NIL MODSEQ 5"), "MODSEQ"),
    ],
)
def test_malformed_response_marks_only_that_message(
    change: tuple[bytes, bytes], error: str
) -> None:
    second = ONE.replace(b"* 4 ", b"* 5 ").replace(b"UID 40", b"UID 50")
    parser, msgs = one(ONE.replace(*change) + second)
    assert [m.uid for m in msgs] == [40, 50]
    assert msgs[0].error is not None
    assert error in msgs[0].error
    assert msgs[0].size == 100 or b"RFC822.SIZE 100" not in ONE.replace(*change)
    assert msgs[1].error is None
    assert parser.done


def test_wrong_literal_count_resynchronises_at_the_next_response() -> None:
    second = ONE.replace(b"* 4 ", b"* 5 ").replace(b"UID 40", b"UID 50")
    broken = ONE.replace(b"{5}", b"{50}")  # swallows the start of the next response
    parser, msgs = one(broken + second + second.replace(b"UID 50", b"UID 60"))
    assert parser.done
    assert msgs[0].uid == 40
    assert msgs[0].error is not None
    assert [m.uid for m in msgs if m.error is None] == [50, 60]


def test_literal_running_past_the_tagged_response_ends_the_command() -> None:
    parser = FetchStreamParser(TAG)
    msgs = parser.feed(ONE.replace(b"{5}", b"{5000}") + TAGGED)
    assert parser.done
    assert [(m.uid, m.error is not None) for m in msgs] == [(40, True)]


def test_deep_nesting_is_an_error_not_a_recursion() -> None:
    deep = b"(" * 1000 + b'"x"' + b")" * 1000
    bad = ONE.replace(b'("text" "plain" NIL NIL NIL "7bit" 10 1 NIL NIL NIL NIL)', deep)
    second = ONE.replace(b"* 4 ", b"* 5 ").replace(b"UID 40", b"UID 50")
    _, msgs = one(bad + second)
    assert [m.uid for m in msgs] == [40, 50]
    assert msgs[0].error is not None
    assert "deeper than 64" in msgs[0].error
    assert msgs[1].error is None
    # the reason this parser exists (SAFETY.md fact 8)
    records = imaplib_responses(bad)[0]
    with pytest.raises(RecursionError):
        imapclient_fetch(records)


def test_oversized_literal_is_skipped_in_bounded_memory() -> None:
    size = 40 * 1024 * 1024
    head = ONE.split(b"{5}")[0] + b"{%d}\r\n" % size
    tail = b")\r\n" + ONE.replace(b"* 4 ", b"* 5 ").replace(b"UID 40", b"UID 50") + TAGGED
    chunk = b"x" * (256 * 1024)
    parser = FetchStreamParser(TAG)
    tracemalloc.start()
    try:
        out = parser.feed(head)
        for _ in range(size // len(chunk)):
            out += parser.feed(chunk)
            assert len(parser._buf) < 64 * 1024
        out += parser.feed(tail)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024
    assert parser.done
    assert [(m.uid, m.size) for m in out] == [(40, 100), (50, 100)]
    assert out[0].error is not None
    assert "exceeds the 8388608-octet limit" in out[0].error
    assert out[1].error is None


def test_overlong_line_is_skipped() -> None:
    parser = FetchStreamParser(TAG)
    out = parser.feed(b"* 4 FETCH (UID 40 RFC822.SIZE 1 X (")
    for _ in range(100):
        out += parser.feed(b"(" * 20000)
        assert len(parser._buf) < 2 * 1024 * 1024
    out += parser.feed(b"\r\n" + ONE.replace(b"UID 40", b"UID 41") + TAGGED)
    assert [(m.uid, m.error is not None) for m in out] == [(40, True), (41, False)]


def test_small_max_literal() -> None:
    parser, msgs = one(ONE, max_literal=4)
    assert msgs[0].error is not None
    assert "literal of 5 octets" in msgs[0].error
    assert parser.done


# -- fuzzing ------------------------------------------------------------------------------

HEADERS = [b"From: a@b.c\r\nSubject: %d\r\n\r\n" % i for i in range(5)]


@st.composite
def valid_streams(draw: st.DrawFn) -> tuple[bytes, list[bytes], list[RawFetch]]:
    count = draw(st.integers(min_value=2, max_value=5))
    responses = []
    for seq in range(1, count + 1):
        msg = draw(messages(seq))
        msg.header = HEADERS[seq % 5]
        responses.append(draw(fetch_response(msg)))
    originals = feed_all(FetchStreamParser(TAG), b"".join(responses) + TAGGED)
    assert all(m.error is None for m in originals)
    return b"".join(responses) + TAGGED, responses, originals


def mutate(data: st.DataObject, response: bytes) -> bytes:
    pos = data.draw(st.integers(0, len(response) - 1))
    op = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
    byte = bytes([data.draw(st.sampled_from([*b'(){}"\\\r\n *~+0123456789', 0, 0xFF, 65]))])
    if op == "flip":
        return response[:pos] + byte + response[pos + 1 :]
    if op == "delete":
        return response[:pos] + response[pos + 1 :]
    if op == "insert":
        return response[:pos] + byte + response[pos:]
    return response[:pos]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_streams(), st.data())
def test_fuzzed_streams_never_crash_and_mark_only_broken_messages(
    case: tuple[bytes, list[bytes], list[RawFetch]], data: st.DataObject
) -> None:
    _, responses, originals = case
    victim = data.draw(st.integers(0, len(responses) - 1))
    mutated = mutate(data, responses[victim])
    assume(mutated != responses[victim])
    stream = b"".join(responses[:victim]) + mutated + b"".join(responses[victim + 1 :]) + TAGGED
    cuts = data.draw(st.lists(st.integers(1, len(stream) - 1), max_size=8))

    parser = FetchStreamParser(TAG)
    got = feed_all(parser, stream, cuts)  # must not raise

    assert len(parser._buf) < len(stream) + 1
    unexpected = [m for m in got if m.error is None and m not in originals]
    assert len(unexpected) <= 1  # only the mutated response can turn into something new
    # Everything before the victim is intact; what follows is intact unless a literal count
    # changed and swallowed it.
    assert got[:victim] == originals[:victim]
    if len(mutated) == len(responses[victim]) and not _touches(responses[victim], mutated):
        survivors = [m for m in got if m.error is None]
        for original in originals[victim + 1 :]:
            assert original in survivors
        assert parser.done


def _touches(before: bytes, after: bytes) -> bool:
    """Tell whether a same-length change moved the framing.

    That is a literal marker or a line end: with its CRLF gone a response runs on into the
    next line (even the tagged completion), and a new CR or LF can end it early.
    """
    diff = next(i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b)
    if before[diff] in b"\r\n" or after[diff] in b"\r\n":
        return True
    return any(m.start() - 1 <= diff < m.end() for m in re.finditer(rb"\{\d+\}\r\n", before))


@settings(max_examples=100, deadline=None)
@given(valid_streams(), st.data())
def test_truncated_streams_return_every_complete_message(
    case: tuple[bytes, list[bytes], list[RawFetch]], data: st.DataObject
) -> None:
    stream, responses, originals = case
    cut = data.draw(st.integers(0, len(stream) - 1))
    parser = FetchStreamParser(TAG)
    got = feed_all(parser, stream[:cut], data.draw(st.lists(st.integers(1, 4000), max_size=5)))
    complete = 0
    length = 0
    for response in responses:
        length += len(response)
        if length <= cut:
            complete += 1
    assert got == originals[:complete]
    assert not parser.done


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(1, 400), max_size=6))
def test_arbitrary_bytes_never_raise(data: bytes, cuts: list[int]) -> None:
    parser = FetchStreamParser(TAG, max_literal=64)
    for msg in feed_all(parser, b"* 1 FETCH (" + data, cuts) + feed_all(parser, data, cuts):
        assert isinstance(msg, RawFetch)
        assert msg.error is None or isinstance(msg.error, str)
