"""Offload stubs: build, find, restore; the round trip keeps every payload and the structure."""

from __future__ import annotations

import email
import email.message
import email.policy
import hashlib
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quotatool.adapters.mime_local import mime_tree_from_bytes
from quotatool.core.plan import stub_size
from quotatool.core.splice import PartSpan, check_untouched, locate, marker_of
from quotatool.core.stub import (
    Layout,
    StubError,
    build_stub,
    decode_body,
    detach,
    encode_body,
    find_stubs,
    object_key,
    render_link,
    restore_message,
    restore_part,
    stub_message,
    stub_overhead,
)
from quotatool.model import Attachment, MimePart
from tests.mailgen import make_message
from tests.mimegen import MessageSpec, messages

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STORE = "s3://mail-archive/offload"
MOVED_AT = 1_714_521_600  # 2024-05-01


def _vsize(raw: bytes) -> int:
    return len(raw) + raw.count(b"\n") - raw.count(b"\r\n")


def email_payloads(raw: bytes) -> dict[str, bytes]:
    """Decoded payload of every leaf by IMAP section, as the email package reads them."""
    out: dict[str, bytes] = {}

    def visit(msg: email.message.Message, section: str, whole: bool) -> None:
        if msg.get_content_maintype() == "multipart":
            for k, part in enumerate(msg.get_payload(), start=1):  # type: ignore[arg-type]
                visit(part, f"{section}.{k}" if section else str(k), False)
            return
        if whole:
            section = f"{section}.1" if section else "1"
        if msg.get_content_type() == "message/rfc822":
            visit(msg.get_payload(0), section, True)  # type: ignore[arg-type]
            return
        out[section] = msg.get_payload(decode=True)  # type: ignore[assignment]

    visit(email.message_from_bytes(raw), "", True)
    return out


def _structure(root: PartSpan) -> list[tuple[str, str]]:
    return [(s.section, s.content_type) for s in root.walk()]


def _tree_parts(root: MimePart) -> dict[str, MimePart]:
    out: dict[str, MimePart] = {}
    stack = [root]
    while stack:
        p = stack.pop()
        out.setdefault(p.section, p)
        stack.extend(reversed(p.children))
    return out


def _choose(spans: list[PartSpan], picks: list[int]) -> list[PartSpan]:
    """Pick parts by index, dropping any that lies inside one already picked."""
    chosen: list[PartSpan] = []
    for i in picks:
        span = spans[i % len(spans)]
        if all(span.end <= c.start or span.start >= c.end for c in chosen):
            chosen.append(span)
    return sorted(chosen, key=lambda s: s.start)


@SETTINGS
@given(messages(), st.lists(st.integers(0, 50), min_size=1, max_size=4))
def test_offload_then_restore_gives_back_every_payload(spec: MessageSpec, picks: list[int]) -> None:
    raw = spec.raw
    root = locate(raw)
    spans = [s for s in root.walk() if s.own_headers and s.boundary is None]
    if not spans:
        return
    chosen = _choose(spans, picks)
    sections = {s.section for s in chosen}
    before = email_payloads(raw)
    detached = [detach(raw, s.section) for s in chosen]
    for part in detached:
        if part.section in before:  # a leaf (not a forwarded message): same payload as email's
            assert part.payload == before[part.section]
        assert part.sha256 == hashlib.sha256(part.payload).hexdigest()

    locations = {p.section: f"{STORE}/{p.key}" for p in detached}
    new = stub_message(raw, detached, locations, moved_at=MOVED_AT, op_id="op-7")

    # The rest of the message is untouched; the result parses; each stub is readable.
    check_untouched(raw, new, sections)
    assert marker_of(new) == "op-7"
    parsed = email.message_from_bytes(new, policy=email.policy.default)
    notes = [
        p.get_content()
        for p in parsed.walk()
        if p.get_content_type() == "text/plain" and "was moved out" in str(p.get_content())
    ]
    assert len(notes) == len(detached)
    for part in detached:
        assert any(part.sha256 in note and "2024-05-01" in note for note in notes)

    # Smaller by about what the plan predicts (sizes as the server counts them).
    tree = _tree_parts(mime_tree_from_bytes(raw))
    planned = 0
    for part in detached:
        mp = tree[part.section]
        att = Attachment(
            part.section, mp.content_type, mp.filename, mp.size, part.size, mp.encoding
        )
        planned += mp.size - stub_size(att, STORE)
    marker = len(b"X-Quotatool-Op: op-7\r\n")
    freed = _vsize(raw) - (_vsize(new) - marker)
    assert abs(freed - planned) <= 24 * len(detached), (freed, planned)

    # Restore: the same structure and every leaf's decoded payload byte for byte.
    refs = find_stubs(new)
    assert [r.section for r in refs] == [s.section for s in chosen]
    restored = restore_message(new, {p.section: p.payload for p in detached}, op_id=None)
    assert _structure(locate(restored)) == _structure(root)
    assert email_payloads(restored) == before
    if all(p.exact for p in detached):
        assert restored == raw
    else:
        check_untouched(raw, restored, sections)


