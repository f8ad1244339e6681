"""Metrics in the Prometheus text exposition format, for node_exporter's textfile collector.

Written by hand rather than with ``prometheus_client``: a few gauges do not justify a runtime
dependency, and its registry is process-global state. The tests parse this output with
``prometheus_client``'s own parser. Format: https://prometheus.io/docs/instrumenting/exposition_formats/
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["AccountMetrics", "render_prometheus"]


@dataclass(frozen=True, slots=True)
class AccountMetrics:
    """What one account contributes to the metrics file."""

    account: str
    """The ``account`` label."""
    success: bool
    """Whether the run could read the account."""
    timestamp: int
    """When the run read the account, POSIX seconds."""
    storage: Sequence[tuple[str, int, int | None]] = ()
    """STORAGE quota as ``(root, usage octets, limit octets or None)``."""
    folders: Sequence[tuple[str, int]] = ()
    """``(folder, octets)`` for each folder read."""
    reclaimable: Sequence[tuple[str, int]] = ()
    """``(rule, octets)`` a cleanup plan would free, when a plan was made."""
    status: int | None = None
    """The check's monitoring status (0 OK .. 3 UNKNOWN), for ``check`` runs."""


_METRICS: tuple[tuple[str, str], ...] = (
    ("quotatool_quota_usage_bytes", "STORAGE quota in use, in bytes."),
    ("quotatool_quota_limit_bytes", "STORAGE quota limit, in bytes (absent when unlimited)."),
    ("quotatool_folder_size_bytes", "Sum of the RFC822.SIZE of a folder's messages, in bytes."),
    ("quotatool_reclaimable_bytes", "Bytes a cleanup rule would free."),
    ("quotatool_check_status", "Check status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."),
    ("quotatool_last_run_timestamp_seconds", "When quotatool last read the account."),
    ("quotatool_last_run_success", "1 if quotatool could read the account, else 0."),
)


def _escape(value: str) -> str:
    # Exposition format: in label values, backslash, double quote and line feed are escaped.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


def _samples(name: str, m: AccountMetrics) -> list[tuple[dict[str, str], float]]:
    account = {"account": m.account}
    if name == "quotatool_quota_usage_bytes":
        return [({**account, "root": root}, usage) for root, usage, _ in m.storage]
    if name == "quotatool_quota_limit_bytes":
        return [
            ({**account, "root": root}, limit) for root, _, limit in m.storage if limit is not None
        ]
    if name == "quotatool_folder_size_bytes":
        return [({**account, "folder": f}, size) for f, size in m.folders]
    if name == "quotatool_reclaimable_bytes":
        return [({**account, "rule": r}, size) for r, size in m.reclaimable]
    if name == "quotatool_check_status":
        return [] if m.status is None else [(account, m.status)]
    if name == "quotatool_last_run_timestamp_seconds":
        return [(account, m.timestamp)]
    assert name == "quotatool_last_run_success"
    return [(account, 1 if m.success else 0)]


def _value(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def render_prometheus(accounts: Sequence[AccountMetrics]) -> str:
    """Return the metrics of ``accounts``: every metric family once, its samples together."""
    lines: list[str] = []
    for name, help_text in _METRICS:
        samples = [s for m in accounts for s in _samples(name, m)]
        if not samples:
            continue
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        lines.extend(f"{name}{_labels(lbl.items())} {_value(v)}" for lbl, v in samples)
    return "\n".join(lines) + "\n" if lines else ""
