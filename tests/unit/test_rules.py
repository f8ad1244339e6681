"""The rule engine: each condition and its edges, first match, protections, keep_newest, explain."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quotatool.core.glob import compile_patterns, glob_to_regex, mime_matcher
from quotatool.core.headers import parse_header_fields
from quotatool.core.rules import (
    ActionKind,
    Defaults,
    Rule,
    RuleSet,
    compile_rules,
    explain,
    match_inventory,
)
from quotatool.model import (
    Attachment,
    FolderScan,
    FolderStatus,
    Inventory,
    MessageInfo,
    Uid,
    UidValidity,
)

NOW = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp())
DAY = 86400
SEEN = frozenset({"\\Seen"})


def msg(uid: int = 1, *, folder: str = "INBOX", age: int = 400 * DAY, **kw: object) -> MessageInfo:
    fields: dict[str, object] = {
        "folder": folder,
        "uid": Uid(uid),
        "size": 1000,
        "internaldate": NOW - age,
        "flags": SEEN,
    }
    fields.update(kw)
    return MessageInfo(**fields)  # type: ignore[arg-type]


def inventory(
    *folders: tuple[str, list[MessageInfo]], special: dict[str, str] | None = None
) -> Inventory:
    special = special or {}
    return Inventory(
        target="test:",
        scanned_at=NOW,
        folders=tuple(
            FolderScan(
                FolderStatus(
                    name=name,
                    uidvalidity=UidValidity(9),
                    messages=len(ms),
                    special_use=special.get(name),
                ),
                tuple(dataclasses.replace(m, folder=name) for m in ms),
            )
            for name, ms in folders
        ),
    )


def rule(name: str = "r", action: ActionKind = ActionKind.DELETE, **kw: object) -> Rule:
    return Rule(name=name, action=action, **kw)  # type: ignore[arg-type]


def winner(
    m: MessageInfo,
    *rules: Rule,
    defaults: Defaults | None = None,
    special_use: str | None = None,
) -> str | None:
    """Return the name of the rule that claims ``m``, checked two ways that must agree."""
    rs = RuleSet(rules=rules, defaults=defaults or Defaults())
    inv = inventory((m.folder, [m]), special={m.folder: special_use} if special_use else None)
    matches = match_inventory(inv, compile_rules(rs, NOW))
    by_match = matches[0].rule.rule.name if matches else None
    first = [e.rule for e in explain(m, rs, NOW, special_use=special_use) if e.matched]
    assert by_match == (first[0] if first else None)
    return by_match


# -- ages ----------------------------------------------------------------------------------------


def test_older_than_boundary_is_inclusive() -> None:
    r = rule(older_than=30 * DAY)
    assert winner(msg(age=30 * DAY), r) == "r"
    assert winner(msg(age=30 * DAY - 1), r) is None
    assert winner(msg(age=30 * DAY + 1), r) == "r"


def test_newer_than_boundary_is_exclusive() -> None:
    r = rule(newer_than=30 * DAY)
    assert winner(msg(age=30 * DAY), r) is None
    assert winner(msg(age=30 * DAY - 1), r) == "r"
    assert winner(msg(age=-5), r) == "r"  # clock skew: a message from the future is new


@given(age=st.integers(-10 * DAY, 1000 * DAY), limit=st.integers(1, 800 * DAY))
def test_older_and_newer_split_exactly(age: int, limit: int) -> None:
    old = rule("old", older_than=limit)
    new = rule("new", newer_than=limit)
    both = winner(msg(age=age), old), winner(msg(age=age), new)
    assert sorted(x for x in both if x) == (["old"] if age >= limit else ["new"])


def test_age_from_date_header_with_fallback() -> None:
    r = rule(older_than=100 * DAY)
    recent_header = msg(age=400 * DAY, date=NOW - DAY)
    assert winner(recent_header, r) == "r"
    assert winner(recent_header, r, defaults=Defaults(age_from="date")) is None
    no_header = msg(age=400 * DAY, date=None)
    assert winner(no_header, r, defaults=Defaults(age_from="date")) == "r"


# -- sizes ---------------------------------------------------------------------------------------


def test_size_boundaries() -> None:
    assert winner(msg(size=5000), rule(larger_than=5000)) == "r"
    assert winner(msg(size=4999), rule(larger_than=5000)) is None
    assert winner(msg(size=5000), rule(smaller_than=5000)) is None
    assert winner(msg(size=4999), rule(smaller_than=5000)) == "r"


# -- attachments ---------------------------------------------------------------------------------

PDF = Attachment("2", "application/pdf", "Rechnung.PDF", 3_000_000, 2_200_000, "base64")
JPG = Attachment("3", "image/jpeg", "Köln.jpg", 200_000, 150_000, "base64")
ZIP = Attachment("4", "application/zip", None, 9_000_000, 6_600_000, "base64")


def test_has_attachment() -> None:
    with_att = msg(attachments=(JPG,))
    assert winner(with_att, rule(has_attachment=True)) == "r"
    assert winner(msg(), rule(has_attachment=True)) is None
    assert winner(msg(), rule(has_attachment=False)) == "r"
    assert winner(with_att, rule(has_attachment=False)) is None
    # An unparsed structure says nothing about attachments: neither answer holds.
    assert winner(msg(unparsed=True), rule(has_attachment=False)) is None
    assert winner(msg(unparsed=True), rule(has_attachment=True)) is None


def test_attachment_size_and_type_hold_for_the_same_attachment() -> None:
    m = msg(attachments=(JPG, ZIP))  # a small image and a big zip
    assert winner(m, rule(attachment_larger_than=1_000_000)) == "r"
    assert winner(m, rule(attachment_types=("image/*",))) == "r"
    # No single attachment is both an image and larger than 1 MB.
    assert winner(m, rule(attachment_types=("image/*",), attachment_larger_than=1_000_000)) is None
    assert winner(m, rule(attachment_larger_than=9_000_000)) == "r"  # inclusive
    assert winner(m, rule(attachment_larger_than=9_000_001)) is None


@pytest.mark.parametrize(
    ("types", "expected"),
    [
        ((".pdf",), True),
        (("pdf",), True),  # without the dot
        (("PDF",), True),  # case-insensitive, and the filename says .PDF
        (("application/*",), True),
        (("application/pdf",), True),
        (("APPLICATION/PDF",), True),
        (("*/pdf",), True),
        ((".df",), False),  # an extension, not a suffix of one
        (("image/*", ".docx"), False),
        (("application/pd",), False),  # globs are anchored
    ],
)
def test_attachment_types(types: tuple[str, ...], expected: bool) -> None:
    assert (winner(msg(attachments=(PDF,)), rule(attachment_types=types)) == "r") is expected


def test_extension_needs_a_filename() -> None:
    assert winner(msg(attachments=(ZIP,)), rule(attachment_types=(".zip",))) is None
    assert winner(msg(attachments=(ZIP,)), rule(attachment_types=("application/zip",))) == "r"


# -- text ----------------------------------------------------------------------------------------


def test_glob_is_anchored_and_case_insensitive_regex_is_searched() -> None:
    m = msg(subject="Ihre Rechnung 2024-117")
    assert winner(m, rule(subject=("rechnung*",))) is None  # anchored: must match all of it
    assert winner(m, rule(subject=("*RECHNUNG*",))) == "r"
    assert winner(m, rule(subject=("Ihre Rechnung ????-???",))) == "r"
    assert winner(m, rule(subject=(r"re:rechnung \d+",))) == "r"  # searched, case-insensitive
    assert winner(m, rule(subject=(r"re:^rechnung",))) is None
    assert winner(m, rule(subject=("nope*", "ihre*"))) == "r"  # any pattern of a list


def test_brackets_are_literal_in_globs() -> None:
    m = msg(subject="[urgent] invoice")
    assert winner(m, rule(subject=("[urgent]*",))) == "r"
    assert winner(msg(subject="u"), rule(subject=("[urgent]",))) is None
    assert winner(msg(subject="urgent invoice"), rule(subject=("[urgent]*",))) is None


def test_rfc2047_decoded_subject_and_sender_are_what_match() -> None:
    fields = parse_header_fields(
        b"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <JM@Example.DE>\r\n"
        b"Subject: =?utf-8?b?R3LDvMOfZSBhdXMgTcO8bmNoZW4=?=\r\n"
        b"List-ID: =?utf-8?q?B=C3=BCcher?= <news.buecher.example>\r\n"
    )
    m = msg(
        subject=fields.subject,
        from_addr=fields.from_addr,
        from_name=fields.from_name,
        list_id=fields.list_id,
    )
    assert winner(m, rule(subject=("Grüße aus*",))) == "r"
    assert winner(m, rule(subject=("GRÜSSE*",))) is None  # casefolding ß is not lower-casing
    assert winner(m, rule(subject=("=?utf-8?*",))) is None  # the encoded form never matches
    assert winner(m, rule(from_=("jürgen*",))) == "r"  # display name
    assert winner(m, rule(from_=("*@example.de",))) == "r"  # address, lower-cased by the scan
    assert winner(m, rule(from_=("Jürgen Müller <jm@*>",))) == "r"  # Name <address>
    assert winner(m, rule(list_id=("Bücher*",))) == "r"


def test_to_matches_any_recipient() -> None:
    m = msg(to=("a@example.org", "team@example.com"))
    assert winner(m, rule(to=("team@*",))) == "r"
    assert winner(m, rule(to=("b@*",))) is None
    assert winner(msg(to=()), rule(to=("*",))) is None


def test_list_id_whole_value_or_bracketed_id() -> None:
    m = msg(list_id="Tech Weekly <weekly.techweekly.example.com>")
    assert winner(m, rule(list_id=("weekly.techweekly.example.com",))) == "r"
    assert winner(m, rule(list_id=("tech weekly*",))) == "r"
    assert winner(m, rule(list_id=("*",))) == "r"
    assert winner(msg(), rule(list_id=("*",))) is None  # no List-ID at all


def test_flags_and_not_flags_case_insensitive() -> None:
    m = msg(flags=frozenset({"\\Seen", "\\Answered", "$Junk"}))
    assert winner(m, rule(flags=("\\answered", "$junk"))) == "r"
    assert winner(m, rule(flags=("\\Answered", "\\Draft"))) is None
    assert winner(m, rule(not_flags=("$JUNK",))) is None
    assert winner(m, rule(not_flags=("\\Draft",))) == "r"


# -- folders -------------------------------------------------------------------------------------


def test_folder_globs_special_use_and_inbox() -> None:
    assert winner(msg(folder="Archive/2019"), rule(folders=("Archive/*",))) == "r"
    assert winner(msg(folder="archive/2019"), rule(folders=("Archive/*",))) is None
    assert winner(msg(folder="Archive/2019"), rule(exclude_folders=("Archive/*",))) is None
    assert winner(msg(folder="inbox"), rule(folders=("INBOX",))) == "r"  # RFC 3501 §5.1
    assert winner(msg(folder="Inbox/Sub"), rule(folders=("INBOX/*",))) == "r"
    assert winner(msg(folder="[Gmail]/Trash"), rule(folders=("[Gmail]/*",))) == "r"
    trash = msg(folder="Papierkorb")
    assert winner(trash, rule(folders=("\\Trash",)), special_use="\\Trash") == "r"
    assert winner(trash, rule(folders=("\\Trash",))) is None
    assert winner(trash, rule(exclude_folders=("\\Trash",)), special_use="\\Trash") is None
    assert winner(msg(folder="Überblick"), rule(folders=("Über*",))) == "r"


def test_protected_special_use_needs_naming() -> None:
    d = Defaults(protect_special_use=("\\Sent",))
    sent = msg(folder="Gesendet")
    assert winner(sent, rule("all"), defaults=d, special_use="\\Sent") is None
    assert (
        winner(sent, rule("glob", folders=("Gesendet",)), defaults=d, special_use="\\Sent") is None
    )
    assert winner(sent, rule("named", folders=("\\Sent",)), defaults=d, special_use="\\Sent") == (
        "named"
    )
    reasons = explain(sent, RuleSet((rule("all"),), d), NOW, special_use="\\Sent")
    assert reasons[0].reason == (
        "protected: folder 'Gesendet' is \\Sent (name \"\\Sent\" in folders to act on it)"
    )


# -- protections and order -----------------------------------------------------------------------


def test_first_matching_rule_wins() -> None:
    a = rule("a", older_than=1000 * DAY)
    b = rule("b", older_than=100 * DAY)
    c = rule("c")
    assert winner(msg(age=2000 * DAY), a, b, c) == "a"
    assert winner(msg(age=500 * DAY), a, b, c) == "b"
    assert winner(msg(age=5 * DAY), a, b, c) == "c"
    assert winner(msg(age=2000 * DAY), c, a, b) == "c"


def test_protections_fall_through_to_a_rule_that_opts_in() -> None:
    flagged = msg(flags=frozenset({"\\Seen", "\\Flagged"}))
    unseen = msg(flags=frozenset())
    plain = rule("plain")
    f_ok = rule("flagged ok", include_flagged=True)
    u_ok = rule("unseen ok", include_unseen=True)
    assert winner(flagged, plain) is None
    assert winner(flagged, plain, f_ok, u_ok) == "flagged ok"
    assert winner(unseen, plain, f_ok, u_ok) == "unseen ok"
    both = msg(flags=frozenset({"\\Flagged"}))
    assert winner(both, f_ok, u_ok) is None
    assert winner(both, f_ok, u_ok, rule("all", include_flagged=True, include_unseen=True)) == "all"
    off = Defaults(protect_flagged=False, protect_unseen=False)
    assert winner(both, plain, defaults=off) == "plain"


# -- keep_newest ---------------------------------------------------------------------------------


def _kept(inv: Inventory, *rules: Rule) -> list[tuple[str, int, bool]]:
    ms = match_inventory(inv, compile_rules(RuleSet(rules), NOW))
    return [(m.folder.name, m.message.uid, m.kept) for m in ms]


def test_keep_newest_per_folder_with_ties_by_uid() -> None:
    same = NOW - 500 * DAY
    inv = inventory(
        ("A", [msg(1, age=900 * DAY), msg(2, internaldate=same), msg(3, internaldate=same)]),
        ("B", [msg(7, age=800 * DAY), msg(8, age=700 * DAY)]),
    )
    got = _kept(inv, rule(keep_newest=1, older_than=DAY))
    # In A, UIDs 2 and 3 share the newest date: the higher UID (3) is newer and kept.
    assert got == [
        ("A", 1, False),
        ("A", 2, False),
        ("A", 3, True),
        ("B", 7, False),
        ("B", 8, True),
    ]
    got = _kept(inv, rule(keep_newest=2, older_than=DAY))
    assert [k for *_, k in got] == [False, True, True, True, True]


def test_keep_newest_per_sender_across_folders() -> None:
    t = NOW - 500 * DAY
    inv = inventory(
        ("A", [msg(5, internaldate=t, from_addr="x@e"), msg(6, age=900 * DAY, from_addr="y@e")]),
        ("B", [msg(5, internaldate=t, from_addr="x@e"), msg(9, age=950 * DAY, from_addr="y@e")]),
    )
    got = _kept(inv, rule(keep_newest=1, per="sender"))
    # x@e: same date and UID in A and B; the folder name sorting last (B) is newer.
    assert got == [("A", 5, False), ("A", 6, True), ("B", 5, True), ("B", 9, False)]


def test_keep_newest_counts_only_what_the_rule_claims() -> None:
    inv = inventory(
        (
            "A",
            [
                msg(1, age=900 * DAY),
                msg(2, age=800 * DAY),
                msg(3, age=10 * DAY),  # too young for the rule
                msg(4, age=700 * DAY, flags=frozenset({"\\Seen", "\\Flagged"})),  # protected
            ],
        ),
    )
    got = _kept(inv, rule("first", subject=("nothing",)), rule(keep_newest=1, older_than=100 * DAY))
    assert got == [("A", 1, False), ("A", 2, True)]


def test_kept_messages_do_not_fall_through() -> None:
    inv = inventory(("A", [msg(1, age=900 * DAY), msg(2, age=800 * DAY)]))
    got = match_inventory(
        inv, compile_rules(RuleSet((rule("keep", keep_newest=1), rule("later"))), NOW)
    )
    assert [(m.rule.rule.name, m.kept) for m in got] == [("keep", False), ("keep", True)]


# -- explain -------------------------------------------------------------------------------------


def test_explain_reasons() -> None:
    rs = RuleSet(
        (
            rule("old", older_than=365 * DAY),
            rule("news", list_id=("*",)),
            rule("big", larger_than=10_000),
            rule("flag", flags=("\\Answered",)),
            rule("sub", subject=("Re:*",)),
            rule("inbox only", folders=("INBOX",)),
            rule("kept", keep_newest=2),
            rule("last"),
        )
    )
    m = msg(folder="Work", age=20 * DAY, subject="Hallo", flags=frozenset({"\\Seen", "\\Flagged"}))
    got = [(e.rule, e.matched, e.reason) for e in explain(m, rs, NOW)]
    protected = "protected: the message is \\Flagged (set include_flagged = true to act on it)"
    assert got == [
        ("old", False, "older_than 365d: the message is 20d old"),
        ("news", False, "list_id: the message has no List-ID"),
        ("big", False, "larger_than 10000: the message has 1000 octets"),
        ("flag", False, "flags: \\Flagged \\Seen lacks \\answered"),
        ("sub", False, "subject: 'Hallo' matches none of ['Re:*']"),
        ("inbox only", False, "folders: folder 'Work' is not selected"),
        ("kept", False, protected),
        ("last", False, protected),
    ]
    m2 = dataclasses.replace(m, flags=SEEN)
    got2 = [(e.rule, e.matched, e.reason) for e in explain(m2, rs, NOW)]
    assert got2[3] == ("flag", False, "flags: \\Seen lacks \\answered")
    assert got2[6] == (
        "kept",
        True,
        "matches: delete; keep_newest = 2 per folder may keep it (see the plan)",
    )
    assert got2[7] == ("last", True, "matches: delete (an earlier rule already claims the message)")


# -- agreement and speed of the compiled form -----------------------------------------------------

_rules = st.builds(
    rule,
    name=st.sampled_from(["a", "b", "c", "d"]),
    older_than=st.none() | st.integers(1, 1000).map(lambda d: d * DAY),
    larger_than=st.none() | st.integers(0, 5000),
    subject=st.sampled_from([(), ("*x*",), ("re:^y",)]),
    flags=st.sampled_from([(), ("\\Answered",)]),
    include_flagged=st.booleans(),
    include_unseen=st.booleans(),
)
_messages = st.builds(
    msg,
    uid=st.integers(1, 50),
    age=st.integers(0, 1200).map(lambda d: d * DAY),
    size=st.integers(0, 6000),
    subject=st.sampled_from(["x", "yes", "abc", ""]),
    flags=st.sets(st.sampled_from(["\\Seen", "\\Flagged", "\\Answered"])).map(frozenset),
)


@settings(max_examples=200, deadline=None)
@given(m=_messages, rules=st.lists(_rules, min_size=1, max_size=5))
def test_compiled_match_agrees_with_explain(m: MessageInfo, rules: list[Rule]) -> None:
    rules = [dataclasses.replace(r, name=f"{r.name}{i}") for i, r in enumerate(rules)]
    winner(m, *rules)  # asserts the agreement itself


def test_glob_translation_is_linear_and_literal() -> None:
    assert glob_to_regex("a**b") == glob_to_regex("a*b")
    assert compile_patterns(["a.b"], ignore_case=False)("a.b")
    assert not compile_patterns(["a.b"], ignore_case=False)("axb")
    assert not compile_patterns([], ignore_case=False)("")
    m = mime_matcher(["image/*", ".pdf"])
    assert m("type:image/png")
    assert m("name:x.PDF")
    assert not m("name:x.pdf.exe")
