"""The offload stub (DESIGN.md §5): build it, find it again, and rebuild the original part.

An offloaded part is replaced, in place, by one ``multipart/mixed`` part holding a pair:

1. a ``text/plain`` note a person can read: the file's name and size, where it went, when,
   its SHA-256, and an optional link;
2. a ``message/external-body; access-type=URL`` part (RFC 2046 §5.2.3, RFC 2017) whose
   phantom header block holds our ``X-Quotatool-*`` fields followed by the original part's
   header block, verbatim.

Why a nested multipart rather than two new siblings: the replacement stays *one* part, so the
section number of every other part stays the same (the verification after APPEND compares
them section by section, SAFETY.md promise 5), and the pair is safe under any parent
(``multipart/alternative`` would otherwise show only the last sibling; ``multipart/digest``
would read a sibling without Content-Type as a message). It costs about 150 octets per part.

The store keeps the *decoded* payload (what a person downloads; the content-addressed key is
its SHA-256, so the same file is stored once). Restoring re-encodes it with the original
Content-Transfer-Encoding. What is byte-identical:

* always: the decoded payload (checked against ``X-Quotatool-SHA256`` and ``-Size``), the
  part's header block, and so the structure of the message;
* the encoded body too when it is *reproducible*: at offload time the body's layout (base64
  line length, line end, final line end; the quoted-printable encoder that produced it) is
  recognised and re-encoding the payload is checked to give the original octets back.
  ``X-Quotatool-Encoding`` records the layout and ``exact=yes``; a restored message is then
  identical to the original byte for byte, apart from the marker field. Bodies that no
  encoder we know reproduces (irregular line lengths, stray white space, mixed line ends) are
  recorded ``exact=no`` and come back in a regular layout with the same decoded payload; the
  caller decides whether to offload those (:attr:`DetachedPart.exact`).

Storing the encoded octets instead would make every restore exact, but the object would then
be base64 text rather than the file, and the same attachment sent twice would be stored twice.
"""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import email.quoprimime
import email.utils
import hashlib
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import humanize

from quotatool.core.headers import decode_words
from quotatool.core.splice import (
    PartSpan,
    SpliceError,
    eol_of,
    find,
    locate,
    rewrite,
)
from quotatool.errors import ParseError

__all__ = [
    "DetachedPart",
    "Layout",
    "StubError",
    "StubRef",
    "build_stub",
    "decode_body",
    "detach",
    "encode_body",
    "find_stubs",
    "object_key",
    "render_link",
    "restore_message",
    "restore_part",
    "stub_message",
    "stub_overhead",
]

_SHA256_HEX = re.compile(r"\A[0-9a-f]{64}\Z")
_IDENTITY = frozenset({"7bit", "8bit", "binary"})
# RFC 2045 §6.8 (base64) and §6.7 rule 5 (quoted-printable): at most 76 characters a line.
_LINE = 76
_BOUNDARY_PREFIX = "=_quotatool_"
# A filename is shown in the note, not used; long enough for any real name.
_NAME_MAX = 200
# RFC 2046 §5.2.3 / RFC 2017 §3: the URL goes into a quoted-string parameter, so no '"' or
# '\'; percent-encode everything outside the RFC 3986 reserved and unreserved sets.
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~"
_PRINTABLE = re.compile(r"\A[\x21-\x7e]+\Z")
_STUB_FIELDS = re.compile(
    rb"X-Quotatool-SHA256: ([0-9a-f]{64})\r?\n"
    rb"X-Quotatool-Size: ([0-9]{1,15})\r?\n"
    rb"X-Quotatool-Object: (sha256/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64})\r?\n"
    rb"X-Quotatool-Encoding: ([\x21-\x7e][\x20-\x7e]*)\r?\n"
)
_LAYOUT_PARAM = re.compile(r"\A([a-z-]+)=([a-z0-9]+)\Z")
_QP_CODECS = ("binascii", "email")

_header_parser = email.parser.Parser(policy=email.policy.compat32)


class StubError(ParseError):
    """A part that cannot be offloaded or restored as asked (the message is skipped)."""


def object_key(sha256: str) -> str:
    """Return the content-addressed key of a payload: ``sha256/ab/cd/<64 hex>`` (DESIGN.md §5).

    Two levels of two hex digits keep directories of a local store small (65,536 leaves).
    """
    if not _SHA256_HEX.match(sha256):
        raise StubError(f"not a SHA-256 in lower-case hex: {sha256!r}")
    return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


