"""Offload and restore against the real Dovecot and a real S3 API server on loopback.

SAFETY.md promise 5 (verified offload), 6 (crash at any point), 7 (idempotent rerun) and 8
(no blind retries), for the offload sequence of DESIGN.md §4. Runs are the command line in a
child process; what is in the mailbox is read with a separate IMAP connection, what is in the
store with boto3 or plain file reads.
"""

from __future__ import annotations

import hashlib
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from quotatool.adapters.archive_local import LocalArchiveWriter
from quotatool.adapters.imap import ImapConnectOptions
from quotatool.adapters.imap_write import ImapMailbox
from quotatool.adapters.journal import CRASH_EXIT, SqliteJournal
from quotatool.config.targets import ImapTarget
from quotatool.core.splice import check_untouched, marker_of
from quotatool.core.stub import find_stubs
from quotatool.ports_write import StoreUnavailableError
from quotatool.services.execute import execute_plan
from quotatool.storage import Store, open_store
from tests import s3server
from tests.dovecot import DovecotServer, MailUser
from tests.integration.execute_support import ROOT, make_plan, save_plan
from tests.integration.offload_support import (
    CorruptingProxy,
    Stored,
    attachment_message,
    cli,
    decoded_parts,
    messages,
    offload_rules,
    payload,
    seed,
    write_config,
)
from tests.mailgen import make_message
from tests.tcp_proxy import FaultProxy

s3_server = s3server.s3_server
s3_bucket = s3server.s3_bucket


def _without_marker(raw: bytes) -> bytes:
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"x-quotatool-op:")]
    return b"\r\n".join(lines) + sep + body


def _store_config(bucket: s3server.S3Bucket, endpoint: str | None = None) -> dict[str, Any]:
    cfg = bucket.config()
    return {
        "url": bucket.url(),
        "endpoint": endpoint or cfg.endpoint,
        "region": cfg.region,
        "access_key_id": cfg.access_key_id,
        "secret_access_key": cfg.secret_access_key,
        "allow_http": True,
        "timeout": 10,
        "retries": 1,
    }


def _by_id(stored: list[Stored]) -> Counter[str]:
    return Counter(m.message_id for m in stored)


def _offload(
    server: DovecotServer, user: MailUser, tmp: Path, store: str, config: Path | None = None
) -> tuple[Any, Any]:
    plan = make_plan(server, user, offload_rules(store))
    path = save_plan(plan, tmp / "plan.json")
    run = cli(server, user, ["clean", "--plan", str(path), "--yes", "--json"], tmp / "state",
              config=config)  # fmt: skip
    return plan, run


# -- end to end -------------------------------------------------------------------------------


def test_offload_and_restore_end_to_end_on_s3(
    dovecot: DovecotServer, fresh_user: MailUser, s3_bucket: s3server.S3Bucket, tmp_path: Path
) -> None:
    seed(dovecot, fresh_user, 3)
    keep = attachment_message(99, subject="keep-99")
    dovecot.seed_maildir(fresh_user.name, "INBOX", [(keep, 1_600_000_000, "SF")])
    before = {m.message_id: m for m in messages(dovecot, fresh_user)}
    config = write_config(tmp_path / "config.toml", {"s3": _store_config(s3_bucket)})
    quota_before = dovecot.quota_get(fresh_user.name)
    plan, run = _offload(dovecot, fresh_user, tmp_path, "s3", config)
    assert run.returncode == 0, run.stderr
    assert run.json()["counts"]["done"] == 3
    after = messages(dovecot, fresh_user)
    assert _by_id(after) == Counter(before.keys())  # every message exactly once
    stubs = 0
    for m in after:
        old = before[m.message_id]
        assert m.flags - {b"\\Recent"} == old.flags - {b"\\Recent"}
        assert m.internaldate == old.internaldate
        if m.message_id == "<off-99@offload.test>":
            assert m.raw == old.raw  # not matched by the rule: untouched
            continue
        assert marker_of(m.raw) is not None
        check_untouched(old.raw, m.raw, {"2"})  # headers and the other parts byte for byte
        (ref,) = find_stubs(m.raw)
        n = int(m.message_id.split("-")[1].split("@")[0])
        body = s3_bucket.client().get_object(Bucket=s3_bucket.name, Key=f"offload/{ref.key}")
        assert body["Body"].read() == payload(n)
        stubs += 1
    assert stubs == 3
    # The quota drops by what the plan said, within KiB rounding and the marker lines.
    used = {r["type"]: r["value"] for r in quota_before}["STORAGE"]
    now = {r["type"]: r["value"] for r in dovecot.quota_get(fresh_user.name)}["STORAGE"]
    freed = (used - now) * 1024
    assert abs(freed - plan.summary.frees_bytes) <= 1024 + 64 * 3, (freed, plan.summary)
    # Promise 7: the same plan again changes nothing.
    again = cli(dovecot, fresh_user, ["clean", "--plan", str(tmp_path / "plan.json"), "--yes",
                "--json"], tmp_path / "state", config=config)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.json()["counts"]["already_done"] == 3
    assert [m.raw for m in messages(dovecot, fresh_user)] == [m.raw for m in after]
    # Restore everything: the original bytes come back (only the marker line differs).
    restored = cli(dovecot, fresh_user, ["restore", "--all", "--yes", "--json"], tmp_path / "state",
                   config=config, module="tests.integration.restore_child")  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    assert restored.json()["counts"]["done"] == 3
    final = messages(dovecot, fresh_user)
    assert _by_id(final) == Counter(before.keys())
    for m in final:
        old = before[m.message_id]
        assert _without_marker(m.raw) == old.raw
        assert decoded_parts(m.raw) == decoded_parts(old.raw)
        assert m.flags - {b"\\Recent"} == old.flags - {b"\\Recent"}
        assert m.internaldate == old.internaldate


