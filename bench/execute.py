"""Time the real run on 10,000 messages against doveadm doing the same on the same data.

One private Dovecot; before each measurement the user is reset and seeded with the same
messages (Maildir files + ``doveadm force-resync``, see tests/dovecot.py). Then:

* **delete**: ``execute_plan`` of a plan deleting every message (batched ``UID STORE`` with
  ``UNCHANGEDSINCE``, ``UID EXPUNGE``, ``UID SEARCH`` to verify, journal before and after)
  against ``doveadm expunge -u USER mailbox INBOX all``;
* **archive**: ``execute_plan`` of a plan archiving every message to the folder ``Archive``
  (``UID MOVE`` + COPYUID check) against ``doveadm move -u USER Archive mailbox INBOX all``.

quotatool's time covers connecting, the journal (SQLite, fsync per record) and the quota
reads; the plan is made before the clock starts, from a real scan. Nothing here asserts a time.

    python bench/execute.py [--messages 10000] [--batch 500]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from quotatool.adapters.archive_local import LocalArchiveWriter  # noqa: E402
from quotatool.adapters.imap import ImapConnectOptions  # noqa: E402
from quotatool.adapters.imap_write import ImapMailbox  # noqa: E402
from quotatool.adapters.journal import SqliteJournal  # noqa: E402
from quotatool.config.targets import ImapTarget  # noqa: E402
from quotatool.model import Plan  # noqa: E402
from quotatool.services.execute import execute_plan  # noqa: E402
from tests.dovecot import DovecotServer, MailUser  # noqa: E402
from tests.integration.execute_support import make_plan, rule, rules  # noqa: E402
from tests.mailgen import make_message  # noqa: E402

USER = "bench"


def _messages(count: int) -> list[tuple[bytes, int, str]]:
    base = make_message(subject="bench", body="A line of a typical message body.\n" * 40)
    out = []
    for n in range(count):
        raw = base.replace(b"Subject: bench", f"Subject: bench-{n}".encode(), 1)
        out.append((raw, 1_600_000_000 + n, "S"))
    return out


def _seed(server: DovecotServer, messages: list[tuple[bytes, int, str]]) -> None:
    server.reset_user(USER)
    server.seed_maildir(USER, "INBOX", messages)


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _run(server: DovecotServer, user: MailUser, plan: Plan, state: Path, batch: int) -> None:
    mailbox = ImapMailbox(
        ImapConnectOptions(
            target=ImapTarget(host=server.host, port=server.imaps_port, user=user.name),
            secret=lambda: user.password,
            ca_file=server.ca_file,
        )
    )
    journal = SqliteJournal(state / f"{time.monotonic_ns()}.sqlite")
    try:
        result = execute_plan(plan, mailbox, journal, LocalArchiveWriter(), batch_size=batch)
    finally:
        mailbox.close()
        journal.close()
    if len(result.done) != len(plan.actions):
        raise SystemExit(f"only {len(result.done)} of {len(plan.actions)} done")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    messages = _messages(args.messages)
    with DovecotServer() as server, tempfile.TemporaryDirectory() as tmp:
        password = server.add_user(USER, quota="10G")
        user = MailUser(USER, password, server.mail_home(USER))
        state = Path(tmp)
        rows = []
        for name, rule_text, doveadm in (
            ("delete", rule("all", "bench-*", "delete"), ["expunge"]),
            ("archive (MOVE)", rule("all", "bench-*", "archive", "Archive"), ["move", "Archive"]),
        ):
            _seed(server, messages)
            plan = make_plan(server, user, rules(rule_text))
            if name.startswith("archive"):
                server.create_folder(USER, "Archive")
            ours = _timed(lambda plan=plan: _run(server, user, plan, state, args.batch))
            assert server.mailbox_status(USER, "INBOX")[0] == 0
            _seed(server, messages)
            if name.startswith("archive"):
                server.create_folder(USER, "Archive")
            argv = [doveadm[0], "-u", USER, *doveadm[1:], "mailbox", "INBOX", "all"]
            theirs = _timed(lambda argv=argv: server.doveadm(*argv))
            assert server.mailbox_status(USER, "INBOX")[0] == 0
            rows.append((name, ours, theirs))
    print(f"{args.messages} messages, batches of {args.batch}")
    print(f"{'operation':<16}{'quotatool':>12}{'doveadm':>12}{'ratio':>8}")
    for name, ours, theirs in rows:
        print(f"{name:<16}{ours:>11.2f}s{theirs:>11.2f}s{ours / theirs:>8.1f}")


if __name__ == "__main__":
    main()
