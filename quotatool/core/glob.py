"""Glob and regex patterns as rules files write them, compiled once into regexes.

A pattern is a glob where only ``*`` (any run of characters, ``/`` included) and ``?`` (one
character) are special; everything else is literal. :mod:`fnmatch` was rejected because it
treats ``[...]`` as a character class: Gmail's folders are called ``[Gmail]/Trash``, and a
subject glob ``[urgent]*`` would silently match "u*" or "r*" instead of the bracketed tag.
A pattern starting with ``re:`` is a Python regular expression, searched (not anchored).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "REGEX_PREFIX",
    "Matcher",
    "PatternError",
    "compile_patterns",
    "glob_to_regex",
    "mime_matcher",
    "normalize_inbox",
]

REGEX_PREFIX = "re:"

_INBOX_RE = re.compile(r"^inbox(?=$|[/.])", re.IGNORECASE)


class PatternError(ValueError):
    """A pattern that does not compile; the message says why."""


def glob_to_regex(glob: str) -> str:
    """Translate a ``*``/``?`` glob into an anchored regex source."""
    out: list[str] = []
    for ch in glob:
        if ch == "*":
            if not out or out[-1] != ".*":  # "**" is the same as "*"; keep the regex linear
                out.append(".*")
        elif ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return r"\A(?:" + "".join(out) + r")\Z"


def normalize_inbox(name: str) -> str:
    """Spell INBOX (and its children) in upper case: RFC 3501 §5.1 makes it case-insensitive."""
    return _INBOX_RE.sub("INBOX", name, count=1)


@dataclass(frozen=True, slots=True)
class Matcher:
    """A compiled set of patterns: matches when any one of them does."""

    patterns: tuple[str, ...]
    """The patterns as written."""
    regex: re.Pattern[str]
    """All of them joined into one alternation (one regex call per value)."""

    def __call__(self, value: str) -> bool:
        return self.regex.search(value) is not None

    def any(self, values: Iterable[str]) -> bool:
        """Return whether any of ``values`` matches."""
        search = self.regex.search
        return any(search(v) is not None for v in values)


def compile_patterns(patterns: Iterable[str], *, ignore_case: bool) -> Matcher:
    """Compile globs and ``re:`` regexes into one :class:`Matcher`.

    Raises:
        PatternError: a regex does not compile; the message quotes it and says why.

    """
    sources: list[str] = []
    pats = tuple(patterns)
    flags = re.IGNORECASE if ignore_case else 0
    for pat in pats:
        if pat.startswith(REGEX_PREFIX):
            source = pat[len(REGEX_PREFIX) :]
            try:
                re.compile(source, flags)
            except re.error as exc:
                raise PatternError(f"invalid regular expression {source!r}: {exc}") from exc
            # Searched, not anchored: `re:invoice` finds the word anywhere, as grep does.
            sources.append(f"(?:{source})")
        else:
            sources.append(glob_to_regex(pat))
    if not sources:
        sources.append(r"(?!)")  # matches nothing
    try:
        regex = re.compile("|".join(sources), flags)
    except re.error as exc:  # e.g. a regex with global flags in the middle of the alternation
        raise PatternError(f"invalid regular expression in {list(pats)!r}: {exc}") from exc
    return Matcher(patterns=pats, regex=regex)


def mime_matcher(types: Iterable[str]) -> Matcher:
    """Compile attachment types: MIME globs (``image/*``) or filename extensions (``.pdf``).

    An extension matches a filename ending in it (case-insensitive); anything with a ``/`` is a
    MIME type glob matched against the lower-case ``type/subtype``.
    """
    sources: list[str] = []
    pats = tuple(types)
    for t in pats:
        if "/" in t:
            sources.append("type:" + glob_to_regex(t.lower())[2:])
        else:
            ext = t.lower() if t.startswith(".") else "." + t.lower()
            sources.append(r"name:.*" + re.escape(ext) + r"\Z")
    if not sources:
        sources.append(r"(?!)")
    regex = re.compile(r"\A(?:" + "|".join(sources) + ")", re.IGNORECASE | re.DOTALL)
    return Matcher(patterns=pats, regex=regex)
