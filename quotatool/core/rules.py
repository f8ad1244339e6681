r"""Rules: which messages a clean run acts on. Pure; ``now`` is a parameter.

A :class:`RuleSet` is the validated rules file (``config/rules_file.py`` builds it).
:func:`compile_rules` turns it into predicates that are cheap per message, and
:func:`match_inventory` assigns every message to the first rule that matches it.

Semantics (the rules file documents the same):

* **First matching rule wins.** A message is tested against the rules in file order; the first
  rule whose folder filter, conditions and protections all hold claims it. Later rules never
  see it.
* **Protections are conditions.** A ``\Flagged`` or unseen message (or one in a folder whose
  special use ``[defaults] protect_special_use`` names) does not match a rule that has not opted
  in (``include_flagged``, ``include_unseen``, or naming that special use in ``folders``), so it
  falls through to later rules, which may opt in.
* **Age and size limits split exactly:** ``older_than = D`` holds when the message is at least
  ``D`` old (``date <= now - D``), ``newer_than = D`` when it is younger (``date > now - D``);
  ``larger_than = S`` holds for ``size >= S``, ``smaller_than = S`` for ``size < S``. So the same
  limit on both sides splits messages into two halves with nothing lost or counted twice.
* **keep_newest = N** keeps the N newest messages the rule claims, per folder (or per sender with
  ``per = "sender"``). Kept messages stay claimed by the rule, so no later rule acts on them.
  Newest means the latest date (see ``age_from``); equal dates: the higher UID is newer; equal
  dates and UIDs (different folders, per sender): the folder name sorting last is newer.
* **Attachment conditions hold per attachment:** ``attachment_larger_than`` and
  ``attachment_types`` must both hold for the same attachment; an offload moves exactly those.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from enum import StrEnum
from operator import attrgetter
from typing import Any, Literal

from quotatool.core.glob import Matcher, compile_patterns, mime_matcher, normalize_inbox
from quotatool.model import Attachment, FolderStatus, Inventory, MessageInfo

__all__ = [
    "ActionKind",
    "CompiledRule",
    "CompiledRules",
    "Defaults",
    "Explanation",
    "Match",
    "Rule",
    "RuleSet",
    "compile_rules",
    "explain",
    "match_inventory",
]

_DAY = 86400
# Unbounded ends of the date and size ranges (POSIX seconds and octets never get near).
_MIN = -(2**62)
_MAX = 2**62
# Bits of the "protection" column.
_FLAGGED = 1
_UNSEEN = 2


class ActionKind(StrEnum):
    """What a rule does to the messages it claims."""

    DELETE = "delete"
    ARCHIVE = "archive"
    OFFLOAD = "offload"


@dataclass(frozen=True, slots=True)
class Defaults:
    """``[defaults]``: protections and how dates are read."""

    protect_flagged: bool = True
    """``\\Flagged`` messages match only rules with ``include_flagged = true``."""
    protect_unseen: bool = True
    """Messages without ``\\Seen`` match only rules with ``include_unseen = true``."""
    protect_special_use: tuple[str, ...] = ()
    """Special uses (``\\Drafts``, ``\\Sent``) whose folders only rules naming them may touch."""
    age_from: Literal["internaldate", "date"] = "internaldate"
    """Which date ages a message: INTERNALDATE, or the ``Date:`` header (INTERNALDATE if none)."""
    timezone: str = "UTC"
    """IANA time zone name for ``{year}`` in archive templates."""
    tz: tzinfo = UTC
    """The zone itself (looked up by the loader, so the core reads no tz database)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One validated ``[[rule]]`` table. ``None`` / empty means "no such condition"."""

    name: str
    """Unique name, shown in plans."""
    action: ActionKind
    """What to do with matching messages."""
    line: int = 0
    """Line of the ``[[rule]]`` header in the rules file (0 when built in code)."""
    folders: tuple[str, ...] = ()
    """Folder globs or special-use names (``\\Trash``); empty means every folder."""
    exclude_folders: tuple[str, ...] = ()
    """Folder globs or special-use names to leave out."""
    older_than: int | None = None
    """Seconds: the message is at least this old."""
    newer_than: int | None = None
    """Seconds: the message is younger than this."""
    larger_than: int | None = None
    """Octets: ``size >= larger_than``."""
    smaller_than: int | None = None
    """Octets: ``size < smaller_than``."""
    has_attachment: bool | None = None
    """Whether the message has (true) or lacks (false) attachments."""
    attachment_larger_than: int | None = None
    """Octets: some attachment's encoded size is at least this."""
    attachment_types: tuple[str, ...] = ()
    """MIME type globs (``image/*``) or filename extensions (``.pdf``)."""
    from_: tuple[str, ...] = ()
    """Patterns for the sender (address, display name, or ``Name <address>``)."""
    to: tuple[str, ...] = ()
    """Patterns for any ``To:`` address."""
    subject: tuple[str, ...] = ()
    """Patterns for the decoded subject."""
    list_id: tuple[str, ...] = ()
    """Patterns for ``List-ID`` (the whole value or the id inside ``<...>``)."""
    flags: tuple[str, ...] = ()
    """Flags that must all be set."""
    not_flags: tuple[str, ...] = ()
    """Flags none of which may be set."""
    keep_newest: int | None = None
    """Keep this many of the newest claimed messages per group."""
    per: Literal["folder", "sender"] = "folder"
    """How ``keep_newest`` groups messages."""
    archive_to: str | None = None
    """Archive destination template (``Archive/{year}``, ``mbox:PATH``, ``maildir:PATH``)."""
    offload_to: str | None = None
    """Store URL or store name for offload."""
    include_flagged: bool = False
    """Opt in to ``\\Flagged`` messages."""
    include_unseen: bool = False
    """Opt in to unseen messages."""
    include_signed: bool = False
    """Opt in to offloading from signed or encrypted messages (breaks their signature)."""


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A validated rules file."""

    rules: tuple[Rule, ...]
    """Rules in file order."""
    defaults: Defaults = field(default_factory=Defaults)
    """Protections and dates."""
    source: str = "<rules>"
    """Where the rules came from, for messages."""


@dataclass(frozen=True, slots=True)
class _Check:
    """One condition of a rule: a test of one message attribute plus the words ``explain`` uses."""

    key: str
    """The rules-file key."""
    column: str
    """Which value of the message the test reads (see ``_COLUMNS``)."""
    test: Callable[[Any], bool]
    """value -> holds? Pure, so results can be shared between messages with equal values."""
    why_not: Callable[[MessageInfo], str]
    """Why the condition fails for this message."""

    def holds(self, message: MessageInfo) -> bool:
        """Return whether the condition holds for ``message``."""
        return self.test(_COLUMNS[self.column](message))


# The message attributes checks read. Rules run column-wise (see match_inventory); all but
# "message" are hashable and repeat a lot (senders, subjects, flag sets), so each distinct value
# is tested once per rule and folder.
_COLUMNS: dict[str, Callable[[MessageInfo], Any]] = {
    "flags": attrgetter("flags"),
    "sender": attrgetter("from_addr", "from_name"),
    "to": attrgetter("to"),
    "subject": attrgetter("subject"),
    "list_id": attrgetter("list_id"),
    "attachments": attrgetter("attachments"),
    "message": lambda m: m,
}
_INTERNALDATE = attrgetter("internaldate")
_SIZE = attrgetter("size")
# Columns whose values are tested one message at a time: hashing them costs more than the test.
_UNSHARED = frozenset({"attachments", "message"})


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule ready to test: numeric bounds inline, the rest as precompiled checks."""

    index: int
    """Position in the rules file."""
    rule: Rule
    """The rule as written."""
    min_date: int
    """Lowest age date that satisfies ``newer_than`` (exclusive bound turned inclusive)."""
    max_date: int
    """Highest age date that satisfies ``older_than``."""
    min_size: int
    """``larger_than`` or 0."""
    max_size: int
    """``smaller_than - 1`` or a huge number."""
    checks: tuple[_Check, ...]
    """Every other condition, cheapest first."""
    attachment_test: Callable[[Attachment], bool] | None
    """Per-attachment condition, ``None`` when the rule has none."""
    opts_in_special_use: frozenset[str]
    """Protected special uses this rule names in ``folders`` (lower-case)."""
    folder_include: Matcher | None
    """Globs of ``folders``; ``None`` when it names none."""
    folder_exclude: Matcher | None
    """Globs of ``exclude_folders``; ``None`` when it names none."""
    special_include: frozenset[str]
    """Special uses ``folders`` names, lower-case."""
    special_exclude: frozenset[str]
    """Special uses ``exclude_folders`` names, lower-case."""

    def folder_applies(self, name: str, special_use: str | None) -> bool:
        """Return whether the rule's folder filter admits this folder."""
        name = normalize_inbox(name)
        su = special_use.lower() if special_use else None
        if self.folder_include is not None or self.special_include:
            inc = (su is not None and su in self.special_include) or (
                self.folder_include is not None and self.folder_include(name)
            )
            if not inc:
                return False
        if su is not None and su in self.special_exclude:
            return False
        return not (self.folder_exclude is not None and self.folder_exclude(name))

    def attachments_matching(self, message: MessageInfo) -> tuple[Attachment, ...]:
        """Return the attachments the rule's attachment conditions select (all without any)."""
        test = self.attachment_test
        if test is None:
            return message.attachments
        return tuple(a for a in message.attachments if test(a))


