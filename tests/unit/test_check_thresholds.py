"""Thresholds, statuses and the check service, without a server."""

from __future__ import annotations

import pytest

from quotatool.core.thresholds import (
    DEFAULT_POLICY,
    CheckPolicy,
    FolderLimit,
    Status,
    Threshold,
    ThresholdSettings,
    evaluate,
    parse_folder_limit,
    parse_threshold,
    resolve_policy,
    summarize_run,
    unknown,
    worst,
)
from quotatool.errors import AuthError
from quotatool.model import FolderRef, MessageInfo, QuotaResource, Uid
from quotatool.services.check import check_account, check_source
from quotatool.units import UnitError
from tests.fakes import FakeSource

MIB = 2**20


def storage(usage: int, limit: int | None, root: str = "User quota") -> QuotaResource:
    return QuotaResource(root=root, resource="STORAGE", usage=usage, limit=limit)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("80%", Threshold(percent=80.0)),
        (" 92.5 % ", Threshold(percent=92.5)),
        ("100%", Threshold(percent=100.0)),
        ("9GiB", Threshold(octets=9 * 2**30)),
        ("500MB", Threshold(octets=500 * 10**6)),
        ("1024", Threshold(octets=1024)),
    ],
)
def test_parse_threshold(text: str, expected: Threshold) -> None:
    assert parse_threshold(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("0%", "above 0%"),
        ("101%", "at most 100%"),
        ("abc%", "expected a percentage"),
        ("9G", "ambiguous size"),
        ("0B", "above 0"),
        ("nan%", "above 0%"),
    ],
)
def test_bad_thresholds_say_what_was_expected(text: str, fragment: str) -> None:
    with pytest.raises(UnitError, match=fragment):
        parse_threshold(text)


def test_parse_folder_limit_splits_at_the_last_equals_sign() -> None:
    assert parse_folder_limit("INBOX=2GiB") == FolderLimit("INBOX", 2 * 2**30)
    assert parse_folder_limit("a=b=1MiB") == FolderLimit("a=b", MIB)
    for bad in ("INBOX", "=1MiB", "INBOX=2G", "INBOX=0"):
        with pytest.raises(UnitError):
            parse_folder_limit(bad)


def test_percent_threshold_rounds_up_to_whole_octets() -> None:
    assert Threshold(percent=80.0).octets_of(1000) == 800
    assert Threshold(percent=80.0).octets_of(1001) == 801
    assert Threshold(percent=80.0).octets_of(None) is None
    assert Threshold(octets=5).octets_of(None) == 5


@pytest.mark.parametrize(
    ("usage", "status"),
    [
        (0, Status.OK),
        (40 * MIB - 1, Status.OK),
        (40 * MIB, Status.WARNING),  # exactly 80% of 50 MiB: reached
        (int(47.5 * MIB) - 1, Status.WARNING),
        (int(47.5 * MIB), Status.CRITICAL),
        (60 * MIB, Status.CRITICAL),
    ],
)
def test_percent_levels_are_reached_at_the_threshold(usage: int, status: Status) -> None:
    result = evaluate("alice", (storage(usage, 50 * MIB),), DEFAULT_POLICY, now=0)
    assert result.status is status
    assert result.warning == 40 * MIB
    assert result.critical == int(47.5 * MIB)


def test_absolute_thresholds_work_without_a_limit() -> None:
    policy = CheckPolicy(warning=Threshold(octets=10), critical=Threshold(octets=20))
    assert evaluate("a", (storage(15, None),), policy, now=0).status is Status.WARNING
    assert evaluate("a", (storage(25, None),), policy, now=0).status is Status.CRITICAL


def test_percent_without_a_limit_is_unknown() -> None:
    result = evaluate("a", (storage(15, None),), DEFAULT_POLICY, now=0)
    assert result.status is Status.UNKNOWN
    assert result.reached
    assert result.error == "the quota has no limit to take a percentage of"


def test_no_quota_is_unknown() -> None:
    result = evaluate("a", None, DEFAULT_POLICY, now=0)
    assert result.status is Status.UNKNOWN
    assert result.error == "the server reports no quota"
    message_only = (QuotaResource(root="", resource="MESSAGE", usage=1, limit=10),)
    assert evaluate("a", message_only, DEFAULT_POLICY, now=0).error == "no STORAGE quota reported"


def test_the_fullest_storage_root_decides() -> None:
    quota = (storage(10, 100, "user"), storage(90, 100, "domain"))
    result = evaluate("a", quota, DEFAULT_POLICY, now=0)
    assert (result.usage, result.status) == (90, Status.WARNING)


