"""Hypothesis strategies for raw MIME messages written byte by byte (not by ``email``).

The ``email`` generator always writes tidy messages; real mail has LF or mixed line ends,
base64 wrapped at odd widths, quoted-printable from other encoders, RFC 2231 / RFC 2047 file
names, inline images with Content-ID, forwarded message/rfc822 parts and nested multiparts.
These strategies write all of that directly, so the splicing code meets it.
"""

from __future__ import annotations

import base64
import binascii
import email.quoprimime
import itertools
import urllib.parse
from dataclasses import dataclass

from hypothesis import strategies as st

__all__ = ["MessageSpec", "messages"]

_boundaries = itertools.count(1)

_LEAF_TYPES = (
    "text/plain",
    "text/html",
    "application/pdf",
    "application/octet-stream",
    "image/png",
)
_ENCODINGS = ("base64", "quoted-printable", "7bit", "8bit", "binary")
_NAMES = ("report.pdf", "Grüße März.pdf", "фото.png", "a b;c=d.bin", "x" * 90 + ".dat")


@dataclass(frozen=True)
class MessageSpec:
    """A generated message and what the generator knows about it."""

    raw: bytes
    eol: bytes
    """The top-level header's line end."""


def _payload(draw: st.DrawFn, encoding: str) -> bytes:
    if encoding == "7bit":
        lines = draw(
            st.lists(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=70))
        )
        eol = draw(st.sampled_from([b"\r\n", b"\n"]))
        return eol.join(line.encode() for line in lines)
    if encoding == "8bit":
        text = draw(st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=300))
        return text.encode("utf-8")
    data = draw(st.binary(max_size=3000))
    if encoding == "binary":
        # A trailing CR would join the CRLF that belongs to the boundary line (RFC 2046 §5.1.1).
        return data.rstrip(b"\r")
    return data


def _encode(draw: st.DrawFn, encoding: str, payload: bytes, eol: bytes) -> bytes:
    if encoding == "base64":
        text = base64.b64encode(payload)
        width = draw(st.sampled_from([76, 76, 64, 72, 10_000]))
        lines = [text[i : i + width] for i in range(0, len(text), width)]
        if draw(st.booleans()) and lines:  # an irregular layout no encoder writes
            lines[0] = lines[0] + b" "
        body = eol.join(lines)
        return body + eol if lines and draw(st.booleans()) else body
    if encoding == "quoted-printable":
        coder = draw(st.sampled_from(["binascii", "email", "tabs"]))
        if coder == "email":
            qp = email.quoprimime.body_encode(payload.decode("latin-1"), 76, eol.decode())
            return qp.encode("latin-1")
        return binascii.b2a_qp(payload, quotetabs=coder == "tabs", istext=True)
    return payload


def _filename_fields(draw: st.DrawFn, eol: bytes) -> list[bytes]:
    name = draw(st.sampled_from(_NAMES))
    style = draw(st.sampled_from(["plain", "2231", "2231-split", "2047", "none", "inline-cid"]))
    if style == "none":
        return []
    if style == "inline-cid":
        cid = f"<img{next(_boundaries)}@example.org>"
        return [b"Content-Disposition: inline", f"Content-ID: {cid}".encode()]
    if style == "plain":
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return [f'Content-Disposition: attachment; filename="{quoted}"'.encode()]
    if style == "2047":
        word = base64.b64encode(name.encode()).decode()
        return [f'Content-Disposition: attachment; filename="=?utf-8?b?{word}?="'.encode()]
    encoded = urllib.parse.quote(name.encode(), safe="")
    if style == "2231":
        return [f"Content-Disposition: attachment; filename*=utf-8''{encoded}".encode()]
    half = len(encoded) // 2
    while encoded[half - 1 : half] == "%" or encoded[half - 2 : half - 1] == "%":
        half += 1
    return [
        (
            f"Content-Disposition: attachment;{eol.decode()} filename*0*=utf-8''{encoded[:half]};"
            f"{eol.decode()} filename*1*={encoded[half:]}"
        ).encode()
    ]


