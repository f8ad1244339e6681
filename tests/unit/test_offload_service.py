"""The offload sequence over fakes of its ports: what reaches the mailbox, and when not."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from quotatool.core.splice import MARKER_FIELD, marker_of
from quotatool.core.stub import find_stubs
from quotatool.model import (
    Offload,
    OffloadPart,
    Plan,
    PlannedAction,
    PlanSummary,
    QuotaResource,
    StoredObject,
    Uid,
    UidValidity,
)
from quotatool.ports_write import (
    AppendedMessage,
    JournalRecord,
    MessageState,
    ObjectMismatchError,
    OpenedFolder,
)
from quotatool.services.execute import execute_plan
from quotatool.services.offload import (
    Replacement,
    crlf_clean,
    op_id_for,
    replace_messages,
    store_root,
)
from tests.mailgen import make_message

UIDVALIDITY = UidValidity(9)
PDF = bytes(range(256)) * 200


def _raw(n: int = 1) -> bytes:
    return make_message(
        subject=f"m{n}",
        attachments=[("a.pdf", "application/pdf", PDF)],
        message_id=f"<m{n}@t>",
    )


@dataclass
class Box:
    """One IMAP folder in memory; mutating calls are logged upper-case."""

    messages: dict[int, tuple[bytes, set[str]]]
    log: list[str] = field(default_factory=list)
    next_uid: int = 100
    merge: bool = False
    """Behave like Gmail merging by Message-ID: APPEND returns the original's UID."""
    drop_append_reply: bool = False

    def describe(self) -> str:
        return "fake"

    def capabilities(self) -> frozenset[str]:
        return frozenset({"UIDPLUS", "CONDSTORE"})

    def quota(self) -> tuple[QuotaResource, ...] | None:
        return None

    def select(self, folder: str) -> OpenedFolder:
        return OpenedFolder(folder, UIDVALIDITY, self.next_uid)

    def examine(self, folder: str) -> OpenedFolder:
        return self.select(folder)

    def status(self, folder: str) -> OpenedFolder | None:
        return self.select(folder)

    def create(self, folder: str) -> None:
        raise AssertionError("not used")

    def states(self, uids: Sequence[Uid]) -> dict[Uid, MessageState]:
        return {
            Uid(u): MessageState(Uid(u), len(raw), frozenset(flags), 1_600_000_000, None, 5)
            for u, (raw, flags) in self.messages.items()
            if u in uids
        }

    def states_from(self, first_uid: int) -> dict[Uid, MessageState]:
        raise AssertionError("not used")

    def mark_deleted(self, uids: Sequence[Uid], unchanged_since: int | None) -> set[Uid]:
        self.log.append(f"STORE {sorted(uids)}")
        for u in uids:
            self.messages[u][1].add("\\Deleted")
        return set()

    def uid_expunge(self, uids: Sequence[Uid]) -> None:
        assert uids
        self.log.append(f"EXPUNGE {sorted(uids)}")
        for u in uids:
            if u in self.messages and "\\Deleted" in self.messages[u][1]:
                del self.messages[u]

    def present(self, uids: Sequence[Uid]) -> set[Uid]:
        return {u for u in uids if u in self.messages}

    def move(self, uids: Sequence[Uid], destination: str) -> dict[Uid, Uid]:
        raise AssertionError("not used")

    def copy(self, uids: Sequence[Uid], destination: str) -> dict[Uid, Uid]:
        raise AssertionError("not used")

    def fetch_raw(self, uids: Sequence[Uid]) -> dict[Uid, bytes]:
        return {Uid(u): self.messages[u][0] for u in uids if u in self.messages}

    def append(
        self, folder: str, raw: bytes, flags: frozenset[str], internaldate: int
    ) -> AppendedMessage:
        self.log.append("APPEND")
        if self.merge:
            return AppendedMessage(UIDVALIDITY, Uid(1))
        uid = self.next_uid
        self.next_uid += 1
        self.messages[uid] = (raw, set(flags))
        if self.drop_append_reply:
            raise ConnectionError("reply lost")
        return AppendedMessage(UIDVALIDITY, Uid(uid))

    def search_header(self, name: str, value: str) -> list[Uid]:
        assert name == MARKER_FIELD
        return sorted(Uid(u) for u, (raw, _) in self.messages.items() if value.encode() in raw)

    def close(self) -> None:
        pass