@dataclass(frozen=True, slots=True)
class CompiledRules:
    """A rule set compiled for one ``now``."""

    ruleset: RuleSet
    """The source rule set."""
    now: int
    """The evaluation time, POSIX seconds."""
    rules: tuple[CompiledRule, ...]
    """Compiled rules in file order."""
    age_from_date: bool
    """True when ages come from the ``Date:`` header."""
    protect_flagged: bool
    """``[defaults] protect_flagged``."""
    protect_unseen: bool
    """``[defaults] protect_unseen``."""
    protect_special_use: frozenset[str]
    """``[defaults] protect_special_use``, lower-case."""

    def age_date(self, message: MessageInfo) -> int:
        """Return the date that ages ``message``."""
        if self.age_from_date and message.date is not None:
            return message.date
        return message.internaldate


@dataclass(frozen=True, slots=True)
class Match:
    """One message and the rule that claimed it."""

    folder: FolderStatus
    """The message's folder."""
    message: MessageInfo
    """The message."""
    rule: CompiledRule
    """The first rule that matched."""
    date: int
    """The message's age date."""
    kept: bool = False
    """True when ``keep_newest`` keeps it."""


@dataclass(frozen=True, slots=True)
class Explanation:
    """One rule's verdict on one message."""

    rule: str
    """The rule's name."""
    matched: bool
    """Whether every condition and protection holds."""
    reason: str
    """Why not (the first condition that fails), or what matched."""