# -- transfer encodings -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Layout:
    """How a part's encoded body is laid out: enough to re-create it from the payload."""

    encoding: str
    """Lower-case Content-Transfer-Encoding: ``base64``, ``quoted-printable`` or an identity."""
    line: int = _LINE
    """base64: characters per line."""
    eol: bytes = b"\r\n"
    """base64 and quoted-printable: the line end between encoded lines."""
    final_eol: bool = True
    """base64: whether the last line has a line end too."""
    codec: str = "binascii"
    """quoted-printable: which encoder: ``binascii`` (b2a_qp) or ``email`` (quoprimime)."""
    exact: bool = True
    """Re-encoding the payload with this layout gave the original octets back."""

    def to_field(self) -> str:
        """Return the value of the ``X-Quotatool-Encoding`` field."""
        exact = "yes" if self.exact else "no"
        eol = "crlf" if self.eol == b"\r\n" else "lf"
        if self.encoding == "base64":
            end = "eol" if self.final_eol else "none"
            return f"base64; line={self.line}; eol={eol}; end={end}; exact={exact}"
        if self.encoding == "quoted-printable":
            return f"quoted-printable; codec={self.codec}; eol={eol}; exact={exact}"
        return f"{self.encoding}; exact={exact}"

    @classmethod
    def from_field(cls, value: str) -> Layout:
        """Parse an ``X-Quotatool-Encoding`` value; raise StubError when it is not ours."""
        encoding, *rest = [p.strip() for p in value.split(";")]
        params: dict[str, str] = {}
        for item in rest:
            m = _LAYOUT_PARAM.match(item)
            if m is None:
                raise StubError(f"X-Quotatool-Encoding: cannot read {item!r}")
            params[m.group(1)] = m.group(2)
        try:
            layout = cls(
                encoding=encoding,
                line=int(params.get("line", _LINE)),
                eol=b"\n" if params.get("eol") == "lf" else b"\r\n",
                final_eol=params.get("end", "eol") == "eol",
                codec=params.get("codec", "binascii"),
                exact=params["exact"] == "yes",
            )
        except (KeyError, ValueError) as exc:
            raise StubError(f"X-Quotatool-Encoding: cannot read {value!r}") from exc
        if (
            encoding not in _IDENTITY | {"base64", "quoted-printable"}
            or layout.codec not in _QP_CODECS
            or layout.line < 1
        ):
            raise StubError(f"X-Quotatool-Encoding: unknown layout {value!r}")
        return layout


def decode_body(encoding: str, body: bytes) -> bytes:
    """Return the payload of an encoded body; raise StubError when it cannot be decoded."""
    if encoding in _IDENTITY:
        return body
    if encoding == "base64":
        try:
            # Like email's get_payload(decode=True): characters outside the alphabet are
            # skipped (RFC 2045 §6.8), wrong padding is an error.
            return binascii.a2b_base64(body)
        except binascii.Error as exc:
            raise StubError(f"base64 body cannot be decoded: {exc}") from exc
    if encoding == "quoted-printable":
        return binascii.a2b_qp(body)
    raise StubError(f"transfer encoding {encoding!r} is not one quotatool can decode")


def encode_body(payload: bytes, layout: Layout) -> bytes:
    """Encode ``payload`` as ``layout`` says; the inverse of :func:`decode_body`."""
    if layout.encoding in _IDENTITY:
        return payload
    if layout.encoding == "base64":
        text = base64.b64encode(payload)
        lines = [text[i : i + layout.line] for i in range(0, len(text), layout.line)]
        body = layout.eol.join(lines)
        return body + layout.eol if layout.final_eol and lines else body
    if layout.codec == "email":
        # email.contentmanager's encoder: what Python's own mail generator writes.
        qp = email.quoprimime.body_encode(
            payload.decode("latin-1"), _LINE, layout.eol.decode("ascii")
        )
        return qp.encode("latin-1")
    return binascii.b2a_qp(payload, quotetabs=False, istext=True, header=False)


def _layout(encoding: str, body: bytes, payload: bytes, eol: bytes) -> Layout:
    """Find the layout that re-creates ``body`` from ``payload``, or a regular one."""
    if encoding in _IDENTITY:
        return Layout(encoding=encoding)
    lf = body.find(b"\n")
    if lf >= 0:
        eol = b"\r\n" if lf > 0 and body[lf - 1] == 0x0D else b"\n"
    candidates: list[Layout] = []
    if encoding == "base64":
        first = body[:lf] if lf >= 0 else body
        line = len(first) - len(eol) + 1 if lf >= 0 else len(first)
        final = body.endswith(b"\n")
        if line > 0:
            candidates.append(Layout("base64", line=line, eol=eol, final_eol=final))
        fallback = Layout("base64", eol=eol, exact=False)
    else:
        candidates.extend(Layout(encoding, eol=eol, codec=codec) for codec in _QP_CODECS)
        fallback = Layout(encoding, eol=eol, exact=False)
    for layout in (*candidates, replace(fallback, exact=True)):
        if encode_body(payload, layout) == body:
            return layout
    return fallback