@dataclass
class Journal:
    records: list[JournalRecord] = field(default_factory=list)

    def write(self, records: Sequence[JournalRecord]) -> None:
        self.records.extend(records)

    def latest(
        self, folder: str, uidvalidity: UidValidity, uids: Sequence[Uid]
    ) -> dict[Uid, JournalRecord]:
        return {r.uid: r for r in self.records if r.uid in uids}

    def pending_local(self) -> list[JournalRecord]:
        return []


@dataclass
class Store:
    objects: dict[str, bytes] = field(default_factory=dict)
    corrupt: bool = False

    def describe(self) -> str:
        return "memory"

    def url_for(self, key: str) -> str:
        return f"mem://store/{key}"

    def put(self, key: str, data: Any, *, sha256: str, size: int) -> StoredObject:
        if self.corrupt:
            raise ObjectMismatchError(f"stored object {key} does not match")
        assert hashlib.sha256(data).hexdigest() == sha256
        self.objects[key] = data
        return StoredObject(key, size, sha256, self.url_for(key))

    def get(self, key: str) -> Iterator[bytes]:
        yield self.objects[key]

    def head(self, key: str) -> int | None:
        return len(self.objects[key]) if key in self.objects else None

    def verify(self, key: str, *, sha256: str, size: int) -> StoredObject:
        return StoredObject(key, size, sha256, self.url_for(key))


def _plan(box: Box, uids: Sequence[int]) -> Plan:
    actions = tuple(
        PlannedAction(
            rule="r",
            action=Offload(
                store="mem",
                parts=(OffloadPart("2", "a.pdf", "application/pdf", 60_000, 900),),
            ),
            folder="INBOX",
            uidvalidity=UIDVALIDITY,
            uid=Uid(u),
            size=len(box.messages[u][0]),
            frees_bytes=60_000,
            flags=("\\Seen",),
            modseq=5,
        )
        for u in uids
    )
    return Plan(
        target="fake",
        account="a",
        rules_file="r.toml",
        created_at=1_700_000_000,
        quota=None,
        actions=actions,
        skipped=(),
        summary=PlanSummary(len(actions), 60_000 * len(actions), (), ()),
    )


def _run(box: Box, store: Store, journal: Journal, uids: Sequence[int]) -> Any:
    return execute_plan(
        _plan(box, uids), box, journal, None,  # type: ignore[arg-type]
        stores=lambda _: (store, None),
    )  # fmt: skip


def test_offload_appends_verifies_and_only_then_expunges() -> None:
    box = Box({1: (_raw(1), {"\\Seen"}), 2: (_raw(2), {"\\Seen"})})
    store, journal = Store(), Journal()
    result = _run(box, store, journal, [1, 2])
    assert [o.status for o in result.outcomes] == ["done", "done"]
    assert box.log == ["APPEND", "APPEND", "STORE [1, 2]", "EXPUNGE [1, 2]"]
    assert [r.state for r in journal.records] == ["intent"] * 2 + ["appended"] * 2 + ["done"] * 2
    assert sorted(box.messages) == [100, 101]
    for raw, flags in box.messages.values():
        assert flags == {"\\Seen"}
        (ref,) = find_stubs(raw)
        assert store.objects[ref.key] == PDF
    # The same attachment twice is stored once (content-addressed).
    assert len(store.objects) == 1


def test_an_object_that_does_not_verify_stops_that_message_before_any_append() -> None:
    box = Box({1: (_raw(1), {"\\Seen"})})
    result = _run(box, Store(corrupt=True), Journal(), [1])
    (outcome,) = result.outcomes
    assert outcome.status == "failed"
    assert outcome.reason.endswith("the message was not rewritten")
    assert box.log == []