# -- compiling -----------------------------------------------------------------------------------


def _days(seconds: int) -> str:
    if seconds % _DAY == 0 or seconds >= 10 * _DAY:
        return f"{seconds // _DAY}d"
    return f"{seconds}s"


def _split_folders(patterns: Sequence[str]) -> tuple[Matcher | None, frozenset[str]]:
    special = frozenset(p.lower() for p in patterns if p.startswith("\\"))
    globs = [normalize_inbox(p) for p in patterns if not p.startswith("\\")]
    # Folder names are case-sensitive (RFC 3501 §5.1) except INBOX, which normalize_inbox folds.
    return (compile_patterns(globs, ignore_case=False) if globs else None), special


def _flag_set(flags: Sequence[str]) -> frozenset[str]:
    # RFC 9051 §2.3.2: flag names are case-insensitive.
    return frozenset(f.lower() for f in flags)


def _attachment_test(rule: Rule) -> Callable[[Attachment], bool] | None:
    if rule.attachment_larger_than is None and not rule.attachment_types:
        return None
    limit = rule.attachment_larger_than or 0
    if not rule.attachment_types:
        return lambda a: a.size >= limit
    search = mime_matcher(rule.attachment_types).regex.search

    def test(a: Attachment) -> bool:
        if a.size < limit:
            return False
        if search("type:" + a.content_type) is not None:
            return True
        return a.filename is not None and search("name:" + a.filename) is not None

    return test


