"""Turn an IMAP BODYSTRUCTURE into a MIME tree, its attachments and their sizes.

The input is the s-expression as the FETCH parser yields it: nested tuples of
``bytes | int | None | tuple`` (RFC 3501 §7.4.2). Layout of one body part:

* multipart: ``(child child ... subtype [params [disposition [language [location]]]])``;
* basic: ``(type subtype params id description encoding size [md5 [disposition ...]])``;
* ``text/*`` adds ``lines`` after ``size``; ``message/rfc822`` adds ``envelope body lines``.

Extension data may be missing, NIL or odd (servers differ, and Dovecot copies what the message
says); only the fields a scan needs are required to have the right type. Section numbers follow
RFC 3501 §6.4.5.
"""

from __future__ import annotations

import email.utils

from quotatool.core.headers import decode_words
from quotatool.errors import ParseError
from quotatool.model import Attachment, MimePart

__all__ = [
    "BodystructureError",
    "decoded_size_estimate",
    "find_attachments",
    "summarize",
    "to_mime_tree",
]

# Deeper than any real message (mail clients nest a handful of levels); the FETCH parser
# already bounds the input, this bounds callers that build tuples some other way.
MAX_DEPTH = 100
# RFC 2045 §6.8: base64 lines hold at most 76 characters; mailers end each with CRLF.
_B64_LINE = 78
_CACHE_MAX = 1024

_ctype_cache: dict[tuple[bytes, bytes], str] = {}


class BodystructureError(ParseError):
    """A BODYSTRUCTURE that does not have the shape RFC 3501 §7.4.2 gives it."""


def decoded_size_estimate(encoding: str, size: int) -> int:
    """Estimate a part's size once its transfer encoding is removed.

    base64 (RFC 2045 §6.8) carries 3 octets in 4 characters, on lines of 76 characters plus
    CRLF; every other encoding is counted as it is stored (quoted-printable of mostly-ASCII
    text is within a few percent of its decoded size).
    """
    if encoding == "base64":
        lines = (size + _B64_LINE - 1) // _B64_LINE
        return max(size - 2 * lines, 0) * 3 // 4
    return size


def to_mime_tree(bs: object) -> MimePart:
    """Build the MimePart tree of a BODYSTRUCTURE, with RFC 3501 §6.4.5 section numbers."""
    if _is_multipart(bs):
        return _tree(bs, "", 0)
    return _tree(bs, "1", 0)


def find_attachments(root: MimePart) -> tuple[Attachment, ...]:
    """Return the parts a person would call attachments, in tree order.

    A part is an attachment when its disposition is ``attachment`` or it names a file. An
    attached ``message/rfc822`` counts as one attachment (the whole forwarded message); one that
    is not attached is looked into.
    """
    out: list[Attachment] = []
    stack = [root]
    while stack:
        part = stack.pop()
        if part.content_type.startswith("multipart/") or (
            part.children and not _is_attachment(part.disposition, part.filename)
        ):
            stack.extend(reversed(part.children))
        elif _is_attachment(part.disposition, part.filename):
            out.append(
                Attachment(
                    section=part.section,
                    content_type=part.content_type,
                    filename=part.filename,
                    size=part.size,
                    decoded_size=decoded_size_estimate(part.encoding, part.size),
                    encoding=part.encoding,
                )
            )
    return tuple(out)


def summarize(bs: object) -> tuple[str, tuple[Attachment, ...]]:
    """Return the top-level content type and the attachments, without building the tree.

    The scan calls this once per message; it gives the same answer as
    ``find_attachments(to_mime_tree(bs))`` (a property the tests check).
    """
    out: list[Attachment] = []
    ctype = _walk(bs, "" if _is_multipart(bs) else "1", out, 0)
    return ctype, tuple(out)


# -- shared shape checks ----------------------------------------------------------------------


def _is_multipart(bs: object) -> bool:
    return type(bs) is tuple and len(bs) > 0 and type(bs[0]) is tuple


def _split_multipart(
    bs: tuple[object, ...], section: str
) -> tuple[tuple[object, ...], bytes | None, int]:
    """Return (children, subtype, index of the first extension field) of a multipart."""
    i = 0
    n = len(bs)
    while i < n and type(bs[i]) is tuple:
        i += 1
    subtype = bs[i] if i < n else None
    if subtype is not None and type(subtype) is not bytes:
        raise BodystructureError(
            f"part {section or 'TEXT'}: multipart subtype expected, got {_show(subtype)}"
        )
    return bs[:i], subtype, i + 1