# -- offload ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DetachedPart:
    """One part taken out of a message: what goes to the store and what the stub keeps."""

    section: str
    """IMAP part specifier of the part in the original message."""
    headers: bytes
    """The part's header block and the empty line after it, verbatim."""
    content_type: str
    """Lower-case ``type/subtype``."""
    filename: str | None
    """Decoded filename (RFC 2231 / RFC 2047), if the part names one."""
    payload: bytes
    """The decoded body: what the store keeps."""
    sha256: str
    """SHA-256 of ``payload``, lower-case hex."""
    layout: Layout
    """How to re-encode ``payload`` into the part's body."""
    encoded_size: int
    """Octets of the encoded body as it is in the message."""

    @property
    def size(self) -> int:
        """Octets of the decoded payload."""
        return len(self.payload)

    @property
    def key(self) -> str:
        """Content-addressed object key."""
        return object_key(self.sha256)

    @property
    def exact(self) -> bool:
        """Whether a restore gives back the encoded body byte for byte."""
        return self.layout.exact


def _filename(block: bytes) -> str | None:
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        text = block.decode("latin-1")
    try:
        msg = _header_parser.parsestr(text, headersonly=True)
        # get_filename joins RFC 2231 continuations and falls back to Content-Type's name.
        raw = msg.get_filename()
    except Exception:  # hostile header fields: the note says "no name" instead
        return None
    if raw is None:
        return None
    return decode_words(email.utils.collapse_rfc2231_value(raw))


def detach(raw: bytes, section: str) -> DetachedPart:
    """Take the part ``section`` out of ``raw``: its verbatim headers and decoded payload.

    Raises StubError (a ParseError) for a part that cannot be offloaded: not found, the body
    of a message rather than a part of a multipart, without an empty line after its header,
    or in a transfer encoding we cannot decode.
    """
    try:
        span = find(locate(raw), section)
    except SpliceError as exc:
        raise StubError(exc.message) from exc
    _check_detachable(span)
    body = raw[span.body_start : span.end]
    payload = decode_body(span.encoding, body)
    headers = raw[span.start : span.body_start]
    return DetachedPart(
        section=section,
        headers=headers,
        content_type=span.content_type,
        filename=_filename(headers),
        payload=payload,
        sha256=hashlib.sha256(payload).hexdigest(),
        layout=_layout(span.encoding, body, payload, eol_of(raw)),
        encoded_size=len(body),
    )


def _check_detachable(span: PartSpan) -> None:
    if not span.own_headers:
        raise StubError(
            f"part {span.section} is the body of a message, not a part of a multipart: "
            "it cannot be offloaded without changing the message's header"
        )
    if span.body_start == span.header_end:
        raise StubError(f"part {span.section} has no empty line after its header")


def _url(value: str, what: str) -> str:
    quoted = urllib.parse.quote(value, safe=_URL_SAFE)
    if not _PRINTABLE.match(quoted):
        raise StubError(f"{what} {value!r} cannot be written into a message")
    return quoted


def _shown_name(part_filename: str | None, content_type: str) -> str:
    if part_filename is None:
        return f"({content_type}, no name)"
    # SAFETY.md promise 15: nothing from the mail may start a new line in what we write.
    clean = "".join(
        "?" if ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 or ch in "\u2028\u2029" else ch
        for ch in part_filename
    )
    if len(clean) > _NAME_MAX:
        clean = clean[: _NAME_MAX - 3] + "..."
    return f'"{clean}"'


def render_link(template: str, part: DetachedPart) -> str:
    """Expand a ``link_url`` template: ``{key}``, ``{sha256}``, ``{size}``, ``{filename}``.

    The filename is percent-encoded; an unknown placeholder is a StubError.
    """
    values = {
        "key": part.key,
        "sha256": part.sha256,
        "size": str(part.size),
        "filename": urllib.parse.quote(part.filename or "attachment", safe=""),
    }
    try:
        return template.format_map(values)
    except (KeyError, IndexError, ValueError) as exc:
        raise StubError(
            f"link_url {template!r}: {exc}; use {{key}}, {{sha256}}, {{size}} or {{filename}}"
        ) from exc