@st.composite
def _leaf(draw: st.DrawFn, eol: bytes) -> tuple[list[bytes], bytes]:
    ctype = draw(st.sampled_from(_LEAF_TYPES))
    encoding = draw(st.sampled_from(_ENCODINGS))
    payload = _payload(draw, encoding)
    fields = [f"Content-Type: {ctype}".encode()]
    if ctype.startswith("text/"):
        fields[0] += b"; charset=utf-8"
    if encoding != "7bit" or draw(st.booleans()):
        fields.append(f"Content-Transfer-Encoding: {encoding}".encode())
    fields.extend(_filename_fields(draw, eol))
    return fields, _encode(draw, encoding, payload, eol)


def _part(fields: list[bytes], body: bytes, eol: bytes) -> bytes:
    return eol.join(fields) + eol + eol + body


@st.composite
def _entity(
    draw: st.DrawFn, depth: int, eol_choice: st.SearchStrategy[bytes]
) -> tuple[list[bytes], bytes]:
    eol = draw(eol_choice)
    kind = draw(st.sampled_from(["leaf", "leaf", "multipart", "rfc822"] if depth < 3 else ["leaf"]))
    if kind == "leaf":
        return draw(_leaf(eol))
    if kind == "rfc822":
        inner_fields, inner_body = draw(_entity(depth + 1, eol_choice))
        inner = _part(
            [b"From: a@example.org", b"Subject: forwarded", b"MIME-Version: 1.0", *inner_fields],
            inner_body,
            eol,
        )
        fields = [b"Content-Type: message/rfc822"]
        if draw(st.booleans()):
            fields.append(b'Content-Disposition: attachment; filename="fwd.eml"')
        return fields, inner
    subtype = draw(st.sampled_from(["mixed", "alternative", "related"]))
    boundary = f"=_b{next(_boundaries)}_{depth}_qt"
    children = draw(st.lists(_entity(depth + 1, eol_choice), min_size=1, max_size=4))
    pieces = []
    if draw(st.booleans()):
        pieces.append(b"This is a multi-part message in MIME format." + eol)
    for fields, body in children:
        pieces.append(b"--" + boundary.encode() + eol + _part(fields, body, eol) + eol)
    pieces.append(b"--" + boundary.encode() + b"--")
    if draw(st.booleans()):
        pieces.append(eol + b"epilogue" + eol)
    fold = draw(st.booleans())
    sep = (eol + b" ") if fold else b" "
    fields = [
        b"Content-Type: multipart/"
        + subtype.encode()
        + b";"
        + sep
        + b'boundary="'
        + boundary.encode()
        + b'"'
    ]
    return fields, b"".join(pieces)


@st.composite
def messages(draw: st.DrawFn, *, multipart: bool = True) -> MessageSpec:
    """Generate a raw message; with ``multipart`` its top level is always a multipart."""
    style = draw(st.sampled_from(["crlf", "lf", "mixed"]))
    eol_choice = (
        st.just(b"\r\n")
        if style == "crlf"
        else st.just(b"\n")
        if style == "lf"
        else st.sampled_from([b"\r\n", b"\n"])
    )
    eol = draw(eol_choice)
    if multipart:
        boundary = f"=_top{next(_boundaries)}_qt"
        children = draw(st.lists(_entity(1, eol_choice), min_size=1, max_size=4))
        body = (
            b"".join(b"--" + boundary.encode() + eol + _part(f, b, eol) + eol for f, b in children)
            + b"--"
            + boundary.encode()
            + b"--"
            + eol
        )
        fields = [f'Content-Type: multipart/mixed; boundary="{boundary}"'.encode()]
    else:
        fields, body = draw(_leaf(eol))
    head = [
        b"From: Sender <sender@example.org>",
        b"To: rcpt@example.org",
        b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= and a long subject that is",
        b"  folded onto a second line",
        b"Date: Tue, 02 Jan 2024 03:04:05 +0000",
        b"Message-ID: <gen@example.org>",
        b"MIME-Version: 1.0",
        *fields,
    ]
    return MessageSpec(raw=_part(head, body, eol), eol=eol)
