"""Small formatting helpers shared by the report renderers: sizes, counts, dates, bars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import humanize

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# C0 and C1 controls and DEL would reach the terminal as escape sequences (a subject can carry
# ESC [ 2 J, and rich.text.Text strips only BEL, BS, VT, FF and CR); bidirectional overrides
# (Unicode TR #9) can make a line read differently from its bytes. Tabs and line breaks become
# spaces so one value stays on one table row.
_REPLACEMENT = "\ufffd"
_UNSAFE: dict[int, str] = dict.fromkeys((*range(0x20), *range(0x7F, 0xA0)), _REPLACEMENT)
_UNSAFE.update(dict.fromkeys((*range(0x202A, 0x202F), *range(0x2066, 0x206A)), _REPLACEMENT))
_UNSAFE.update({ord("\t"): " ", ord("\n"): " ", ord("\r"): " "})


def printable(value: str) -> str:
    """Return ``value`` with control and bidi-override characters made harmless."""
    return value.translate(_UNSAFE)


def iec(octets: int) -> str:
    """Format a size in IEC units: ``1.5 KiB``, ``412.3 MiB``."""
    return humanize.naturalsize(octets, binary=True)


def count(n: int) -> str:
    """Format a count with thousands separators: ``12,345``."""
    return f"{n:,}"


def _utc(ts: int) -> datetime:
    # timedelta arithmetic instead of datetime.fromtimestamp: it also handles dates before
    # 1970 and far in the future on every platform.
    return _EPOCH + timedelta(seconds=ts)


def rfc3339(ts: int) -> str:
    """Format POSIX seconds as an RFC 3339 UTC timestamp: ``2024-03-01T12:00:00Z``."""
    return _utc(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_date(ts: int) -> str:
    """Format POSIX seconds as a UTC calendar date: ``2024-03-01``."""
    return _utc(ts).strftime("%Y-%m-%d")


def utc_minute(ts: int) -> str:
    """Format POSIX seconds to the minute, naming the zone: ``2024-03-01 12:00 UTC``."""
    return _utc(ts).strftime("%Y-%m-%d %H:%M UTC")


def percent(part: int, whole: int) -> str:
    """Format ``part`` as a share of ``whole``: ``82.5%``, ``<0.1%``, ``-`` without a whole."""
    if whole <= 0:
        return "-"
    share = 100.0 * part / whole
    if 0 < share < 0.1:
        return "<0.1%"
    return f"{share:.1f}%"


_EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(fraction: float, width: int, *, track: str = " ") -> str:
    """Draw ``fraction`` (0..1) as a bar of ``width`` cells with eighth-cell precision.

    Hand-written rather than rich.progress_bar.ProgressBar or rich.bar.Bar: those tell done
    from not-done by colour alone, so with NO_COLOR (or in a file) the bar disappears. Block
    characters carry the length themselves.
    """
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    if fraction > 0 and eighths == 0:
        eighths = 1  # Something is there: show a sliver rather than nothing.
    full, rest = divmod(eighths, 8)
    text = "█" * full
    if rest:
        text += _EIGHTHS[rest]
    return text + track * (width - len(text))