@dataclass(frozen=True, slots=True)
class _StubText:
    name: str
    human_size: str
    size: str
    date: str
    location: str
    link: str | None
    sha256: str
    key: str
    layout: str


def _compose(text: _StubText, headers: bytes, eol: bytes, boundary: str) -> bytes:
    e = eol.decode("ascii")
    note_lines = [
        f"The attachment {text.name} ({text.human_size}) was moved out of this message"
        f" on {text.date}.",
        f"It is stored at: {text.location}",
        f"SHA-256: {text.sha256}",
    ]
    if text.link is not None:
        note_lines.append(f"Link: {text.link}")
    # 8bit always, even for an ASCII name: the stub's size then does not depend on the name's
    # characters (plan.stub_size counts on it). RFC 6152 8-bit MIME is what IMAP stores.
    head = (
        f'Content-Type: multipart/mixed; boundary="{boundary}"{e}{e}'
        f"--{boundary}{e}"
        f"Content-Type: text/plain; charset=utf-8{e}"
        f"Content-Transfer-Encoding: 8bit{e}{e}"
        f"{e.join(note_lines)}{e}"
        f"--{boundary}{e}"
        f"Content-Type: message/external-body; access-type=URL;{e}"
        f' URL="{text.location}"{e}{e}'
        f"X-Quotatool-SHA256: {text.sha256}{e}"
        f"X-Quotatool-Size: {text.size}{e}"
        f"X-Quotatool-Object: {text.key}{e}"
        f"X-Quotatool-Encoding: {text.layout}{e}"
    )
    return head.encode("utf-8", "replace") + headers + f"{e}--{boundary}--".encode("ascii")


def _boundary(sha256: str, taken: Sequence[bytes], raw: bytes) -> str:
    """Return a boundary that no line of the message can be mistaken for (RFC 2046 §5.1.1)."""
    for n in range(1000):
        candidate = f"{_BOUNDARY_PREFIX}{sha256[:16]}" + (f"_{n}" if n else "")
        cb = candidate.encode("ascii")
        # Dovecot takes a line that merely starts with a boundary as that boundary, so no
        # boundary may be a prefix of another, and ours must not occur in the message at all.
        if b"--" + cb not in raw and not any(t.startswith(cb) or cb.startswith(t) for t in taken):
            return candidate
    raise StubError("no free MIME boundary for the stub")  # pragma: no cover - 1000 collisions


def build_stub(
    part: DetachedPart,
    *,
    location: str,
    moved_at: int,
    link: str | None = None,
    eol: bytes = b"\r\n",
    message: bytes = b"",
) -> bytes:
    """Return the bytes that replace ``part`` in its message (header block to body end).

    Args:
        part: the part, as :func:`detach` took it out.
        location: where the object is, as a URL (``Store.url_for(key)``).
        moved_at: when, POSIX seconds (the note shows the UTC date).
        link: a human-facing URL (see :func:`render_link`), shown in the note.
        eol: the message's line end (:func:`quotatool.core.splice.eol_of`).
        message: the whole message, so that the stub's boundary occurs nowhere in it.

    """
    taken = [s.boundary for s in locate(message).walk() if s.boundary] if message else []
    text = _StubText(
        name=_shown_name(part.filename, part.content_type),
        human_size=humanize.naturalsize(part.size, binary=True),
        size=str(part.size),
        date=datetime.fromtimestamp(moved_at, UTC).strftime("%Y-%m-%d"),
        location=_url(location, "store location"),
        link=_url(link, "link") if link is not None else None,
        sha256=part.sha256,
        key=part.key,
        layout=part.layout.to_field(),
    )
    probe = _compose(text, part.headers, eol, "")
    return _compose(text, part.headers, eol, _boundary(part.sha256, taken, message + probe))


def stub_message(
    raw: bytes,
    parts: Sequence[DetachedPart],
    locations: Mapping[str, str],
    *,
    moved_at: int,
    op_id: str,
    link_url: str | None = None,
) -> bytes:
    """Return ``raw`` with each detached part replaced by its stub, and the marker set.

    ``locations`` maps each part's section to its object's URL.
    """
    eol = eol_of(raw)
    stubs = {
        p.section: build_stub(
            p,
            location=locations[p.section],
            moved_at=moved_at,
            link=render_link(link_url, p) if link_url else None,
            eol=eol,
            message=raw,
        )
        for p in parts
    }
    return rewrite(raw, stubs, op_id=op_id)


