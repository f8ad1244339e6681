"""The private Dovecot fixture does what the other integration tests rely on."""

from __future__ import annotations

import contextlib
import imaplib
import importlib.util
import math
import re
import secrets
import socket
import ssl
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from tests.dovecot import DovecotServer, MailUser
from tests.mailgen import make_message
from tests.tcp_proxy import FaultProxy

NEEDED = {b"QUOTA", b"STATUS=SIZE", b"UIDPLUS", b"MOVE", b"CONDSTORE", b"SPECIAL-USE"}


def test_imaps_verifies_the_certificate_and_logs_in(dovecot: DovecotServer) -> None:
    context = ssl.create_default_context(cafile=str(dovecot.ca_file))
    client = IMAPClient(dovecot.host, port=dovecot.imaps_port, ssl=True, ssl_context=context)
    try:
        client.login("alice", dovecot.users["alice"])
        assert set(client.capabilities()) >= NEEDED
    finally:
        client.logout()


def test_imaps_is_refused_without_the_ca_file(dovecot: DovecotServer) -> None:
    # The certificate is self-signed: a default context must not trust it.
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient(dovecot.host, port=dovecot.imaps_port, ssl=True, timeout=5)


def test_starttls_on_the_plain_port(dovecot: DovecotServer) -> None:
    client = IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False)
    try:
        assert b"STARTTLS" in client.capabilities()
        client.starttls(ssl.create_default_context(cafile=str(dovecot.ca_file)))
        client.login("bob", dovecot.users["bob"])
        assert set(client.capabilities()) >= NEEDED
    finally:
        client.logout()


def test_wrong_password_is_refused_quickly(dovecot: DovecotServer) -> None:
    start = time.monotonic()
    for _ in range(3):
        with pytest.raises(LoginError):
            dovecot.connect("alice", password="wrong")
    # auth_failure_delay = 0 and no anvil penalty: each failure waits only for Dovecot's
    # 500 ms failure-flush timer; the defaults would take 2 s or more each.
    assert time.monotonic() - start < 3


def test_quota_roots_of_the_start_users(dovecot: DovecotServer) -> None:
    limits = {}
    for user in ("alice", "bob", "carol"):
        client = dovecot.connect(user)
        try:
            _, quotas = client.get_quota_root("INBOX")
        finally:
            client.logout()
        [storage] = [q for q in quotas if q.resource == "STORAGE"]
        limits[user] = storage.limit
    # RFC 9208 §5.1: STORAGE is in units of 1024 octets.
    assert limits == {"alice": 50 * 1024, "bob": 1024 * 1024, "carol": 1024}


def test_append_matches_status_quota_and_rfc822_size(
    dovecot: DovecotServer, fresh_user: MailUser
) -> None:
    raw = make_message(
        subject="with attachment",
        attachments=[("report.pdf", "application/pdf", b"%PDF-1.4\n" + b"x" * 5000)],
    )
    uid = dovecot.append(
        fresh_user.name, "Archive/2023", raw, flags=["\\Seen"], internaldate=1_600_000_000
    )
    messages, vsize = dovecot.mailbox_status(fresh_user.name, "Archive/2023")
    client = dovecot.connect(fresh_user.name)
    try:
        client.select_folder("Archive/2023", readonly=True)
        fetched = client.fetch([uid], ["RFC822.SIZE", "FLAGS", "INTERNALDATE"])[uid]
        _, quotas = client.get_quota_root("INBOX")
    finally:
        client.logout()
    assert (messages, vsize) == (1, fetched[b"RFC822.SIZE"]) == (1, len(raw))
    assert b"\\Seen" in fetched[b"FLAGS"]
    assert fetched[b"INTERNALDATE"].timestamp() == 1_600_000_000
    [storage] = [q for q in quotas if q.resource == "STORAGE"]
    rows = {row["type"]: row for row in dovecot.quota_get(fresh_user.name)}
    assert storage.usage == rows["STORAGE"]["value"] == math.ceil(len(raw) / 1024)
    assert storage.limit == rows["STORAGE"]["limit"] == 50 * 1024
    assert rows["MESSAGE"]["value"] == 1


