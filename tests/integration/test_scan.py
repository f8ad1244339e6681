"""`quotatool scan` against the private Dovecot: the numbers are the server's numbers.

Each test runs the installed command line in a subprocess, as a user would, and compares
what it reports with what Dovecot itself says (``doveadm mailbox status``, ``doveadm quota
get``) or with the messages the test built.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.dovecot import DovecotServer, MailUser
from tests.mailgen import make_message
from tests.tcp_proxy import FaultProxy, _Link

NON_ASCII = "Reisen/Überblick"


def run_cli(
    *args: str, password: str | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith("QUOTATOOL_") and k != "COLUMNS"
    }
    environ.update({"NO_COLOR": "1", "COLUMNS": "200", "XDG_CONFIG_HOME": "/nonexistent"})
    if password is not None:
        environ["QUOTATOOL_PASSWORD"] = password
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "quotatool", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=timeout,
        check=False,
    )


def imaps(server: DovecotServer, user: str, port: int | None = None) -> str:
    return f"imaps://{user}@{server.host}:{port or server.imaps_port}"


def scan_json(server: DovecotServer, user: MailUser, *extra: str) -> dict[str, Any]:
    result = run_cli(
        "scan",
        imaps(server, user.name),
        "--ca-file",
        str(server.ca_file),
        "--json",
        *extra,
        password=user.password,
    )
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def assert_one_error_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("quotatool: error: ")]
    assert len(errors) == 1, result.stderr
    # Only the error and, at most, one hint.
    assert all(line.startswith(("quotatool: error: ", "hint: ")) for line in lines), lines
    return result.stderr


def attachment_octets(raw: bytes) -> dict[str, int]:
    """Encoded size of each attachment as stored: its body octets, without the CRLF before
    the next boundary (RFC 2046 §5.1.1: that CRLF belongs to the delimiter)."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    sizes: dict[str, int] = {}
    for part in message.walk():
        filename = part.get_filename()
        if filename:
            payload = part.get_payload(decode=False)
            assert isinstance(payload, str)
            sizes[filename] = len(payload.encode("ascii"))
    return sizes


@pytest.fixture
def seeded(dovecot: DovecotServer, fresh_user: MailUser) -> dict[str, list[bytes]]:
    """Three folders, one with a non-ASCII name; mixed flags, dates and attachments."""
    user = fresh_user.name
    folders: dict[str, list[bytes]] = {"INBOX": [], NON_ASCII: [], "Archive/2020": []}
    pdf = bytes(range(256)) * 400  # 102,400 bytes
    photo = os.urandom(70_001)
    specs: list[tuple[str, bytes, Sequence[str], int]] = [
        ("INBOX", make_message(subject="plain hello", date=1_700_000_000), ["\\Seen"], 0),
        (
            "INBOX",
            make_message(
                subject="Rechnung",
                from_="Büro <buero@example.de>",
                attachments=[("Rechnung März.pdf", "application/pdf", pdf)],
                date=1_710_000_000,
            ),
            [],
            0,
        ),
        (
            "INBOX",
            make_message(subject="html", html="<p>hi</p>", date=1_600_000_000),
            ["\\Seen", "\\Flagged"],
            0,
        ),
        (
            NON_ASCII,
            make_message(
                subject="Fotos",
                attachments=[
                    ("strand.jpg", "image/jpeg", photo),
                    ("notes.txt", "text/plain", b"x"),
                ],
                date=1_650_000_000,
            ),
            ["\\Seen"],
            0,
        ),
        ("Archive/2020", make_message(subject="old", date=1_590_000_000), ["\\Seen"], 0),
        ("Archive/2020", make_message(subject="older", date=1_580_000_000), [], 0),
    ]
    for folder, raw, flags, _ in specs:
        dovecot.append(user, folder, raw, flags=flags, internaldate=1_700_000_000)
        folders[folder].append(raw)
    return folders


def test_folder_counts_and_bytes_equal_the_servers(
    dovecot: DovecotServer, fresh_user: MailUser, seeded: dict[str, list[bytes]]
) -> None:
    report = scan_json(dovecot, fresh_user)
    assert report["schema"] == "quotatool.scan/1"
    by_name = {f["name"]: f for f in report["folders"]}
    assert NON_ASCII in by_name  # decoded from modified UTF-7, not "Reisen/&ANw-berblick"
    for folder in seeded:
        messages, vsize = dovecot.mailbox_status(fresh_user.name, folder)
        assert (by_name[folder]["messages"], by_name[folder]["bytes"]) == (messages, vsize)
        assert messages == len(seeded[folder])
        assert vsize == sum(len(raw) for raw in seeded[folder])
    assert report["totals"]["messages"] == 6
    assert report["totals"]["bytes"] == sum(len(r) for raws in seeded.values() for r in raws)
    assert by_name["INBOX"]["unseen"] == 1
    assert report["warnings"] == []


