from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quotatool.units import UnitError, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5MB", 5_000_000),
        ("5MiB", 5 * 2**20),
        ("1.5GiB", int(1.5 * 2**30)),
        ("512", 512),
        ("10 kb", 10_000),
        (1024, 1024),
    ],
)
def test_sizes(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(("text", "hint"), [("5M", "5MB"), ("3G", "3GiB"), ("5XB", "unknown")])
def test_bad_sizes(text: str, hint: str) -> None:
    with pytest.raises(UnitError, match=hint):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90d", 90 * 86400), ("2y", 2 * 365 * 86400), ("12w", 12 * 7 * 86400), ("30m", 1800)],
)
def test_durations(text: str, expected: int) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["3 months", "3mo", "2M", "soon", ""])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UnitError, match=r"expected a duration|ambiguous"):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["KiB", "MiB", "GiB"]))
def test_iec_sizes_are_powers_of_1024(n: int, unit: str) -> None:
    power = {"KiB": 1, "MiB": 2, "GiB": 3}[unit]
    assert parse_size(f"{n}{unit}") == n * 1024**power
