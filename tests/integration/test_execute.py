"""The real run against the private Dovecot: SAFETY.md promises 1-4, 7-14 for delete and archive.

Plans are made by a real scan and saved as JSON; each run is ``run_clean`` in a child process
(tests/integration/clean_child.py). What happened is read independently: doveadm, a separate
IMAP connection, the files on disk, and the commands the fault proxy saw.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from quotatool.adapters.journal import SqliteJournal
from tests.dovecot import DovecotServer, MailUser
from tests.integration.execute_support import (
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
from tests.tcp_proxy import FaultProxy

WHEN = 1_600_000_000
MUTATING = re.compile(
    rb"^\S+ (UID (STORE|EXPUNGE|MOVE|COPY)|STORE|EXPUNGE|CLOSE|MOVE|COPY|CREATE|DELETE|APPEND)\b",
    re.IGNORECASE,
)


def _seed(server: DovecotServer, user: MailUser, *subjects: str, folder: str = "INBOX") -> None:
    messages = [
        (
            make_message(
                subject=s,
                body=f"{s}\nFrom a line start\n" * 20,
                message_id=f"<{s}@exec.test>",
            ),
            WHEN,
            "S",
        )
        for s in subjects
    ]
    server.seed_maildir(user.name, folder, messages)


def _ids(server: DovecotServer, user: MailUser, folder: str = "INBOX") -> list[str]:
    contents = folder_contents(server, user).get(folder, {})
    return sorted(mid for mid, _ in contents)


def _mutations(proxy: FaultProxy) -> list[bytes]:
    return [line for line in proxy.commands() if MUTATING.match(line)]


@pytest.fixture
def proxy(dovecot: DovecotServer) -> Iterator[FaultProxy]:
    with FaultProxy(dovecot.host, dovecot.imap_port) as p:
        yield p


def _via(proxy: FaultProxy) -> dict[str, object]:
    return {"port": proxy.port, "tls": "none"}


# -- promises 1 and 2: scoped deletion, only planned UIDs ------------------------------------


def test_other_clients_deleted_message_survives_and_only_planned_uids_are_touched(
    dovecot: DovecotServer, fresh_user: MailUser, proxy: FaultProxy, tmp_path: Path
) -> None:
    _seed(dovecot, fresh_user, "del-1", "del-2", "keep-1", "other-1", "del-3")
    plan = make_plan(dovecot, fresh_user, rules(rule("d", "del-*", "delete")))
    planned = sorted(a.uid for a in plan.actions)
    assert len(planned) == 3
    # Another client marks a message \Deleted after the plan was made.
    client = dovecot.connect(fresh_user.name)
    client.select_folder("INBOX")
    other_uid = client.search(["SUBJECT", "other-1"])[0]
    client.add_flags([other_uid], [b"\\Deleted"])
    client.logout()
    run = run_plan(
        dovecot, fresh_user, save_plan(plan, tmp_path / "p.json"), tmp_path, **_via(proxy)
    )  # type: ignore[arg-type]
    assert run.returncode == 0, run.stderr
    assert _ids(dovecot, fresh_user) == ["<keep-1@exec.test>", "<other-1@exec.test>"]
    sent = _mutations(proxy)
    assert sent, "the run sent no mutating command"
    for line in sent:
        words = line.split()
        assert words[1].upper() == b"UID", line  # never a bare EXPUNGE, CLOSE or STORE
        uid_set = words[3].decode()
        assert "*" not in uid_set
        uids = {int(u) for part in uid_set.split(",") for u in _expand(part)}
        assert uids <= set(planned), line
        assert other_uid not in uids


def _expand(part: str) -> range:
    a, _, b = part.partition(":")
    return range(int(a), int(b or a) + 1)


# -- promise 3: stale means skip --------------------------------------------------------------


def test_changed_message_and_changed_uidvalidity_are_skipped(
    dovecot: DovecotServer, fresh_user: MailUser, tmp_path: Path
) -> None:
    _seed(dovecot, fresh_user, "del-a", "del-b", "del-c")
    _seed(dovecot, fresh_user, "del-x", "del-y", folder="Old")
    plan = make_plan(dovecot, fresh_user, rules(rule("d", "del-*", "delete")))
    assert len(plan.actions) == 5
    client = dovecot.connect(fresh_user.name)
    client.select_folder("INBOX")
    flagged = client.search(["SUBJECT", "del-a"])[0]
    client.add_flags([flagged], [b"\\Flagged"])
    # A keyword added and removed again: same flags, but MODSEQ moved (CONDSTORE).
    touched = client.search(["SUBJECT", "del-b"])[0]
    client.add_flags([touched], [b"$Touched"])
    client.remove_flags([touched], [b"$Touched"])
    client.logout()
    # The folder is deleted and made again: a new UIDVALIDITY, the old UIDs mean nothing.
    dovecot.doveadm("mailbox", "delete", "-u", fresh_user.name, "Old")
    _seed(dovecot, fresh_user, "del-x", "del-y", folder="Old")
    run = run_plan(dovecot, fresh_user, save_plan(plan, tmp_path / "p.json"), tmp_path)
    assert run.returncode == 3, run.stderr
    doc = run.json()
    reasons = {(s["folder"], s["message_id"]): s["reason"] for s in doc["skipped"]}
    assert "flags changed" in reasons[("INBOX", "<del-a@exec.test>")]
    assert "MODSEQ" in reasons[("INBOX", "<del-b@exec.test>")]
    assert "UIDVALIDITY" in reasons[("Old", "<del-x@exec.test>")]
    assert "UIDVALIDITY" in reasons[("Old", "<del-y@exec.test>")]
    assert [d["message_id"] for d in doc["done"]] == ["<del-c@exec.test>"]
    assert _ids(dovecot, fresh_user) == ["<del-a@exec.test>", "<del-b@exec.test>"]
    assert dovecot.mailbox_status(fresh_user.name, "Old")[0] == 2


# -- promise 8 and issue test 4: lost connections ---------------------------------------------


@pytest.mark.parametrize("command", [rb"UID MOVE", rb"UID EXPUNGE", rb"UID STORE"])
def test_lost_reply_to_a_mutating_command_then_rerun(
    dovecot: DovecotServer, fresh_user: MailUser, tmp_path: Path, command: bytes
) -> None:
    subjects = [f"mv-{n}" for n in range(3)] + [f"del-{n}" for n in range(3)]
    _seed(dovecot, fresh_user, *subjects)
    plan = make_plan(
        dovecot,
        fresh_user,
        rules(rule("d", "del-*", "delete"), rule("m", "mv-*", "archive", "Archive/{year}")),
    )
    path = save_plan(plan, tmp_path / "p.json")
    with FaultProxy(dovecot.host, dovecot.imap_port) as proxy:
        proxy.drop_reply_to(rb"^\S+ " + command + rb" ")
        run = run_plan(dovecot, fresh_user, path, tmp_path, port=proxy.port, tls="none")
        assert proxy.fired.is_set()
    assert run.returncode == 7, (run.returncode, run.stderr)
    assert "quotatool: error: " in run.stderr
    assert "Traceback" not in run.stderr
    rerun = run_plan(dovecot, fresh_user, path, tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    contents = folder_contents(dovecot, fresh_user)
    assert sorted(mid for mid, _ in contents["INBOX"]) == []
    archived = contents["Archive/2020"]
    assert sorted(mid for mid, _ in archived) == [f"<mv-{n}@exec.test>" for n in range(3)]
    assert all(count == 1 for count in archived.values()), archived  # nothing duplicated


def test_connection_cut_mid_run_then_rerun(
    dovecot: DovecotServer, fresh_user: MailUser, tmp_path: Path
) -> None:
    subjects = [f"del-{n}" for n in range(12)]
    _seed(dovecot, fresh_user, *subjects)
    plan = make_plan(dovecot, fresh_user, rules(rule("d", "del-*", "delete")))
    path = save_plan(plan, tmp_path / "p.json")
    with FaultProxy(dovecot.host, dovecot.imap_port) as proxy:
        # Enough for greeting, login, SELECT and the first batches; cut in the middle.
        proxy.cut_after(2600)
        run = run_plan(dovecot, fresh_user, path, tmp_path, port=proxy.port, tls="none", batch=3)
        assert proxy.fired.is_set()
    assert run.returncode == 7, run.stderr
    assert "connection" in run.stderr
    left = len(_ids(dovecot, fresh_user))
    assert 0 < left < 12, left  # cut mid-run, really
    rerun = run_plan(dovecot, fresh_user, path, tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert _ids(dovecot, fresh_user) == []


# -- issue test 5: the destination cannot be written --------------------------------------------


def test_unwritable_local_archive_keeps_the_originals(
    dovecot: DovecotServer, fresh_user: MailUser, tmp_path: Path
) -> None:
    _seed(dovecot, fresh_user, "loc-1", "loc-2")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    plan = make_plan(
        dovecot,
        fresh_user,
        rules(rule("l", "loc-*", "archive", f"mbox:{blocker}/sub/a.mbox")),
    )
    run = run_plan(dovecot, fresh_user, save_plan(plan, tmp_path / "p.json"), tmp_path)
    assert run.returncode == 3, run.stderr
    failed = run.json()["failed"]
    assert len(failed) == 2
    assert "cannot create archive directory" in failed[0]["reason"]
    assert _ids(dovecot, fresh_user) == ["<loc-1@exec.test>", "<loc-2@exec.test>"]


# -- issue test 6: the quota moves by what the plan said -----------------------------------------


def test_freed_bytes_match_the_plan(
    dovecot: DovecotServer, fresh_user: MailUser, tmp_path: Path
) -> None:
    _seed(dovecot, fresh_user, *[f"del-{n}" for n in range(20)], "keep")
    plan = make_plan(dovecot, fresh_user, rules(rule("d", "del-*", "delete")))
    before = dovecot.quota_get(fresh_user.name)
    run = run_plan(dovecot, fresh_user, save_plan(plan, tmp_path / "p.json"), tmp_path)
    assert run.returncode == 0, run.stderr
    doc = run.json()
    assert doc["planned_bytes"] == plan.summary.frees_bytes > 0
    # STORAGE is reported in KiB: at most 1 KiB of rounding per message (RFC 9208 §5.1).
    assert abs(doc["freed_bytes"] - plan.summary.frees_bytes) <= 1024 * len(plan.actions)
    after = dovecot.quota_get(fresh_user.name)
    storage = [
        (b["value"], a["value"])
        for b, a in zip(before, after, strict=True)
        if b["type"] == "STORAGE"
    ]
    assert abs((storage[0][0] - storage[0][1]) * 1024 - doc["freed_bytes"]) <= 1024


# -- promise 9 and issue test 7: capabilities ---------------------------------------------------


def test_server_without_uidplus_is_refused(tmp_path: Path) -> None:
    caps = "IMAP4rev1 LITERAL+ SASL-IR ENABLE IDLE MOVE CONDSTORE QUOTA"
    with DovecotServer(capabilities=caps) as server:
        password = server.add_user("nouidplus")
        user = MailUser("nouidplus", password, server.mail_home("nouidplus"))
        _seed(server, user, "del-1", "del-2")
        plan = make_plan(server, user, rules(rule("d", "del-*", "delete")))
        with FaultProxy(server.host, server.imap_port) as proxy:
            path = save_plan(plan, tmp_path / "p.json")
            run = run_plan(server, user, path, tmp_path, port=proxy.port, tls="none")
            assert _mutations(proxy) == []
        assert run.returncode == 1
        errors = [line for line in run.stderr.splitlines() if line.startswith("quotatool: error:")]
        assert len(errors) == 1
        assert "UIDPLUS" in errors[0]
        assert server.mailbox_status(user.name, "INBOX")[0] == 2


def test_without_move_the_copy_fallback_removes_only_planned_uids(tmp_path: Path) -> None:
    caps = "IMAP4rev1 LITERAL+ SASL-IR ENABLE IDLE UIDPLUS CONDSTORE QUOTA"
    with DovecotServer(capabilities=caps) as server:
        password = server.add_user("nomove")
        user = MailUser("nomove", password, server.mail_home("nomove"))
        _seed(server, user, "mv-1", "mv-2", "other", "mv-3")
        plan = make_plan(server, user, rules(rule("m", "mv-*", "archive", "Archive/{year}")))
        client = server.connect(user.name)
        client.select_folder("INBOX")
        client.add_flags(client.search(["SUBJECT", "other"]), [b"\\Deleted"])
        client.logout()
        with FaultProxy(server.host, server.imap_port) as proxy:
            path = save_plan(plan, tmp_path / "p.json")
            run = run_plan(server, user, path, tmp_path, port=proxy.port, tls="none")
            sent = b"\n".join(proxy.commands())
        assert run.returncode == 0, run.stderr
        assert run.json()["archive_method"] == "copy"
        assert b" UID COPY " in sent
        assert b" UID MOVE " not in sent
        assert _ids(server, user) == ["<other@exec.test>"]
        assert _ids(server, user, "Archive/2020") == [f"<mv-{n}@exec.test>" for n in (1, 2, 3)]
        planned = {a.uid for a in plan.actions}
        expunges = [line for line in sent.splitlines() if b" UID EXPUNGE " in line]
        assert expunges
        for line in expunges:
            uids = {u for part in line.split()[3].decode().split(",") for u in _expand(part)}
            assert uids <= planned, line


def test_over_quota_copy_keeps_the_originals(tmp_path: Path) -> None:
    caps = "IMAP4rev1 LITERAL+ SASL-IR ENABLE IDLE UIDPLUS CONDSTORE QUOTA"
    with DovecotServer(capabilities=caps) as server:
        password = server.add_user("full", quota="100k")
        user = MailUser("full", password, server.mail_home("full"))
        big = "x" * 30_000
        messages = [
            (make_message(subject=f"mv-{n}", body=big, message_id=f"<mv-{n}@q>"), WHEN, "S")
            for n in range(3)
        ]
        server.seed_maildir(user.name, "INBOX", messages)
        plan = make_plan(server, user, rules(rule("m", "mv-*", "archive", "Archive/{year}")))
        run = run_plan(server, user, save_plan(plan, tmp_path / "p.json"), tmp_path)
        assert run.returncode == 3, run.stderr
        failed = run.json()["failed"]
        assert len(failed) == 3
        assert "refused" in failed[0]["reason"]
        assert "quota" in failed[0]["reason"].lower()
        assert server.mailbox_status(user.name, "INBOX")[0] == 3


# -- promise 7: a completed plan run again changes nothing ---------------------------------------


def test_completed_plan_rerun_sends_no_mutating_command(
    dovecot: DovecotServer, fresh_user: MailUser, tmp_path: Path
) -> None:
    _seed(dovecot, fresh_user, "del-1", "mv-1", "loc-1")
    plan = make_plan(
        dovecot,
        fresh_user,
        rules(
            rule("d", "del-*", "delete"),
            rule("m", "mv-*", "archive", "Archive/{year}"),
            rule("l", "loc-*", "archive", f"maildir:{tmp_path}/md"),
        ),
    )
    path = save_plan(plan, tmp_path / "p.json")
    assert run_plan(dovecot, fresh_user, path, tmp_path).returncode == 0
    for state in (tmp_path, tmp_path / "fresh-state"):  # with and without the journal
        with FaultProxy(dovecot.host, dovecot.imap_port) as proxy:
            again = run_plan(dovecot, fresh_user, path, state, port=proxy.port, tls="none")
            assert _mutations(proxy) == []
        doc = again.json()
        assert doc["done"] == []
        assert doc["done_bytes"] == 0
        assert doc["freed_bytes"] == 0


# -- promise 11 and issue test 10: journal or nothing --------------------------------------------


def test_journal_fsync_failure_sends_no_mutating_command(
    dovecot: DovecotServer, fresh_user: MailUser, tmp_path: Path
) -> None:
    _seed(dovecot, fresh_user, "del-1", "del-2")
    plan = make_plan(dovecot, fresh_user, rules(rule("d", "del-*", "delete")))
    path = save_plan(plan, tmp_path / "p.json")
    # Create the journal first, so that opening it needs no write and the run gets as far as
    # its first record before fsync fails (fiu-run from Debian's fiu-utils, SAFETY.md tools).
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    from quotatool.adapters.journal import journal_path
    from quotatool.adapters.lock import lock_file_name

    key = f"{fresh_user.name}@{dovecot.host}"
    SqliteJournal(journal_path(state, lock_file_name(key))).close()
    with FaultProxy(dovecot.host, dovecot.imap_port) as proxy:
        run = run_plan(
            dovecot,
            fresh_user,
            path,
            state,
            port=proxy.port,
            tls="none",
            wrapper=["fiu-run", "-x", "-c", "enable name=posix/io/sync/*"],
        )
        commands = b"\n".join(proxy.commands())
        mutations = _mutations(proxy)
    assert run.returncode != 0
    assert "cannot write the journal" in run.stderr
    assert b" UID FETCH " in commands  # it got as far as checking the messages
    assert mutations == []
    assert dovecot.mailbox_status(fresh_user.name, "INBOX")[0] == 2


# -- promise 4 and issue test 11: local archives --------------------------------------------------


@pytest.mark.parametrize("kind", ["mbox", "mbox.gz", "maildir"])
def test_local_archive_is_exact_private_and_synced(
    dovecot: DovecotServer, fresh_user: MailUser, tmp_path: Path, kind: str
) -> None:
    tricky = "From the first line\n>From quoted once\n>>From quoted twice\nFrom: not a header\n"
    messages = [
        (
            make_message(subject=f"loc-{n}", body=tricky * (n + 1), message_id=f"<loc-{n}@a>"),
            WHEN,
            "S",
        )
        for n in range(4)
    ]
    dovecot.seed_maildir(fresh_user.name, "INBOX", messages)
    originals = folder_contents(dovecot, fresh_user)["INBOX"]
    target = (
        tmp_path / "archive" / {"mbox": "a.mbox", "mbox.gz": "a.mbox.gz", "maildir": "md"}[kind]
    )
    scheme = "maildir" if kind == "maildir" else "mbox"
    plan = make_plan(
        dovecot, fresh_user, rules(rule("l", "loc-*", "archive", f"{scheme}:{target}"))
    )
    run = run_plan(dovecot, fresh_user, save_plan(plan, tmp_path / "p.json"), tmp_path / "state")
    assert run.returncode == 0, run.stderr
    archived = maildir_contents(target) if kind == "maildir" else mbox_contents(target)
    assert archived == originals  # byte for byte: same SHA-256 as fetched from the server
    assert _ids(dovecot, fresh_user) == []
    if kind == "mbox":
        text = target.read_bytes()
        assert b"\n>From the first line" in text  # mboxrd: one more '>' per From line
        assert b"\n>>>From quoted twice" in text
    files = [target] if kind != "maildir" else [p for p in target.rglob("*") if p.is_file()]
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    for d in [target.parent] + (
        [p for p in target.rglob("*") if p.is_dir()] if kind == "maildir" else []
    ):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d


# -- promises 13 and 14: secrets and private files ------------------------------------------------


def test_state_is_private_and_holds_no_secret(
    dovecot: DovecotServer, fresh_user: MailUser, tmp_path: Path
) -> None:
    _seed(dovecot, fresh_user, "del-1", "loc-1")
    plan = make_plan(
        dovecot,
        fresh_user,
        rules(
            rule("d", "del-*", "delete"), rule("l", "loc-*", "archive", f"mbox:{tmp_path}/a/x.mbox")
        ),
    )
    state = tmp_path / "state"
    run = run_plan(dovecot, fresh_user, save_plan(plan, tmp_path / "p.json"), state)
    assert run.returncode == 0, run.stderr
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    secret = fresh_user.password.encode()
    written = [p for p in state.rglob("*") if p.is_file()] + [tmp_path / "a" / "x.mbox"]
    assert any(p.name.endswith(".journal.sqlite") for p in written)
    for p in written:
        assert secret not in p.read_bytes(), p
        if p.parent == state:
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert fresh_user.password not in run.stdout + run.stderr
    assert hashlib.sha256(b"").hexdigest() not in run.stdout  # no empty archive copies
    assert os.environ.get("QUOTATOOL_PASSWORD") != fresh_user.password


# -- one run per account ----------------------------------------------------------------------


@pytest.mark.parametrize("held", ["account", "url"])
def test_a_second_run_on_the_account_exits_at_once(
    dovecot: DovecotServer, fresh_user: MailUser, tmp_path: Path, held: str
) -> None:
    from quotatool.adapters.lock import AccountLock

    _seed(dovecot, fresh_user, "del-1")
    plan = make_plan(dovecot, fresh_user, rules(rule("d", "del-*", "delete")))
    state = tmp_path / "state"
    # What clean locks by itself (the account) and what `check` locks too (the URL).
    url = f"imaps://{fresh_user.name}@{dovecot.host}:{dovecot.imaps_port}"
    key = f"{fresh_user.name}@{dovecot.host}" if held == "account" else url
    with AccountLock(key, state):
        run = run_plan(dovecot, fresh_user, save_plan(plan, tmp_path / "p.json"), state)
    assert run.returncode == 6, run.stderr
    assert "another quotatool run" in run.stderr
    assert _ids(dovecot, fresh_user) == ["<del-1@exec.test>"]