def test_attachment_sizes_are_the_encoded_part_sizes(
    dovecot: DovecotServer, fresh_user: MailUser, seeded: dict[str, list[bytes]]
) -> None:
    expected: dict[str, int] = {}
    for raws in seeded.values():
        for raw in raws:
            expected.update(attachment_octets(raw))
    report = scan_json(dovecot, fresh_user, "--top", "50")
    got = {a["filename"]: a for a in report["largest_attachments"]}
    assert {name: a["size"] for name, a in got.items()} == expected
    assert got["Rechnung März.pdf"]["content_type"] == "application/pdf"
    assert got["Rechnung März.pdf"]["folder"] == "INBOX"
    assert got["strand.jpg"]["folder"] == NON_ASCII
    # base64 grows by 4/3 plus line ends; the decoded estimate is close to the payload.
    assert abs(got["strand.jpg"]["decoded_size"] - 70_001) < 200
    folders = {f["name"]: f for f in report["folders"]}
    assert folders[NON_ASCII]["attachments"] == 2
    assert folders[NON_ASCII]["attachment_bytes"] == expected["strand.jpg"] + expected["notes.txt"]
    assert report["totals"]["attachment_bytes"] == sum(expected.values())


def test_quota_equals_doveadm_quota_get(
    dovecot: DovecotServer, fresh_user: MailUser, seeded: dict[str, list[bytes]]
) -> None:
    report = scan_json(dovecot, fresh_user)
    rows = dovecot.quota_get(fresh_user.name)
    storage = next(r for r in rows if r["type"] == "STORAGE")
    quota = {q["resource"]: q for q in report["quota"]}
    assert quota["STORAGE"]["usage"] == storage["value"] * 1024  # RFC 9208: 1024-octet units
    assert quota["STORAGE"]["limit"] == 50 * 1024 * 1024
    assert quota["STORAGE"]["root"] == storage["root"]
    # IMAP reports only the limited resources; the fixture limits storage, not messages.
    assert set(quota) == {r["type"] for r in rows if r["limit"] is not None}


def test_the_table_names_the_folders_and_the_quota(
    dovecot: DovecotServer, fresh_user: MailUser, seeded: dict[str, list[bytes]]
) -> None:
    result = run_cli(
        "scan",
        imaps(dovecot, fresh_user.name),
        "--ca-file",
        str(dovecot.ca_file),
        password=fresh_user.password,
    )
    assert result.returncode == 0, result.stderr
    assert NON_ASCII in result.stdout
    assert "Rechnung März.pdf" in result.stdout
    assert "50.0 MiB" in result.stdout  # the quota limit, IEC units
    assert "\x1b[" not in result.stdout  # no colour when not a terminal


def test_folder_and_exclude_choose_folders(
    dovecot: DovecotServer, fresh_user: MailUser, seeded: dict[str, list[bytes]]
) -> None:
    only = scan_json(dovecot, fresh_user, "--folder", "Reisen/*", "--folder", "INBOX")
    assert sorted(f["name"] for f in only["folders"]) == sorted(["INBOX", NON_ASCII])
    rest = scan_json(dovecot, fresh_user, "--exclude", "Archive/*")
    assert "Archive/2020" not in {f["name"] for f in rest["folders"]}
    assert rest["totals"]["messages"] == 4


def test_maildir_target_gives_the_same_folders(
    dovecot: DovecotServer, fresh_user: MailUser, seeded: dict[str, list[bytes]]
) -> None:
    over_imap = scan_json(dovecot, fresh_user)
    local = run_cli("scan", f"maildir:{dovecot.maildir(fresh_user.name)}", "--json")
    assert local.returncode == 0, local.stderr
    on_disk = json.loads(local.stdout)

    def counts(report: dict[str, Any]) -> dict[str, tuple[int, int, int, int]]:
        return {
            f["name"]: (f["messages"], f["bytes"], f["unseen"], f["attachment_bytes"])
            for f in report["folders"]
            if f["messages"]
        }

    assert counts(on_disk) == counts(over_imap)


