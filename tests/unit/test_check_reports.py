"""Check and multi-account scan output: status lines, JSON, JUnit, GitHub, atomic files."""

from __future__ import annotations

import json
import os
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from quotatool.core.thresholds import (
    DEFAULT_POLICY,
    CheckPolicy,
    FolderLimit,
    Status,
    Threshold,
    evaluate,
    summarize_run,
    unknown,
)
from quotatool.core.usage import summarize
from quotatool.errors import QuotatoolError
from quotatool.model import (
    FolderScan,
    FolderStatus,
    Inventory,
    MessageInfo,
    QuotaResource,
    Uid,
    UidValidity,
)
from quotatool.report.atomic import write_atomic
from quotatool.report.check_text import render_check_text, status_line
from quotatool.report.format import AccountScan, ReportFormat, render_check, render_scans
from quotatool.report.github import Annotation, render_annotations, render_summary

MIB = 2**20


def quota(usage: int, limit: int | None) -> tuple[QuotaResource, ...]:
    return (QuotaResource(root="User quota", resource="STORAGE", usage=usage, limit=limit),)


def test_ok_status_line_has_percent_sizes_and_perfdata() -> None:
    result = evaluate("alice", quota(int(20.5 * MIB), 50 * MIB), DEFAULT_POLICY, now=0)
    assert status_line(result) == (
        "QUOTA OK - alice 41% (20.5 MiB of 50.0 MiB) | "
        f"storage={int(20.5 * MIB)}B;{40 * MIB};{int(47.5 * MIB)};0;{50 * MIB}"
    )


def test_percent_is_floored_so_the_text_never_contradicts_the_status() -> None:
    usage = int(0.9499 * 50 * MIB)
    result = evaluate("a", quota(usage, 50 * MIB), DEFAULT_POLICY, now=0)
    assert result.status is Status.WARNING
    assert status_line(result).startswith("QUOTA WARNING - a 94% (")


def test_folder_problems_and_unknown_lines() -> None:
    policy = CheckPolicy(
        critical=Threshold(octets=10 * MIB), folder_limits=(FolderLimit("In'box=x", MIB),)
    )
    result = evaluate(
        "bob", quota(2 * MIB, None), policy, now=0, folder_totals={"In'box=x": 2 * MIB}
    )
    assert status_line(result) == (
        "QUOTA CRITICAL - bob 2.0 MiB (no limit), folder In'box=x 2.0 MiB over its 1.0 MiB limit"
        f" | storage={2 * MIB}B;;{10 * MIB};0; 'In''box_x'={2 * MIB}B;;{MIB};0;"
    )
    down = unknown("carol", "connection to 127.0.0.1:1 refused", now=0)
    assert status_line(down) == "QUOTA UNKNOWN - carol: connection to 127.0.0.1:1 refused"


def test_control_characters_cannot_forge_a_second_line() -> None:
    line = status_line(unknown("x", "evil\nQUOTA OK - fake", now=0))
    assert "\n" not in line


def run_of_three() -> list:
    return [
        evaluate("alice", quota(10, 100), DEFAULT_POLICY, now=0),
        evaluate("bob", quota(99, 100), DEFAULT_POLICY, now=0),
        unknown("carol", "login refused", now=0),
    ]


def test_several_accounts_start_with_a_summary_and_quiet_keeps_problems() -> None:
    run = summarize_run(run_of_three(), now=0)
    lines = render_check_text(run).splitlines()
    assert lines[0] == "QUOTA CRITICAL - 3 accounts: 1 critical, 1 unknown, 1 ok"
    assert [line.split(" - ")[1].split()[0] for line in lines[1:]] == ["alice", "bob", "carol:"]
    quiet = render_check_text(run, quiet=True).splitlines()
    assert len(quiet) == 3
    assert not any("alice" in line for line in quiet)
    all_ok = summarize_run(run_of_three()[:1], now=0)
    assert render_check_text(all_ok, quiet=True) == ""


def test_check_json_document() -> None:
    doc = json.loads(render_check(summarize_run(run_of_three(), now=0), ReportFormat.JSON).text)
    assert doc["schema"] == "quotatool.check/1"
    assert (doc["status"], doc["exit_code"]) == ("CRITICAL", 2)
    bob = doc["accounts"][1]
    assert bob["storage"] == {
        "usage": 99,
        "limit": 100,
        "percent": 99.0,
        "warning": 80,
        "critical": 95,
        "status": "CRITICAL",
    }
    assert doc["accounts"][2]["storage"] is None
    assert doc["accounts"][2]["error"] == "login refused"


