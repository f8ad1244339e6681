"""The rules file (``version = 1``): TOML in, a validated :class:`.RuleSet` out.

``rules.example.toml`` at the top of the repository documents every key. Every error is one
:class:`~quotatool.errors.ConfigError` in the GNU form ``FILE:LINE: rule "NAME": KEY: expected
..., got VALUE``, so editors can jump to it; unknown keys are errors, because a misspelt condition
(``older_then``) that was silently ignored would make a rule match everything.

Validation is plain code rather than pydantic: the errors must name the line of the key, which
needs our own line finder (below), and pydantic's messages ("Input should be a valid string")
would have to be rewritten one by one anyway.

Line numbers: :mod:`tomllib` reports positions only for syntax errors, not for keys of a valid
document. :class:`_Lines` therefore scans the text itself: it counts ``[[rule]]`` headers (the
n-th header opens the n-th rule table, in the order :mod:`tomllib` returns them), notes other
``[table]`` headers, and records the line of each ``key =`` within the current table. Lines
inside multi-line strings are skipped. Keys written as dotted keys or inside inline tables are not
found; the error then points at the table's header line instead.
"""

from __future__ import annotations

import difflib
import re
import string
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, NoReturn, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from quotatool.core.glob import PatternError, compile_patterns
from quotatool.core.rules import ActionKind, Defaults, Rule, RuleSet
from quotatool.errors import ConfigError
from quotatool.units import UnitError, parse_duration, parse_size

__all__ = ["DEFAULTS_KEYS", "RULE_KEYS", "load_rules", "parse_rules"]

VERSION = 1

_TOP_KEYS = ("version", "defaults", "rule")
DEFAULTS_KEYS = ("protect_flagged", "protect_unseen", "protect_special_use", "age_from", "timezone")
RULE_KEYS = (
    "name",
    "folders",
    "exclude_folders",
    "older_than",
    "newer_than",
    "larger_than",
    "smaller_than",
    "has_attachment",
    "attachment_larger_than",
    "attachment_types",
    "from",
    "to",
    "subject",
    "list_id",
    "flags",
    "not_flags",
    "keep_newest",
    "per",
    "action",
    "archive_to",
    "offload_to",
    "include_flagged",
    "include_unseen",
    "include_signed",
)
# RFC 6154 §2 and RFC 8457 §3 (\Important).
_SPECIAL_USES = (
    "\\All",
    "\\Archive",
    "\\Drafts",
    "\\Flagged",
    "\\Important",
    "\\Junk",
    "\\Sent",
    "\\Trash",
)
_PLACEHOLDERS = ("account", "folder", "year")
_STORE_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_STORE_SCHEMES = ("file://", "s3://")
# RFC 9051 §9: flag-keyword is an atom; atom-specials are ( ) { SP CTL % * " \ ].
_FLAG = re.compile(r'\A\\?[^(){ \x00-\x1f\x7f%*"\\\]]+\Z')
_EXTENSION = re.compile(r"\A\.?[A-Za-z0-9][A-Za-z0-9_+-]*\Z")
_MIME_GLOB = re.compile(r"\A[A-Za-z0-9*?][A-Za-z0-9.+*?_-]*/[A-Za-z0-9.+*?_-]+\Z")
_TOML_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*\Z")
_TOML_END = re.compile(r"\s*\(at end of document\)\s*\Z")

_Table = tuple[str, int]


class _Lines:
    """Where each key of a TOML document is (see the module docstring)."""

    def __init__(self, text: str) -> None:
        self.headers: dict[_Table, int] = {}
        self.keys: dict[_Table, dict[str, int]] = {}
        self.last = max(text.count("\n") + (0 if text.endswith("\n") else 1), 1)
        table: _Table = ("", 0)
        counts: dict[str, int] = {}
        in_string: str | None = None
        for lineno, line in enumerate(text.splitlines(), start=1):
            if in_string is not None:
                if line.count(in_string) % 2 == 1:
                    in_string = None
                continue
            stripped = line.strip()
            if stripped.startswith("[["):
                name = stripped[2:].split("]]", 1)[0].strip()
                table = (name, counts.get(name, 0))
                counts[name] = table[1] + 1
                self.headers[table] = lineno
            elif stripped.startswith("["):
                table = (stripped[1:].split("]", 1)[0].strip(), 0)
                self.headers[table] = lineno
            else:
                match = re.match(r"""\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*[=.]""", line)
                if match:
                    key = match.group(1).strip("\"'")
                    self.keys.setdefault(table, {}).setdefault(key, lineno)
            for quote in ('"""', "'''"):
                if line.count(quote) % 2 == 1:
                    in_string = quote
                    break

    def of(self, table: _Table, key: str | None = None) -> int:
        """Return the line of ``key`` in ``table`` (or the table's header, or line 1)."""
        if key is not None:
            line = self.keys.get(table, {}).get(key)
            if line is not None:
                return line
            if table == ("", 0) and (key, 0) in self.headers:  # `[rule]` written as a table
                return self.headers[(key, 0)]
        return self.headers.get(table, 1)