def test_starttls_on_the_plain_port_works(
    dovecot: DovecotServer, fresh_user: MailUser, seeded: dict[str, list[bytes]]
) -> None:
    result = run_cli(
        "scan",
        f"imap://{fresh_user.name}@{dovecot.host}:{dovecot.imap_port}",
        "--ca-file",
        str(dovecot.ca_file),
        "--json",
        password=fresh_user.password,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["totals"]["messages"] == 6


# -- failures: one line, a documented exit code, no traceback, nothing changed -----------------


def test_untrusted_certificate_exits_8_with_a_ca_file_hint(
    dovecot: DovecotServer, fresh_user: MailUser
) -> None:
    result = run_cli("scan", imaps(dovecot, fresh_user.name), password=fresh_user.password)
    stderr = assert_one_error_line(result, 8)
    assert "not trusted" in stderr
    assert "--ca-file" in stderr


def test_wrong_password_exits_5(dovecot: DovecotServer, fresh_user: MailUser) -> None:
    result = run_cli(
        "scan",
        imaps(dovecot, fresh_user.name),
        "--ca-file",
        str(dovecot.ca_file),
        password="not-the-password",
    )
    stderr = assert_one_error_line(result, 5)
    assert fresh_user.name in stderr
    assert "not-the-password" not in stderr


def test_password_command_is_used(dovecot: DovecotServer, fresh_user: MailUser) -> None:
    result = run_cli(
        "scan",
        imaps(dovecot, fresh_user.name),
        "--ca-file",
        str(dovecot.ca_file),
        "--json",
        "--password-command",
        f"printf '%s\\n' '{fresh_user.password}'",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["totals"]["messages"] == 0


def test_connection_refused_exits_7() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: refused
        result = run_cli("scan", f"imaps://someone@127.0.0.1:{port}", password="x")
    stderr = assert_one_error_line(result, 7)
    assert "refused" in stderr


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word (a hung server)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()


def test_a_silent_server_times_out_with_exit_7(silent_port: int) -> None:
    result = run_cli(
        "scan", f"imaps://someone@127.0.0.1:{silent_port}", "--timeout", "1", password="x"
    )
    stderr = assert_one_error_line(result, 7)
    assert "timed out" in stderr


class _Rewriter(FaultProxy):
    """A man in the middle that edits what the real Dovecot says before the client sees it."""

    def __init__(self, host: str, port: int, old: bytes, new: bytes) -> None:
        super().__init__(host, port)
        self._old, self._new = old, new

    def _from_server(self, link: _Link, data: bytes) -> tuple[bytes, bool]:
        forward, cut = super()._from_server(link, data)
        return forward.replace(self._old, self._new), cut


def test_starttls_not_offered_stops_before_any_credential(
    dovecot: DovecotServer, fresh_user: MailUser
) -> None:
    # An attacker stripping STARTTLS from the capability list (a classic downgrade).
    with _Rewriter(dovecot.host, dovecot.imap_port, b" STARTTLS", b"") as proxy:
        result = run_cli(
            "scan",
            f"imap://{fresh_user.name}@{proxy.host}:{proxy.port}",
            "--ca-file",
            str(dovecot.ca_file),
            password=fresh_user.password,
        )
        sent = proxy.client_data()
    stderr = assert_one_error_line(result, 8)
    assert "STARTTLS" in stderr
    assert b"LOGIN" not in sent.upper()
    assert fresh_user.password.encode() not in sent


def test_preauth_greeting_refuses_starttls(dovecot: DovecotServer, fresh_user: MailUser) -> None:
    with _Rewriter(dovecot.host, dovecot.imap_port, b"* OK [", b"* PREAUTH [") as proxy:
        result = run_cli(
            "scan",
            f"imap://{fresh_user.name}@{proxy.host}:{proxy.port}",
            "--ca-file",
            str(dovecot.ca_file),
            password=fresh_user.password,
        )
        sent = proxy.client_data()
    stderr = assert_one_error_line(result, 8)
    assert "PREAUTH" in stderr
    assert fresh_user.password.encode() not in sent


def test_plain_text_only_with_explicit_tls_none(
    dovecot: DovecotServer, fresh_user: MailUser
) -> None:
    # Dovecot on loopback allows LOGIN in the clear; quotatool must be told explicitly.
    result = run_cli(
        "scan",
        f"imap://{fresh_user.name}@{dovecot.host}:{dovecot.imap_port}",
        "--tls",
        "none",
        "--json",
        password=fresh_user.password,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["schema"] == "quotatool.scan/1"


def test_unknown_account_exits_4(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[accounts.work]\nurl = "imaps://me@mail.example.org"\n')
    result = run_cli("scan", "home", "--config", str(config))
    stderr = assert_one_error_line(result, 4)
    assert "home" in stderr


def test_invalid_config_names_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[accounts.work]\nurl = "imaps://me@mail.example.org"\ntimeot = 5\n')
    result = run_cli("scan", "work", "--config", str(config))
    stderr = assert_one_error_line(result, 4)
    assert str(config) in stderr
    assert "timeot" in stderr


def test_unreadable_config_exits_4(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[accounts.work\n")
    result = run_cli("scan", "work", "--config", str(config))
    stderr = assert_one_error_line(result, 4)
    assert str(config) in stderr


def test_missing_maildir_and_mbox_exit_9(tmp_path: Path) -> None:
    for target in (f"maildir:{tmp_path / 'nope'}", f"mbox:{tmp_path / 'nope.mbox'}"):
        result = run_cli("scan", target)
        stderr = assert_one_error_line(result, 9)
        assert "nope" in stderr


def test_a_password_in_the_url_is_refused(dovecot: DovecotServer) -> None:
    result = run_cli("scan", f"imaps://alice:secret-in-url@{dovecot.host}:{dovecot.imaps_port}")
    stderr = assert_one_error_line(result, 2)
    assert "secret-in-url" not in stderr


def test_a_folder_deleted_during_the_scan_is_a_warning(
    dovecot: DovecotServer, fresh_user: MailUser
) -> None:
    # The proxy deletes the folder (through doveadm, as another client would) right after
    # the LIST response has gone to the client, so the folder is listed and then gone.
    user = fresh_user.name
    dovecot.append(user, "INBOX", make_message(subject="stays"))
    dovecot.append(user, "Gone", make_message(subject="goes"))
    deleted = threading.Event()

    class DeleteAfterList(FaultProxy):
        def _from_server(self, link: _Link, data: bytes) -> tuple[bytes, bool]:
            if not deleted.is_set() and b" OK List completed" in data:
                dovecot.doveadm("mailbox", "delete", "-u", user, "Gone")
                deleted.set()
            return super()._from_server(link, data)

    with DeleteAfterList(dovecot.host, dovecot.imap_port) as proxy:
        result = run_cli(
            "scan",
            f"imap://{user}@{proxy.host}:{proxy.port}",
            "--tls",
            "none",
            "--json",
            password=fresh_user.password,
        )
    assert deleted.is_set()
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [f["name"] for f in report["folders"]] == ["INBOX"]
    assert any(w.startswith("Gone: skipped") for w in report["warnings"]), report["warnings"]
    assert "quotatool: warning: Gone: skipped" in result.stderr


def test_debug_trace_never_shows_the_password(
    dovecot: DovecotServer, fresh_user: MailUser, seeded: dict[str, list[bytes]]
) -> None:
    for auth in ("login", "plain"):
        result = run_cli(
            "scan",
            imaps(dovecot, fresh_user.name),
            "--ca-file",
            str(dovecot.ca_file),
            "--auth",
            auth,
            "--debug",
            "--json",
            password=fresh_user.password,
        )
        assert result.returncode == 0, result.stderr
        assert "UID FETCH 1:*" in result.stderr  # the conversation is there...
        assert "[redacted]" in result.stderr
        for text in (result.stderr, result.stdout):  # ...the password is not
            assert fresh_user.password not in text


def test_debug_trace_of_a_failed_login_hides_the_password(
    dovecot: DovecotServer, fresh_user: MailUser
) -> None:
    canary = "canary-Pa55word-7"
    result = run_cli(
        "scan",
        imaps(dovecot, fresh_user.name),
        "--ca-file",
        str(dovecot.ca_file),
        "--debug",
        password=canary,
    )
    assert result.returncode == 5
    assert "LOGIN [redacted]" in result.stderr
    assert canary not in result.stderr + result.stdout


def test_a_malformed_bodystructure_is_counted_as_unparsed(
    dovecot: DovecotServer, fresh_user: MailUser
) -> None:
    user = fresh_user.name
    good = make_message(subject="fine", attachments=[("a.pdf", "application/pdf", b"%" * 999)])
    bad = make_message(subject="mangled")
    dovecot.append(user, "INBOX", good)
    bad_uid = dovecot.append(user, "INBOX", bad)
    # Only the single-part message's BODYSTRUCTURE starts like this; the rewrite keeps the
    # framing (a list) but breaks its meaning (a number where the media type belongs).
    mangle = (b'BODYSTRUCTURE ("text" "plain"', b'BODYSTRUCTURE (12345 "plain"')
    with _Rewriter(dovecot.host, dovecot.imap_port, *mangle) as proxy:
        result = run_cli(
            "scan",
            f"imap://{user}@{proxy.host}:{proxy.port}",
            "--tls",
            "none",
            "--json",
            password=fresh_user.password,
        )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["totals"]["messages"] == 2
    assert report["totals"]["bytes"] == len(good) + len(bad)  # counted with its full size
    assert report["totals"]["unparsed"] == 1
    assert report["totals"]["attachments"] == 1
    assert any("INBOX" in w and f"UID {bad_uid}" in w for w in report["warnings"]), report
