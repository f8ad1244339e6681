"""Header fields: RFC 2047 words, folding, missing fields, dates; fast paths equal email.utils."""

from __future__ import annotations

import datetime
import email.header
import email.utils

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from quotatool.core.headers import (
    HeaderFields,
    decode_words,
    parse_date,
    parse_from,
    parse_header_fields,
    parse_to,
)


def test_typical_block() -> None:
    raw = (
        b"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <JM@Example.DE>\r\n"
        b'To: a@example.org, "Doe, Jane" <Jane@Example.org>\r\n'
        b"Subject: =?iso-8859-1?b?UulzdW3p?= du jour\r\n"
        b"Date: Tue, 3 Mar 2026 10:00:00 +0100 (CET)\r\n"
        b"Message-ID: <abc@example.de>\r\n"
        b"List-ID: =?utf-8?q?Caf=C3=A9?= <cafe.lists.example.org>\r\n\r\n"
    )
    assert parse_header_fields(raw) == HeaderFields(
        from_addr="jm@example.de",
        from_name="Jürgen Müller",
        to=("a@example.org", "jane@example.org"),
        subject="Résumé du jour",
        date=int(datetime.datetime(2026, 3, 3, 9, 0, tzinfo=datetime.UTC).timestamp()),
        message_id="<abc@example.de>",
        list_id="Café <cafe.lists.example.org>",
    )


@pytest.mark.parametrize(
    ("value", "decoded"),
    [
        ("=?UTF-8?Q?caf=C3=A9_cr=C3=A8me?=", "café crème"),
        ("=?utf-8?B?Y2Fmw6k=?=", "café"),
        ("=?ISO-8859-1?Q?K=FCndigung?=", "Kündigung"),
        ("=?iso-8859-1?b?S/xuZGlndW5n?=", "Kündigung"),
        ("Re: =?utf-8?q?a?= =?utf-8?q?b?= c", "Re: ab c"),  # RFC 2047 §6.2
        ("=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab"),
        ("plain  text ", "plain  text"),
        ("=?utf-8*en?q?hello?=", "hello"),  # RFC 2231 §5 language
        ("=?x-unknown?q?abc?=", "=?x-unknown?q?abc?="),
        ("=?utf-8?b?!!!?=", ""),  # email.header drops undecodable base64
        ("=?utf-8?q?=FF?=", "=?utf-8?q?=FF?="),
        ("x=?utf-8?q?a?=", "x a"),  # not delimited: email.header's reading
    ],
)
def test_decode_words(value: str, decoded: str) -> None:
    assert decode_words(value) == decoded


def test_folded_lines_and_lf_only() -> None:
    raw = b"Subject: a long\n\tsubject line\nFrom: x@y.z\n\n"
    fields = parse_header_fields(raw)
    assert fields.subject == "a long subject line"
    assert fields.from_addr == "x@y.z"


def test_folded_encoded_subject() -> None:
    raw = b"Subject: =?utf-8?q?caf=C3=A9?=\r\n =?utf-8?q?_cr=C3=A8me?=\r\n\r\n"
    assert parse_header_fields(raw).subject == "café crème"


def test_missing_fields_and_empty_block() -> None:
    assert parse_header_fields(b"") == HeaderFields()
    assert parse_header_fields(b"\r\n") == HeaderFields()
    fields = parse_header_fields(b"Subject: only\r\n\r\n")
    assert (fields.from_addr, fields.to, fields.date, fields.message_id, fields.list_id) == (
        "",
        (),
        None,
        None,
        None,
    )


def test_first_occurrence_wins_and_names_are_case_insensitive() -> None:
    fields = parse_header_fields(b"SUBJECT: one\r\nsubject: two\r\nfrom : A <a@b.c>\r\n")
    assert fields.subject == "one"
    assert fields.from_addr == "a@b.c"


