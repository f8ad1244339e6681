"""Quota thresholds and the monitoring status they give an account: pure, no I/O, no clock.

Statuses follow the monitoring-plugin convention (Nagios, Icinga, Sensu, Zabbix agents):
0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. A threshold is reached at or above its value ("80%"
warns at exactly 80%), because a quota limit is a ceiling people plan against, not a range.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from quotatool.model import QuotaResource
from quotatool.units import UnitError, parse_size


class Status(IntEnum):
    """A monitoring-plugin status; the value is the exit code."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


# Which status wins when several accounts are summed up. A mailbox known to be full is the
# most urgent fact; an account that could not be checked may be full too, so it outranks a
# warning. The numeric codes (UNKNOWN 3) cannot be compared directly for this.
_SEVERITY: Mapping[Status, int] = {
    Status.OK: 0,
    Status.WARNING: 1,
    Status.UNKNOWN: 2,
    Status.CRITICAL: 3,
}


def worst(statuses: Iterable[Status]) -> Status:
    """Return the most severe status: CRITICAL > UNKNOWN > WARNING > OK (OK when empty)."""
    return max(statuses, key=_SEVERITY.__getitem__, default=Status.OK)


@dataclass(frozen=True, slots=True)
class Threshold:
    """A level of storage use: a share of the quota limit or an absolute size."""

    percent: float | None = None
    """Percent of the limit (``80.0``), or ``None`` for an absolute threshold."""
    octets: int | None = None
    """Absolute size in octets, or ``None`` for a percent threshold."""

    def __post_init__(self) -> None:
        if (self.percent is None) == (self.octets is None):
            raise ValueError("a threshold is either a percent or a size")

    def octets_of(self, limit: int | None) -> int | None:
        """Return the threshold in octets for ``limit``; ``None`` when a percent has no limit."""
        if self.octets is not None:
            return self.octets
        if not limit:
            return None
        assert self.percent is not None
        # Round up: "80%" of 1000 octets is reached at 800, of 1001 at 801 (not at 800.8 → 800).
        return math.ceil(limit * self.percent / 100.0)

    def __str__(self) -> str:
        if self.percent is not None:
            return f"{self.percent:g}%"
        return f"{self.octets}B"


def parse_threshold(text: str) -> Threshold:
    """Parse ``80%``, ``92.5%`` or a size such as ``9GiB`` / ``500MB``; UnitError if neither."""
    stripped = text.strip()
    if stripped.endswith("%"):
        number = stripped[:-1].strip()
        try:
            value = float(number)
        except ValueError:
            raise UnitError(
                f"expected a percentage like 80% or a size like 9GiB, got {text!r}"
            ) from None
        if not math.isfinite(value) or not 0 < value <= 100:
            raise UnitError(f"a percentage must be above 0% and at most 100%, got {text!r}")
        return Threshold(percent=value)
    try:
        octets = parse_size(stripped)
    except UnitError as exc:
        raise UnitError(f"expected a percentage like 80% or a size like 9GiB: {exc}") from exc
    if octets <= 0:
        raise UnitError(f"a size threshold must be above 0, got {text!r}")
    return Threshold(octets=octets)


@dataclass(frozen=True, slots=True)
class FolderLimit:
    """A size a folder (or the folders a glob matches, together) should stay below."""

    folder: str
    """Folder name or shell-style glob (``INBOX``, ``Archive/*``)."""
    limit: int
    """Octets; at or above it the account is CRITICAL."""


def parse_folder_limit(text: str) -> FolderLimit:
    """Parse ``NAME=SIZE`` such as ``INBOX=2GiB``; UnitError when it is not that.

    The last ``=`` splits, because a folder name may hold one and a size never does.
    """
    name, sep, size = text.rpartition("=")
    if not sep or not name.strip():
        raise UnitError(f"expected FOLDER=SIZE like INBOX=2GiB, got {text!r}")
    limit = parse_size(size)
    if limit <= 0:
        raise UnitError(f"a folder limit must be above 0, got {text!r}")
    return FolderLimit(folder=name.strip(), limit=limit)