def test_master_user_acts_as_alice(dovecot: DovecotServer) -> None:
    client = IMAPClient(
        dovecot.host, port=dovecot.imaps_port, ssl=True, ssl_context=dovecot.ssl_context()
    )
    try:
        client.login(f"alice*{dovecot.master_user}", dovecot.master_password)
        namespace = client.namespace()
        assert client.folder_exists("INBOX")
        assert namespace.personal[0][1] == "/"
    finally:
        client.logout()
    assert "Master user logging in as alice" in _log(dovecot)


def test_passwords_are_random_canaries(dovecot: DovecotServer) -> None:
    secrets_ = [*dovecot.users.values(), dovecot.master_password]
    assert len(set(secrets_)) == len(secrets_)
    assert all(len(secret) >= 20 for secret in secrets_)
    # Nothing logs them.
    log = _log(dovecot)
    assert not any(secret in log for secret in secrets_)


def test_special_use_folders_are_flagged_once_created(
    dovecot: DovecotServer, fresh_user: MailUser
) -> None:
    client = dovecot.connect(fresh_user.name)
    try:
        assert [name for _, _, name in client.list_folders()] == ["INBOX"]
        for name in ("Drafts", "Sent", "Trash", "Junk", "Archive"):
            client.create_folder(name)
        uses = {name: flags for flags, _, name in client.list_folders()}
    finally:
        client.logout()
    assert b"\\Trash" in uses["Trash"]
    assert b"\\Archive" in uses["Archive"]
    assert b"\\Sent" in uses["Sent"]


def test_reset_user_removes_mail_and_indexes(dovecot: DovecotServer, fresh_user: MailUser) -> None:
    dovecot.append(fresh_user.name, "INBOX", make_message())
    dovecot.append(fresh_user.name, "Old", make_message())
    client = dovecot.connect(fresh_user.name)  # an open session is kicked, not corrupted
    dovecot.reset_user(fresh_user.name)
    assert dovecot.mailbox_status(fresh_user.name, "INBOX") == (0, 0)
    assert dovecot.doveadm("mailbox", "list", "-u", fresh_user.name).split() == ["INBOX"]
    assert {r["type"]: r["value"] for r in dovecot.quota_get(fresh_user.name)} == {
        "STORAGE": 0,
        "MESSAGE": 0,
    }
    with contextlib.suppress(Exception):
        client.shutdown()
    assert dovecot.append(fresh_user.name, "INBOX", make_message()) == 1


def test_seed_maildir_thousand_messages(dovecot: DovecotServer, fresh_user: MailUser) -> None:
    folder = "Archiv/Größe & Co"
    messages = [
        (make_message(subject=f"seeded {i}", body="x" * (i % 300)), 1_500_000_000 + i, "S")
        for i in range(1000)
    ]
    start = time.monotonic()
    written = dovecot.seed_maildir(fresh_user.name, folder, messages)
    elapsed = time.monotonic() - start
    assert written == 1000
    expected = sum(len(raw) for raw, _, _ in messages)
    assert dovecot.mailbox_status(fresh_user.name, folder) == (1000, expected)
    # Generous bound for a slow CI machine; it takes well under a second here.
    assert elapsed < 20
    client = dovecot.connect(fresh_user.name)
    try:
        client.select_folder(folder, readonly=True)
        uids = client.search("ALL")
        last = client.fetch([uids[-1]], ["RFC822.SIZE", "INTERNALDATE", "FLAGS", "ENVELOPE"])
    finally:
        client.logout()
    data = last[uids[-1]]
    # UIDs follow the order given; mtime became INTERNALDATE; flags came from the name.
    assert data[b"ENVELOPE"].subject == b"seeded 999"
    assert data[b"INTERNALDATE"].timestamp() == 1_500_000_999
    assert data[b"RFC822.SIZE"] == len(messages[-1][0])
    assert b"\\Seen" in data[b"FLAGS"]
    # Modified UTF-7 on disk (RFC 3501 §5.1.3), Maildir++ dots for the hierarchy.
    assert (fresh_user.home / "Maildir" / ".Archiv.Gr&APYA3w-e &- Co").is_dir()