def test_a_merged_append_never_lets_the_original_go() -> None:
    # SAFETY.md fact 5: Gmail may fold the APPEND into the original by Message-ID.
    box = Box({1: (_raw(1), {"\\Seen"})}, merge=True)
    result = _run(box, Store(), Journal(), [1])
    (outcome,) = result.outcomes
    assert outcome.status == "failed"
    assert "not what was sent" in (outcome.reason or "")
    assert "STORE" not in " ".join(box.log)
    assert list(box.messages) == [1]


def test_signed_parts_are_left_alone_unless_the_plan_opts_in() -> None:
    signed = (
        b"Content-Type: multipart/signed; boundary=s; protocol=x\r\n\r\n--s\r\n"
        b"Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: text/plain\r\n"
        b"\r\nhi\r\n--m\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64"
        b"\r\n\r\nAAAA\r\n--m--\r\n--s\r\nContent-Type: application/pgp-signature\r\n\r\nsig\r\n"
        b"--s--\r\n"
    )
    box = Box({1: (signed, {"\\Seen"})})
    plan = _plan(box, [1])
    act = plan.actions[0]
    part = OffloadPart("1.2", None, "application/pdf", 4, 1)
    plan = Plan(**{**{f: getattr(plan, f) for f in plan.__dataclass_fields__}, "actions": (
        PlannedAction(**{**{f: getattr(act, f) for f in act.__dataclass_fields__},
                         "action": Offload("mem", (part,))}),)})  # fmt: skip
    result = execute_plan(plan, box, Journal(), None, stores=lambda _: (Store(), None))  # type: ignore[arg-type]
    (outcome,) = result.outcomes
    assert outcome.status == "skipped"
    assert "inside multipart/signed" in (outcome.reason or "")
    assert box.log == []


def test_a_lost_append_reply_is_resolved_by_the_marker_not_a_second_append() -> None:
    box = Box({1: (_raw(1), {"\\Seen"})}, drop_append_reply=True)
    journal, store = Journal(), Store()
    with pytest.raises(ConnectionError):
        _run(box, store, journal, [1])
    assert journal.records[-1].state == "intent"
    box.drop_append_reply = False
    box.log.clear()
    result = _run(box, store, journal, [1])
    (outcome,) = result.outcomes
    assert (outcome.status, outcome.resumed, outcome.destination_uid) == ("done", True, 100)
    assert "APPEND" not in box.log
    assert list(box.messages) == [100]


def test_extra_copies_with_the_same_marker_are_removed() -> None:
    raw = _raw(1)
    box = Box({1: (raw, {"\\Seen"})})
    store = Store()
    op = op_id_for("0123456789abcdef", "INBOX", 9, 1)
    journal: list[Any] = []
    first = Replacement(Uid(1), box.states([Uid(1)])[Uid(1)], op, raw, resume=False)
    # Two earlier copies carrying this operation's marker (say, two lost replies).
    marked = raw.replace(b"\r\n\r\n", f"\r\n{MARKER_FIELD}: {op}\r\n\r\n".encode(), 1)
    box.messages[50] = (marked, set())
    box.messages[51] = (marked, set())
    first.resume = True
    out = replace_messages(
        box,
        box.select("INBOX"),
        [first],
        journal=journal.append,
        check=lambda rep, copy: None if marker_of(copy) == rep.op_id else "no",
        unchanged_since=None,
    )
    assert out[Uid(1)].new_uid == 50
    assert sorted(box.messages) == [50]
    assert store.objects == {}


def test_helpers() -> None:
    op = op_id_for("0123456789abcdef", "INBOX", 1, 2)
    assert len(op) == 33
    assert op != op_id_for("0123456789abcdef", "INBOX", 1, 3)
    assert crlf_clean(b"a\r\nb\r\n")
    assert not crlf_clean(b"a\nb")
    assert not crlf_clean(b"a\rb")
    assert store_root("s3://b/p/sha256/aa/bb/x", "sha256/aa/bb/x") == "s3://b/p"
