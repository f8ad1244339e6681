"""The rules file: every key parses to the right value, every broken file gives one exact line."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quotatool.config.rules_file import RULE_KEYS, load_rules, parse_rules
from quotatool.core.rules import ActionKind
from quotatool.errors import ConfigError, ExitCode

EXAMPLE = Path(__file__).resolve().parents[2] / "rules.example.toml"


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_rules(text, "rules.toml")
    assert info.value.exit_code is ExitCode.CONFIG
    return info.value


def _rule(body: str, *, name: str = "old news", head: str = "") -> str:
    return f'version = 1\n{head}\n[[rule]]\nname = "{name}"\n{body}\n'


# -- the example ---------------------------------------------------------------------------------


def test_example_is_valid_and_uses_every_action() -> None:
    rs = load_rules(EXAMPLE)
    assert [r.name for r in rs.rules] == [
        "old newsletters",
        "empty trash",
        "offload big attachments",
        "archive old mail",
    ]
    assert {r.action for r in rs.rules} == set(ActionKind)
    assert rs.defaults.timezone == "Europe/Berlin"
    assert rs.defaults.protect_special_use == ("\\Drafts",)
    assert rs.source == str(EXAMPLE)
    # Every rule's line points at its [[rule]] header.
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    assert all(lines[r.line - 1].strip() == "[[rule]]" for r in rs.rules)


def test_example_documents_every_rule_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    missing = [k for k in RULE_KEYS if k not in text]
    assert missing == []


# -- values --------------------------------------------------------------------------------------


def test_every_key_parses() -> None:
    rs = parse_rules(
        """
version = 1
[defaults]
protect_flagged = false
protect_unseen = false
protect_special_use = ["\\\\drafts", "\\\\Sent"]
age_from = "date"
timezone = "America/New_York"

