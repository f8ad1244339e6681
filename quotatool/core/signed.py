"""Tell which parts sit inside a signed or encrypted MIME structure.

Rewriting anything under ``multipart/signed`` breaks the signature (RFC 1847 §2.1: the
signature covers the first body part byte for byte); an encrypted body (``multipart/encrypted``,
RFC 1847 §2.2; S/MIME ``application/pkcs7-mime``, RFC 8551 §3.2) cannot be looked into at all.
The plan leaves such messages out from what the scan knows (:func:`quotatool.core.plan.is_signed`
sees the top-level type and the attachment leaves); this module answers the exact question on
the full tree, which the executor has once it fetched the message: does offloading *this*
part change bytes a signature covers?
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from quotatool.core.plan import SIGNED_TYPES

__all__ = ["Node", "guarded_by", "signed_sections"]


class Node(Protocol):
    """A MIME tree node: :class:`~quotatool.model.MimePart` and splice's ``PartSpan`` both are."""

    @property
    def section(self) -> str: ...

    @property
    def content_type(self) -> str: ...

    @property
    def children(self) -> Sequence[Node]: ...


def signed_sections(root: Node) -> tuple[str, ...]:
    """Return the sections of the signed or encrypted structures in a tree, in tree order."""
    out: list[str] = []
    stack: list[Node] = [root]
    while stack:
        node = stack.pop()
        if node.content_type in SIGNED_TYPES:
            out.append(node.section)
        stack.extend(reversed(node.children))
    return tuple(out)


def guarded_by(root: Node, sections: Iterable[str]) -> dict[str, str]:
    """Map each of ``sections`` that is, or lies inside, a signed or encrypted part to its type.

    A section not in the result can be rewritten without touching signed bytes. A section
    that does not occur in the tree is not in the result either (the caller finds out).
    """
    wanted = set(sections)
    found: dict[str, str] = {}
    stack: list[tuple[Node, str | None]] = [(root, None)]
    while stack:
        node, guard = stack.pop()
        if guard is None and node.content_type in SIGNED_TYPES:
            guard = node.content_type
        if guard is not None and node.section in wanted:
            found.setdefault(node.section, guard)
        stack.extend((child, guard) for child in reversed(node.children))
    return found