def _basic(bs: object, section: str) -> tuple[tuple[object, ...], str, str, int]:
    """Check a non-multipart part; return (part, content type, encoding, size)."""
    if type(bs) is not tuple:
        raise BodystructureError(f"part {section}: body part list expected, got {_show(bs)}")
    if len(bs) < 7:
        raise BodystructureError(f"part {section}: only {len(bs)} fields in {_show(bs)}")
    mtype, subtype, encoding, size = bs[0], bs[1], bs[5], bs[6]
    if type(mtype) is not bytes or type(subtype) is not bytes:
        raise BodystructureError(
            f"part {section}: media type expected, got {_show(mtype)} {_show(subtype)}"
        )
    if type(size) is not int:
        raise BodystructureError(f"part {section}: size expected, got {_show(size)}")
    if encoding is None:
        enc = "7bit"
    elif type(encoding) is bytes:
        enc = encoding.decode("ascii", "replace").lower()
    else:
        raise BodystructureError(f"part {section}: encoding expected, got {_show(encoding)}")
    return bs, _ctype(mtype, subtype), enc, size


def _layout(part: tuple[object, ...], ctype: str) -> tuple[int, object]:
    """Return (index of the md5 extension field, enclosed body or None) of a basic part."""
    n = len(part)
    # RFC 3501 §7.4.2: MESSAGE/RFC822 adds envelope, body and lines; RFC 6532 §3.7 gives
    # message/global the same shape. Decide by the shape too, so an odd server that sends the
    # basic layout for a message part is read as a leaf rather than rejected.
    if (
        n >= 10
        and ctype in ("message/rfc822", "message/global")
        and type(part[8]) is tuple
        and type(part[7]) in (tuple, type(None))
    ):
        return 10, part[8]
    if n >= 8 and type(part[7]) is int and ctype.startswith("text/"):
        return 8, None
    return 7, None


def _disposition(value: object) -> tuple[str | None, object]:
    """Return (lower-case disposition, its params) from the extension field, lenient."""
    if type(value) is tuple and value:
        dtype = value[0]
        params = value[1] if len(value) > 1 else None
    elif type(value) is bytes:  # a bare string instead of a list: seen from some servers
        dtype, params = value, None
    else:
        return None, None
    if type(dtype) is not bytes:
        return None, None
    return dtype.decode("ascii", "replace").lower(), params


def _is_attachment(disposition: str | None, filename: str | None) -> bool:
    return disposition == "attachment" or filename is not None


def _ctype(mtype: bytes, subtype: bytes) -> str:
    key = (mtype, subtype)
    ctype = _ctype_cache.get(key)
    if ctype is None:
        if len(_ctype_cache) > _CACHE_MAX:
            _ctype_cache.clear()
        ctype = _ctype_cache[key] = (
            f"{mtype.decode('ascii', 'replace')}/{subtype.decode('ascii', 'replace')}".lower()
        )
    return ctype


def _child_section(section: str, k: int) -> str:
    return f"{section}.{k}" if section else str(k)


def _enclosed_section(section: str, body: object) -> str:
    # RFC 3501 §6.4.5: the parts of a multipart inside message/rfc822 part N are N.1, N.2...;
    # a non-multipart body inside it is N.1.
    return section if _is_multipart(body) else f"{section}.1"


def _ext(part: tuple[object, ...], index: int) -> object:
    return part[index] if index < len(part) else None


# -- parameters and file names ----------------------------------------------------------------


def _text(value: bytes) -> str:
    # Servers pass 8-bit header bytes through (RFC 6532 mail is UTF-8; older mail is often
    # Latin-1, which decodes any byte).
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _has_param(params: object, base: bytes) -> bool:
    """Tell cheaply whether ``params`` holds ``base`` or an RFC 2231 form of it."""
    if type(params) is not tuple:
        return False
    size = len(base)
    for k in range(0, len(params) - 1, 2):
        name = params[k]
        if (
            type(name) is bytes
            and name[:size].lower() == base
            and name[size : size + 1] in (b"", b"*")
        ):
            return True
    return False


def decode_params(params: object) -> tuple[tuple[str, str], ...]:
    """Decode a body parameter list: names lower-case, RFC 2231 and RFC 2047 values decoded."""
    if type(params) is not tuple:
        return ()
    pairs: list[tuple[str, str]] = []
    for k in range(0, len(params) - 1, 2):
        name, value = params[k], params[k + 1]
        if type(name) is not bytes:
            continue
        if value is None:
            text = ""
        elif type(value) is bytes:
            text = _text(value)
        elif type(value) is int:
            text = str(value)
        else:
            continue
        pairs.append((name.decode("ascii", "replace").lower(), text))
    if any("*" in name for name, _ in pairs):
        pairs = _rfc2231(pairs)
    return tuple((name, decode_words(value)) for name, value in pairs)


