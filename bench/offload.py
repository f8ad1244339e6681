"""Time offloading attachments against a plain copy of the same bytes, in MiB/s moved.

One private Dovecot and one loopback S3 server (moto, as in the tests). The user is seeded with
N messages, each with one attachment of a few hundred KiB (distinct bytes, so nothing is
de-duplicated); a real scan makes the plan before the clock starts. Then, per store:

* **quotatool**: ``execute_plan`` of the offload plan: fetch raw, decode, upload with SHA-256,
  read back and verify, splice the stub, APPEND, fetch back and compare, ``UID STORE`` +
  ``UID EXPUNGE``, the journal (SQLite, fsync per record) and the quota reads;
* **baseline**: the same decoded payloads written by the plainest means: ``cp`` of files
  holding them into a directory (local store), or the store library's ``put`` alone, one
  object each (S3).

MiB/s counts the decoded attachment octets moved. Nothing here asserts a time.

    python bench/offload.py [--messages 300] [--size 256]
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

import obstore  # noqa: E402
from obstore.store import S3Store as ObstoreS3  # noqa: E402

from quotatool.adapters.archive_local import LocalArchiveWriter  # noqa: E402
from quotatool.adapters.imap import ImapConnectOptions  # noqa: E402
from quotatool.adapters.imap_write import ImapMailbox  # noqa: E402
from quotatool.adapters.journal import SqliteJournal  # noqa: E402
from quotatool.config.targets import ImapTarget  # noqa: E402
from quotatool.model import Plan  # noqa: E402
from quotatool.services.execute import execute_plan  # noqa: E402
from quotatool.storage import Store, open_store  # noqa: E402
from tests.dovecot import DovecotServer, MailUser  # noqa: E402
from tests.integration.execute_support import make_plan  # noqa: E402
from tests.integration.offload_support import (  # noqa: E402
    attachment_message,
    offload_rules,
    payload,
)
from tests.s3server import S3Server  # noqa: E402

USER = "bench"
MIB = 1024 * 1024


def _seed(server: DovecotServer, count: int, size: int) -> None:
    server.reset_user(USER)
    messages = [(attachment_message(n, size=size), 1_600_000_000 + n, "S") for n in range(count)]
    server.seed_maildir(USER, "INBOX", messages)


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _offload(server: DovecotServer, user: MailUser, plan: Plan, state: Path, store: Store) -> None:
    mailbox = ImapMailbox(
        ImapConnectOptions(
            target=ImapTarget(host=server.host, port=server.imaps_port, user=user.name),
            secret=lambda: user.password,
            ca_file=server.ca_file,
        )
    )
    journal = SqliteJournal(state / f"{time.monotonic_ns()}.sqlite")
    try:
        result = execute_plan(
            plan, mailbox, journal, LocalArchiveWriter(), stores=lambda _: (store, None)
        )
    finally:
        mailbox.close()
        journal.close()
    if len(result.done) != len(plan.actions):
        reasons = {o.reason for o in result.outcomes if o.status != "done"}
        raise SystemExit(f"only {len(result.done)} of {len(plan.actions)} done: {reasons}")


def _cp_baseline(files: list[Path], target: Path) -> None:
    target.mkdir()
    subprocess.run(["cp", *map(str, files), str(target)], check=True)
    subprocess.run(["sync", "-f", str(target)], check=True)  # our local store fsyncs too


def _put_baseline(s3: S3Server, bucket: str, payloads: list[bytes]) -> None:
    config = s3.config()
    store = ObstoreS3(
        bucket,
        config={
            "endpoint": s3.endpoint,
            "region": config.region or "us-east-1",
            "access_key_id": config.access_key_id or "",
            "secret_access_key": config.secret_access_key or "",
        },
        client_options={"allow_http": True},
    )
    for n, data in enumerate(payloads):
        obstore.put(store, f"baseline/{n}", data)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--size", type=int, default=256, help="KiB per attachment")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto logs every request
    size = args.size * 1024
    moved = args.messages * size / MIB
    payloads = [payload(n, size) for n in range(args.messages)]
    s3 = S3Server.start()
    rows = []
    try:
        with DovecotServer() as server, tempfile.TemporaryDirectory() as tmp:
            password = server.add_user(USER, quota="10G")
            user = MailUser(USER, password, server.mail_home(USER))
            work = Path(tmp)
            state = work / "state"
            state.mkdir(mode=0o700)
            # Local store against cp of the same payloads as files.
            _seed(server, args.messages, size)
            root = work / "offload"
            plan = make_plan(server, user, offload_rules(f"file://{root}"))
            local = open_store(f"file://{root}")
            ours = _timed(lambda: _offload(server, user, plan, state, local))
            sources = work / "payloads"
            sources.mkdir()
            files = []
            for n, data in enumerate(payloads):
                (sources / f"{n}.bin").write_bytes(data)
                files.append(sources / f"{n}.bin")
            theirs = _timed(lambda: _cp_baseline(files, work / "cp"))
            rows.append(("local store", ours, "cp", theirs))
            # S3 against obstore's put alone.
            bucket = s3.new_bucket()
            _seed(server, args.messages, size)
            plan = make_plan(server, user, offload_rules(bucket.url()))
            remote = open_store(bucket.url(), bucket.config())
            ours = _timed(lambda: _offload(server, user, plan, state, remote))
            theirs = _timed(lambda: _put_baseline(s3, bucket.name, payloads))
            rows.append(("S3 (loopback)", ours, "obstore put", theirs))
    finally:
        s3.stop()
    print(f"{args.messages} messages, one {args.size} KiB attachment each ({moved:.0f} MiB)")
    print(f"{'store':<15}{'quotatool':>14}{'baseline':>26}{'ratio':>8}")
    for name, ours, base, theirs in rows:
        print(
            f"{name:<15}{moved / ours:>9.1f} MiB/s"
            f"{base:>13} {moved / theirs:>7.1f} MiB/s{ours / theirs:>8.1f}"
        )


if __name__ == "__main__":
    main()