def _text_checks(rule: Rule) -> list[_Check]:
    checks: list[_Check] = []
    if rule.from_:
        fs = compile_patterns(rule.from_, ignore_case=True).regex.search
        pats = list(rule.from_)

        def from_test(sender: tuple[str, str]) -> bool:
            addr, name = sender
            return (
                fs(addr) is not None or fs(name) is not None or fs(f"{name} <{addr}>") is not None
            )

        checks.append(
            _Check(
                "from",
                "sender",
                from_test,
                lambda m: f"from: {m.from_name} <{m.from_addr}> matches none of {pats}",
            )
        )
    if rule.to:
        ts = compile_patterns(rule.to, ignore_case=True).regex.search
        to_pats = list(rule.to)
        checks.append(
            _Check(
                "to",
                "to",
                lambda to: any(ts(a) is not None for a in to),
                lambda m: f"to: {', '.join(m.to) or '(none)'} matches none of {to_pats}",
            )
        )
    if rule.subject:
        ss = compile_patterns(rule.subject, ignore_case=True).regex.search
        sub_pats = list(rule.subject)
        checks.append(
            _Check(
                "subject",
                "subject",
                lambda subject: ss(subject) is not None,
                lambda m: f"subject: {m.subject!r} matches none of {sub_pats}",
            )
        )
    if rule.list_id:
        ls = compile_patterns(rule.list_id, ignore_case=True).regex.search
        list_pats = list(rule.list_id)

        def list_test(lid: str | None) -> bool:
            if lid is None:
                return False
            if ls(lid) is not None:
                return True
            # RFC 2919 §3: the identifier is the part in angle brackets; a glob may name just it.
            start, end = lid.rfind("<"), lid.rfind(">")
            return start >= 0 and end > start and ls(lid[start + 1 : end]) is not None

        checks.append(
            _Check(
                "list_id",
                "list_id",
                list_test,
                lambda m: (
                    "list_id: the message has no List-ID"
                    if m.list_id is None
                    else f"list_id: {m.list_id!r} matches none of {list_pats}"
                ),
            )
        )
    return checks


def _compile_rule(index: int, rule: Rule, now: int, protected_su: frozenset[str]) -> CompiledRule:
    min_date = now - rule.newer_than + 1 if rule.newer_than is not None else _MIN
    max_date = now - rule.older_than if rule.older_than is not None else _MAX
    min_size = rule.larger_than if rule.larger_than is not None else 0
    max_size = rule.smaller_than - 1 if rule.smaller_than is not None else _MAX
    checks: list[_Check] = []
    if rule.flags:
        need = _flag_set(rule.flags)
        checks.append(
            _Check(
                "flags",
                "flags",
                lambda flags: need <= {f.lower() for f in flags},
                lambda m: (
                    f"flags: {' '.join(sorted(m.flags)) or '(none)'} lacks "
                    f"{' '.join(sorted(need - {f.lower() for f in m.flags}))}"
                ),
            )
        )
    if rule.not_flags:
        banned = _flag_set(rule.not_flags)
        checks.append(
            _Check(
                "not_flags",
                "flags",
                lambda flags: banned.isdisjoint({f.lower() for f in flags}),
                lambda m: (
                    "not_flags: the message has "
                    f"{' '.join(sorted(f for f in m.flags if f.lower() in banned))}"
                ),
            )
        )
    if rule.has_attachment is not None:
        want = rule.has_attachment

        def has_test(m: MessageInfo) -> bool:
            # An unparsed BODYSTRUCTURE tells nothing about attachments: neither answer holds.
            return not m.unparsed and bool(m.attachments) == want

        checks.append(
            _Check(
                "has_attachment",
                "message",
                has_test,
                lambda m: (
                    "has_attachment: the message structure could not be parsed"
                    if m.unparsed
                    else f"has_attachment: the message has {len(m.attachments)} attachment(s)"
                ),
            )
        )
    att_test = _attachment_test(rule)
    if att_test is not None:
        t = att_test
        checks.append(
            _Check(
                "attachment",
                "attachments",
                lambda attachments: any(t(a) for a in attachments),
                lambda m: (
                    "attachment_larger_than/attachment_types: no attachment qualifies "
                    f"({len(m.attachments)} attachment(s))"
                ),
            )
        )
    checks.extend(_text_checks(rule))
    include, sp_inc = _split_folders(rule.folders)
    exclude, sp_exc = _split_folders(rule.exclude_folders)
    return CompiledRule(
        index=index,
        rule=rule,
        min_date=min_date,
        max_date=max_date,
        min_size=min_size,
        max_size=max_size,
        checks=tuple(checks),
        attachment_test=att_test,
        opts_in_special_use=sp_inc & protected_su,
        folder_include=include,
        folder_exclude=exclude,
        special_include=sp_inc,
        special_exclude=sp_exc,
    )


def compile_rules(ruleset: RuleSet, now: int) -> CompiledRules:
    """Compile every rule of ``ruleset`` for evaluation at ``now``."""
    d = ruleset.defaults
    protected = frozenset(s.lower() for s in d.protect_special_use)
    return CompiledRules(
        ruleset=ruleset,
        now=now,
        rules=tuple(_compile_rule(i, r, now, protected) for i, r in enumerate(ruleset.rules)),
        age_from_date=d.age_from == "date",
        protect_flagged=d.protect_flagged,
        protect_unseen=d.protect_unseen,
        protect_special_use=protected,
    )