def test_local_store_end_to_end_and_restore_by_uid(
    dovecot: DovecotServer, fresh_user: MailUser, tmp_path: Path
) -> None:
    seed(dovecot, fresh_user, 2)
    before = {m.message_id: m for m in messages(dovecot, fresh_user)}
    root = tmp_path / "offload"
    _, run = _offload(dovecot, fresh_user, tmp_path, f"file://{root}")
    assert run.returncode == 0, run.stderr
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(files) == 2
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.parent.stat().st_mode & 0o777 == 0o700
        assert path.name == hashlib.sha256(path.read_bytes()).hexdigest()
    stub = messages(dovecot, fresh_user)[0]
    dry = cli(dovecot, fresh_user, ["restore", "--uid", str(stub.uid), "--dry-run", "--json"],
              tmp_path / "state", module="tests.integration.restore_child")  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert [m["status"] for m in dry.json()["messages"]] == ["planned"]
    assert messages(dovecot, fresh_user)[0].raw == stub.raw
    run = cli(dovecot, fresh_user, ["restore", "--uid", str(stub.uid), "--yes"],
              tmp_path / "state", module="tests.integration.restore_child")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "Restored 1 message(s)" in run.stdout
    after = messages(dovecot, fresh_user)
    assert _by_id(after) == Counter(before.keys())
    restored = [m for m in after if m.message_id == stub.message_id]
    assert _without_marker(restored[0].raw) == before[stub.message_id].raw
    assert sum(1 for m in after if find_stubs(m.raw)) == 1  # the other stays offloaded


# -- failures ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _StopAfter:
    """The real S3 store; the real server is stopped after the ``n``-th upload."""

    def __init__(self, store: Store, server: ThreadedMotoServer, n: int) -> None:
        self.store, self.server, self.n = store, server, n

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def put(self, key: str, data: Any, *, sha256: str, size: int) -> Any:
        done = self.store.put(key, data, sha256=sha256, size=size)
        self.n -= 1
        if self.n == 0:
            self.server.stop()
        return done