def _rfc2231(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Join RFC 2231 continuations (``name*0*``) and decode ``charset'lang'%XX`` values."""
    try:
        # email.utils re-quotes every value it returns; unquote undoes that.
        decoded = email.utils.decode_params([("", ""), *pairs])[1:]
        return [
            (
                name,
                email.utils.unquote(email.utils.collapse_rfc2231_value(value))
                if isinstance(value, tuple)
                else email.utils.collapse_rfc2231_value(value),
            )
            for name, value in decoded
        ]
    except (TypeError, ValueError, LookupError, UnicodeError):
        # e.g. both name* and name*0 present (the stdlib cannot sort None against 0)
        return pairs


def _filename(disp_params: object, ct_params: object) -> str | None:
    """Return the decoded file name: the disposition's ``filename``, else the type's ``name``."""
    if _has_param(disp_params, b"filename"):
        value = dict(decode_params(disp_params)).get("filename")
        if value is not None:
            return value
    if _has_param(ct_params, b"name"):
        return dict(decode_params(ct_params)).get("name")
    return None


# -- the tree ---------------------------------------------------------------------------------


def _tree(bs: object, section: str, depth: int) -> MimePart:
    if depth > MAX_DEPTH:
        raise BodystructureError(f"part {section}: nested deeper than {MAX_DEPTH} levels")
    if _is_multipart(bs):
        assert type(bs) is tuple
        parts, subtype, ext = _split_multipart(bs, section)
        kids = tuple(
            _tree(child, _child_section(section, k), depth + 1)
            for k, child in enumerate(parts, start=1)
        )
        disposition, disp_params = _disposition(_ext(bs, ext + 1))
        return MimePart(
            section=section,
            content_type=_ctype(b"multipart", subtype or b"mixed"),
            params=decode_params(_ext(bs, ext)),
            encoding="7bit",
            size=sum(kid.size for kid in kids),
            disposition=disposition,
            filename=_filename(disp_params, None),
            children=kids,
        )
    part, ctype, encoding, size = _basic(bs, section)
    md5, inner = _layout(part, ctype)
    disposition, disp_params = _disposition(_ext(part, md5 + 1))
    cid = part[3]
    children: tuple[MimePart, ...] = ()
    if inner is not None:
        children = (_tree(inner, _enclosed_section(section, inner), depth + 1),)
    return MimePart(
        section=section,
        content_type=ctype,
        params=decode_params(part[2]),
        encoding=encoding,
        size=size,
        disposition=disposition,
        filename=_filename(disp_params, part[2]),
        content_id=_text(cid) if type(cid) is bytes else None,
        children=children,
    )


def _walk(bs: object, section: str, out: list[Attachment], depth: int) -> str:
    """Collect the attachments below ``bs`` into ``out``; return its content type."""
    if depth > MAX_DEPTH:
        raise BodystructureError(f"part {section}: nested deeper than {MAX_DEPTH} levels")
    if _is_multipart(bs):
        assert type(bs) is tuple
        parts, subtype, _ = _split_multipart(bs, section)
        for k, child in enumerate(parts, start=1):
            if depth < MAX_DEPTH and _plain_leaf(child) is not None:
                continue  # nothing to collect, no section string to build
            _walk(child, _child_section(section, k), out, depth + 1)
        return _ctype(b"multipart", subtype or b"mixed")
    ctype = _plain_leaf(bs)
    if ctype is not None:
        return ctype
    part, ctype, encoding, size = _basic(bs, section)
    md5, inner = _layout(part, ctype)
    disposition, disp_params = _disposition(_ext(part, md5 + 1))
    filename = _filename(disp_params, part[2])
    if _is_attachment(disposition, filename):
        out.append(
            Attachment(
                section=section,
                content_type=ctype,
                filename=filename,
                size=size,
                decoded_size=decoded_size_estimate(encoding, size),
                encoding=encoding,
            )
        )
    elif inner is not None:
        _walk(inner, _enclosed_section(section, inner), out, depth + 1)
    return ctype


def _plain_leaf(bs: object) -> str | None:
    """Return the content type of a well-formed leaf that is no attachment and encloses nothing.

    Most parts of most messages are such leaves (text, HTML, inline parts without a name);
    this decides them with a few type checks. ``None`` means "look closer": the part may be an
    attachment, a ``message/*`` part, or malformed, and :func:`_walk` gives the full answer.
    """
    if type(bs) is not tuple or len(bs) < 7:
        return None
    mtype, subtype, encoding = bs[0], bs[1], bs[5]
    if (
        type(mtype) is not bytes
        or type(subtype) is not bytes
        or type(bs[6]) is not int
        or (encoding is not None and type(encoding) is not bytes)
    ):
        return None
    ctype = _ctype(mtype, subtype)
    if ctype.startswith("message/"):
        return None
    n = len(bs)
    # The disposition follows md5, which follows the line count of text parts (see _layout).
    disposition = 9 if n >= 8 and type(bs[7]) is int and ctype.startswith("text/") else 8
    if disposition < n and bs[disposition] is not None:
        return None
    if _has_param(bs[2], b"name"):
        return None
    return ctype


def _show(value: object) -> str:
    """Quote an offending token for an error message, shortened."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