def _show(value: object) -> str:
    """Show a TOML value as the user wrote it (``'3 months'``, ``true``, ``[1, 2]``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "a table"
    return str(value)


class _Context:
    """Builds errors for one table of one file."""

    def __init__(self, source: str, lines: _Lines, table: _Table, label: str) -> None:
        self.source = source
        self.lines = lines
        self.table = table
        self.label = label

    def fail(self, key: str | None, message: str, *, hint: str | None = None) -> NoReturn:
        line = self.lines.of(self.table, key)
        where = f"{self.source}:{line}: {self.label}"
        if key is not None:
            where += f"{key}: "
        raise ConfigError(where + message, hint=hint)

    def expected(
        self, key: str, what: str, got: object, *, hint: str | None = None, missing: bool = False
    ) -> NoReturn:
        self.fail(key, f"expected {what}, got {'nothing' if missing else _show(got)}", hint=hint)

    def unknown(self, table: Mapping[str, Any], known: tuple[str, ...]) -> None:
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                self.fail(
                    key,
                    "unknown key" + (f" (did you mean {close[0]}?)" if close else ""),
                    hint="known keys: " + ", ".join(known),
                )


# -- value parsers -------------------------------------------------------------------------------


def _bool(ctx: _Context, key: str, value: object) -> bool:
    if not isinstance(value, bool):
        ctx.expected(key, "true or false", value)
    return value


def _strings(ctx: _Context, key: str, value: object, what: str) -> tuple[str, ...]:
    """Accept one string or a list of strings."""
    if isinstance(value, str):
        items: list[object] = [value]
    elif isinstance(value, list) and value:
        items = value
    else:
        ctx.expected(key, f"{what} or a list of them", value)
    for item in items:
        if not isinstance(item, str) or not item:
            ctx.expected(key, f"{what} or a list of them", value)
    return tuple(cast(list[str], items))


def _unit(ctx: _Context, key: str, value: object, parse: Callable[[Any], int], what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        ctx.expected(key, what, value)
    try:
        return parse(value)
    except UnitError as exc:
        standard = f"expected {what}, got {_show(value)}"
        text = str(exc)
        hint: str | None = text
        if text.startswith(standard):
            hint = text[len(standard) :].strip().removeprefix("(").removesuffix(")") or None
        ctx.fail(key, standard, hint=hint)


def _duration(ctx: _Context, key: str, value: object) -> int:
    seconds = _unit(ctx, key, value, parse_duration, "a duration like 90d or 2y")
    if seconds <= 0:
        ctx.expected(key, "a duration longer than 0", value)
    return seconds


def _size(ctx: _Context, key: str, value: object) -> int:
    return _unit(ctx, key, value, parse_size, "a size like 5MB or 5MiB")


def _patterns(ctx: _Context, key: str, value: object) -> tuple[str, ...]:
    patterns = _strings(ctx, key, value, 'a glob or "re:" regex')
    for pat in patterns:
        try:
            compile_patterns([pat], ignore_case=True)
        except PatternError as exc:
            ctx.expected(key, "a valid regular expression after re:", pat, hint=str(exc))
    return patterns


def _special_use(ctx: _Context, key: str, name: str) -> str:
    for known in _SPECIAL_USES:
        if name.lower() == known.lower():
            return known
    ctx.expected(
        key, "a special-use name like \\Trash or \\Sent", name, hint=" ".join(_SPECIAL_USES)
    )


def _folders(ctx: _Context, key: str, value: object) -> tuple[str, ...]:
    return tuple(
        _special_use(ctx, key, pat) if pat.startswith("\\") else pat
        for pat in _patterns(ctx, key, value)
    )


def _attachment_types(ctx: _Context, key: str, value: object) -> tuple[str, ...]:
    types = _strings(ctx, key, value, 'a MIME type like "image/*" or an extension like ".pdf"')
    for t in types:
        if not (_MIME_GLOB.match(t) or _EXTENSION.match(t)):
            ctx.expected(key, 'a MIME type like "image/*" or an extension like ".pdf"', t)
    return types


def _flags(ctx: _Context, key: str, value: object) -> tuple[str, ...]:
    flags = _strings(ctx, key, value, "a flag like \\Seen or $Junk")
    for f in flags:
        if not _FLAG.match(f):
            ctx.expected(key, "a flag like \\Seen or $Junk", f)
    return flags


def _template(ctx: _Context, key: str, value: str, example: str) -> None:
    try:
        fields = list(string.Formatter().parse(value))
    except ValueError as exc:
        ctx.expected(key, f"a template like {example}", value, hint=f"{exc}; write {{{{ for {{")
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in _PLACEHOLDERS or spec or conversion:
            ctx.expected(
                key,
                f"a template like {example} using only {{account}}, {{folder}}, {{year}}",
                value,
            )


def _archive_to(ctx: _Context, key: str, value: object) -> str:
    example = '"Archive/{year}" or "mbox:~/Mail/archive-{year}.mbox"'
    if not isinstance(value, str) or not value.strip():
        ctx.expected(key, f"a folder or mbox:/maildir: path like {example}", value)
    for prefix in ("mbox:", "maildir:"):
        if value.startswith(prefix) and not value[len(prefix) :].strip():
            ctx.expected(key, f"a path after {prefix}", value)
    _template(ctx, key, value, example)
    return value


def _offload_to(ctx: _Context, key: str, value: object) -> str:
    what = "a store URL (file://PATH, s3://BUCKET/PREFIX) or a store name from the config file"
    if not isinstance(value, str):
        ctx.expected(key, what, value)
    if value.startswith(_STORE_SCHEMES):
        scheme, _, rest = value.partition("://")
        if not rest.strip("/"):
            ctx.expected(key, f"a {scheme}:// URL with a path", value)
        return value
    if "://" in value or not _STORE_NAME.match(value):
        ctx.expected(key, what, value)
    return value


def _keep_newest(ctx: _Context, key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        ctx.expected(key, "a whole number of messages, 1 or more", value)
    return value


def _choice(ctx: _Context, key: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        shown = " or ".join(f'"{c}"' for c in choices)
        ctx.expected(key, shown, value)
    return str(value)


# -- tables --------------------------------------------------------------------------------------


def _defaults(ctx: _Context, table: object) -> Defaults:
    if not isinstance(table, dict):
        ctx.fail(None, f"expected a [defaults] table, got {_show(table)}")
    ctx.unknown(table, DEFAULTS_KEYS)
    protect_flagged = _bool(ctx, "protect_flagged", table.get("protect_flagged", True))
    protect_unseen = _bool(ctx, "protect_unseen", table.get("protect_unseen", True))
    special: tuple[str, ...] = ()
    if "protect_special_use" in table:
        value = table["protect_special_use"]
        if value == []:
            special = ()
        else:
            names = _strings(ctx, "protect_special_use", value, "a special-use name like \\Drafts")
            special = tuple(_special_use(ctx, "protect_special_use", n) for n in names)
    age_from = _choice(
        ctx, "age_from", table.get("age_from", "internaldate"), ("internaldate", "date")
    )
    tz_name = table.get("timezone", "UTC")
    what = "an IANA time zone like Europe/Berlin or UTC"
    if not isinstance(tz_name, str) or not tz_name:
        ctx.expected("timezone", what, tz_name)
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        ctx.expected("timezone", what, tz_name)
    return Defaults(
        protect_flagged=protect_flagged,
        protect_unseen=protect_unseen,
        protect_special_use=special,
        age_from=cast(Literal["internaldate", "date"], age_from),
        timezone=tz_name,
        tz=tz,
    )


def _rule(ctx: _Context, name: str, table: dict[str, Any], header_line: int) -> Rule:
    ctx.unknown(table, RULE_KEYS)
    get = table.get
    action_raw = get("action")
    if action_raw is None:
        ctx.expected("action", '"delete", "archive" or "offload"', None, missing=True)
    action = ActionKind(_choice(ctx, "action", action_raw, tuple(a.value for a in ActionKind)))

    archive_to = None
    if "archive_to" in table:
        if action is not ActionKind.ARCHIVE:
            ctx.fail(
                "archive_to", f'expected only with action = "archive", got action = "{action}"'
            )
        archive_to = _archive_to(ctx, "archive_to", table["archive_to"])
    elif action is ActionKind.ARCHIVE:
        ctx.expected(
            "archive_to",
            'a destination for action = "archive", like "Archive/{year}" or '
            '"mbox:~/Mail/archive-{year}.mbox"',
            None,
            missing=True,
        )
    offload_to = None
    if "offload_to" in table:
        if action is not ActionKind.OFFLOAD:
            ctx.fail(
                "offload_to", f'expected only with action = "offload", got action = "{action}"'
            )
        offload_to = _offload_to(ctx, "offload_to", table["offload_to"])
    # An offload rule without offload_to uses the local default store, which the command line
    # fills in (quotatool.cli.wiring.load_cli_rules): it depends on $XDG_DATA_HOME.
    include_signed = _bool(ctx, "include_signed", get("include_signed", False))
    if "include_signed" in table and action is not ActionKind.OFFLOAD:
        ctx.fail(
            "include_signed", f'expected only with action = "offload", got action = "{action}"'
        )

    def opt(key: str, parse: Callable[[_Context, str, object], Any]) -> Any:
        return parse(ctx, key, table[key]) if key in table else None

    older = opt("older_than", _duration)
    newer = opt("newer_than", _duration)
    if older is not None and newer is not None and older >= newer:
        ctx.fail(
            "newer_than",
            f"expected a limit above older_than ({table['older_than']}), "
            f"got {_show(table['newer_than'])}",
            hint="a message cannot be older than the first and newer than the second",
        )
    larger = opt("larger_than", _size)
    smaller = opt("smaller_than", _size)
    if larger is not None and smaller is not None and larger >= smaller:
        ctx.fail(
            "smaller_than",
            f"expected a limit above larger_than ({table['larger_than']}), "
            f"got {_show(table['smaller_than'])}",
        )
    keep = opt("keep_newest", _keep_newest)
    per = "folder"
    if "per" in table:
        if keep is None:
            ctx.fail("per", f"expected only with keep_newest, got {_show(table['per'])}")
        per = _choice(ctx, "per", table["per"], ("folder", "sender"))
    has_attachment = opt("has_attachment", _bool)
    return Rule(
        name=name,
        action=action,
        line=header_line,
        folders=opt("folders", _folders) or (),
        exclude_folders=opt("exclude_folders", _folders) or (),
        older_than=older,
        newer_than=newer,
        larger_than=larger,
        smaller_than=smaller,
        has_attachment=has_attachment,
        attachment_larger_than=opt("attachment_larger_than", _size),
        attachment_types=opt("attachment_types", _attachment_types) or (),
        from_=opt("from", _patterns) or (),
        to=opt("to", _patterns) or (),
        subject=opt("subject", _patterns) or (),
        list_id=opt("list_id", _patterns) or (),
        flags=opt("flags", _flags) or (),
        not_flags=opt("not_flags", _flags) or (),
        keep_newest=keep,
        per=cast(Literal["folder", "sender"], per),
        archive_to=archive_to,
        offload_to=offload_to,
        include_flagged=_bool(ctx, "include_flagged", get("include_flagged", False)),
        include_unseen=_bool(ctx, "include_unseen", get("include_unseen", False)),
        include_signed=include_signed,
    )


def _toml_error(source_name: str, text: str, exc: tomllib.TOMLDecodeError) -> ConfigError:
    message = str(exc)
    pos = _TOML_POS.search(message)
    if pos is not None:
        where = f"{source_name}:{pos.group(1)}:{pos.group(2)}"
        message = message[: pos.start()]
    elif _TOML_END.search(message):
        where = f"{source_name}:{_Lines(text).last}"
        message = _TOML_END.sub("", message)
    else:
        where = source_name
    return ConfigError(f"{where}: invalid TOML: {message}")


def parse_rules(text: str, source_name: str) -> RuleSet:
    """Validate a rules document; ``source_name`` is the file name errors start with.

    Raises:
        ConfigError: the first problem found, as ``FILE:LINE: rule "NAME": KEY: ...``.

    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(source_name, text, exc) from exc
    lines = _Lines(text)
    top = _Context(source_name, lines, ("", 0), "")
    top.unknown(doc, _TOP_KEYS)
    if "version" not in doc:
        top.fail(None, f"version: expected version = {VERSION} at the top, got nothing")
    if isinstance(doc["version"], bool) or doc["version"] != VERSION:
        top.expected("version", str(VERSION), doc["version"])
    defaults = _defaults(
        _Context(source_name, lines, ("defaults", 0), "defaults: "), doc.get("defaults", {})
    )
    raw_rules = doc.get("rule")
    if raw_rules is None:
        top.fail(None, "rule: expected at least one [[rule]] table, got nothing")
    if not isinstance(raw_rules, list) or not all(isinstance(r, dict) for r in raw_rules):
        top.expected("rule", "[[rule]] tables", raw_rules)
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for index, table in enumerate(cast(list[dict[str, Any]], raw_rules)):
        where: _Table = ("rule", index)
        header = lines.of(where)
        name = table.get("name")
        if not isinstance(name, str) or not name.strip():
            anon = _Context(source_name, lines, where, f"rule #{index + 1}: ")
            anon.expected("name", "a rule name", name, missing=name is None)
        ctx = _Context(source_name, lines, where, f'rule "{name}": ')
        if name in seen:
            ctx.expected(
                "name", "a name no other rule has", name, hint=f"line {seen[name]} uses it already"
            )
        seen[name] = lines.of(where, "name")
        rules.append(_rule(ctx, name, table, header))
    return RuleSet(rules=tuple(rules), defaults=defaults, source=source_name)


def load_rules(path: Path) -> RuleSet:
    """Read and validate the rules file at ``path``; errors name the path as given."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            f"rules file {path} does not exist",
            hint="start from rules.example.toml in the quotatool repository",
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read rules file {path}: {exc}") from exc
    return parse_rules(text, str(path))