# -- evaluating ----------------------------------------------------------------------------------


def _folder_rules(compiled: CompiledRules, status: FolderStatus) -> list[CompiledRule]:
    """Return the rules whose folder filter and special-use protection admit this folder."""
    su = status.special_use.lower() if status.special_use else None
    return [
        cr
        for cr in compiled.rules
        if cr.folder_applies(status.name, status.special_use)
        and not (
            su is not None and su in compiled.protect_special_use and su not in cr.special_include
        )
    ]


def _protection_mask(compiled: CompiledRules, rule: Rule) -> int:
    """Return the protection bits that keep a message away from ``rule``."""
    return (_FLAGGED if compiled.protect_flagged and not rule.include_flagged else 0) | (
        _UNSEEN if compiled.protect_unseen and not rule.include_unseen else 0
    )


def _claim(
    cr: CompiledRule,
    messages: tuple[MessageInfo, ...],
    cols: _Columns,
    remaining: list[int],
) -> list[int]:
    """Return the indices in ``remaining`` that ``cr`` matches, narrowing cheapest test first.

    Each step is one list comprehension over the survivors of the previous step, and text
    tests run once per distinct value (senders and subjects repeat). A message x rule loop with
    a Python call per test took 0.69 s for 100,000 messages and 20 rules; this takes 0.26 s.
    Protections are handled by the caller.
    """
    cand = remaining
    lo, hi = cr.min_date, cr.max_date
    if lo > _MIN or hi < _MAX:
        dates = cols.get("date")
        if lo == _MIN:
            cand = [i for i in cand if dates[i] <= hi]
        elif hi == _MAX:
            cand = [i for i in cand if dates[i] >= lo]
        else:
            cand = [i for i in cand if lo <= dates[i] <= hi]
    smin, smax = cr.min_size, cr.max_size
    if cand and (smin > 0 or smax < _MAX):
        sizes = cols.get("size")
        cand = [i for i in cand if smin <= sizes[i] <= smax]
    for check in cr.checks:
        if not cand:
            break
        test = check.test
        values = cols.get(check.column)
        if check.column in _UNSHARED:
            if check.column == "attachments":
                cand = [i for i in cand if values[i]]  # the test needs at least one
            cand = [i for i in cand if test(values[i])]
            continue
        ok = {v for v in {values[i] for i in cand} if test(v)}
        cand = [i for i in cand if values[i] in ok]
    return cand


class _Columns:
    """One folder's message attributes as lists, each built on first use."""

    def __init__(self, messages: tuple[MessageInfo, ...], use_date_header: bool) -> None:
        self.messages = messages
        self.use_date_header = use_date_header
        self.cache: dict[str, list[Any]] = {}

    def get(self, name: str) -> list[Any]:
        col = self.cache.get(name)
        if col is None:
            col = self.cache[name] = self._build(name)
        return col

    def _build(self, name: str) -> list[Any]:
        ms = self.messages
        if name == "date":
            if self.use_date_header:
                return [m.internaldate if m.date is None else m.date for m in ms]
            return list(map(_INTERNALDATE, ms))
        if name == "size":
            return list(map(_SIZE, ms))
        if name == "protection":
            flags = self.get("flags")
            bits = {
                f: ("\\Flagged" in f and _FLAGGED) | ("\\Seen" not in f and _UNSEEN)
                for f in set(flags)
            }
            return [bits[f] for f in flags]
        return list(map(_COLUMNS[name], ms))


def _apply_keep_newest(matches: list[Match]) -> list[Match]:
    groups: dict[tuple[int, str], list[int]] = {}
    for i, mt in enumerate(matches):
        rule = mt.rule.rule
        if rule.keep_newest is None:
            continue
        key = mt.message.from_addr if rule.per == "sender" else mt.folder.name
        groups.setdefault((mt.rule.index, key), []).append(i)
    if not groups:
        return matches
    out = list(matches)
    for idxs in groups.values():
        keep = matches[idxs[0]].rule.rule.keep_newest or 0
        if keep <= 0:
            continue
        idxs.sort(
            key=lambda i: (matches[i].date, matches[i].message.uid, matches[i].folder.name),
            reverse=True,
        )
        for i in idxs[:keep]:
            mt = matches[i]
            out[i] = Match(mt.folder, mt.message, mt.rule, mt.date, kept=True)
    return out