def test_store_down_mid_run_leaves_originals_and_a_rerun_completes(
    dovecot: DovecotServer, fresh_user: MailUser, tmp_path: Path
) -> None:
    port = _free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    server = s3server.S3Server(moto, f"http://127.0.0.1:{port}")
    bucket = server.new_bucket()
    seed(dovecot, fresh_user, 4)
    before = messages(dovecot, fresh_user)
    config = write_config(tmp_path / "config.toml", {"s3": _store_config(bucket)})
    plan = make_plan(dovecot, fresh_user, offload_rules("s3"))
    mailbox = ImapMailbox(
        ImapConnectOptions(
            target=ImapTarget(host=dovecot.host, port=dovecot.imaps_port, user=fresh_user.name),
            secret=lambda: fresh_user.password,
            ca_file=dovecot.ca_file,
        )
    )
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    journal = SqliteJournal(state / "direct.sqlite")
    store = _StopAfter(open_store(bucket.url(), bucket.config()), moto, 2)
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            execute_plan(
                plan, mailbox, journal, LocalArchiveWriter(), stores=lambda _: (store, None)
            )
    finally:
        mailbox.close()
        journal.close()
    assert "not reachable" in caught.value.message
    assert [m.raw for m in messages(dovecot, fresh_user)] == [m.raw for m in before]
    # The command line says so in one line (and a hint), and changes nothing either.
    path = save_plan(plan, tmp_path / "plan.json")
    down = cli(dovecot, fresh_user, ["clean", "--plan", str(path), "--yes", "--json"], state,
               config=config)  # fmt: skip
    assert down.returncode == 7, down.stderr
    lines = down.stderr.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("quotatool: error: cannot ")
    assert "is not reachable" in lines[0]
    assert lines[1].startswith("hint: ")
    assert [m.raw for m in messages(dovecot, fresh_user)] == [m.raw for m in before]
    # The server comes back (empty: moto keeps objects in memory): the rerun completes.
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    try:
        server.client().create_bucket(Bucket=bucket.name)
        rerun = cli(dovecot, fresh_user, ["clean", "--plan", str(path), "--yes", "--json"],
                    state, config=config)  # fmt: skip
        assert rerun.returncode == 0, rerun.stderr
        assert rerun.json()["counts"]["done"] == 4
        after = messages(dovecot, fresh_user)
        assert len(after) == 4
        assert all(len(find_stubs(m.raw)) == 1 for m in after)
        assert len(bucket.keys()) == 4
    finally:
        moto.stop()


def test_object_that_does_not_verify_leaves_the_message_alone(
    dovecot: DovecotServer, fresh_user: MailUser, s3_bucket: s3server.S3Bucket, tmp_path: Path
) -> None:
    # The store hands back other bytes than it was given (a corrupting path to a real server).
    bad = make_message(
        subject="off-bad",
        attachments=[("bad.bin", "application/octet-stream", CorruptingProxy.PATTERN * 2000)],
        message_id="<off-bad@offload.test>",
    )
    dovecot.seed_maildir(fresh_user.name, "INBOX", [(bad, 1_600_000_000, "S")])
    before = messages(dovecot, fresh_user)
    endpoint = s3_bucket.server.endpoint.rsplit(":", 1)
    with CorruptingProxy("127.0.0.1", int(endpoint[1])) as proxy:
        url = f"http://127.0.0.1:{proxy.port}"
        config = write_config(tmp_path / "c.toml", {"s3": _store_config(s3_bucket, url)})
        _, run = _offload(dovecot, fresh_user, tmp_path, "s3", config)
    assert run.returncode == 3, run.stderr
    (failed,) = run.json()["failed"]
    assert "does not match" in failed["reason"]
    assert "not rewritten" in failed["reason"]
    assert [m.raw for m in messages(dovecot, fresh_user)] == [m.raw for m in before]


def test_lost_append_reply_rerun_finds_the_copy_by_its_marker(
    dovecot: DovecotServer, fresh_user: MailUser, tmp_path: Path
) -> None:
    seed(dovecot, fresh_user, 2)
    before = messages(dovecot, fresh_user)
    root = tmp_path / "offload"
    plan = make_plan(dovecot, fresh_user, offload_rules(f"file://{root}"))
    path = save_plan(plan, tmp_path / "plan.json")
    with FaultProxy(dovecot.host, dovecot.imap_port) as proxy:
        proxy.drop_reply_to(rb"^\S+ APPEND ")
        cut = cli(dovecot, fresh_user, ["clean", "--plan", str(path), "--yes", "--json"],
                  tmp_path / "state", port=proxy.port, plain=True,
                  target=fresh_user.name)  # fmt: skip
        assert proxy.fired.is_set()
    assert cut.returncode == 7, cut.stderr
    assert "connection" in cut.stderr
    assert "lost" in cut.stderr
    # The server stored the copy; the original is still there too.
    assert len(messages(dovecot, fresh_user)) == 3
    with FaultProxy(dovecot.host, dovecot.imap_port) as proxy:
        rerun = cli(dovecot, fresh_user, ["clean", "--plan", str(path), "--yes", "--json"],
                    tmp_path / "state", port=proxy.port, plain=True,
                    target=fresh_user.name)  # fmt: skip
        appends = [c for c in proxy.commands() if b" APPEND " in c]
        searches = [c for c in proxy.commands() if b"SEARCH HEADER X-Quotatool-Op" in c]
    assert rerun.returncode == 0, rerun.stderr
    assert len(appends) == 1, appends  # only the message whose APPEND never went out
    assert searches, "the rerun did not look for the marker first"
    after = messages(dovecot, fresh_user)
    assert _by_id(after) == _by_id(before)  # exactly one rewritten message each
    assert all(len(find_stubs(m.raw)) == 1 for m in after)


