"""The plan: actions, bytes freed, skips, summary, projection, determinism and the JSON form."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quotatool.adapters.maildir import MaildirSource
from quotatool.adapters.sample import write_sample_maildir
from quotatool.config.rules_file import load_rules, parse_rules
from quotatool.core.plan import (
    SCHEMA,
    archive_destination,
    build_plan,
    is_signed,
    plan_from_json,
    plan_to_json,
    stub_size,
)
from quotatool.core.rules import ActionKind, Defaults, Rule, RuleSet
from quotatool.errors import ConfigError
from quotatool.model import (
    Archive,
    Attachment,
    Delete,
    FolderScan,
    FolderStatus,
    Inventory,
    MessageInfo,
    Offload,
    Plan,
    QuotaResource,
    Uid,
    UidValidity,
)
from quotatool.services.scan import scan

NOW = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp())
DAY = 86400
SEEN = frozenset({"\\Seen"})
EXAMPLE = Path(__file__).resolve().parents[2] / "rules.example.toml"

BIG_PDF = Attachment("2", "application/pdf", "Scan.pdf", 8_000_000, 5_800_000, "base64")
TINY = Attachment("3", "text/plain", "a.txt", 100, 100, "7bit")


def msg(uid: int, *, age: int = 400 * DAY, size: int = 1000, **kw: object) -> MessageInfo:
    fields: dict[str, object] = {
        "folder": "",
        "uid": Uid(uid),
        "size": size,
        "internaldate": NOW - age,
        "flags": SEEN,
    }
    fields.update(kw)
    return MessageInfo(**fields)  # type: ignore[arg-type]


def inventory(
    *folders: tuple[str, list[MessageInfo]],
    quota: tuple[QuotaResource, ...] | None = None,
    special: dict[str, str] | None = None,
) -> Inventory:
    special = special or {}
    return Inventory(
        target="imaps://alex@mail.example.org",
        scanned_at=NOW,
        folders=tuple(
            FolderScan(
                FolderStatus(name, UidValidity(100 + n), len(ms), special_use=special.get(name)),
                tuple(dataclasses.replace(m, folder=name) for m in ms),
            )
            for n, (name, ms) in enumerate(folders)
        ),
        quota=quota,
    )


def plan_of(inv: Inventory, *rules: Rule, defaults: Defaults | None = None) -> Plan:
    rs = RuleSet(rules=rules, defaults=defaults or Defaults())
    return build_plan(inv, rs, now=NOW, rules_file="rules.toml", account="alex")


def delete(name: str = "d", **kw: object) -> Rule:
    return Rule(name=name, action=ActionKind.DELETE, **kw)  # type: ignore[arg-type]


def archive(to: str, name: str = "a", **kw: object) -> Rule:
    return Rule(name=name, action=ActionKind.ARCHIVE, archive_to=to, **kw)  # type: ignore[arg-type]


def offload(name: str = "o", store: str = "file:///srv/offload", **kw: object) -> Rule:
    return Rule(name=name, action=ActionKind.OFFLOAD, offload_to=store, **kw)  # type: ignore[arg-type]


# -- actions and bytes ---------------------------------------------------------------------------


def test_delete_frees_the_message_size() -> None:
    inv = inventory(("INBOX", [msg(1, size=5000, modseq=77, subject="Hi", message_id="<a@b>")]))
    plan = plan_of(inv, delete())
    (a,) = plan.actions
    assert (a.rule, a.folder, a.uidvalidity, a.uid, a.size, a.frees_bytes) == (
        "d",
        "INBOX",
        100,
        1,
        5000,
        5000,
    )
    assert isinstance(a.action, Delete)
    assert (a.modseq, a.flags, a.subject, a.message_id) == (77, ("\\Seen",), "Hi", "<a@b>")
    assert plan.notes == ()


def test_archive_to_a_folder_frees_nothing_and_says_so() -> None:
    plan = plan_of(inventory(("INBOX", [msg(1, size=5000)])), archive("Archive/{year}"))
    (a,) = plan.actions
    assert a.action == Archive(destination="Archive/2025", local=False)
    assert a.frees_bytes == 0
    assert a.note == "archive to a folder in the same quota root frees nothing"
    assert plan.notes
    assert "same quota root" in plan.notes[0]


def test_archive_to_a_local_file_frees_the_size() -> None:
    rule = archive("mbox:~/Mail/{account}/{folder}-{year}.mbox")
    plan = plan_of(inventory(("Lists/Python", [msg(1, size=5000)])), rule)
    (a,) = plan.actions
    assert a.action == Archive(destination="mbox:~/Mail/alex/Lists.Python-2025.mbox", local=True)
    assert a.frees_bytes == 5000
    assert a.note is None
    assert plan.notes == ()


def test_archive_already_in_place_is_skipped() -> None:
    old = NOW - 400 * DAY
    inv = inventory(("Archive/2025", [msg(1, internaldate=old)]), ("INBOX", [msg(2)]))
    plan = plan_of(inv, archive("Archive/{year}"))
    assert [(a.folder, a.uid) for a in plan.actions] == [("INBOX", 2)]
    (s,) = plan.skipped
    assert (s.folder, s.uid, s.reason) == ("Archive/2025", 1, "already in its archive folder")


@pytest.mark.parametrize(
    ("tz", "year"),
    [("UTC", 2023), ("Europe/Berlin", 2024), ("America/New_York", 2023)],
)
def test_archive_year_in_the_rules_time_zone(tz: str, year: int) -> None:
    ts = int(datetime(2023, 12, 31, 23, 30, tzinfo=UTC).timestamp())
    d = Defaults(timezone=tz, tz=ZoneInfo(tz))
    plan = plan_of(inventory(("INBOX", [msg(1, internaldate=ts)])), archive("A/{year}"), defaults=d)
    assert plan.actions[0].action == Archive(destination=f"A/{year}", local=False)


def test_archive_year_from_the_date_header_when_asked() -> None:
    received = int(datetime(2024, 1, 2, tzinfo=UTC).timestamp())
    written = int(datetime(2019, 5, 5, tzinfo=UTC).timestamp())
    m = msg(1, internaldate=received, date=written)
    plan = plan_of(
        inventory(("INBOX", [m])), archive("A/{year}"), defaults=Defaults(age_from="date")
    )
    assert plan.actions[0].action == Archive(destination="A/2019", local=False)
    assert plan.actions[0].date == written


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        ("../../etc", "_.....etc"),
        ("a/b", "a.b"),
        (".hidden", "_hidden"),
        ("x\ny", "x_y"),
        ("", "_"),
    ],
)
def test_local_archive_paths_cannot_escape(folder: str, expected: str) -> None:
    got = archive_destination("maildir:/srv/{folder}", folder=folder, account="me", year=2020)
    assert got.destination == f"maildir:/srv/{expected}"
    assert "/" not in got.destination.removeprefix("maildir:/srv/")
    # IMAP folder templates keep the name as it is (the server resolves it).
    assert (
        archive_destination("A/{folder}", folder="a/b", account="", year=1).destination == "A/a/b"
    )


def test_offload_frees_the_parts_minus_their_stubs() -> None:
    m = msg(1, size=8_100_000, attachments=(BIG_PDF, TINY), content_type="multipart/mixed")
    plan = plan_of(inventory(("INBOX", [m])), offload())
    (a,) = plan.actions
    assert isinstance(a.action, Offload)
    (part,) = a.action.parts  # the tiny part would cost more as a stub than it saves
    assert (part.section, part.filename, part.content_type, part.size) == (
        "2",
        "Scan.pdf",
        "application/pdf",
        8_000_000,
    )
    assert part.stub_size == stub_size(BIG_PDF, "file:///srv/offload")
    assert a.frees_bytes == 8_000_000 - part.stub_size
    assert a.action.stub_size == part.stub_size


def test_offload_moves_only_the_attachments_the_rule_selects() -> None:
    jpg = Attachment("3", "image/jpeg", "x.jpg", 3_000_000, 2_000_000, "base64")
    m = msg(1, attachments=(BIG_PDF, jpg))
    plan = plan_of(inventory(("INBOX", [m])), offload(attachment_types=("image/*",)))
    assert [p.section for p in plan.actions[0].action.parts] == ["3"]  # type: ignore[union-attr]


def test_stub_size_formula() -> None:
    # The documented formula: note part + external-body wrapper, measured from the templates.
    base = stub_size(Attachment("2", "application/pdf", "a.pdf", 10, 7, "base64"), "file:///x")
    longer_name = stub_size(
        Attachment("2", "application/pdf", "ab.pdf", 10, 7, "base64"), "file:///x"
    )
    longer_url = stub_size(
        Attachment("2", "application/pdf", "a.pdf", 10, 7, "base64"), "file:///xy"
    )
    more_digits = stub_size(
        Attachment("2", "application/pdf", "a.pdf", 10, 70, "base64"), "file:///x"
    )
    assert longer_name - base == 1
    assert longer_url - base == 2  # the URL appears in the note and in the URL parameter
    assert more_digits - base == 1
    named = stub_size(Attachment("2", "application/pdf", "a.pdf", 10, 7, "base64"), "photos")
    assert named == stub_size(
        Attachment("2", "application/pdf", "a.pdf", 10, 7, "base64"), "file://" + "x" * 57
    )
    umlaut = stub_size(Attachment("2", "application/pdf", "ä.pdf", 10, 7, "base64"), "file:///x")
    assert umlaut - base == 1  # counted in UTF-8 octets
    # note + external-body pair inside their own multipart/mixed, with four X-Quotatool fields
    assert 800 < base < 1000


@pytest.mark.parametrize(
    ("ctype", "atts", "signed"),
    [
        ("multipart/signed", (), True),
        ("multipart/encrypted", (), True),
        ("application/pkcs7-mime", (), True),
        ("multipart/mixed", (Attachment("3", "application/pgp-signature", None, 500, 500),), True),
        ("multipart/mixed", (BIG_PDF,), False),
    ],
)
def test_is_signed(ctype: str, atts: tuple[Attachment, ...], signed: bool) -> None:
    assert is_signed(msg(1, content_type=ctype, attachments=atts)) is signed


def test_signed_messages_are_skipped_unless_the_rule_opts_in() -> None:
    m = msg(1, content_type="multipart/signed", attachments=(BIG_PDF,))
    plan = plan_of(inventory(("INBOX", [m])), offload())
    assert plan.actions == ()
    assert plan.skipped[0].reason == (
        "signed or encrypted (multipart/signed); set include_signed = true to offload anyway"
    )
    assert plan.summary.by_rule[0].skipped == 1
    plan = plan_of(inventory(("INBOX", [m])), offload(include_signed=True))
    assert len(plan.actions) == 1


def test_offload_skips() -> None:
    inv = inventory(
        ("INBOX", [msg(1, unparsed=True), msg(2), msg(3, attachments=(TINY,))]),
    )
    plan = plan_of(inv, offload())
    assert [s.reason for s in plan.skipped] == [
        "the message structure could not be parsed",
        "no attachment to offload",
        "every attachment is smaller than its stub would be",
    ]


def test_keep_newest_is_listed_as_skipped() -> None:
    inv = inventory(("N", [msg(1, age=500 * DAY), msg(2, age=450 * DAY), msg(3, age=420 * DAY)]))
    plan = plan_of(inv, delete(keep_newest=2))
    assert [a.uid for a in plan.actions] == [1]
    assert [(s.uid, s.reason) for s in plan.skipped] == [
        (2, "kept: one of the 2 newest per folder"),
        (3, "kept: one of the 2 newest per folder"),
    ]


# -- summary and quota ---------------------------------------------------------------------------


def test_summary_by_rule_and_folder_and_projected_quota() -> None:
    quota = (
        QuotaResource("User quota", "STORAGE", 900_000, 1_000_000),
        QuotaResource("User quota", "MESSAGE", 50, 100),
        QuotaResource("User quota", "X-ODD", 5, None),
    )
    inv = inventory(
        ("INBOX", [msg(1, size=100, list_id="<l>"), msg(2, size=200), msg(3, size=300)]),
        ("Trash", [msg(1, size=1000), msg(2, size=2000, flags=frozenset())]),
        quota=quota,
        special={"Trash": "\\Trash"},
    )
    plan = plan_of(
        inv,
        delete("lists", list_id=("*",)),
        delete("trash", folders=("\\Trash",), include_unseen=True),
        archive("Old/{year}", name="old"),
        delete("never", subject=("nothing",)),
    )
    s = plan.summary
    assert (s.messages, s.frees_bytes, s.skipped) == (5, 3100, 0)
    assert [(r.rule, r.action, r.messages, r.frees_bytes) for r in s.by_rule] == [
        ("lists", "delete", 1, 100),
        ("trash", "delete", 2, 3000),
        ("old", "archive", 2, 0),
        ("never", "delete", 0, 0),
    ]
    assert [(f.folder, f.messages, f.frees_bytes) for f in s.by_folder] == [
        ("INBOX", 3, 100),
        ("Trash", 2, 3000),
    ]
    assert plan.quota is not None
    assert [(q.resource, q.usage, q.projected_usage) for q in plan.quota] == [
        ("STORAGE", 900_000, 896_900),
        ("MESSAGE", 50, 47),  # three deleted; archived messages stay in the account
        ("X-ODD", 5, None),
    ]


def test_no_quota_no_projection() -> None:
    assert plan_of(inventory(("INBOX", [msg(1)])), delete()).quota is None


# -- determinism and JSON ------------------------------------------------------------------------


def _mixed_inventory() -> tuple[Inventory, tuple[Rule, ...]]:
    inv = inventory(
        (
            "INBOX",
            [
                msg(3, size=9_000_000, attachments=(BIG_PDF,), subject="Scan ☕", modseq=12),
                msg(7, size=4000, list_id="News <n.example>", from_addr="n@example.org"),
                msg(9, size=100, age=900 * DAY, message_id="<x@y>"),
            ],
        ),
        ("Trash", [msg(1, size=10)]),
        quota=(QuotaResource("", "STORAGE", 10**8, 2 * 10**8),),
    )
    rules = (
        delete("news", list_id=("*",)),
        offload(attachment_larger_than=1_000_000),
        archive("mbox:/srv/{account}/{year}.mbox", name="old", older_than=800 * DAY),
        delete("rest"),
    )
    return inv, rules


def test_same_inputs_same_json_byte_for_byte() -> None:
    inv, rules = _mixed_inventory()
    first = plan_to_json(plan_of(inv, *rules))
    again = plan_to_json(plan_of(inv, *rules))
    assert first == again
    rebuilt = inventory(
        *((fs.status.name, list(fs.messages)) for fs in inv.folders),
        quota=inv.quota,
    )
    assert plan_to_json(plan_of(rebuilt, *rules)) == first


def test_json_document() -> None:
    inv, rules = _mixed_inventory()
    doc = json.loads(plan_to_json(plan_of(inv, *rules)))
    assert list(doc) == [
        "schema",
        "target",
        "account",
        "rules_file",
        "created_at",
        "quota",
        "actions",
        "skipped",
        "summary",
        "notes",
    ]
    assert doc["schema"] == SCHEMA == "quotatool.plan/1"
    assert doc["created_at"] == "2026-06-01T00:00:00Z"
    assert doc["target"] == "imaps://alex@mail.example.org"
    actions = {a["uid"]: a for a in doc["actions"] if a["folder"] == "INBOX"}
    assert {"rule", "action", "folder", "uidvalidity", "uid", "size", "frees_bytes"} <= set(
        actions[3]
    )
    assert actions[3]["action"] == "offload"
    assert actions[3]["modseq"] == 12
    assert actions[3]["subject"] == "Scan ☕"
    assert actions[3]["parts"][0]["filename"] == "Scan.pdf"
    assert actions[9]["destination"] == "mbox:/srv/alex/2023.mbox"
    s = doc["summary"]
    assert s["frees_bytes"] == sum(a["frees_bytes"] for a in doc["actions"])
    assert {"rule", "action", "messages", "frees_bytes"} <= set(s["by_rule"][0])


def test_json_round_trip() -> None:
    inv, rules = _mixed_inventory()
    plan = plan_of(inv, *rules)
    assert plan_from_json(plan_to_json(plan)) == plan
    empty = plan_of(inventory(("INBOX", [])), delete())
    assert plan_from_json(plan_to_json(empty)) == empty


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (
            lambda d: d.update(schema="quotatool.plan/2"),
            "plan: schema: expected 'quotatool.plan/1'",
        ),
        (
            lambda d: d["actions"][0].pop("uid"),
            "plan: actions[0].uid: expected an integer, got None",
        ),
        (lambda d: d["actions"][0].update(uid=True), "plan: actions[0].uid: expected an integer"),
        (lambda d: d["actions"][0].update(action="burn"), "plan: actions[0].action: expected"),
        (lambda d: d.update(created_at="yesterday"), "plan: created_at: expected a date"),
        (lambda d: d["summary"].pop("by_rule"), "plan: summary.by_rule: expected a list"),
    ],
)
def test_plan_from_json_names_the_broken_key(mangle: object, message: str) -> None:
    inv, rules = _mixed_inventory()
    doc = json.loads(plan_to_json(plan_of(inv, *rules)))
    mangle(doc)  # type: ignore[operator]
    with pytest.raises(ConfigError) as info:
        plan_from_json(json.dumps(doc))
    assert info.value.message.startswith(message)


def test_plan_from_json_rejects_non_json() -> None:
    with pytest.raises(ConfigError, match=r"^plan: line 1 column 1: invalid JSON"):
        plan_from_json("not json")


# -- properties ----------------------------------------------------------------------------------

_flags = st.sets(st.sampled_from(["\\Seen", "\\Flagged", "\\Answered", "$Junk"])).map(frozenset)
_attachments = st.lists(
    st.builds(
        Attachment,
        section=st.sampled_from(["2", "3", "4"]),
        content_type=st.sampled_from(
            ["image/jpeg", "application/pdf", "application/pgp-signature"]
        ),
        filename=st.none() | st.sampled_from(["a.pdf", "b.jpg"]),
        size=st.integers(0, 5_000_000),
        decoded_size=st.integers(0, 4_000_000),
    ),
    max_size=3,
    unique_by=lambda a: a.section,
).map(tuple)
_message = st.builds(
    msg,
    uid=st.integers(1, 10_000),
    age=st.integers(0, 3000).map(lambda d: d * DAY),
    size=st.integers(0, 10_000_000),
    flags=_flags,
    list_id=st.none() | st.just("<l.example>"),
    attachments=_attachments,
    content_type=st.sampled_from(["text/plain", "multipart/mixed", "multipart/signed"]),
)
_folder = st.tuples(
    st.sampled_from(["INBOX", "Sent", "Trash", "Archive/2020"]),
    st.lists(_message, max_size=12, unique_by=lambda m: m.uid),
)
_rule = st.one_of(
    st.builds(
        delete,
        older_than=st.none() | st.integers(1, 2000).map(lambda d: d * DAY),
        list_id=st.sampled_from([(), ("*",)]),
        include_flagged=st.booleans(),
        include_unseen=st.booleans(),
        keep_newest=st.none() | st.integers(1, 3),
        folders=st.sampled_from([(), ("\\Trash",), ("INBOX",)]),
    ),
    st.builds(
        archive,
        st.sampled_from(["Archive/{year}", "maildir:/srv/{folder}"]),
        larger_than=st.none() | st.integers(0, 5_000_000),
        include_unseen=st.booleans(),
    ),
    st.builds(
        offload,
        attachment_larger_than=st.none() | st.integers(0, 3_000_000),
        include_signed=st.booleans(),
        include_flagged=st.booleans(),
    ),
)


@settings(max_examples=100, deadline=None)
@given(
    folders=st.lists(_folder, min_size=1, max_size=4, unique_by=lambda f: f[0]),
    rules=st.lists(_rule, min_size=1, max_size=5),
    protect_sent=st.booleans(),
)
def test_plan_properties(
    folders: list[tuple[str, list[MessageInfo]]], rules: list[Rule], protect_sent: bool
) -> None:
    named = tuple(dataclasses.replace(r, name=f"{r.action.value} {i}") for i, r in enumerate(rules))
    by_name = {r.name: r for r in named}
    inv = inventory(
        *folders,
        quota=(QuotaResource("", "STORAGE", 10**9, None),),
        special={"Trash": "\\Trash", "Sent": "\\Sent"},
    )
    defaults = Defaults(protect_special_use=("\\Sent",) if protect_sent else ())
    plan = plan_of(inv, *named, defaults=defaults)
    # Never a protected message.
    for a in plan.actions:
        rule = by_name[a.rule]
        assert rule.include_flagged or "\\Flagged" not in a.flags
        assert rule.include_unseen or "\\Seen" in a.flags
        assert not (protect_sent and a.folder == "Sent")
        if isinstance(a.action, Offload):
            assert a.frees_bytes > 0
            assert rule.include_signed or not any(
                p.content_type == "application/pgp-signature" for p in a.action.parts
            )
    # Never a message twice, in actions and skipped together.
    keys = [(a.folder, a.uid) for a in plan.actions] + [(s.folder, s.uid) for s in plan.skipped]
    assert len(keys) == len(set(keys))
    # Sums agree.
    s = plan.summary
    assert s.messages == len(plan.actions)
    assert s.frees_bytes == sum(a.frees_bytes for a in plan.actions)
    assert s.frees_bytes == sum(r.frees_bytes for r in s.by_rule)
    assert s.frees_bytes == sum(f.frees_bytes for f in s.by_folder)
    assert s.messages == sum(r.messages for r in s.by_rule) == sum(f.messages for f in s.by_folder)
    assert s.skipped == len(plan.skipped) == sum(r.skipped for r in s.by_rule)
    assert plan.quota is not None
    assert plan.quota[0].projected_usage == max(10**9 - s.frees_bytes, 0)
    # Deterministic, and the JSON form round-trips.
    text = plan_to_json(plan)
    assert text == plan_to_json(plan_of(inv, *named, defaults=defaults))
    assert plan_from_json(text) == plan


# -- the example rules over the sample mailbox ---------------------------------------------------


def test_example_rules_act_on_the_sample_mailbox(tmp_path: Path) -> None:
    now = int(datetime(2026, 11, 28, tzinfo=UTC).timestamp())
    sample = write_sample_maildir(tmp_path / "Maildir", now=now)
    inv = scan(MaildirSource(sample.path), now=now)
    rs = load_rules(EXAMPLE)
    plan = build_plan(inv, rs, now=now, rules_file="rules.example.toml", account="demo")
    by_rule = {r.rule: r for r in plan.summary.by_rule}
    assert all(r.messages > 0 for r in by_rule.values()), by_rule
    assert by_rule["old newsletters"].frees_bytes > 1_000_000
    assert by_rule["archive old mail"].frees_bytes == 0
    assert by_rule["offload big attachments"].frees_bytes > 20 * 1024 * 1024
    kept = [s for s in plan.skipped if s.rule == "old newsletters"]
    assert len(kept) == 3 * 4  # three per newsletter, four newsletters
    for a in plan.actions:
        if a.rule == "empty trash":
            assert a.folder == "Trash"
        else:
            assert "\\Flagged" not in a.flags
            assert "\\Seen" in a.flags


def test_parse_rules_into_a_plan_end_to_end() -> None:
    rs = parse_rules(
        'version = 1\n[[rule]]\nname = "big"\nlarger_than = "1KB"\naction = "delete"\n', "r.toml"
    )
    inv = inventory(("INBOX", [msg(1, size=999), msg(2, size=1000)]))
    plan = build_plan(inv, rs, now=NOW, rules_file="r.toml", account="a")
    assert [a.uid for a in plan.actions] == [2]
    assert plan.rules_file == "r.toml"
