"""`quotatool check` (and many-account scans) against the private Dovecot.

Each test runs the command line in a subprocess, as cron or a monitoring agent would, and
compares its verdicts and numbers with what Dovecot itself says (``doveadm quota get``,
``doveadm mailbox status``).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from quotatool.adapters.lock import AccountLock
from tests.dovecot import DovecotServer

KIB = 1024
LIMIT = 1024 * KIB  # the "1M" quota the users below get: Dovecot counts in KiB
WARN_80 = 838_861  # ceil(80% of LIMIT)
CRIT_95 = 996_148  # ceil(95% of LIMIT)


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("QUOTATOOL_", "GITHUB_")) and k != "COLUMNS"
    }
    environ.update({"NO_COLOR": "1", "COLUMNS": "200", "XDG_CONFIG_HOME": "/nonexistent"})
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "quotatool", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=timeout,
        check=False,
    )


def sized_message(octets: int, subject: str = "filler") -> bytes:
    """Return a message of exactly ``octets`` octets with CRLF line ends (its RFC822.SIZE)."""
    head = f"From: filler@example.org\r\nTo: x@example.org\r\nSubject: {subject}\r\n\r\n".encode()
    rest = octets - len(head)
    assert rest >= 2
    lines = []
    while rest >= 78 + 2:
        lines.append(b"x" * 76 + b"\r\n")
        rest -= 78
    lines.append(b"x" * (rest - 2) + b"\r\n")
    raw = head + b"".join(lines)
    assert len(raw) == octets
    return raw


def fill(server: DovecotServer, user: str, *sizes: int, folder: str = "INBOX") -> None:
    server.seed_maildir(user, folder, [(sized_message(n), 1_700_000_000, "S") for n in sizes])


def new_user(server: DovecotServer, quota: str = "1M") -> str:
    name = f"c{secrets.token_hex(4)}"
    server.add_user(name, quota=quota)
    return name


class Accounts:
    """A config file with one account per user, each password from its own variable."""

    def __init__(self, server: DovecotServer, directory: Path) -> None:
        self.server = server
        self.path = directory / "config.toml"
        self.state = directory / "state"
        self.env: dict[str, str] = {
            "QUOTATOOL_CONFIG": str(self.path),
            "QUOTATOOL_STATE_DIR": str(self.state),
        }
        self.sections: list[str] = []

    def add(self, name: str, *, password: str | None = None, port: int | None = None) -> None:
        variable = f"QT_PW_{len(self.sections)}"
        self.env[variable] = password if password is not None else self.server.users[name]
        port = port or self.server.imaps_port
        self.sections.append(
            f'[accounts.{name}]\nurl = "imaps://{name}@{self.server.host}:{port}"\n'
            f'ca_file = "{self.server.ca_file}"\npassword.env = "{variable}"\n'
        )
        self.path.write_text("\n".join(self.sections))

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, env=self.env)


def storage_line(octets: int, warn: int = WARN_80, crit: int = CRIT_95) -> str:
    return f" | storage={octets}B;{warn};{crit};0;{LIMIT}"


def test_each_threshold_by_percent_and_size(dovecot: DovecotServer, tmp_path: Path) -> None:
    user = new_user(dovecot)
    accounts = Accounts(dovecot, tmp_path)
    accounts.add(user)
    sizes = ("--warning", "700KiB", "--critical", "900KiB")

    fill(dovecot, user, *[100 * KIB] * 5)  # 500 KiB
    assert dovecot.quota_get(user)[0]["value"] == 500
    assert dovecot.quota_get(user)[0]["limit"] == LIMIT // KIB
    result = accounts.run("check", user)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"QUOTA OK - {user} 48% (500.0 KiB of 1.0 MiB){storage_line(512_000)}\n"
    assert accounts.run("check", user, *sizes).returncode == 0

    fill(dovecot, user, *[100 * KIB] * 3, 50 * KIB)  # 850 KiB: 83%
    result = accounts.run("check", user)
    assert result.returncode == 1
    assert result.stdout == (
        f"QUOTA WARNING - {user} 83% (850.0 KiB of 1.0 MiB){storage_line(870_400)}\n"
    )
    result = accounts.run("check", user, *sizes)
    assert result.returncode == 1
    assert result.stdout == (
        f"QUOTA WARNING - {user} 83% (850.0 KiB of 1.0 MiB)"
        f"{storage_line(870_400, 700 * KIB, 900 * KIB)}\n"
    )

    fill(dovecot, user, 130 * KIB)  # 980 KiB: 95.7%
    result = accounts.run("check", user)
    assert result.returncode == 2
    assert result.stdout == (
        f"QUOTA CRITICAL - {user} 95% (980.0 KiB of 1.0 MiB){storage_line(1_003_520)}\n"
    )
    assert accounts.run("check", user, *sizes).returncode == 2
    # Higher thresholds from the command line take it back to OK.
    assert accounts.run("check", user, "--warning", "99%", "--critical", "1MiB").returncode == 0


def test_thresholds_and_folder_limits_from_the_config_file(
    dovecot: DovecotServer, tmp_path: Path
) -> None:
    user = new_user(dovecot)
    fill(dovecot, user, 100 * KIB)
    fill(dovecot, user, 200 * KIB, folder="Archive/2020")
    accounts = Accounts(dovecot, tmp_path)
    accounts.add(user)
    accounts.sections[0] += 'warning = "25%"\nfolder_limits = { "Archive/*" = "150KiB" }\n'
    accounts.path.write_text(accounts.sections[0])
    result = accounts.run("check", user)
    assert result.returncode == 2
    assert result.stdout.startswith(
        f"QUOTA CRITICAL - {user} 29% (300.0 KiB of 1.0 MiB), "
        "folder Archive/* 200.0 KiB over its 150.0 KiB limit | "
    )
    # The folder warns at the account's warning percentage of its limit: 25% of 150 KiB.
    assert result.stdout.endswith(f" 'Archive/*'={200 * KIB}B;38400;{150 * KIB};0;\n")
    # The command line wins over the account's settings.
    result = accounts.run("check", user, "--folder-limit", "Archive/*=1MiB")
    assert result.returncode == 1  # 29% is still over the account's 25% warning


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_wrong_password_and_server_down_are_unknown(dovecot: DovecotServer, tmp_path: Path) -> None:
    user = new_user(dovecot)
    accounts = Accounts(dovecot, tmp_path)
    accounts.add(user, password="not-the-password")
    result = accounts.run("check", user)
    assert result.returncode == 3
    assert result.stdout.startswith(
        f"QUOTA UNKNOWN - {user}: {dovecot.host}:{dovecot.imaps_port} refused the login of "
        f"'{user}': "
    )
    assert "not-the-password" not in result.stdout + result.stderr
    port = free_port()
    down = Accounts(dovecot, tmp_path / "down")
    (tmp_path / "down").mkdir()
    down.add(user, port=port)
    result = down.run("check", user)
    assert result.returncode == 3
    assert result.stdout == f"QUOTA UNKNOWN - {user}: connection to 127.0.0.1:{port} refused\n"


def metric_values(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_prometheus_output_parses_and_carries_the_servers_numbers(
    dovecot: DovecotServer, tmp_path: Path
) -> None:
    user = new_user(dovecot, quota="50M")
    fill(dovecot, user, 10_000, 20_000)
    fill(dovecot, user, 30_000, folder="Sent")
    accounts = Accounts(dovecot, tmp_path)
    accounts.add(user)
    out = tmp_path / "quotatool.prom"
    result = accounts.run("scan", user, "--format", "prometheus", "--output", str(out))
    assert (result.returncode, result.stdout) == (0, "")
    values = metric_values(out.read_text())
    account = ("account", user)
    quota = dovecot.quota_get(user)[0]
    root = ("root", quota["root"])
    usage = values[("quotatool_quota_usage_bytes", frozenset({account, root}))]
    assert usage == quota["value"] * KIB
    limit = values[("quotatool_quota_limit_bytes", frozenset({account, root}))]
    assert limit == 50 * 1024 * KIB
    for folder in ("INBOX", "Sent"):
        _, vsize = dovecot.mailbox_status(user, folder)
        key = ("quotatool_folder_size_bytes", frozenset({account, ("folder", folder)}))
        assert values[key] == vsize
    assert values[("quotatool_last_run_success", frozenset({account}))] == 1
    stamp = values[("quotatool_last_run_timestamp_seconds", frozenset({account}))]
    assert abs(stamp - time.time()) < 120

    result = accounts.run("check", user, "--format", "prometheus", "--folder-limit", "Sent=1MiB")
    assert result.returncode == 0
    values = metric_values(result.stdout)
    assert values[("quotatool_check_status", frozenset({account}))] == 0
    sent = ("quotatool_folder_size_bytes", frozenset({account, ("folder", "Sent")}))
    assert values[sent] == 30_000


def levels(server: DovecotServer) -> dict[str, str]:
    """Four users at known levels: OK, OK, WARNING, CRITICAL."""
    users = {"ok1": new_user(server), "ok2": new_user(server)}
    users["warn"] = new_user(server)
    users["crit"] = new_user(server)
    fill(server, users["ok1"], 100 * KIB)
    fill(server, users["warn"], *[100 * KIB] * 8, 50 * KIB)
    fill(server, users["crit"], *[100 * KIB] * 9, 80 * KIB)
    return users


def test_junit_output_has_the_right_failures(dovecot: DovecotServer, tmp_path: Path) -> None:
    users = levels(dovecot)
    accounts = Accounts(dovecot, tmp_path)
    for name in users.values():
        accounts.add(name)
    accounts.add(new_user(dovecot), password="wrong")
    result = accounts.run("check", "--all", "--format", "junit", "--jobs", "3")
    assert result.returncode == 2, result.stderr
    root = ET.fromstring(result.stdout.split("\n", 1)[1])
    cases = {c.get("classname"): c for c in root.iter("testcase")}
    assert len(cases) == 5
    outcome = {
        name: ("failure", c.find("failure").get("type"))  # type: ignore[union-attr]
        if c.find("failure") is not None
        else ("error", "")
        if c.find("error") is not None
        else ("pass", "")
        for name, c in cases.items()
    }
    assert outcome[users["ok1"]] == ("pass", "")
    assert outcome[users["ok2"]] == ("pass", "")
    assert outcome[users["warn"]] == ("failure", "WARNING")
    assert outcome[users["crit"]] == ("failure", "CRITICAL")
    assert sorted(v for v in outcome.values() if v[0] == "error") == [("error", "")]
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "2", "1")


def test_all_with_jobs_reports_every_account_despite_a_broken_one(
    dovecot: DovecotServer, tmp_path: Path
) -> None:
    users = levels(dovecot)
    broken = new_user(dovecot)
    accounts = Accounts(dovecot, tmp_path)
    order = [users["ok1"], broken, users["warn"], users["ok2"], users["crit"]]
    for name in order:
        accounts.add(name, password="wrong" if name == broken else None)
    result = accounts.run("check", "--all", "--jobs", "4")
    lines = result.stdout.splitlines()
    assert result.returncode == 2  # CRITICAL outranks UNKNOWN and WARNING
    assert lines[0] == "QUOTA CRITICAL - 5 accounts: 1 critical, 1 warning, 1 unknown, 2 ok"
    assert [line.split(" - ")[1].split()[0].rstrip(":") for line in lines[1:]] == order
    assert lines[1].startswith(f"QUOTA OK - {users['ok1']} 9% (100.0 KiB of 1.0 MiB)")
    assert lines[2].startswith(f"QUOTA UNKNOWN - {broken}: ")
    assert "refused the login" in lines[2]
    assert lines[3].startswith(f"QUOTA WARNING - {users['warn']} 83% (850.0 KiB of 1.0 MiB)")
    assert lines[4].startswith(f"QUOTA OK - {users['ok2']} 0% (0 Bytes of 1.0 MiB)")
    assert lines[5].startswith(f"QUOTA CRITICAL - {users['crit']} 95% (980.0 KiB of 1.0 MiB)")

    quiet = accounts.run("check", "--all", "--jobs", "4", "--quiet").stdout.splitlines()
    assert len(quiet) == 4  # the summary and the three problems
    scan = accounts.run("scan", "--all", "--jobs", "4", "--json")
    assert scan.returncode == 3  # partial: one account could not be scanned
    doc: dict[str, Any] = json.loads(scan.stdout)
    assert [a["account"] for a in doc["accounts"]] == order
    assert [a["ok"] for a in doc["accounts"]] == [True, False, True, True, True]
    assert doc["accounts"][2]["report"]["totals"]["bytes"] == 850 * KIB
    assert f"quotatool: error: {broken}: " in scan.stderr


def test_master_user_scan_and_check_of_three_users(dovecot: DovecotServer, tmp_path: Path) -> None:
    users = [new_user(dovecot) for _ in range(3)]
    for i, user in enumerate(users):
        fill(dovecot, user, *[(i + 1) * 10 * KIB] * (i + 1))
    listing = tmp_path / "users.txt"
    listing.write_text("# mailboxes to watch\n" + "\n".join(users) + "\n")
    master = f"imaps://{dovecot.master_user}@{dovecot.host}:{dovecot.imaps_port}"
    env = {
        "QUOTATOOL_PASSWORD": dovecot.master_password,
        "QUOTATOOL_STATE_DIR": str(tmp_path / "state"),
    }
    common = (master, "--users-from", str(listing), "--ca-file", str(dovecot.ca_file))
    result = run_cli("scan", *common, "--json", env=env)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == "quotatool.scans/1"
    assert [a["account"] for a in doc["accounts"]] == users
    for user, account in zip(users, doc["accounts"], strict=True):
        report = account["report"]
        assert report["target"] == (
            f"imaps://{user}*{dovecot.master_user}@{dovecot.host}:{dovecot.imaps_port}"
        )
        assert report["totals"]["bytes"] == dovecot.mailbox_status(user, "INBOX")[1]
        assert report["quota"][0]["usage"] == dovecot.quota_get(user)[0]["value"] * KIB
    result = run_cli("check", *common, "--jobs", "3", env=env)
    assert result.returncode == 0, result.stdout
    assert [line.split()[3] for line in result.stdout.splitlines()[1:]] == users


def test_a_second_run_on_a_locked_account_exits_at_once(
    dovecot: DovecotServer, tmp_path: Path
) -> None:
    user = new_user(dovecot)
    accounts = Accounts(dovecot, tmp_path)
    accounts.add(user)
    key = f"imaps://{user}@{dovecot.host}:{dovecot.imaps_port}"
    with AccountLock(key, accounts.state):
        started = time.monotonic()
        result = accounts.run("check", user)
        assert result.returncode == 3
        assert result.stdout.startswith(
            f"QUOTA UNKNOWN - {user}: another quotatool run (pid {os.getpid()}) is working on "
            f"account '{key}'"
        )
        result = accounts.run("scan", user)
        assert result.returncode == 6
        assert result.stderr.startswith(
            f"quotatool: error: another quotatool run (pid {os.getpid()}) is working"
        )
        # The same mailbox named by URL shares the lock.
        url = run_cli(
            "scan",
            key,
            "--ca-file",
            str(dovecot.ca_file),
            env={"QUOTATOOL_PASSWORD": dovecot.users[user], **accounts.env},
        )
        assert url.returncode == 6
        # At once: no waiting for the lock (a login alone takes longer than the whole margin).
        assert time.monotonic() - started < 30
    assert accounts.run("check", user).returncode == 0