def match_inventory(inventory: Inventory, compiled: CompiledRules) -> list[Match]:
    """Return every message some rule claims, in inventory order, ``keep_newest`` applied."""
    matches: list[Match] = []
    for fs in inventory.folders:
        rules = _folder_rules(compiled, fs.status)
        if not rules or not fs.messages:
            continue
        messages = fs.messages
        cols = _Columns(messages, compiled.age_from_date)
        # Unclaimed messages, pooled by their protection bits: a rule reads only the pools it
        # may act on, so protections cost nothing per message and rule.
        prot = cols.get("protection")
        pools: dict[int, list[int]] = {bits: [] for bits in (0, _FLAGGED, _UNSEEN, 3)}
        for i, bits in enumerate(prot):
            pools[bits].append(i)
        claimed: list[tuple[int, CompiledRule]] = []
        for cr in rules:
            mask = _protection_mask(compiled, cr.rule)
            for bits, pool in pools.items():
                if bits & mask or not pool:
                    continue
                hits = _claim(cr, messages, cols, pool)
                if hits:
                    claimed.extend((i, cr) for i in hits)
                    taken = set(hits)
                    pools[bits] = [i for i in pool if i not in taken]
        claimed.sort(key=lambda pair: pair[0])
        dates = cols.get("date")
        matches.extend(Match(fs.status, messages[i], cr, dates[i]) for i, cr in claimed)
    return _apply_keep_newest(matches)


# -- explaining ----------------------------------------------------------------------------------


def _why_not(
    compiled: CompiledRules,
    cr: CompiledRule,
    message: MessageInfo,
    date: int,
    special_use: str | None,
) -> str | None:
    """Return the first reason ``cr`` does not claim ``message``, or ``None`` when it does."""
    rule = cr.rule
    su = special_use.lower() if special_use else None
    if not cr.folder_applies(message.folder, special_use):
        shown = f"{message.folder!r}" + (f" ({special_use})" if special_use else "")
        return f"folders: folder {shown} is not selected"
    if su is not None and su in compiled.protect_special_use and su not in cr.special_include:
        return (
            f"protected: folder {message.folder!r} is {special_use} "
            f'(name "{special_use}" in folders to act on it)'
        )
    age = compiled.now - date
    if rule.older_than is not None and date > cr.max_date:
        return f"older_than {_days(rule.older_than)}: the message is {_days(max(age, 0))} old"
    if rule.newer_than is not None and date < cr.min_date:
        return f"newer_than {_days(rule.newer_than)}: the message is {_days(age)} old"
    if rule.larger_than is not None and message.size < cr.min_size:
        return f"larger_than {rule.larger_than}: the message has {message.size} octets"
    if rule.smaller_than is not None and message.size > cr.max_size:
        return f"smaller_than {rule.smaller_than}: the message has {message.size} octets"
    for check in cr.checks:
        if not check.holds(message):
            return check.why_not(message)
    # Protections last: "protected" is the useful answer only when everything else holds.
    if "\\Flagged" in message.flags and compiled.protect_flagged and not rule.include_flagged:
        return "protected: the message is \\Flagged (set include_flagged = true to act on it)"
    if "\\Seen" not in message.flags and compiled.protect_unseen and not rule.include_unseen:
        return "protected: the message is unseen (set include_unseen = true to act on it)"
    return None


def explain(
    message: MessageInfo,
    ruleset: RuleSet | CompiledRules,
    now: int,
    *,
    special_use: str | None = None,
) -> list[Explanation]:
    """Say, rule by rule, whether ``message`` matches and why (not).

    ``special_use`` is the special use of the message's folder. The first entry with
    ``matched`` true is the rule that claims the message; ``keep_newest`` depends on the other
    messages of the folder (or sender), so only the plan says whether it is kept.
    """
    compiled = ruleset if isinstance(ruleset, CompiledRules) else compile_rules(ruleset, now)
    date = compiled.age_date(message)
    out: list[Explanation] = []
    claimed = False
    for cr in compiled.rules:
        reason = _why_not(compiled, cr, message, date, special_use)
        if reason is not None:
            out.append(Explanation(cr.rule.name, False, reason))
            continue
        text = f"matches: {cr.rule.action.value}"
        if claimed:
            text += " (an earlier rule already claims the message)"
        elif cr.rule.keep_newest is not None:
            text += (
                f"; keep_newest = {cr.rule.keep_newest} per {cr.rule.per} may keep it "
                "(see the plan)"
            )
        out.append(Explanation(cr.rule.name, True, text))
        claimed = True
    return out