@dataclass(frozen=True, slots=True)
class CheckPolicy:
    """When an account is WARNING or CRITICAL."""

    warning: Threshold | None = None
    """Storage use at or above this is WARNING; ``None`` never warns."""
    critical: Threshold | None = None
    """Storage use at or above this is CRITICAL; ``None`` is never critical."""
    folder_limits: tuple[FolderLimit, ...] = ()
    """Per-folder limits; over a limit is CRITICAL, at the warning percentage of it WARNING."""


DEFAULT_POLICY = CheckPolicy(warning=Threshold(percent=80.0), critical=Threshold(percent=95.0))
"""Used where neither the command line nor the config file says otherwise."""


@dataclass(frozen=True, slots=True)
class ThresholdSettings:
    """Thresholds as one source (command line, account, ``[check]`` section) gives them."""

    warning: Threshold | None = None
    """``None`` when this source does not say."""
    critical: Threshold | None = None
    """``None`` when this source does not say."""
    folder_limits: tuple[FolderLimit, ...] = ()
    """Limits this source sets; a later source's limit for the same folder replaces it."""


def resolve_policy(
    *layers: ThresholdSettings, default: CheckPolicy = DEFAULT_POLICY
) -> CheckPolicy:
    """Combine settings, most specific first (command line, account, ``[check]``)."""
    warning = next((s.warning for s in layers if s.warning is not None), default.warning)
    critical = next((s.critical for s in layers if s.critical is not None), default.critical)
    limits: dict[str, FolderLimit] = {f.folder: f for f in default.folder_limits}
    for settings in reversed(layers):
        limits.update((f.folder, f) for f in settings.folder_limits)
    return CheckPolicy(warning=warning, critical=critical, folder_limits=tuple(limits.values()))


@dataclass(frozen=True, slots=True)
class FolderCheck:
    """One folder limit and what the folders it names hold."""

    folder: str
    """The limit's folder name or glob."""
    octets: int
    """Sum of RFC822.SIZE of the matching folders (0 when none matches)."""
    limit: int
    """The limit in octets."""
    warning: int | None
    """WARNING level in octets (the policy's warning percentage of the limit), if any."""
    status: Status
    """OK, WARNING or CRITICAL."""


@dataclass(frozen=True, slots=True)
class AccountCheck:
    """The verdict for one account."""

    account: str
    """Account name (or TARGET) as the user named it."""
    status: Status
    """The worst of the storage and folder statuses, or UNKNOWN."""
    checked_at: int
    """When the check ran, POSIX seconds."""
    usage: int | None = None
    """STORAGE usage in octets; ``None`` when unknown."""
    limit: int | None = None
    """STORAGE limit in octets; ``None`` when unlimited or unknown."""
    warning: int | None = None
    """WARNING level in octets for this account's limit, if any."""
    critical: int | None = None
    """CRITICAL level in octets for this account's limit, if any."""
    storage_status: Status = Status.UNKNOWN
    """The status of the storage quota alone."""
    folders: tuple[FolderCheck, ...] = ()
    """One entry per folder limit, in policy order."""
    error: str | None = None
    """Why the status is UNKNOWN, one line."""
    quota: tuple[QuotaResource, ...] | None = None
    """Every quota resource the server reported."""
    folder_sizes: Mapping[str, int] = field(default_factory=dict)
    """Size of each folder read for the folder limits, by name."""
    reached: bool = True
    """Whether the account could be read at all (False: connection, login or lock failed)."""

    @property
    def percent(self) -> float | None:
        """STORAGE usage as a percentage of the limit, ``None`` without a limit."""
        if self.usage is None or not self.limit:
            return None
        return 100.0 * self.usage / self.limit