@pytest.mark.parametrize("lf", [False, True])
def test_messages_from_common_mailers_restore_byte_for_byte(lf: bool) -> None:
    pdf = bytes(range(256)) * 300
    raw = make_message(
        html="<p>hi</p>",
        attachments=[("report.pdf", "application/pdf", pdf), ("a.txt", "text/plain", b"x\n" * 99)],
    )
    if lf:
        raw = raw.replace(b"\r\n", b"\n")
    parts = [detach(raw, "2"), detach(raw, "3")]
    assert [p.exact for p in parts] == [True, True]
    assert parts[0].payload == pdf
    new = stub_message(
        raw,
        parts,
        {p.section: f"file:///o/{p.key}" for p in parts},
        moved_at=MOVED_AT,
        op_id="op-1",
    )
    assert len(new) < len(raw) - len(pdf)
    assert (b"\r\n" in new) is not lf
    back = restore_message(new, {p.section: p.payload for p in parts}, op_id=None)
    assert back == raw


def test_the_stub_keeps_the_original_headers_and_names_the_object() -> None:
    raw = make_message(attachments=[("report.pdf", "application/pdf", b"%PDF-1.4" * 500)])
    part = detach(raw, "2")
    stub = build_stub(
        part,
        location=f"{STORE}/{part.key}",
        moved_at=MOVED_AT,
        link=render_link("https://files.example.org/{key}?name={filename}", part),
        message=raw,
    )
    text = stub.decode()
    assert part.headers in stub  # verbatim, with its empty line
    assert f'URL="{STORE}/{part.key}"' in text
    assert f"X-Quotatool-SHA256: {part.sha256}\r\n" in text
    assert f"X-Quotatool-Size: {part.size}\r\n" in text
    assert (
        f"X-Quotatool-Object: sha256/{part.sha256[:2]}/{part.sha256[2:4]}/{part.sha256}\r\n" in text
    )
    assert (
        'The attachment "report.pdf" (3.9 KiB) was moved out of this message on 2024-05-01.' in text
    )
    assert f"Link: https://files.example.org/{part.key}?name=report.pdf" in text
    assert not stub.endswith(b"\n")  # the line end before the next boundary is kept as it was


def test_a_hostile_filename_cannot_add_lines_or_boundaries() -> None:
    # RFC 2047 lets a filename carry CR LF; it must not end the note or start a part.
    evil = "=?utf-8?q?x=0D=0A--=3D=5Fquotatool=0D=0AContent-Type:_text/html?="
    raw = (
        b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n"
        b'Content-Type: application/pdf; name="'
        + evil.encode()
        + b'"\r\n\r\n'
        + b"A" * 900
        + b"\r\n--zz--\r\n"
    )
    part = detach(raw, "1")
    assert part.filename is not None
    assert "\r\n" in part.filename
    new = stub_message(raw, [part], {"1": "file:///o/" + part.key}, moved_at=0, op_id="x")
    note = next(
        p for p in email.message_from_bytes(new).walk() if p.get_content_type() == "text/plain"
    )
    assert note.get_payload().count("\n") == 2  # three lines, the name on the first
    assert [s.section for s in locate(new).walk()] == ["", "1", "1.1", "1.2"]


def test_the_boundary_avoids_text_already_in_the_message() -> None:
    payload = b"%PDF" * 300
    sha = hashlib.sha256(payload).hexdigest()
    body = f"--=_quotatool_{sha[:16]} is in this text\r\n".encode()
    raw = make_message(body=body.decode(), attachments=[("p.pdf", "application/pdf", payload)])
    part = detach(raw, "2")
    new = stub_message(raw, [part], {"2": "file:///o/" + part.key}, moved_at=0, op_id="x")
    assert f'boundary="=_quotatool_{sha[:16]}_1"'.encode() in new
    assert find_stubs(new)[0].sha256 == sha


def test_restore_refuses_the_wrong_payload() -> None:
    raw = make_message(attachments=[("p.pdf", "application/pdf", b"%PDF" * 300)])
    part = detach(raw, "2")
    new = stub_message(raw, [part], {"2": "file:///o/" + part.key}, moved_at=0, op_id="x")
    (ref,) = find_stubs(new)
    with pytest.raises(StubError, match="has 1199 octets, expected 1200"):
        restore_part(ref, part.payload[:-1])
    with pytest.raises(StubError, match="does not match its SHA-256"):
        restore_part(ref, b"X" + part.payload[1:])
    with pytest.raises(StubError, match="part 1 is not an offload stub"):
        restore_message(new, {"1": b""}, op_id=None)