def stub_overhead(
    *,
    filename: str | None,
    content_type: str,
    decoded_size: int,
    encoding: str,
    location_length: int,
) -> int:
    """Return the octets a stub adds to its message besides the original part's header.

    The stub keeps the part's header block and drops its body, so a part of ``N`` encoded
    octets frees ``N - stub_overhead(...)``. Counted with CRLF line ends (RFC822.SIZE and
    quotas count CRLF) and the longest humanized size, so it errs towards freeing less.
    """
    layout = Layout(encoding if encoding in _IDENTITY | {"base64"} else "quoted-printable")
    text = _StubText(
        name=_shown_name(filename, content_type),
        human_size="1023.9 MiB",  # the longest a humanized IEC size gets below 1 TiB
        size=str(decoded_size),
        date="2000-01-01",
        location="u" * location_length,
        link=None,
        sha256="0" * 64,
        key=object_key("0" * 64),
        layout=layout.to_field(),
    )
    return len(_compose(text, b"", b"\r\n", _BOUNDARY_PREFIX + "0" * 16))


# -- restore ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StubRef:
    """A stub found in a message: which object to fetch and how to rebuild the part."""

    section: str
    """IMAP part specifier of the stub (the original part's section)."""
    sha256: str
    """SHA-256 of the payload, lower-case hex."""
    size: int
    """Octets of the payload."""
    key: str
    """Content-addressed object key."""
    url: str | None
    """The ``URL`` parameter: where the object was stored."""
    layout: Layout
    """How to re-encode the payload."""
    headers: bytes
    """The original part's header block and empty line, verbatim."""


def _stub_ref(raw: bytes, span: PartSpan) -> StubRef | None:
    if span.content_type != "multipart/mixed" or len(span.children) != 2:
        return None
    note, ext = span.children
    if note.content_type != "text/plain" or ext.content_type != "message/external-body":
        return None
    body = raw[ext.body_start : ext.end]
    m = _STUB_FIELDS.match(body)
    if m is None:
        return None
    headers = body[m.end() :]
    if not headers.endswith(b"\n"):
        raise StubError(f"part {span.section}: stub without the original header block")
    sha, size, key, layout = (g.decode("ascii") for g in m.groups())
    if key != object_key(sha):
        raise StubError(f"part {span.section}: object key {key} does not match its SHA-256")
    try:
        block = raw[ext.start : ext.header_end].decode("ascii")
        url = _header_parser.parsestr(block, headersonly=True).get_param("url")
    except Exception:  # the URL is informational; the key alone finds the object
        url = None
    return StubRef(
        section=span.section,
        sha256=sha,
        size=int(size),
        key=key,
        url=url if isinstance(url, str) else None,
        layout=Layout.from_field(layout),
        headers=headers,
    )


def find_stubs(raw: bytes) -> tuple[StubRef, ...]:
    """Return the stubs in a message, in section order (outermost only)."""
    out: list[StubRef] = []
    stack = [locate(raw)]
    while stack:
        span = stack.pop()
        ref = _stub_ref(raw, span) if span.own_headers else None
        if ref is not None:
            out.append(ref)
        else:
            stack.extend(reversed(span.children))
    return tuple(out)


def restore_part(ref: StubRef, payload: bytes) -> bytes:
    """Return the original part (header block and encoded body) rebuilt from its payload.

    Raises StubError when ``payload`` is not the one the stub names (size or SHA-256).
    """
    if len(payload) != ref.size:
        raise StubError(
            f"part {ref.section}: object {ref.key} has {len(payload)} octets, expected {ref.size}"
        )
    if hashlib.sha256(payload).hexdigest() != ref.sha256:
        raise StubError(f"part {ref.section}: object {ref.key} does not match its SHA-256")
    return ref.headers + encode_body(payload, ref.layout)


def restore_message(raw: bytes, payloads: Mapping[str, bytes], *, op_id: str | None) -> bytes:
    """Return ``raw`` with the stubs in ``payloads`` (by section) replaced by their parts.

    ``op_id`` becomes the new marker; ``None`` removes the marker, which gives back the
    original message byte for byte when every restored part is exact.
    """
    refs = {ref.section: ref for ref in find_stubs(raw)}
    parts: dict[str, bytes] = {}
    for section, payload in payloads.items():
        ref = refs.get(section)
        if ref is None:
            raise StubError(f"part {section} is not an offload stub")
        parts[section] = restore_part(ref, payload)
    return rewrite(raw, parts, op_id=op_id)
