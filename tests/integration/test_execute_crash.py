"""Crash at any point (SAFETY.md promise 6), the way mbsync tests itself.

``QUOTATOOL_TEST_CRASH_AT=N`` ends the run right after its N-th journal write. For every N of
a ~30-message mixed plan (delete, UID MOVE, local mbox.gz, local Maildir; and the COPY
fallback on a server without MOVE) the mailbox is seeded afresh, the run is crashed at N and
run again, and the end state is compared with an uninterrupted run: every folder and archive
as a multiset of (Message-ID, SHA-256 of the bytes), so nothing lost and nothing duplicated.
Then a bounded soak: runs killed with SIGKILL after a random delay, each rerun, same check.
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from quotatool.adapters.journal import CRASH_EXIT
from tests.dovecot import DovecotServer, MailUser
from tests.integration.execute_support import (
    ROOT,
    folder_contents,
    maildir_contents,
    make_plan,
    mbox_contents,
    rule,
    rules,
    run_plan,
    save_plan,
)
from tests.mailgen import make_message

State = dict[str, Counter[tuple[str, str]]]
BATCH = 4
WHEN = 1_600_000_000  # 2020-09-13


def _messages(copy_server: bool) -> list[tuple[bytes, int, str]]:
    out: list[tuple[bytes, int, str]] = []
    kinds = ("del", "mv") if copy_server else ("del", "mv", "loc", "md")
    count = 6 if copy_server else 7
    for kind in kinds:
        for n in range(count):
            body = f"message {kind} {n}\nFrom the start of a line\n>From quoted\n" * (n + 1)
            raw = make_message(
                subject=f"{kind}-{n}", body=body, message_id=f"<{kind}-{n}@crash.test>"
            )
            out.append((raw, WHEN + n, "S"))
    for n in range(2):
        raw = make_message(subject=f"keep-{n}", message_id=f"<keep-{n}@crash.test>")
        out.append((raw, WHEN, "S"))
    # Another client's \Deleted message: it must survive every run (promise 1).
    other = make_message(subject="other-deleted", message_id="<other@crash.test>")
    out.append((other, WHEN, "ST"))
    return out


def _rules(archive: Path) -> str:
    return rules(
        rule("d", "del-*", "delete"),
        rule("m", "mv-*", "archive", "Archive/{year}"),
        rule("l", "loc-*", "archive", f"mbox:{archive}/a-{{year}}.mbox.gz"),
        rule("md", "md-*", "archive", f"maildir:{archive}/md"),
    )


class Scenario:
    """Seed, plan and run one mixed plan in a fresh directory; read back the end state."""

    def __init__(self, server: DovecotServer, user: MailUser, base: Path, copy: bool) -> None:
        self.server, self.user, self.base, self.copy = server, user, base, copy
        self.n = 0

    def prepare(self) -> tuple[Path, Path, Path]:
        self.n += 1
        work = self.base / f"run{self.n}"
        archive, state = work / "archive", work / "state"
        archive.mkdir(parents=True)
        self.server.reset_user(self.user.name)
        self.server.seed_maildir(self.user.name, "INBOX", _messages(self.copy))
        plan = make_plan(self.server, self.user, _rules(archive))
        return save_plan(plan, work / "plan.json"), archive, state

    def state(self, archive: Path) -> State:
        out = folder_contents(self.server, self.user)
        out["mbox"] = mbox_contents(archive / "a-2020.mbox.gz")
        out["maildir"] = maildir_contents(archive / "md")
        return out

    def cleanup(self) -> None:
        shutil.rmtree(self.base / f"run{self.n}", ignore_errors=True)


def _reference(sc: Scenario) -> State:
    plan, archive, state = sc.prepare()
    first = run_plan(sc.server, sc.user, plan, state, batch=BATCH)
    assert first.returncode == 0, first.stderr
    doc = first.json()
    assert (doc["counts"]["failed"], doc["counts"]["skipped"]) == (0, 0), doc
    reference = sc.state(archive)
    sc.cleanup()
    return reference


def _check(reference: State, got: State, where: str) -> None:
    assert got == reference, f"{where}: end state differs\nwant {reference}\ngot  {got}"
    # The other client's \Deleted message is still there.
    assert sum(1 for mid, _ in got["INBOX"] if mid == "<other@crash.test>") == 1


@pytest.fixture(scope="module")
def no_move_server() -> Iterator[DovecotServer]:
    caps = "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT UIDPLUS CONDSTORE QUOTA"
    server = DovecotServer(capabilities=caps).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("copy", [False, True], ids=["move-and-local", "copy-fallback"])
def test_crash_after_every_journal_write_then_rerun(
    dovecot: DovecotServer, no_move_server: DovecotServer, tmp_path: Path, copy: bool
) -> None:
    server = no_move_server if copy else dovecot
    name = f"crash{int(copy)}"
    password = server.add_user(name, quota="50M")
    user = MailUser(name, password, server.mail_home(name))
    sc = Scenario(server, user, tmp_path, copy)
    reference = _reference(sc)
    # The reference really did something: originals gone, archives full.
    assert not any(mid.startswith("<del-") for mid, _ in reference["INBOX"])
    assert sum(reference["Archive/2020"].values()) == (6 if copy else 7)
    if not copy:
        assert sum(reference["mbox"].values()) == 7
        assert sum(reference["maildir"].values()) == 7
    # Every N until a run makes fewer than N journal writes and so is not crashed.
    for n in itertools.count(1):
        plan, archive, state = sc.prepare()
        crashed = run_plan(
            server, user, plan, state, batch=BATCH, env={"QUOTATOOL_TEST_CRASH_AT": str(n)}
        )
        if crashed.returncode == 0:
            _check(reference, sc.state(archive), "uncrashed run")
            break
        assert crashed.returncode == CRASH_EXIT, (n, crashed.stderr)
        rerun = run_plan(server, user, plan, state, batch=BATCH)
        assert rerun.returncode == 0, (n, rerun.stderr)
        doc = rerun.json()
        assert (doc["counts"]["failed"], doc["counts"]["skipped"]) == (0, 0), (n, doc)
        _check(reference, sc.state(archive), f"crash at write {n}")
        sc.cleanup()
    # Two writes per delete or MOVE batch of four, three per COPY or local batch: the sweep
    # really went through them all.
    assert n > (10 if copy else 20), n


def test_sigkill_soak(dovecot: DovecotServer, tmp_path: Path) -> None:
    password = dovecot.add_user("soak", quota="50M")
    user = MailUser("soak", password, dovecot.mail_home("soak"))
    sc = Scenario(dovecot, user, tmp_path, copy=False)
    reference = _reference(sc)
    rng = random.Random(20240601)
    killed_midway = 0
    for round_ in range(20):
        plan, archive, state = sc.prepare()
        environ = {k: v for k, v in os.environ.items() if not k.startswith("QUOTATOOL_")}
        environ.update(
            QUOTATOOL_PASSWORD=user.password, QUOTATOOL_STATE_DIR=str(state), PYTHONPATH=str(ROOT)
        )
        argv = [sys.executable, "-m", "tests.integration.clean_child", str(plan)]
        argv += [f"imaps://{user.name}@{dovecot.host}:{dovecot.imaps_port}"]
        argv += [str(dovecot.ca_file), str(BATCH)]
        child = subprocess.Popen(
            argv, cwd=ROOT, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        # Kill by progress, not by the clock (start-up time varies by machine): once the
        # journal has its first record, then after a random part of the run's remaining time.
        deadline = time.monotonic() + 60
        while child.poll() is None and time.monotonic() < deadline:
            if any(state.glob("*.journal.sqlite-wal")):
                break
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.1))  # the run takes ~0.15 s from there on this machine
        child.send_signal(signal.SIGKILL)
        code = child.wait()
        killed_midway += code == -signal.SIGKILL
        rerun = run_plan(dovecot, user, plan, state, batch=BATCH)
        assert rerun.returncode == 0, (round_, rerun.stderr)
        _check(reference, sc.state(archive), f"SIGKILL round {round_}")
        sc.cleanup()
    assert killed_midway >= 10, killed_midway