def unknown(account: str, reason: str, *, now: int) -> AccountCheck:
    """Return the verdict for an account that could not be checked."""
    return AccountCheck(
        account=account, status=Status.UNKNOWN, checked_at=now, error=reason, reached=False
    )


def _storage(quota: Sequence[QuotaResource]) -> QuotaResource | None:
    storage = [q for q in quota if q.resource == "STORAGE"]
    if not storage:
        return None
    # Several roots can hold INBOX (user and domain quota): the fullest one decides.
    return max(storage, key=lambda q: (q.percent or 0.0, q.usage))


def _level(value: int, warning: int | None, critical: int | None) -> Status:
    if critical is not None and value >= critical:
        return Status.CRITICAL
    if warning is not None and value >= warning:
        return Status.WARNING
    return Status.OK


def _folder_check(limit: FolderLimit, octets: int, policy: CheckPolicy) -> FolderCheck:
    warn_pct = policy.warning.percent if policy.warning is not None else None
    warning = None if warn_pct is None else math.ceil(limit.limit * warn_pct / 100.0)
    return FolderCheck(
        folder=limit.folder,
        octets=octets,
        limit=limit.limit,
        warning=warning,
        status=_level(octets, warning, limit.limit),
    )


def evaluate(
    account: str,
    quota: tuple[QuotaResource, ...] | None,
    policy: CheckPolicy,
    *,
    now: int,
    folder_totals: Mapping[str, int] | None = None,
    folder_sizes: Mapping[str, int] | None = None,
) -> AccountCheck:
    """Return the verdict for one account.

    ``quota`` is what the server reported (``None``: no quota, which is UNKNOWN);
    ``folder_totals`` the octets per folder limit, keyed by the limit's ``folder``;
    ``folder_sizes`` the octets of each folder read, kept for the reports.
    """
    totals = folder_totals or {}
    storage = _storage(quota or ())
    if storage is None:
        reason = "the server reports no quota" if not quota else "no STORAGE quota reported"
        return AccountCheck(
            account=account,
            status=Status.UNKNOWN,
            checked_at=now,
            error=reason,
            quota=quota,
            folder_sizes=dict(folder_sizes or {}),
        )
    warning = policy.warning.octets_of(storage.limit) if policy.warning else None
    critical = policy.critical.octets_of(storage.limit) if policy.critical else None
    folders = tuple(_folder_check(f, totals.get(f.folder, 0), policy) for f in policy.folder_limits)
    error = None
    needs_limit = [t for t in (policy.warning, policy.critical) if t and t.percent is not None]
    if needs_limit and not storage.limit:
        storage_status = Status.UNKNOWN
        error = "the quota has no limit to take a percentage of"
    else:
        storage_status = _level(storage.usage, warning, critical)
    return AccountCheck(
        account=account,
        status=worst([storage_status, *(f.status for f in folders)]),
        checked_at=now,
        usage=storage.usage,
        limit=storage.limit,
        warning=warning,
        critical=critical,
        storage_status=storage_status,
        folders=folders,
        error=error,
        quota=quota,
        folder_sizes=dict(folder_sizes or {}),
    )


@dataclass(frozen=True, slots=True)
class CheckRun:
    """The verdicts of one run over one or more accounts."""

    results: tuple[AccountCheck, ...]
    """One per account, in the order the accounts were named."""
    status: Status
    """The worst status (see :func:`worst`); UNKNOWN for a run without accounts."""
    checked_at: int
    """When the run started, POSIX seconds."""

    def count(self, status: Status) -> int:
        """Return how many accounts have ``status``."""
        return sum(1 for r in self.results if r.status is status)


def summarize_run(results: Sequence[AccountCheck], *, now: int) -> CheckRun:
    """Return the run's results with the worst status."""
    status = worst(r.status for r in results) if results else Status.UNKNOWN
    return CheckRun(results=tuple(results), status=status, checked_at=now)