@pytest.fixture(scope="module")
def reduced() -> Iterator[DovecotServer]:
    server = DovecotServer(capabilities="IMAP4rev1 LITERAL+ IDLE NAMESPACE QUOTA").start()
    try:
        yield server
    finally:
        server.stop()


def test_reduced_capability_server_lacks_uidplus(reduced: DovecotServer) -> None:
    client = reduced.connect("alice")
    try:
        capabilities = set(client.capabilities())
    finally:
        client.logout()
    assert b"UIDPLUS" not in capabilities
    assert b"MOVE" not in capabilities
    assert b"QUOTA" in capabilities


def test_lazy_expunge_keeps_what_was_removed() -> None:
    with DovecotServer(lazy_expunge=True) as server:
        keep = make_message(subject="keep")
        gone = make_message(subject="gone")
        server.append("alice", "INBOX", keep)
        uid = server.append("alice", "INBOX", gone)
        client = server.connect("alice")
        try:
            client.select_folder("INBOX")
            client.add_flags([uid], [b"\\Deleted"])
            client.uid_expunge([uid])
        finally:
            client.logout()
        assert server.mailbox_status("alice", "INBOX") == (1, len(keep))
        assert server.expunged_status("alice") == (1, len(gone))
        # Mail kept aside does not count against the quota.
        rows = {row["type"]: row["value"] for row in server.quota_get("alice")}
        assert rows["MESSAGE"] == 1


def test_start_failure_names_the_log(tmp_path: object) -> None:
    # Occupy a port the server is told to use: start must fail with the log, not hang or skip.
    server = DovecotServer()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    try:
        server.start()
        server._kill()
        server.imap_port = blocker.getsockname()[1]
        server.config_path.write_text(server._config())
        with pytest.raises(Exception, match=r"(?s)did not come up.*dovecot\.log"):
            server._launch()
    finally:
        blocker.close()
        server.stop()


def _log(server: DovecotServer) -> str:
    text = server.log_path.read_text(errors="replace")
    return re.sub(r"\s+", " ", text)


def test_fault_proxy_loses_the_append_reply(dovecot: DovecotServer, fresh_user: MailUser) -> None:
    raw = make_message(subject="stored, but the client never hears")
    with FaultProxy(dovecot.host, dovecot.imap_port) as proxy:
        # Clear text through the proxy so it can read commands; Dovecot allows LOGIN in the
        # clear on loopback.
        client = IMAPClient(proxy.host, port=proxy.port, ssl=False, timeout=10)
        client.login(fresh_user.name, fresh_user.password)
        proxy.drop_reply_to(rb"^\S+ APPEND ")
        with pytest.raises((imaplib.IMAP4.abort, OSError)):
            client.append("INBOX", raw)
        with contextlib.suppress(Exception):
            client.shutdown()
    assert proxy.fired.is_set()
    assert any(b" APPEND " in line for line in proxy.commands())
    assert dovecot.mailbox_status(fresh_user.name, "INBOX") == (1, len(raw))


def _load_bench_seed() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "seed.py"
    spec = importlib.util.spec_from_file_location("bench_seed", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is built.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_bench_seed_is_deterministic_and_matches_dovecot(dovecot: DovecotServer) -> None:
    seed = _load_bench_seed()
    users = [f"bench-{secrets.token_hex(3)}" for _ in range(2)]
    for user in users:
        dovecot.add_user(user)
    results = [seed.seed_mailbox(dovecot, user, 400, seed=7) for user in users]
    for result in results:
        del result["seconds"], result["user"]
    assert results[0] == results[1]
    summary = results[0]
    assert summary["messages"] == 400
    assert "Projekte/Übersicht" in summary["folders"]
    for folder, sizes in summary["folders"].items():
        assert dovecot.mailbox_status(users[0], folder) == (sizes["messages"], sizes["bytes"])
    assert sum(summary["kinds"].values()) == 400
    assert summary["kinds"]["attachments"] > 0
    assert summary["bytes"] == sum(f["bytes"] for f in summary["folders"].values())
