"""`quotatool check` on the command line: monitoring exit codes, even for usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quotatool.adapters.sample import write_sample_maildir
from quotatool.cli.app import app
from quotatool.cli.multi import read_users
from quotatool.errors import ConfigError


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    monkeypatch.setenv("QUOTATOOL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("QUOTATOOL_CONFIG", raising=False)
    monkeypatch.delenv("QUOTATOOL_PASSWORD", raising=False)
    return CliRunner()


@pytest.mark.parametrize(
    ("args", "stdout"),
    [
        (["check", "--bogus"], "QUOTA UNKNOWN - usage error: No such option: --bogus"),
        (["check", "x", "--jobs", "0"], "QUOTA UNKNOWN - usage error: Invalid value for '--jobs'"),
        (["check", "x", "--format", "xml"], "QUOTA UNKNOWN - usage error: Invalid value"),
        (["check", "--warning"], "QUOTA UNKNOWN - usage error: Option '--warning' requires"),
        (["check", "x", "--warning", "80x"], "QUOTA UNKNOWN - --warning: expected a percentage"),
        (["check", "x", "--critical", "9G"], "QUOTA UNKNOWN - --critical: expected a percentage"),
        (["check", "x", "--folder-limit", "INBOX"], "QUOTA UNKNOWN - --folder-limit: expected"),
        (["check"], "QUOTA UNKNOWN - no TARGET given"),
        (["check", "--all", "x"], "QUOTA UNKNOWN - --all takes no TARGET"),
        (["check", "nosuchaccount"], "QUOTA UNKNOWN - unknown account 'nosuchaccount'"),
    ],
)
def test_every_usage_error_is_unknown_3(runner: CliRunner, args: list[str], stdout: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 3, result.output
    assert result.stdout.startswith(stdout), result.stdout
    assert len(result.stdout.splitlines()) == 1


def test_scan_usage_errors_stay_2(runner: CliRunner) -> None:
    assert runner.invoke(app, ["scan", "--bogus"]).exit_code == 2


def test_help_is_ok(runner: CliRunner) -> None:
    result = runner.invoke(app, ["check", "--help"])
    assert result.exit_code == 0
    assert "--folder-limit" in result.stdout


def test_a_source_without_quota_is_unknown(runner: CliRunner, tmp_path: Path) -> None:
    write_sample_maildir(tmp_path / "Maildir", now=1_700_000_000)
    result = runner.invoke(app, ["check", f"maildir:{tmp_path / 'Maildir'}"])
    assert result.exit_code == 3
    assert result.stdout == (
        f"QUOTA UNKNOWN - maildir:{tmp_path / 'Maildir'}: the server reports no quota\n"
    )


def test_output_file_leaves_stdout_empty_and_problems_on_stderr(
    runner: CliRunner, tmp_path: Path
) -> None:
    write_sample_maildir(tmp_path / "Maildir", now=1_700_000_000)
    out = tmp_path / "check.json"
    result = runner.invoke(
        app, ["check", f"maildir:{tmp_path / 'Maildir'}", "--json", "--output", str(out)]
    )
    assert result.exit_code == 3
    assert result.stdout == ""
    assert "QUOTA UNKNOWN" in result.stderr
    doc = json.loads(out.read_text())
    assert doc["schema"] == "quotatool.check/1"
    assert doc["accounts"][0]["error"] == "the server reports no quota"


def test_github_summary_is_written_only_under_github_actions(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_sample_maildir(tmp_path / "Maildir", now=1_700_000_000)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    args = ["check", f"maildir:{tmp_path / 'Maildir'}", "--format", "github"]
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    result = runner.invoke(app, args)
    assert result.stdout.startswith("::error title=quota maildir%3A")
    assert not summary.exists()
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    runner.invoke(app, args)
    assert "| Account | Status |" in summary.read_text()


def test_users_file(tmp_path: Path) -> None:
    users = tmp_path / "users.txt"
    users.write_text("alice\n# a comment\n\nbob  # trailing\nalice\n")
    assert read_users(users) == ["alice", "bob"]
    users.write_text("alice*admin\n")
    with pytest.raises(ConfigError, match=r"users.txt:1: not a user name"):
        read_users(users)
    users.write_text("# nobody\n")
    with pytest.raises(ConfigError, match="names no user"):
        read_users(users)