def test_eight_bit_headers_decode_as_utf8_or_latin1() -> None:
    assert parse_header_fields("Subject: café\r\n".encode()).subject == "café"
    assert parse_header_fields(b"Subject: caf\xe9\r\n").subject == "café"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "Tue, 31 Feb 2026 10:00:00 +0100",
        "99 Foo 2026 10:00:00 +0000",
        "Mon, 1 Jan 2026 25:61:00 +0000",
        "1 Jan 99999 00:00:00 +0000",
    ],
)
def test_garbage_dates_are_none(value: str) -> None:
    assert parse_date(value) is None
    assert parse_header_fields(f"Date: {value}\r\n".encode()).date is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "Tue, 03 Mar 2026 10:00:00 +0100",
            datetime.datetime(2026, 3, 3, 9, 0, tzinfo=datetime.UTC),
        ),
        ("3 Mar 2026 10:00 -0230", datetime.datetime(2026, 3, 3, 12, 30, tzinfo=datetime.UTC)),
        (
            "Tue, 03 Mar 2026 10:00:00 GMT",
            datetime.datetime(2026, 3, 3, 10, 0, tzinfo=datetime.UTC),
        ),
        (
            "Tue, 03 Mar 2026 10:00:00 -0000",
            datetime.datetime(2026, 3, 3, 10, 0, tzinfo=datetime.UTC),
        ),
        ("Tue, 3 Mar 26 10:00:00 EST", datetime.datetime(2026, 3, 3, 15, 0, tzinfo=datetime.UTC)),
    ],
)
def test_dates(value: str, expected: datetime.datetime) -> None:
    assert parse_date(value) == int(expected.timestamp())


def _reference_date(value: str) -> int | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return int(parsed.timestamp())


@settings(max_examples=300)
@given(
    st.datetimes(min_value=datetime.datetime(1970, 1, 2), max_value=datetime.datetime(2200, 1, 1)),
    st.integers(-23 * 60 - 59, 23 * 60 + 59),
    st.booleans(),
    st.booleans(),
)
def test_fast_dates_equal_email_utils(
    when: datetime.datetime, minutes: int, weekday: bool, comment: bool
) -> None:
    zone = datetime.timezone(datetime.timedelta(minutes=minutes))
    value = email.utils.format_datetime(when.replace(microsecond=0, tzinfo=zone))
    if not weekday:
        value = value.split(", ", 1)[1]
    if comment:
        value += " (CET)"
    assert parse_date(value) == _reference_date(value)


atoms = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._+-", min_size=1, max_size=10)
addresses = st.builds(lambda a, b: f"{a}@{b}.example", atoms, atoms)
display = st.one_of(
    st.just(""),
    st.text(alphabet="abcXYZ éü.'-", min_size=1, max_size=12),
    st.text(alphabet="abc ,;:<>@()[]", min_size=1, max_size=12).map(lambda s: '"' + s + '"'),
    st.just("=?utf-8?q?J=C3=BCrgen?="),
)


@st.composite
def mailboxes(draw: st.DrawFn) -> str:
    name = draw(display)
    addr = draw(addresses)
    spaces = draw(st.sampled_from(["", " ", "  "]))
    return (
        f"{spaces}{name} <{addr}>{spaces}" if name else draw(st.sampled_from([addr, f"<{addr}>"]))
    )


@settings(max_examples=300)
@given(mailboxes())
def test_fast_from_equals_parseaddr(value: str) -> None:
    assert parse_from(value) == email.utils.parseaddr(value)


@settings(max_examples=300)
@given(st.lists(mailboxes(), min_size=1, max_size=4))
def test_fast_to_equals_getaddresses(values: list[str]) -> None:
    value = ", ".join(values)
    reference = tuple(a for _, a in email.utils.getaddresses([value]) if a)
    assert parse_to(value) == reference


words = st.one_of(
    st.text(alphabet="abc XYZ:!", min_size=1, max_size=8),
    st.builds(
        lambda text, charset, b64: (
            email.header.Header(text, charset).encode()
            if not b64
            else f"=?{charset}?b?{__import__('base64').b64encode(text.encode(charset)).decode()}?="
        ),
        st.text(alphabet="abcéüß€ _=?", min_size=1, max_size=10),
        st.sampled_from(["utf-8", "iso-8859-15"]),
        st.booleans(),
    ),
)


@settings(max_examples=300)
@given(st.lists(words, min_size=1, max_size=4))
def test_fast_decode_equals_email_header(parts: list[str]) -> None:
    value = " ".join(parts)
    try:
        reference = str(email.header.make_header(email.header.decode_header(value))).strip()
    except (ValueError, LookupError, UnicodeError):
        assume(False)
    assert decode_words(value) == reference
