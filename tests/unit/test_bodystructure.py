"""BODYSTRUCTURE → MIME tree, attachments and sizes (RFC 3501 §7.4.2, §6.4.5)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quotatool.core.bodystructure import (
    BodystructureError,
    decoded_size_estimate,
    find_attachments,
    summarize,
    to_mime_tree,
)
from quotatool.errors import ParseError
from quotatool.model import Attachment, MimePart

# Dovecot 2.3.19 output for messages appended to a test mailbox (captured with
# `UID FETCH 1:* (BODYSTRUCTURE)`), as the FETCH parser yields it.
PLAIN: object = (
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
ALTERNATIVE: object = (
    (
        b"text",
        b"plain",
        (b"charset", b"utf-8"),
        None,
        None,
        b"quoted-printable",
        9,
        0,
        None,
        None,
        None,
        None,
    ),
    (
        b"text",
        b"html",
        (b"charset", b"utf-8"),
        None,
        None,
        b"quoted-printable",
        16,
        0,
        None,
        None,
        None,
        None,
    ),
    b"alternative",
    (b"boundary", b"ALT"),
    None,
    None,
    None,
)
PDF: object = (
    (
        b"text",
        b"plain",
        (b"charset", b"us-ascii"),
        None,
        None,
        b"7bit",
        13,
        0,
        None,
        None,
        None,
        None,
    ),
    (
        b"application",
        b"pdf",
        (b"name", b"report 2026 (final).pdf"),
        None,
        None,
        b"base64",
        7018,
        None,
        (b"attachment", (b"filename", b"report 2026 (final).pdf")),
        None,
        None,
    ),
    b"mixed",
    (b"boundary", b"MIX"),
    None,
    None,
    None,
)
INLINE: object = (
    (b"text", b"html", (b"charset", b"utf-8"), None, None, b"7bit", 22, 0, None, None, None, None),
    (
        b"image",
        b"png",
        (b"name", b"image001.png"),
        b"<img1@x>",
        None,
        b"base64",
        688,
        None,
        (b"inline", (b"filename", b"image001.png")),
        None,
        None,
    ),
    b"related",
    (b"boundary", b"REL", b"type", b"text/html"),
    None,
    None,
    None,
)
RFC2231: object = (
    (
        b"text",
        b"plain",
        (b"charset", b"us-ascii"),
        None,
        None,
        b"7bit",
        1,
        0,
        None,
        None,
        None,
        None,
    ),
    (
        b"application",
        b"octet-stream",
        None,
        None,
        None,
        b"base64",
        7018,
        None,
        (b"attachment", (b"filename*", b"utf-8''%E2%82%AC%20Rechnung%20M%C3%A4rz.pdf")),
        None,
        None,
    ),
    b"mixed",
    (b"boundary", b"MIX"),
    None,
    None,
    None,
)
RFC2047: object = (
    (
        b"text",
        b"plain",
        (b"charset", b"us-ascii"),
        None,
        None,
        b"7bit",
        1,
        0,
        None,
        None,
        None,
        None,
    ),
    (
        b"application",
        b"vnd.ms-excel",
        (b"name", b"=?iso-8859-1?Q?K=FCndigung=5F=22alt=22.xls?="),
        None,
        None,
        b"base64",
        7018,
        None,
        (b"attachment", (b"filename", b"=?iso-8859-1?Q?K=FCndigung=5F=22alt=22.xls?=")),
        None,
        None,
    ),
    b"mixed",
    (b"boundary", b"MIX"),
    None,
    None,
    None,
)
FORWARD: object = (
    (
        b"text",
        b"plain",
        (b"charset", b"us-ascii"),
        None,
        None,
        b"7bit",
        3,
        0,
        None,
        None,
        None,
        None,
    ),
    (
        b"message",
        b"rfc822",
        None,
        None,
        None,
        b"7bit",
        398,
        (
            b"Mon, 02 Mar 2026 09:00:00 +0000",
            b'the "numbers"',
            ((b"Carol", None, b"carol", b"example.net"),),
            ((b"Carol", None, b"carol", b"example.net"),),
            ((b"Carol", None, b"carol", b"example.net"),),
            ((None, None, b"alice", b"example.org"),),
            None,
            None,
            None,
            b"<inner@example.net>",
        ),
        (
            (
                b"text",
                b"plain",
                (b"charset", b"us-ascii"),
                None,
                None,
                b"7bit",
                16,
                0,
                None,
                None,
                None,
                None,
            ),
            (
                b"text",
                b"csv",
                (b"name", b"numbers.csv", b"charset", b"us-ascii"),
                None,
                None,
                b"7bit",
                8,
                1,
                None,
                (b"attachment", (b"filename", b"numbers.csv")),
                None,
                None,
            ),
            b"mixed",
            (b"boundary", b"IN"),
            None,
            None,
            None,
        ),
        19,
        None,
        (b"inline", None),
        None,
        None,
    ),
    b"mixed",
    (b"boundary", b"MIX"),
    None,
    None,
    None,
)
FORWARD_ATTACHED: object = (
    (
        b"text",
        b"plain",
        (b"charset", b"us-ascii"),
        None,
        None,
        b"7bit",
        3,
        0,
        None,
        None,
        None,
        None,
    ),
    (
        b"message",
        b"rfc822",
        (b"name", b"numbers.eml"),
        None,
        None,
        b"7bit",
        398,
        (
            b"Mon, 02 Mar 2026 09:00:00 +0000",
            b'the "numbers"',
            ((b"Carol", None, b"carol", b"example.net"),),
            ((b"Carol", None, b"carol", b"example.net"),),
            ((b"Carol", None, b"carol", b"example.net"),),
            ((None, None, b"alice", b"example.org"),),
            None,
            None,
            None,
            b"<inner@example.net>",
        ),
        (
            (
                b"text",
                b"plain",
                (b"charset", b"us-ascii"),
                None,
                None,
                b"7bit",
                16,
                0,
                None,
                None,
                None,
                None,
            ),
            (
                b"text",
                b"csv",
                (b"name", b"numbers.csv", b"charset", b"us-ascii"),
                None,
                None,
                b"7bit",
                8,
                1,
                None,
                (b"attachment", (b"filename", b"numbers.csv")),
                None,
                None,
            ),
            b"mixed",
            (b"boundary", b"IN"),
            None,
            None,
            None,
        ),
        19,
        None,
        (b"attachment", (b"filename", b"numbers.eml")),
        None,
        None,
    ),
    b"mixed",
    (b"boundary", b"MIX"),
    None,
    None,
    None,
)
SIGNED: object = (
    (b"text", b"plain", (b"charset", b"utf-8"), None, None, b"7bit", 11, 0, None, None, None, None),
    (
        b"application",
        b"pgp-signature",
        (b"name", b"signature.asc"),
        None,
        b"OpenPGP digital signature",
        b"7bit",
        63,
        None,
        (b"attachment", (b"filename", b"signature.asc")),
        None,
        None,
    ),
    b"signed",
    (b"micalg", b"pgp-sha256", b"protocol", b"application/pgp-signature", b"boundary", b"SIG"),
    None,
    None,
    None,
)
FORWARD_PLAIN: object = (
    b"message",
    b"rfc822",
    None,
    None,
    None,
    b"7bit",
    62,
    (
        None,
        b"inner plain",
        ((b"Dan", None, b"d", b"example.net"),),
        ((b"Dan", None, b"d", b"example.net"),),
        ((b"Dan", None, b"d", b"example.net"),),
        None,
        None,
        None,
        None,
        None,
    ),
    (
        b"text",
        b"plain",
        (b"charset", b"us-ascii"),
        None,
        None,
        b"7bit",
        11,
        1,
        None,
        None,
        None,
        None,
    ),
    4,
    None,
    None,
    None,
    None,
)
LATIN1_NAME: object = (
    (
        b"text",
        b"plain",
        (b"charset", b"us-ascii"),
        None,
        None,
        b"7bit",
        1,
        0,
        None,
        None,
        None,
        None,
    ),
    (
        b"application",
        b"octet-stream",
        (b"name", b"caf\xe9.txt"),
        None,
        None,
        b"7bit",
        3,
        None,
        (b"attachment", None),
        None,
        None,
    ),
    b"mixed",
    (b"boundary", b"MIX"),
    None,
    None,
    None,
)

# Not Dovecot (it joins RFC 2231 continuations itself): servers that pass them through.
CONTINUATIONS: object = (
    (b"text", b"plain", None, None, None, b"7bit", 1, 0),
    (
        b"application",
        b"pdf",
        None,
        None,
        None,
        b"base64",
        7800,
        None,
        (
            b"attachment",
            (
                b"filename*1*",
                b"M%C3%A4rz",
                b"filename*0*",
                b"utf-8''%E2%82%AC%20Rechnung%20",
                b"filename*2",
                b".pdf",
            ),
        ),
    ),
    b"mixed",
)


def att(section: str, ctype: str, name: str | None, size: int, enc: str = "base64") -> Attachment:
    return Attachment(section, ctype, name, size, decoded_size_estimate(enc, size), enc)


@pytest.mark.parametrize(
    ("bs", "ctype", "attachments"),
    [
        (PLAIN, "text/plain", ()),
        (ALTERNATIVE, "multipart/alternative", ()),
        (PDF, "multipart/mixed", (att("2", "application/pdf", "report 2026 (final).pdf", 7018),)),
        (INLINE, "multipart/related", (att("2", "image/png", "image001.png", 688),)),
        (
            RFC2231,
            "multipart/mixed",
            (att("2", "application/octet-stream", "€ Rechnung März.pdf", 7018),),
        ),
        (
            CONTINUATIONS,
            "multipart/mixed",
            (att("2", "application/pdf", "€ Rechnung März.pdf", 7800),),
        ),
        (
            RFC2047,
            "multipart/mixed",
            (att("2", "application/vnd.ms-excel", 'Kündigung_"alt".xls', 7018),),
        ),
        (FORWARD, "multipart/mixed", (att("2.2", "text/csv", "numbers.csv", 8, "7bit"),)),
        (
            FORWARD_ATTACHED,
            "multipart/mixed",
            (att("2", "message/rfc822", "numbers.eml", 398, "7bit"),),
        ),
        (
            SIGNED,
            "multipart/signed",
            (att("2", "application/pgp-signature", "signature.asc", 63, "7bit"),),
        ),
        (FORWARD_PLAIN, "message/rfc822", ()),
        (
            LATIN1_NAME,
            "multipart/mixed",
            (att("2", "application/octet-stream", "café.txt", 3, "7bit"),),
        ),
    ],
    ids=[
        "plain",
        "alternative",
        "pdf",
        "inline-image",
        "rfc2231-dovecot",
        "rfc2231-continuations",
        "rfc2047",
        "forwarded",
        "forward-attached",
        "signed",
        "forward-plain",
        "latin1-name",
    ],
)
def test_real_world_structures(bs: object, ctype: str, attachments: tuple[Attachment, ...]) -> None:
    assert summarize(bs) == (ctype, attachments)
    assert find_attachments(to_mime_tree(bs)) == attachments


def test_tree_of_a_forwarded_message() -> None:
    root = to_mime_tree(FORWARD)
    assert root.section == ""
    assert root.content_type == "multipart/mixed"
    assert root.params == (("boundary", "MIX"),)
    body, message = root.children
    assert (body.section, body.content_type, body.size) == ("1", "text/plain", 3)
    assert (message.section, message.content_type, message.disposition) == (
        "2",
        "message/rfc822",
        "inline",
    )
    (inner,) = message.children
    assert [c.section for c in inner.children] == ["2.1", "2.2"]
    assert inner.children[1].params == (("name", "numbers.csv"), ("charset", "us-ascii"))
    assert root.size == 3 + 398


def test_sections_of_single_parts() -> None:
    assert to_mime_tree(PLAIN).section == "1"
    message = to_mime_tree(FORWARD_PLAIN)
    assert message.section == "1"
    assert [c.section for c in message.children] == ["1.1"]  # RFC 3501 §6.4.5


def test_inline_image_keeps_its_content_id() -> None:
    image = to_mime_tree(INLINE).children[1]
    assert image.content_id == "<img1@x>"
    assert image.disposition == "inline"
    assert image.filename == "image001.png"


@pytest.mark.parametrize(
    ("bs", "expected"),
    [
        # extension data missing altogether
        ((b"application", b"zip", None, None, None, b"base64", 780), ()),
        # disposition as a bare string instead of a list
        ((b"application", b"zip", None, None, None, b"base64", 780, None, b"attachment"), ("1",)),
        # odd-length parameter list, NIL values
        ((b"image", b"gif", (b"name", None, b"x"), None, None, b"base64", 78, None, None), ("1",)),
        # text part without the lines field, NIL encoding
        ((b"text", b"plain", None, None, None, None, 5, None, (b"ATTACHMENT", None)), ("1",)),
        # message/rfc822 sent with the basic layout: a leaf
        (
            (b"message", b"rfc822", None, None, None, b"7bit", 5, None, (b"attachment", None)),
            ("1",),
        ),
        # multipart without a subtype, with junk extension data
        (((b"text", b"plain", None, None, None, b"7bit", 1, 1),), ()),
        (((b"text", b"plain", None, None, None, b"7bit", 1, 1), None, 7, (1, 2), b"x"), ()),
        # disposition list whose type is not a string
        ((b"application", b"pdf", None, None, None, b"base64", 7, None, (None, None)), ()),
    ],
)
def test_odd_but_usable_structures(bs: object, expected: tuple[str, ...]) -> None:
    _, attachments = summarize(bs)
    assert tuple(a.section for a in attachments) == expected
    assert find_attachments(to_mime_tree(bs)) == attachments


def test_nil_multipart_subtype_counts_as_mixed() -> None:
    assert (
        summarize(((b"text", b"plain", None, None, None, b"7bit", 1, 1), None))[0]
        == "multipart/mixed"
    )


@pytest.mark.parametrize(
    ("bs", "token"),
    [
        ((b"text", b"plain", None), "(b'text', b'plain', None)"),
        ((b"text", None, None, None, None, b"7bit", 1), "None"),
        ((b"text", b"plain", None, None, None, b"7bit", b"12"), "b'12'"),
        ((b"text", b"plain", None, None, None, 7, 12), "7"),
        (((b"text", b"plain", None, None, None, b"7bit", 1), 5), "5"),
        (b"text", "b'text'"),
        ((), "()"),
        (None, "None"),
    ],
)
def test_errors_quote_the_offending_token(bs: object, token: str) -> None:
    with pytest.raises(BodystructureError) as info:
        summarize(bs)
    assert token in str(info.value)
    with pytest.raises(BodystructureError):
        to_mime_tree(bs)
    assert isinstance(info.value, ParseError)


def test_too_deep_is_an_error() -> None:
    bs: object = (b"text", b"plain", None, None, None, b"7bit", 1, 1)
    for _ in range(150):
        bs = (bs, b"mixed")
    with pytest.raises(BodystructureError, match="deeper"):
        summarize(bs)
    with pytest.raises(BodystructureError, match="deeper"):
        to_mime_tree(bs)


@pytest.mark.parametrize("payload_size", [0, 1, 2, 3, 56, 57, 58, 1000, 5129, 100_000])
def test_base64_decoded_estimate(payload_size: int) -> None:
    encoded = base64.encodebytes(b"x" * payload_size).replace(b"\n", b"\r\n")
    estimate = decoded_size_estimate("base64", len(encoded))
    assert abs(estimate - payload_size) <= 2  # "=" padding is not subtracted


def test_other_encodings_count_as_stored() -> None:
    assert decoded_size_estimate("quoted-printable", 1234) == 1234
    assert decoded_size_estimate("7bit", 0) == 0


# -- properties -----------------------------------------------------------------------------

names = st.one_of(
    st.none(),
    st.sampled_from([b"a.pdf", b"=?utf-8?q?caf=C3=A9?=.txt", b"r\xe9sum\xe9.doc", b""]),
)


@st.composite
def leaves(draw: st.DrawFn) -> tuple[object, ...]:
    mtype = draw(st.sampled_from([b"text", b"application", b"image", b"audio"]))
    name = draw(names)
    params: object = (b"charset", b"utf-8") if name is None else (b"name", name)
    part: tuple[object, ...] = (
        mtype,
        draw(st.sampled_from([b"plain", b"octet-stream", b"png"])),
        params,
        draw(st.sampled_from([None, b"<id@x>"])),
        None,
        draw(st.sampled_from([b"7bit", b"base64", b"quoted-printable", b"BASE64"])),
        draw(st.integers(0, 10**8)),
    )
    if mtype == b"text":
        part += (draw(st.integers(0, 1000)),)
    disposition = draw(
        st.sampled_from(
            [
                None,
                (b"inline", None),
                (b"attachment", None),
                (b"attachment", (b"filename", b"f.bin")),
            ]
        )
    )
    return part + draw(
        st.sampled_from([(), (None,), (None, disposition), (None, disposition, None, None)])
    )


def _size(bs: object) -> int:
    return to_mime_tree(bs).size


def structures() -> st.SearchStrategy[object]:
    def extend(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
        multipart = st.tuples(
            st.lists(children, min_size=1, max_size=4), st.sampled_from([b"mixed", b"alternative"])
        ).map(lambda t: (*t[0], t[1], (b"boundary", b"b"), None, None, None))
        message = st.tuples(
            children, st.integers(0, 1000), st.sampled_from([None, (b"attachment", None)])
        ).map(
            lambda t: (
                b"message",
                b"rfc822",
                None,
                None,
                None,
                b"7bit",
                _size(t[0]) + t[1],  # the enclosed message is never larger than its part
                (None, b"subject", None, None, None, None, None, None, None, None),
                t[0],
                10,
                None,
                t[2],
            )
        )
        return st.one_of(multipart, message)

    return st.recursive(leaves(), extend, max_leaves=12)


def _sections(part: MimePart) -> set[str]:
    out = {part.section}
    for child in part.children:
        out |= _sections(child)
    return out


@settings(max_examples=300, deadline=None)
@given(structures())
def test_summarize_agrees_with_the_tree(bs: object) -> None:
    tree = to_mime_tree(bs)
    ctype, attachments = summarize(bs)
    assert ctype == tree.content_type
    assert attachments == find_attachments(tree)
    assert {a.section for a in attachments} <= _sections(tree)
    assert sum(a.size for a in attachments) <= tree.size
    for a in attachments:
        assert 0 <= a.decoded_size <= a.size
        assert a.encoding == a.encoding.lower()


@settings(max_examples=200, deadline=None)
@given(structures())
def test_sections_follow_rfc_3501(bs: object) -> None:
    tree = to_mime_tree(bs)

    def check(part: MimePart) -> None:
        if part.content_type.startswith("multipart/"):
            for k, child in enumerate(part.children, start=1):
                if child.content_type.startswith("multipart/"):
                    continue  # a nested multipart is addressed through its own children
                prefix = f"{part.section}." if part.section else ""
                assert child.section == f"{prefix}{k}"
        elif part.children:  # message/rfc822
            (inner,) = part.children
            if not inner.content_type.startswith("multipart/"):
                assert inner.section == f"{part.section}.1"
        for child in part.children:
            check(child)

    check(tree)


sexprs = st.recursive(
    st.one_of(
        st.none(),
        st.integers(-5, 2**70),
        st.binary(max_size=8),
        st.sampled_from([b"text", b"plain"]),
    ),
    lambda inner: st.lists(inner, max_size=12).map(tuple),
    max_leaves=60,
)


@settings(max_examples=500, deadline=None)
@given(sexprs)
def test_arbitrary_tuples_give_a_tree_or_a_bodystructure_error(bs: object) -> None:
    try:
        tree = to_mime_tree(bs)
    except BodystructureError:
        with pytest.raises(BodystructureError):
            summarize(bs)
        return
    assert summarize(bs) == (tree.content_type, find_attachments(tree))