# -- crashes ---------------------------------------------------------------------------------------


def _check_end_state(server: DovecotServer, user: MailUser, root: Path, count: int) -> None:
    """Every message exactly once, each an original or a stub whose objects are stored."""
    stored = messages(server, user)
    assert sorted(_by_id(stored).values()) == [1] * count, _by_id(stored)
    for m in stored:
        for ref in find_stubs(m.raw):
            obj = root.joinpath(*ref.key.split("/"))
            assert hashlib.sha256(obj.read_bytes()).hexdigest() == ref.sha256


def test_crash_after_every_journal_write_then_rerun(
    dovecot: DovecotServer, fresh_user: MailUser, tmp_path: Path
) -> None:
    for n in range(1, 10):
        dovecot.reset_user(fresh_user.name)
        seed(dovecot, fresh_user, 3)
        work = tmp_path / f"n{n}"
        root = work / "offload"
        plan = make_plan(dovecot, fresh_user, offload_rules(f"file://{root}"))
        work.mkdir()
        path = save_plan(plan, work / "plan.json")
        args = ["clean", "--plan", str(path), "--yes", "--json"]
        crashed = cli(dovecot, fresh_user, args, work / "state",
                      env={"QUOTATOOL_TEST_CRASH_AT": str(n)})  # fmt: skip
        if crashed.returncode == 0:
            _check_end_state(dovecot, fresh_user, root, 3)
            break
        assert crashed.returncode == CRASH_EXIT, (n, crashed.stderr)
        rerun = cli(dovecot, fresh_user, args, work / "state")
        assert rerun.returncode == 0, (n, rerun.stderr)
        _check_end_state(dovecot, fresh_user, root, 3)
        assert all(find_stubs(m.raw) for m in messages(dovecot, fresh_user))
    # intent, appended, done: the sweep went through every write of the run.
    assert n >= 4, n


def test_sigkill_during_offload_then_rerun(
    dovecot: DovecotServer, fresh_user: MailUser, tmp_path: Path
) -> None:
    rng = random.Random(20240605)
    killed = 0
    for round_ in range(8):
        dovecot.reset_user(fresh_user.name)
        seed(dovecot, fresh_user, 6, size=400_000)
        work = tmp_path / f"r{round_}"
        root = work / "offload"
        state = work / "state"
        state.mkdir(parents=True, mode=0o700)
        plan = make_plan(dovecot, fresh_user, offload_rules(f"file://{root}"))
        path = save_plan(plan, work / "plan.json")
        args = ["clean", "--plan", str(path), "--yes", "--json"]
        environ = {
            "QUOTATOOL_PASSWORD": fresh_user.password,
            "QUOTATOOL_STATE_DIR": str(state),
            "QUOTATOOL_CONFIG": str(state / "none.toml"),
            "PYTHONPATH": str(ROOT),
            "PATH": "/usr/bin:/bin",
        }
        (state / "none.toml").write_text("", encoding="utf-8")
        target = f"imaps://{fresh_user.name}@{dovecot.host}:{dovecot.imaps_port}"
        argv = [sys.executable, "-m", "quotatool", "clean", target, *args[1:]]
        argv += ["--ca-file", str(dovecot.ca_file)]
        child = subprocess.Popen(
            argv, cwd=ROOT, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        # Kill by progress, not by the clock (start-up and upload speed vary by machine):
        # once the k-th attachment is in the store, after up to 50 ms more, so kills land
        # between an upload, its APPEND and the expunge of the original.
        wanted = rng.randint(1, 6)
        deadline = time.monotonic() + 60
        while child.poll() is None and time.monotonic() < deadline:
            if root.exists() and sum(1 for p in root.rglob("*") if p.is_file()) >= wanted:
                break
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.05))
        child.send_signal(signal.SIGKILL)
        killed += child.wait() == -signal.SIGKILL
        # Between the kill and the rerun: no stub without its object, nothing lost.
        stored = messages(dovecot, fresh_user)
        assert set(_by_id(stored)) == {f"<off-{i}@offload.test>" for i in range(6)}
        for m in stored:
            for ref in find_stubs(m.raw):
                assert root.joinpath(*ref.key.split("/")).is_file()
        rerun = cli(dovecot, fresh_user, args, state)
        assert rerun.returncode == 0, (round_, rerun.stderr)
        _check_end_state(dovecot, fresh_user, root, 6)
    # Most kills land mid-run (a round whose last upload was its kill point may finish first).
    assert killed >= 5, killed