def test_check_junit_has_a_case_per_account_and_check() -> None:
    policy = CheckPolicy(warning=Threshold(percent=80.0), folder_limits=(FolderLimit("INBOX", 50),))
    results = [
        evaluate("alice", quota(10, 100), policy, now=0, folder_totals={"INBOX": 60}),
        evaluate("bob", quota(85, 100), DEFAULT_POLICY, now=0),
        unknown("carol", "login refused", now=0),
    ]
    text = render_check(summarize_run(results, now=0), ReportFormat.JUNIT).text
    root = ET.fromstring(text.split("\n", 1)[1])
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "2", "1")
    cases = {(c.get("classname"), c.get("name")): c for c in suite.iter("testcase")}
    assert cases[("alice", "storage quota")].find("failure") is None
    folder_failure = cases[("alice", "folder INBOX")].find("failure")
    assert folder_failure is not None
    assert folder_failure.get("type") == "CRITICAL"
    bob_failure = cases[("bob", "storage quota")].find("failure")
    assert bob_failure is not None
    assert bob_failure.get("type") == "WARNING"
    error = cases[("carol", "storage quota")].find("error")
    assert error is not None
    assert error.get("message") == "login refused"


def test_github_annotations_escape_and_summarise() -> None:
    run = summarize_run(run_of_three(), now=0)
    out = render_check(run, ReportFormat.GITHUB)
    lines = out.text.splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["::notice", "::error", "::error"]
    assert lines[1].startswith("::error title=quota bob::QUOTA CRITICAL - bob 99%25 ")
    assert out.summary is not None
    assert "| bob | CRITICAL |" in out.summary
    quiet = render_check(run, ReportFormat.GITHUB, quiet=True).text
    assert "alice" not in quiet
    evil = render_annotations([Annotation("warning", "a:b,c", "50%\n::error::x")])
    assert evil == "::warning title=a%3Ab%2Cc::50%25%0A::error::x\n"
    assert "a\\|b" in render_summary("t", ["h"], [["a|b"]])


def scan_of(target: str) -> AccountScan:
    msg = MessageInfo(folder="INBOX", uid=Uid(1), size=1234, internaldate=0)
    status = FolderStatus(name="INBOX", uidvalidity=UidValidity(1), messages=1)
    inventory = Inventory(
        target=target,
        scanned_at=9,
        folders=(FolderScan(status=status, messages=(msg,)),),
        quota=quota(2048, 4096),
    )
    return AccountScan(account=target, scanned_at=9, report=summarize(inventory))


def test_scans_in_every_format() -> None:
    scans = [scan_of("alice"), AccountScan(account="bob", scanned_at=9, error="refused")]
    doc = json.loads(render_scans(scans, ReportFormat.JSON).text)
    assert doc["schema"] == "quotatool.scans/1"
    assert [a["ok"] for a in doc["accounts"]] == [True, False]
    assert doc["accounts"][0]["report"]["schema"] == "quotatool.scan/1"
    single = json.loads(render_scans(scans[:1], ReportFormat.JSON).text)
    assert single["schema"] == "quotatool.scan/1"
    table = render_scans(scans, ReportFormat.TABLE).text
    assert "Mailbox usage of alice" in table
    assert "bob: not scanned: refused" in table
    junit = ET.fromstring(render_scans(scans, ReportFormat.JUNIT).text.split("\n", 1)[1])
    assert [c.find("error") is not None for c in junit.iter("testcase")] == [False, True]
    github = render_scans(scans, ReportFormat.GITHUB)
    assert github.text.splitlines()[1] == "::error title=scan bob::refused"
    assert "1 message, 1.2 KiB in 1 folder; quota User quota 2.0 KiB of 4.0 KiB (50.0%25)" in (
        github.text
    )
    metrics = render_scans(scans, ReportFormat.PROMETHEUS).text
    assert 'quotatool_folder_size_bytes{account="alice",folder="INBOX"} 1234' in metrics


@pytest.mark.parametrize("fmt", list(ReportFormat))
def test_every_report_format_renders_check_and_scan(fmt: ReportFormat) -> None:
    assert render_check(summarize_run(run_of_three(), now=0), fmt).text
    assert render_scans([scan_of("alice")], fmt).text


def test_atomic_write_replaces_keeps_mode_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "quota.prom"
    write_atomic(target, "first\n")
    assert target.read_text() == "first\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    target.chmod(0o644)
    write_atomic(target, "second\n")
    assert target.read_text() == "second\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(os.listdir(tmp_path)) == ["quota.prom"]


def test_atomic_write_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(QuotatoolError, match="cannot write"):
        write_atomic(tmp_path / "missing" / "x.prom", "x")
    with pytest.raises(QuotatoolError, match="not a regular file"):
        write_atomic(tmp_path, "x")