def test_folder_limits_are_critical_over_and_warn_at_the_warning_percentage() -> None:
    policy = CheckPolicy(
        warning=Threshold(percent=80.0),
        critical=Threshold(percent=95.0),
        folder_limits=(FolderLimit("INBOX", 100), FolderLimit("Archive/*", 1000)),
    )
    quota = (storage(1, 10_000),)
    ok = evaluate("a", quota, policy, now=0, folder_totals={"INBOX": 79, "Archive/*": 0})
    assert ok.status is Status.OK
    warn = evaluate("a", quota, policy, now=0, folder_totals={"INBOX": 80})
    assert warn.status is Status.WARNING
    assert [f.status for f in warn.folders] == [Status.WARNING, Status.OK]
    crit = evaluate("a", quota, policy, now=0, folder_totals={"Archive/*": 1000})
    assert crit.status is Status.CRITICAL
    assert crit.storage_status is Status.OK


def test_worst_ranks_critical_over_unknown_over_warning() -> None:
    assert worst([]) is Status.OK
    assert worst([Status.OK, Status.WARNING]) is Status.WARNING
    assert worst([Status.WARNING, Status.UNKNOWN]) is Status.UNKNOWN
    assert worst([Status.UNKNOWN, Status.CRITICAL, Status.OK]) is Status.CRITICAL


def test_run_summary_counts_and_an_empty_run_is_unknown() -> None:
    results = [
        evaluate("a", (storage(1, 100),), DEFAULT_POLICY, now=5),
        unknown("b", "down", now=5),
    ]
    run = summarize_run(results, now=5)
    assert run.status is Status.UNKNOWN
    assert (run.count(Status.OK), run.count(Status.UNKNOWN)) == (1, 1)
    assert summarize_run([], now=0).status is Status.UNKNOWN


def test_resolve_policy_takes_the_most_specific_setting() -> None:
    cli = ThresholdSettings(critical=Threshold(octets=9), folder_limits=(FolderLimit("INBOX", 1),))
    account = ThresholdSettings(
        warning=Threshold(percent=70.0),
        critical=Threshold(percent=90.0),
        folder_limits=(FolderLimit("INBOX", 5), FolderLimit("Sent", 7)),
    )
    section = ThresholdSettings(warning=Threshold(percent=60.0))
    policy = resolve_policy(cli, account, section)
    assert policy.warning == Threshold(percent=70.0)
    assert policy.critical == Threshold(octets=9)
    assert sorted((f.folder, f.limit) for f in policy.folder_limits) == [("INBOX", 1), ("Sent", 7)]
    assert resolve_policy() == DEFAULT_POLICY


def message(folder: str, uid: int, size: int) -> MessageInfo:
    return MessageInfo(folder=folder, uid=Uid(uid), size=size, internaldate=0)


def test_check_source_reads_only_the_limited_folders() -> None:
    source = FakeSource(
        folders={
            "INBOX": [message("INBOX", 1, 300), message("INBOX", 2, 200)],
            "Archive/2020": [message("Archive/2020", 1, 50)],
            "Archive/2021": [message("Archive/2021", 1, 70)],
            "Sent": [message("Sent", 1, 999)],
        },
        refs=[
            FolderRef("INBOX", "/"),
            FolderRef("Archive/2020", "/"),
            FolderRef("Archive/2021", "/"),
            FolderRef("Sent", "/"),
        ],
        quota_resources=(storage(2000, 10_000),),
    )
    policy = CheckPolicy(
        warning=Threshold(percent=80.0),
        folder_limits=(FolderLimit("inbox", 400), FolderLimit("Archive/*", 1000)),
    )
    result = check_source(source, account="a", policy=policy, now=0)
    assert "Sent" not in source.opened
    assert [(f.folder, f.octets, f.status) for f in result.folders] == [
        ("inbox", 500, Status.CRITICAL),
        ("Archive/*", 120, Status.OK),
    ]
    assert result.status is Status.CRITICAL


def test_check_account_turns_errors_into_unknown_and_closes() -> None:
    def refuse() -> FakeSource:
        raise AuthError("mail.example.org:993 refused the login of 'a'")

    result = check_account("a", refuse, DEFAULT_POLICY, now=7)
    assert result.status is Status.UNKNOWN
    assert not result.reached
    assert result.error == "mail.example.org:993 refused the login of 'a'"
    source = FakeSource(folders={}, quota_resources=(storage(1, 100),))
    assert check_account("a", lambda: source, DEFAULT_POLICY, now=7).status is Status.OK
    assert source.closed
