"""The Prometheus text output parses with prometheus_client's own parser and holds the values."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from quotatool.core.thresholds import DEFAULT_POLICY, evaluate, summarize_run, unknown
from quotatool.model import QuotaResource
from quotatool.report.format import ReportFormat, render_check
from quotatool.report.prometheus import AccountMetrics, render_prometheus


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge"
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_every_metric_with_its_labels() -> None:
    text = render_prometheus(
        [
            AccountMetrics(
                account="alice",
                success=True,
                timestamp=1_700_000_000,
                storage=[("User quota", 20_000, 50_000)],
                folders=[("INBOX", 15_000), ("Sent", 5_000)],
                reclaimable=[("old news", 4_000)],
                status=1,
            ),
            AccountMetrics(account="bob", success=False, timestamp=1_700_000_001),
        ]
    )
    got = samples(text)
    alice = ("account", "alice")
    assert got[("quotatool_quota_usage_bytes", (alice, ("root", "User quota")))] == 20_000
    assert got[("quotatool_quota_limit_bytes", (alice, ("root", "User quota")))] == 50_000
    assert got[("quotatool_folder_size_bytes", (alice, ("folder", "INBOX")))] == 15_000
    assert got[("quotatool_reclaimable_bytes", (alice, ("rule", "old news")))] == 4_000
    assert got[("quotatool_check_status", (alice,))] == 1
    assert got[("quotatool_last_run_timestamp_seconds", (alice,))] == 1_700_000_000
    assert got[("quotatool_last_run_success", (alice,))] == 1
    assert got[("quotatool_last_run_success", (("account", "bob"),))] == 0
    # Every family is declared once, its samples together (the textfile collector needs that).
    assert text.count("# TYPE quotatool_last_run_success gauge") == 1


def test_hostile_label_values_are_escaped() -> None:
    folder = 'a"b\\c\nd}{x="1"'
    text = render_prometheus(
        [AccountMetrics(account="x", success=True, timestamp=0, folders=[(folder, 3)])]
    )
    got = samples(text)
    assert got[("quotatool_folder_size_bytes", (("account", "x"), ("folder", folder)))] == 3
    assert len(text.splitlines()) == 9  # three families: HELP, TYPE and one sample each


def test_unlimited_quota_has_no_limit_sample_and_nothing_renders_empty() -> None:
    text = render_prometheus(
        [AccountMetrics(account="x", success=True, timestamp=0, storage=[("", 5, None)])]
    )
    assert "quotatool_quota_limit_bytes" not in text
    assert samples(text)[("quotatool_quota_usage_bytes", (("account", "x"), ("root", "")))] == 5
    assert render_prometheus([]) == ""


def test_check_run_as_metrics() -> None:
    quota = (QuotaResource(root="User quota", resource="STORAGE", usage=900, limit=1000),)
    run = summarize_run(
        [evaluate("alice", quota, DEFAULT_POLICY, now=50), unknown("bob", "down", now=50)], now=50
    )
    got = samples(render_check(run, ReportFormat.PROMETHEUS).text)
    assert got[("quotatool_check_status", (("account", "alice"),))] == 1
    assert got[("quotatool_check_status", (("account", "bob"),))] == 3
    assert got[("quotatool_last_run_success", (("account", "bob"),))] == 0
    assert (
        got[("quotatool_quota_usage_bytes", (("account", "alice"), ("root", "User quota")))] == 900
    )
