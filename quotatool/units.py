"""Strict parsers for sizes and durations as people write them in rules and options.

Sizes: ``5MB`` (SI, 10**6) or ``5MiB`` (IEC, 2**20); a bare ``5M`` is ambiguous and refused.
Durations: ``90d``, ``2y``, ``12w``, ``36h``, ``30m`` (minutes), ``45s``; months are refused
because their length varies. A year is 365 days.
"""

from __future__ import annotations

import re

_SIZE_UNITS: dict[str, int] = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}

_DURATION_UNITS: dict[str, int] = {
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "y": 365 * 86400,
}

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([a-zA-Z]+)\s*$")


class UnitError(ValueError):
    """A size or duration that does not parse; the message says what was expected."""


def parse_size(text: str | int) -> int:
    """Parse ``5MB``, ``5MiB``, ``1.5GiB`` or a plain number of bytes into octets."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise UnitError(f"expected a size like 5MB or 5MiB, got {text!r}")
        return text
    if not isinstance(text, str):
        raise UnitError(f"expected a size like 5MB or 5MiB, got {text!r}")
    match = _SIZE_RE.match(text)
    if match is None:
        raise UnitError(f"expected a size like 5MB or 5MiB, got {text!r}")
    number, unit = match.groups()
    unit_l = unit.lower()
    if unit_l == "":
        if "." in number:
            raise UnitError(f"expected a whole number of bytes, got {text!r}")
        return int(number)
    if unit_l in ("k", "m", "g", "t"):
        up = unit.upper()
        raise UnitError(
            f"ambiguous size {text!r}: write {number}{up}B (SI, powers of 1000) "
            f"or {number}{up}iB (IEC, powers of 1024)"
        )
    factor = _SIZE_UNITS.get(unit_l)
    if factor is None:
        raise UnitError(f"unknown size unit {unit!r} in {text!r}; use B, KB, MB, GB, KiB, MiB, GiB")
    return int(float(number) * factor) if "." in number else int(number) * factor


def parse_duration(text: str) -> int:
    """Parse ``90d``, ``2y``, ``12w``, ``36h``, ``30m`` or ``45s`` into seconds."""
    if not isinstance(text, str):
        raise UnitError(f"expected a duration like 90d or 2y, got {text!r}")
    match = _DURATION_RE.match(text)
    if match is None:
        if re.search(r"(?i)month|mo\b", text):
            raise UnitError(
                f"expected a duration like 90d or 2y, got {text!r} "
                "(months vary in length; write days or weeks, e.g. 90d)"
            )
        raise UnitError(f"expected a duration like 90d or 2y, got {text!r}")
    number, unit = match.groups()
    unit_l = unit.lower()
    if unit_l in ("mo", "mon", "month", "months"):
        raise UnitError(
            f"expected a duration like 90d or 2y, got {text!r} "
            "(months vary in length; write days or weeks, e.g. 90d)"
        )
    if unit != unit_l and unit_l == "m":
        raise UnitError(
            f"ambiguous duration {text!r}: 'M' could mean months; "
            "write minutes as 'm' or use days, e.g. 90d"
        )
    factor = _DURATION_UNITS.get(unit_l)
    if factor is None:
        raise UnitError(f"expected a duration like 90d or 2y, got {text!r}")
    return int(number) * factor