def test_parts_that_cannot_be_offloaded_are_refused() -> None:
    single = b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBE\r\n"
    with pytest.raises(StubError, match="body of a message"):
        detach(single, "1")
    uu = (
        b"Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n"
        b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 a\r\n--q--\r\n"
    )
    with pytest.raises(StubError, match="x-uuencode"):
        detach(uu, "1")
    bad64 = uu.replace(b"x-uuencode", b"base64").replace(b"begin 644 a", b"QUJDR")
    with pytest.raises(StubError, match="base64 body cannot be decoded"):
        detach(bad64, "1")
    with pytest.raises(StubError, match="not found"):
        detach(uu, "7")


def test_object_keys_are_content_addressed() -> None:
    sha = hashlib.sha256(b"x").hexdigest()
    assert object_key(sha) == f"sha256/{sha[:2]}/{sha[2:4]}/{sha}"
    for bad in ("../../etc/passwd", sha.upper(), sha[:-1], sha + "0"):
        with pytest.raises(StubError):
            object_key(bad)


@given(
    st.binary(max_size=500),
    st.sampled_from(["base64", "quoted-printable", "7bit", "binary"]),
    st.integers(1, 100),
    st.sampled_from([b"\r\n", b"\n"]),
    st.booleans(),
    st.sampled_from(["binascii", "email"]),
)
def test_layouts_decode_what_they_encode(
    payload: bytes, encoding: str, line: int, eol: bytes, final: bool, codec: str
) -> None:
    if encoding == "base64":
        layout = Layout(encoding, line=line, eol=eol, final_eol=final)
    elif encoding == "quoted-printable":
        layout = Layout(encoding, eol=eol, codec=codec)
    else:
        layout = Layout(encoding)
    assert Layout.from_field(layout.to_field()) == layout
    body = encode_body(payload, layout)
    if encoding == "quoted-printable":
        # QP text mode keeps line breaks as line breaks (RFC 2045 §6.7 rule 4); compare what
        # a second round gives, which is what a restore reproduces.
        payload = decode_body(encoding, body)
        body = encode_body(payload, layout)
    assert decode_body(encoding, body) == payload
    if encoding == "base64":
        assert all(len(x) <= line for x in body.split(eol))


def test_link_templates_are_checked() -> None:
    part = detach(make_message(attachments=[("a b.pdf", "application/pdf", b"1" * 999)]), "2")
    assert render_link("https://h/{sha256}/{filename}?s={size}", part) == (
        f"https://h/{part.sha256}/a%20b.pdf?s=999"
    )
    with pytest.raises(StubError, match=r"use \{key\}"):
        render_link("https://h/{nope}", part)


def test_plan_estimate_matches_the_stub_that_is_written() -> None:
    sizes = itertools.product([10, 5_000, 3_000_000], ["report.pdf", "Grüße.pdf", None])
    for size, name in sizes:
        attachments = [(name or "x", "application/pdf", b"\x00" * size)]
        raw = make_message(attachments=attachments)
        if name is None:
            raw = raw.replace(b'; filename="x"', b"")
        part = detach(raw, "2")
        location = f"{STORE}/{part.key}"
        stub = build_stub(part, location=location, moved_at=MOVED_AT, message=raw)
        actual = len(stub) - len(part.headers)
        estimate = stub_overhead(
            filename=part.filename,
            content_type=part.content_type,
            decoded_size=part.size,
            encoding="base64",
            location_length=len(location),
        )
        assert 0 <= estimate - actual <= 6, (size, name)  # only the humanized size differs
        att = Attachment(
            "2", "application/pdf", part.filename, part.encoded_size, part.size, "base64"
        )
        assert stub_size(att, STORE) == estimate


@pytest.mark.parametrize(
    ("body", "exact"),
    [
        (b"", True),  # an empty attachment
        (b"QUJD\r\nREVG\r\n", True),  # 4-character lines
        (b"QUJDREVG", True),  # one line, no line end
        (b"QUJD\r\nREVG\n", False),  # mixed line ends: no layout writes that
        (b"QU JDREVG\r\n", False),  # stray white space
    ],
)
def test_exactness_of_base64_layouts(body: bytes, exact: bool) -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n"
        b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + body
        + b"\r\n--q--\r\n"
    )
    part = detach(raw, "1")
    assert part.payload == (b"ABCDEF" if body else b"")
    assert part.exact is exact
    new = stub_message(raw, [part], {"1": "file:///o/" + part.key}, moved_at=0, op_id="x")
    back = restore_message(new, {"1": part.payload}, op_id=None)
    assert (back == raw) is exact
    assert email_payloads(back) == email_payloads(raw)