[[rule]]
name = "all"
folders = ["INBOX", "\\\\trash"]
exclude_folders = "Archive/*"
older_than = "90d"
newer_than = "2y"
larger_than = "5MB"
smaller_than = 1000000000
has_attachment = true
attachment_larger_than = "1MiB"
attachment_types = ["image/*", ".pdf", "docx"]
from = "*@example.org"
to = ["me@*", 're:^team-\\d+@']
subject = "re:invoice"
list_id = "*"
flags = ["\\\\Seen", "$Junk"]
not_flags = "\\\\Flagged"
keep_newest = 5
per = "sender"
action = "offload"
offload_to = "s3://bucket/prefix"
include_flagged = true
include_unseen = true
include_signed = true
""",
        "r.toml",
    )
    d = rs.defaults
    assert (d.protect_flagged, d.protect_unseen) == (False, False)
    assert d.protect_special_use == ("\\Drafts", "\\Sent")
    assert d.age_from == "date"
    assert d.tz == ZoneInfo("America/New_York")
    (r,) = rs.rules
    assert r.line == 10
    assert r.folders == ("INBOX", "\\Trash")  # special uses spelt canonically
    assert r.exclude_folders == ("Archive/*",)
    assert (r.older_than, r.newer_than) == (90 * 86400, 2 * 365 * 86400)
    assert (r.larger_than, r.smaller_than) == (5_000_000, 1_000_000_000)
    assert r.has_attachment is True
    assert r.attachment_larger_than == 1024 * 1024
    assert r.attachment_types == ("image/*", ".pdf", "docx")
    assert r.from_ == ("*@example.org",)
    assert r.to == ("me@*", "re:^team-\\d+@")
    assert r.subject == ("re:invoice",)
    assert r.flags == ("\\Seen", "$Junk")
    assert r.not_flags == ("\\Flagged",)
    assert (r.keep_newest, r.per) == (5, "sender")
    assert (r.action, r.offload_to) == (ActionKind.OFFLOAD, "s3://bucket/prefix")
    assert (r.include_flagged, r.include_unseen, r.include_signed) == (True, True, True)


def test_defaults_when_omitted() -> None:
    rs = parse_rules(_rule('action = "delete"'), "r.toml")
    d = rs.defaults
    assert (d.protect_flagged, d.protect_unseen, d.protect_special_use) == (True, True, ())
    assert (d.age_from, d.timezone) == ("internaldate", "UTC")
    r = rs.rules[0]
    assert (r.include_flagged, r.include_unseen, r.include_signed) == (False, False, False)
    assert r.per == "folder"


@pytest.mark.parametrize(
    "dest", ["Archive/{year}", "mbox:~/Mail/{account}-{year}.mbox", "maildir:/srv/{folder}"]
)
def test_archive_templates(dest: str) -> None:
    rs = parse_rules(_rule(f'action = "archive"\narchive_to = "{dest}"'), "r.toml")
    assert rs.rules[0].archive_to == dest


@pytest.mark.parametrize("store", ["file:///var/offload", "s3://b/p", "photos", "my-store.1"])
def test_offload_stores(store: str) -> None:
    rs = parse_rules(_rule(f'action = "offload"\noffload_to = "{store}"'), "r.toml")
    assert rs.rules[0].offload_to == store


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"rules file .*nope.toml does not exist") as info:
        load_rules(tmp_path / "nope.toml")
    assert info.value.hint is not None


def test_load_names_the_path_as_given(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text("version = 1\n[[rule]]\nname = 'x'\naction = 'delete'\nolder_thn = '1d'\n")
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    assert info.value.message == (
        f'{path}:5: rule "x": older_thn: unknown key (did you mean older_than?)'
    )


# -- exact error messages ------------------------------------------------------------------------


def test_bad_duration_is_the_documented_example() -> None:
    text = "version = 1\n" + "\n" * 10 + '[[rule]]\nname = "old news"\nolder_than = "3 months"\n'
    err = _error(text + 'action = "delete"\n')
    assert err.message == (
        'rules.toml:14: rule "old news": older_than: expected a duration like 90d or 2y, '
        "got '3 months'"
    )
    assert err.hint == "months vary in length; write days or weeks, e.g. 90d"


def test_months_abbreviated() -> None:
    err = _error(_rule('older_than = "6mo"\naction = "delete"'))
    assert err.message == (
        "rules.toml:5: rule \"old news\": older_than: expected a duration like 90d or 2y, got '6mo'"
    )
    assert err.hint is not None
    assert "months" in err.hint


def test_capital_m_duration_is_ambiguous() -> None:
    err = _error(_rule('newer_than = "3M"\naction = "delete"'))
    assert err.message.endswith("newer_than: expected a duration like 90d or 2y, got '3M'")
    assert err.hint is not None
    assert "months" in err.hint


def test_bare_size_unit() -> None:
    err = _error(_rule('larger_than = "5M"\naction = "delete"'))
    assert err.message == (
        "rules.toml:5: rule \"old news\": larger_than: expected a size like 5MB or 5MiB, got '5M'"
    )
    assert err.hint == (
        "ambiguous size '5M': write 5MB (SI, powers of 1000) or 5MiB (IEC, powers of 1024)"
    )


def test_unknown_key() -> None:
    err = _error(_rule('action = "delete"\nolder_then = "1y"'))
    assert err.message == (
        'rules.toml:6: rule "old news": older_then: unknown key (did you mean older_than?)'
    )
    assert err.hint is not None
    assert err.hint.startswith("known keys: name, folders,")


def test_unknown_key_without_suggestion() -> None:
    err = _error(_rule('action = "delete"\nzzz = 1'))
    assert err.message == 'rules.toml:6: rule "old news": zzz: unknown key'


def test_unknown_top_level_and_defaults_keys() -> None:
    assert _error("version = 1\nrules = []\n").message == (
        "rules.toml:2: rules: unknown key (did you mean rule?)"
    )
    err = _error('version = 1\n[defaults]\nprotect_flaged = true\n[[rule]]\nname="a"\n')
    assert err.message == (
        "rules.toml:3: defaults: protect_flaged: unknown key (did you mean protect_flagged?)"
    )


def test_wrong_type() -> None:
    err = _error(_rule('action = "delete"\nhas_attachment = "yes"'))
    assert err.message == (
        "rules.toml:6: rule \"old news\": has_attachment: expected true or false, got 'yes'"
    )
    err = _error(_rule('action = "delete"\nkeep_newest = true'))
    assert err.message == (
        'rules.toml:6: rule "old news": keep_newest: expected a whole number of messages, '
        "1 or more, got true"
    )
    err = _error(_rule('action = "delete"\nfrom = 42'))
    assert err.message == (
        'rules.toml:6: rule "old news": from: expected a glob or "re:" regex or a list of them, '
        "got 42"
    )
    err = _error(_rule('action = "delete"\nolder_than = 90'))
    assert err.message.endswith("older_than: expected a duration like 90d or 2y, got 90")


def test_bad_regex() -> None:
    err = _error(_rule("action = \"delete\"\nsubject = ['ok*', 're:(unclosed']"))
    assert err.message == (
        'rules.toml:6: rule "old news": subject: expected a valid regular expression after re:, '
        "got 're:(unclosed'"
    )
    assert err.hint is not None
    assert "missing )" in err.hint


def test_duplicate_name() -> None:
    text = 'version = 1\n[[rule]]\nname = "a"\naction = "delete"\n\n[[rule]]\nname = "a"\n'
    err = _error(text + 'action = "delete"\n')
    assert err.message == (
        "rules.toml:7: rule \"a\": name: expected a name no other rule has, got 'a'"
    )
    assert err.hint == "line 3 uses it already"


def test_missing_archive_to() -> None:
    err = _error(_rule('action = "archive"'))
    assert err.message == (
        'rules.toml:3: rule "old news": archive_to: expected a destination for action = '
        '"archive", like "Archive/{year}" or "mbox:~/Mail/archive-{year}.mbox", got nothing'
    )


def test_offload_without_a_store_is_left_to_the_default_store() -> None:
    # The command line fills in the local default store (it depends on $XDG_DATA_HOME).
    rs = parse_rules(_rule('action = "offload"'), "rules.toml")
    assert (rs.rules[0].action, rs.rules[0].offload_to) == (ActionKind.OFFLOAD, None)


def test_missing_name_and_action() -> None:
    assert _error("version = 1\n[[rule]]\naction = 'delete'\n").message == (
        "rules.toml:2: rule #1: name: expected a rule name, got nothing"
    )
    assert _error(_rule("older_than = '1d'")).message == (
        'rules.toml:3: rule "old news": action: expected "delete", "archive" or "offload", '
        "got nothing"
    )
    assert _error(_rule("action = 'remove'")).message == (
        'rules.toml:5: rule "old news": action: expected "delete" or "archive" or "offload", '
        "got 'remove'"
    )


def test_keys_that_belong_to_another_action() -> None:
    err = _error(_rule('action = "delete"\narchive_to = "Archive"'))
    assert err.message == (
        'rules.toml:6: rule "old news": archive_to: expected only with action = "archive", '
        'got action = "delete"'
    )
    err = _error(_rule('action = "archive"\narchive_to = "A"\ninclude_signed = true'))
    assert err.message.endswith(
        'include_signed: expected only with action = "offload", got action = "archive"'
    )
    err = _error(_rule('action = "delete"\nper = "sender"'))
    assert err.message == (
        "rules.toml:6: rule \"old news\": per: expected only with keep_newest, got 'sender'"
    )


def test_template_placeholders() -> None:
    err = _error(_rule('action = "archive"\narchive_to = "Archive/{month}"'))
    assert err.message == (
        'rules.toml:6: rule "old news": archive_to: expected a template like "Archive/{year}" or '
        '"mbox:~/Mail/archive-{year}.mbox" using only {account}, {folder}, {year}, '
        "got 'Archive/{month}'"
    )
    err = _error(_rule('action = "archive"\narchive_to = "Archive/{year"'))
    assert "archive_to: expected a template like" in err.message
    err = _error(_rule('action = "archive"\narchive_to = "mbox:"'))
    assert err.message.endswith("archive_to: expected a path after mbox:, got 'mbox:'")


def test_bad_store_and_types_and_flags() -> None:
    err = _error(_rule('action = "offload"\noffload_to = "ftp://x/y"'))
    assert err.message.endswith(
        "offload_to: expected a store URL (file://PATH, s3://BUCKET/PREFIX) or a store name "
        "from the config file, got 'ftp://x/y'"
    )
    err = _error(_rule('action = "delete"\nattachment_types = ["image/*", "pdf files"]'))
    assert err.message.endswith(
        'attachment_types: expected a MIME type like "image/*" or an extension like ".pdf", '
        "got 'pdf files'"
    )
    err = _error(_rule('action = "delete"\nflags = ["\\\\Seen", "two words"]'))
    assert err.message.endswith("flags: expected a flag like \\Seen or $Junk, got 'two words'")


def test_bad_special_use_and_timezone() -> None:
    err = _error(_rule('action = "delete"\nfolders = "\\\\Bin"'))
    assert err.message == (
        'rules.toml:6: rule "old news": folders: expected a special-use name like \\Trash or '
        "\\Sent, got '\\\\Bin'"
    )
    err = _error(_rule('action = "delete"', head='[defaults]\ntimezone = "Mars/Olympus"'))
    assert err.message == (
        "rules.toml:3: defaults: timezone: expected an IANA time zone like Europe/Berlin or "
        "UTC, got 'Mars/Olympus'"
    )
    err = _error(_rule('action = "delete"', head='[defaults]\nage_from = "received"'))
    assert err.message == (
        'rules.toml:3: defaults: age_from: expected "internaldate" or "date", got \'received\''
    )


def test_contradicting_limits() -> None:
    err = _error(_rule('action = "delete"\nolder_than = "2y"\nnewer_than = "1y"'))
    assert err.message == (
        'rules.toml:7: rule "old news": newer_than: expected a limit above older_than (2y), '
        "got '1y'"
    )
    err = _error(_rule('action = "delete"\nlarger_than = "2MB"\nsmaller_than = "1MB"'))
    assert err.message.startswith('rules.toml:7: rule "old news": smaller_than: expected a limit')


def test_version() -> None:
    assert _error("[[rule]]\nname = 'a'\naction = 'delete'\n").message == (
        "rules.toml:1: version: expected version = 1 at the top, got nothing"
    )
    assert _error("version = 2\n[[rule]]\nname = 'a'\naction = 'delete'\n").message == (
        "rules.toml:1: version: expected 1, got 2"
    )
    assert _error("version = true\n").message == "rules.toml:1: version: expected 1, got true"


def test_no_rules_and_single_bracket_table() -> None:
    assert _error("version = 1\n").message == (
        "rules.toml:1: rule: expected at least one [[rule]] table, got nothing"
    )
    assert _error("version = 1\n[rule]\nname = 'a'\n").message == (
        "rules.toml:2: rule: expected [[rule]] tables, got a table"
    )


def test_toml_syntax_error_keeps_line_and_column() -> None:
    err = _error('version = 1\n[[rule]]\nname = "a"\naction "delete"\n')
    assert err.message == (
        "rules.toml:4:8: invalid TOML: Expected '=' after a key in a key/value pair"
    )
    err = _error('version = 1\n[[rule]]\nname = "unterminated\n')
    assert err.message.startswith("rules.toml:3:")
    assert "invalid TOML" in err.message


def test_lines_skip_multiline_strings() -> None:
    text = (
        'version = 1\n[[rule]]\nname = "a"\nsubject = """\n[[rule]]\nolder_than = 1\n"""\n'
        'action = "delete"\n[[rule]]\nname = "b"\naction = "delete"\nolder_than = "1 month"\n'
    )
    err = _error(text)
    assert err.message.startswith('rules.toml:12: rule "b": older_than:')


# -- the line finder against generated files -----------------------------------------------------

_VALID_LINES = [
    'older_than = "30d"',
    'larger_than = "1MB"',
    "has_attachment = true",
    'subject = "x*"',
    'flags = ["\\\\Seen"]',
    'to = """\n[[rule]]\nname = "fake"\n"""',
    "# a comment = 1",
]


@settings(max_examples=60, deadline=None)
@given(
    layout=st.lists(
        st.lists(st.sampled_from(_VALID_LINES), max_size=5, unique=True), min_size=1, max_size=6
    ),
    data=st.data(),
)
def test_error_points_at_the_bad_key(layout: list[list[str]], data: st.DataObject) -> None:
    bad_rule = data.draw(st.integers(0, len(layout) - 1))
    bad_pos = data.draw(st.integers(0, len(layout[bad_rule])))
    lines = ["version = 1", ""]
    expected = 0
    for i, body in enumerate(layout):
        lines += ["[[rule]]", f'name = "r{i}"', 'action = "delete"']
        for j, line in enumerate([*body, None]):
            if i == bad_rule and j == bad_pos:
                lines.append("older_thn = 1")
                expected = len(lines)
            if line is not None:
                lines += line.split("\n")
    err = _error("\n".join(lines) + "\n")
    assert err.message.startswith(f'rules.toml:{expected}: rule "r{bad_rule}": older_thn:')
