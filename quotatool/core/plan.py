"""Inventory x RuleSet -> Plan: what a clean run would do, and what it would free. Pure.

Same inventory, rules and ``now`` give the same plan, byte for byte in its JSON form: actions
are ordered by the inventory's folder order, then UID; nothing depends on dict or set order,
the clock or the machine's time zone.

Bytes freed per action:

* **delete** frees the message's RFC822.SIZE.
* **archive to an IMAP folder** frees nothing: every folder of an account is assumed to be in
  the same quota root (the inventory reports the quota of the INBOX's roots only, and servers
  that give folders separate roots are rare), and the plan says so in a note.
* **archive to a local file** (``mbox:`` / ``maildir:``) frees the message's size.
* **offload** frees, per moved part, its encoded size minus the stub that replaces it (see
  :func:`stub_size`). Parts whose stub would be as large as the part are not moved.

Signed and encrypted messages (``multipart/signed``, ``multipart/encrypted``,
``application/pkcs7-mime``, or a signature part among the attachments) are never offloaded unless
the rule says ``include_signed = true``: rewriting a part breaks the signature (RFC 1847 §2.1).
They are listed as skipped, with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from quotatool.core.rules import ActionKind, CompiledRule, Match, RuleSet, compile_rules
from quotatool.core.rules import match_inventory as _match_inventory
from quotatool.core.stub import stub_overhead
from quotatool.errors import ConfigError
from quotatool.model import (
    Action,
    Archive,
    Attachment,
    Delete,
    FolderSummary,
    Inventory,
    MessageInfo,
    Offload,
    OffloadPart,
    Plan,
    PlannedAction,
    PlanSummary,
    QuotaProjection,
    QuotaResource,
    RuleSummary,
    SkippedMessage,
    Uid,
    UidValidity,
)

__all__ = [
    "SCHEMA",
    "SIGNED_TYPES",
    "archive_destination",
    "build_plan",
    "is_signed",
    "plan_from_json",
    "plan_to_json",
    "rule_summary_document",
    "stub_size",
]

SCHEMA = "quotatool.plan/1"

SIGNED_TYPES = frozenset(
    {
        "multipart/signed",  # RFC 1847 §2.1
        "multipart/encrypted",  # RFC 1847 §2.2
        "application/pkcs7-mime",  # RFC 8551 §3.2 (S/MIME signed-data or enveloped-data)
        "application/x-pkcs7-mime",
    }
)
"""Top-level types of messages whose parts must not be rewritten."""

# A signature part among the attachments means a multipart/signed sits somewhere inside
# (MessageInfo keeps only the top-level type and the attachment leaves).
_SIGNATURE_PARTS = frozenset(
    {
        "application/pkcs7-signature",  # RFC 8551 §3.5.3
        "application/x-pkcs7-signature",
        "application/pgp-signature",  # RFC 3156 §5
        "application/pgp-encrypted",  # RFC 3156 §4
        "application/pkcs7-mime",
        "application/x-pkcs7-mime",
    }
)

_SAME_ROOT_NOTE = "archive to a folder in the same quota root frees nothing"

# -- the stub ------------------------------------------------------------------------------------

# The stub is built by quotatool.core.stub; its size is measured from the same code so that the
# estimate cannot drift from what a run writes.
_OBJECT_KEY = "sha256/00/00/" + "0" * 64  # content-addressed key, DESIGN.md §5
# A store named in the config file resolves to a URL only at run time; assume a root this long.
_NAMED_STORE_URL_LENGTH = 64


def _store_url_length(store: str) -> int:
    if "://" in store:
        return len(store.rstrip("/").encode())
    return _NAMED_STORE_URL_LENGTH


def stub_size(attachment: Attachment, store: str) -> int:
    """Return the octets the offload stub for ``attachment`` adds to its message.

    :func:`quotatool.core.stub.stub_overhead` with the part's real filename, decoded size and
    encoding, the longest humanized size, and the object URL ``<store>/sha256/xx/yy/<64 hex>``
    (a named store is assumed to be a 64-octet URL root). The part's header block is kept
    inside the stub, so it neither grows nor shrinks the message.
    """
    return stub_overhead(
        filename=attachment.filename,
        content_type=attachment.content_type,
        decoded_size=attachment.decoded_size,
        encoding=attachment.encoding,
        location_length=_store_url_length(store) + 1 + len(_OBJECT_KEY),
    )


def is_signed(message: MessageInfo) -> bool:
    """Return whether ``message`` is (or contains) a signed or encrypted MIME structure."""
    if message.content_type in SIGNED_TYPES:
        return True
    return any(a.content_type in _SIGNATURE_PARTS for a in message.attachments)


# -- archive destinations ------------------------------------------------------------------------

_LOCAL_PREFIXES = ("mbox:", "maildir:")


def _path_component(value: str) -> str:
    """Make a server-supplied name one harmless path component (SAFETY.md promise 15).

    Separators become ``.`` (as Maildir++ spells hierarchy), control characters ``_``, and a
    leading dot ``_`` so that ``..`` or a hidden name cannot appear.
    """
    out = "".join(
        "." if ch in "/\\" else "_" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch for ch in value
    )
    if not out or out.startswith("."):
        out = "_" + out[1:] if out else "_"
    return out


def archive_destination(template: str, *, folder: str, account: str, year: int) -> Archive:
    """Expand an ``archive_to`` template for one message.

    IMAP folder templates get ``{folder}`` verbatim; for ``mbox:`` / ``maildir:`` paths the
    folder and account names are made single path components first.
    """
    local = template.startswith(_LOCAL_PREFIXES)
    if local:
        folder, account = _path_component(folder), _path_component(account)
    return Archive(
        destination=template.format(folder=folder, account=account, year=year), local=local
    )


def _year(ts: int, tz: tzinfo) -> int:
    # timedelta arithmetic handles any date on every platform; astimezone applies the zone.
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=ts)).astimezone(tz).year


# -- building ------------------------------------------------------------------------------------


def _offload(cr: CompiledRule, m: MessageInfo) -> tuple[Offload | None, int, str | None]:
    """Return the offload action, the bytes it frees, or a skip reason."""
    rule = cr.rule
    store = rule.offload_to or ""
    if m.unparsed:
        return None, 0, "the message structure could not be parsed"
    if is_signed(m) and not rule.include_signed:
        return (
            None,
            0,
            f"signed or encrypted ({m.content_type}); set include_signed = true to offload anyway",
        )
    candidates = cr.attachments_matching(m)
    if not m.content_type.startswith("multipart/"):
        # Section 1 of a single-part message is the message's own body: it shares the
        # message's header block, so no stub part can replace it (core/splice.py rewrite).
        body = [a for a in candidates if a.section == "1"]
        candidates = tuple(a for a in candidates if a.section != "1")
        if body and not candidates:
            return None, 0, "not a multipart message: the attachment is its only part"
    parts: list[OffloadPart] = []
    for a in sorted(candidates, key=lambda a: _section_key(a.section)):
        stub = stub_size(a, store)
        if a.size > stub:
            parts.append(OffloadPart(a.section, a.filename, a.content_type, a.size, stub))
    if not parts:
        if not candidates:
            return None, 0, "no attachment to offload"
        return None, 0, "every attachment is smaller than its stub would be"
    action = Offload(store=store, parts=tuple(parts), include_signed=rule.include_signed)
    return action, sum(p.size - p.stub_size for p in parts), None


def _section_key(section: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in section.split("."))


def _project(
    quota: tuple[QuotaResource, ...] | None, frees: int, removed: int
) -> tuple[QuotaProjection, ...] | None:
    if quota is None:
        return None
    out: list[QuotaProjection] = []
    for q in quota:
        projected: int | None
        if q.resource == "STORAGE":
            projected = max(q.usage - frees, 0)
        elif q.resource == "MESSAGE":
            projected = max(q.usage - removed, 0)  # RFC 9208 §5.2: a count of messages
        else:
            projected = None
        out.append(QuotaProjection(q.root, q.resource, q.usage, q.limit, projected))
    return tuple(out)


def build_plan(
    inventory: Inventory,
    ruleset: RuleSet,
    *,
    now: int,
    rules_file: str,
    account: str,
) -> Plan:
    """Evaluate ``ruleset`` over ``inventory`` at ``now`` and return the plan."""
    compiled = compile_rules(ruleset, now)
    matches = _match_inventory(inventory, compiled)
    tz = ruleset.defaults.tz
    folder_order = {fs.status.name: i for i, fs in enumerate(inventory.folders)}
    matches.sort(key=lambda mt: (folder_order[mt.folder.name], mt.message.uid))
    actions: list[PlannedAction] = []
    skipped: list[SkippedMessage] = []
    same_root = False
    removed = 0
    decide = _Decider(tz, account)
    for mt in matches:
        reason, action, frees, note = decide(mt)
        if reason is not None:
            skipped.append(_skip(mt, reason))
            continue
        assert action is not None
        if isinstance(action, Archive) and not action.local:
            same_root = True
        if isinstance(action, Delete) or (isinstance(action, Archive) and action.local):
            removed += 1
        m = mt.message
        actions.append(
            PlannedAction(
                rule=mt.rule.rule.name,
                action=action,
                folder=mt.folder.name,
                uidvalidity=mt.folder.uidvalidity,
                uid=m.uid,
                size=m.size,
                frees_bytes=frees,
                flags=tuple(sorted(m.flags)),
                modseq=m.modseq,
                date=mt.date,
                message_id=m.message_id,
                from_addr=m.from_addr,
                subject=m.subject,
                note=note,
            )
        )
    summary = _summarize(ruleset, actions, skipped)
    notes = (_SAME_ROOT_NOTE + " (assuming every folder shares the INBOX's quota root)",)
    return Plan(
        target=inventory.target,
        account=account,
        rules_file=rules_file,
        created_at=now,
        quota=_project(inventory.quota, summary.frees_bytes, removed),
        actions=tuple(actions),
        skipped=tuple(skipped),
        summary=summary,
        notes=notes if same_root else (),
    )


class _Decider:
    """Decide each claimed message; what repeats (years, destinations) is worked out once.

    Years are looked up once per quarter hour of age date: a local midnight falls on a whole
    quarter hour in UTC for every zone in use since 1972, and a quarter hour that holds a new
    year anyway (an old local mean time) is never cached, so the answer is always exact.
    """

    def __init__(self, tz: tzinfo, account: str) -> None:
        self.tz = tz
        self.account = account
        self.delete = Delete()
        self.years: dict[int, int] = {}
        self.destinations: dict[tuple[str, str, int], Archive] = {}

    def year(self, ts: int) -> int:
        key = ts // 900
        year = self.years.get(key)
        if year is None:
            year = _year(key * 900, self.tz)
            if year != _year(key * 900 + 899, self.tz):
                return _year(ts, self.tz)
            self.years[key] = year
        return year

    def destination(self, template: str, folder: str, year: int) -> Archive:
        key = (template, folder, year)
        dest = self.destinations.get(key)
        if dest is None:
            dest = self.destinations[key] = archive_destination(
                template, folder=folder, account=self.account, year=year
            )
        return dest

    def __call__(self, mt: Match) -> tuple[str | None, Action | None, int, str | None]:
        """Return (skip reason, action, frees_bytes, note) for one claimed message."""
        rule = mt.rule.rule
        m = mt.message
        if mt.kept:
            return f"kept: one of the {rule.keep_newest} newest per {rule.per}", None, 0, None
        if rule.action is ActionKind.DELETE:
            return None, self.delete, m.size, None
        if rule.action is ActionKind.ARCHIVE:
            dest = self.destination(rule.archive_to or "", mt.folder.name, self.year(mt.date))
            if dest.local:
                return None, dest, m.size, None
            if dest.destination == mt.folder.name:
                return "already in its archive folder", None, 0, None
            return None, dest, 0, _SAME_ROOT_NOTE
        offload, frees, reason = _offload(mt.rule, m)
        return reason, offload, frees, None


def _skip(mt: Match, reason: str) -> SkippedMessage:
    return SkippedMessage(
        rule=mt.rule.rule.name,
        folder=mt.folder.name,
        uidvalidity=mt.folder.uidvalidity,
        uid=mt.message.uid,
        size=mt.message.size,
        reason=reason,
    )


def _summarize(
    ruleset: RuleSet, actions: list[PlannedAction], skipped: list[SkippedMessage]
) -> PlanSummary:
    per_rule: dict[str, list[int]] = {r.name: [0, 0, 0] for r in ruleset.rules}
    per_folder: dict[str, list[int]] = {}
    for a in actions:
        counts = per_rule[a.rule]
        counts[0] += 1
        counts[1] += a.frees_bytes
        f = per_folder.setdefault(a.folder, [0, 0])
        f[0] += 1
        f[1] += a.frees_bytes
    for s in skipped:
        per_rule[s.rule][2] += 1
    return PlanSummary(
        messages=len(actions),
        frees_bytes=sum(a.frees_bytes for a in actions),
        by_rule=tuple(
            RuleSummary(r.name, r.action.value, *per_rule[r.name]) for r in ruleset.rules
        ),
        # Actions are already in folder order, and dicts keep insertion order.
        by_folder=tuple(FolderSummary(k, v[0], v[1]) for k, v in per_folder.items()),
        skipped=len(skipped),
    )


# -- JSON ----------------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _rfc3339(ts: int) -> str:
    return (_EPOCH + timedelta(seconds=ts)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _from_rfc3339(text: object, where: str) -> int:
    if not isinstance(text, str):
        raise _bad(where, "a date like 2024-01-31T12:00:00Z", text)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise _bad(where, "a date like 2024-01-31T12:00:00Z", text) from None
    if dt.tzinfo is None:
        raise _bad(where, "a date with a time zone", text)
    return int((dt - _EPOCH).total_seconds())


def _action_doc(p: PlannedAction) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "rule": p.rule,
        "action": p.action.kind,
        "folder": p.folder,
        "uidvalidity": p.uidvalidity,
        "uid": p.uid,
        "size": p.size,
        "frees_bytes": p.frees_bytes,
        "modseq": p.modseq,
        "flags": list(p.flags),
        "date": _rfc3339(p.date),
        "message_id": p.message_id,
        "from": p.from_addr,
        "subject": p.subject,
    }
    act = p.action
    if isinstance(act, Archive):
        doc["destination"] = act.destination
        doc["local"] = act.local
    elif isinstance(act, Offload):
        doc["store"] = act.store
        doc["stub_size"] = act.stub_size
        doc["parts"] = [
            {
                "section": part.section,
                "filename": part.filename,
                "content_type": part.content_type,
                "size": part.size,
                "stub_size": part.stub_size,
            }
            for part in act.parts
        ]
        if act.include_signed:
            # Written only when set, so plans without it stay byte for byte as they were.
            doc["include_signed"] = True
    doc["note"] = p.note
    return doc


def rule_summary_document(r: RuleSummary) -> dict[str, Any]:
    """Return one rule's part of a plan as JSON values (also ``scan --rules``'s ``reclaimable``)."""
    return {
        "rule": r.rule,
        "action": r.action,
        "messages": r.messages,
        "frees_bytes": r.frees_bytes,
        "skipped": r.skipped,
    }


def plan_document(plan: Plan) -> dict[str, Any]:
    """Return the plan as JSON-ready values, keys in their documented order."""
    s = plan.summary
    return {
        "schema": SCHEMA,
        "target": plan.target,
        "account": plan.account,
        "rules_file": plan.rules_file,
        "created_at": _rfc3339(plan.created_at),
        "quota": None
        if plan.quota is None
        else [
            {
                "root": q.root,
                "resource": q.resource,
                "usage": q.usage,
                "limit": q.limit,
                "projected_usage": q.projected_usage,
            }
            for q in plan.quota
        ],
        "actions": [_action_doc(a) for a in plan.actions],
        "skipped": [
            {
                "rule": k.rule,
                "folder": k.folder,
                "uidvalidity": k.uidvalidity,
                "uid": k.uid,
                "size": k.size,
                "reason": k.reason,
            }
            for k in plan.skipped
        ],
        "summary": {
            "messages": s.messages,
            "frees_bytes": s.frees_bytes,
            "skipped": s.skipped,
            "by_rule": [rule_summary_document(r) for r in s.by_rule],
            "by_folder": [
                {"folder": f.folder, "messages": f.messages, "frees_bytes": f.frees_bytes}
                for f in s.by_folder
            ],
        },
        "notes": list(plan.notes),
    }


_ROW = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))


def plan_to_json(plan: Plan) -> str:
    """Return the plan as a JSON document (schema ``quotatool.plan/1``) ending in a newline.

    Top-level keys and the summary are indented; each action and skipped message is one compact
    line, so a saved plan diffs and greps well. (``json.dumps(indent=...)`` falls back to the
    pure-Python encoder: 0.4 s for 10,000 actions, against a few hundredths this way.)
    """
    doc = plan_document(plan)
    out = ["{"]
    keys = list(doc)
    for n, key in enumerate(keys):
        value = doc[key]
        comma = "," if n < len(keys) - 1 else ""
        name = json.dumps(key)
        if key in ("actions", "skipped") and value:
            rows = ["    " + _ROW.encode(item) for item in value]
            out.append(f"  {name}: [\n" + ",\n".join(rows) + f"\n  ]{comma}")
        else:
            text = json.dumps(value, ensure_ascii=False, indent=2).replace("\n", "\n  ")
            out.append(f"  {name}: {text}{comma}")
    out.append("}")
    return "\n".join(out) + "\n"


# -- reading a saved plan ------------------------------------------------------------------------
# Plain code rather than pydantic: pydantic is kept to config/ (DESIGN.md §2) and the core must
# stay importable without it; the checks below are few and name the offending key.


def _bad(where: str, expected: str, got: object) -> ConfigError:
    return ConfigError(
        f"plan: {where}: expected {expected}, got {got!r}",
        hint="save the plan again with --dry-run --save-plan",
    )


def _get(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in doc:
        raise _bad(f"{where}{key}", _kind_name(kind), None)
    value = doc[key]
    if isinstance(value, bool) and kind is not bool and bool not in _tuple(kind):
        raise _bad(f"{where}{key}", _kind_name(kind), value)
    if not isinstance(value, kind):
        raise _bad(f"{where}{key}", _kind_name(kind), value)
    return value


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", list: "a list", dict: "an object", bool: "a bool"}
    return " or ".join(names.get(k, "null") for k in _tuple(kind))


_NONE = type(None)


def _action_from(doc: Mapping[str, Any], where: str) -> Action:
    kind = _get(doc, "action", str, where)
    if kind == "delete":
        return Delete()
    if kind == "archive":
        return Archive(
            destination=_get(doc, "destination", str, where), local=_get(doc, "local", bool, where)
        )
    if kind == "offload":
        parts = []
        for j, part in enumerate(_get(doc, "parts", list, where)):
            pw = f"{where}parts[{j}]."
            if not isinstance(part, dict):
                raise _bad(pw.rstrip("."), "an object", part)
            parts.append(
                OffloadPart(
                    section=_get(part, "section", str, pw),
                    filename=_get(part, "filename", (str, _NONE), pw),
                    content_type=_get(part, "content_type", str, pw),
                    size=_get(part, "size", int, pw),
                    stub_size=_get(part, "stub_size", int, pw),
                )
            )
        signed = doc.get("include_signed", False)
        if not isinstance(signed, bool):
            raise _bad(f"{where}include_signed", "true or false", signed)
        return Offload(
            store=_get(doc, "store", str, where), parts=tuple(parts), include_signed=signed
        )
    raise _bad(f"{where}action", "delete, archive or offload", kind)


def plan_from_json(text: str) -> Plan:
    """Read a plan written by :func:`plan_to_json`.

    Raises:
        ConfigError: the text is not a ``quotatool.plan/1`` document; the message names the key.

    """
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"plan: line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}"
        ) from exc
    if not isinstance(doc, dict):
        raise _bad("document", "an object", type(doc).__name__)
    if doc.get("schema") != SCHEMA:
        raise _bad("schema", repr(SCHEMA), doc.get("schema"))
    actions: list[PlannedAction] = []
    for i, a in enumerate(_get(doc, "actions", list, "")):
        w = f"actions[{i}]."
        if not isinstance(a, dict):
            raise _bad(w.rstrip("."), "an object", a)
        actions.append(
            PlannedAction(
                rule=_get(a, "rule", str, w),
                action=_action_from(a, w),
                folder=_get(a, "folder", str, w),
                uidvalidity=UidValidity(_get(a, "uidvalidity", int, w)),
                uid=Uid(_get(a, "uid", int, w)),
                size=_get(a, "size", int, w),
                frees_bytes=_get(a, "frees_bytes", int, w),
                flags=tuple(_strings(_get(a, "flags", list, w), f"{w}flags")),
                modseq=_get(a, "modseq", (int, _NONE), w),
                date=_from_rfc3339(a.get("date"), f"{w}date"),
                message_id=_get(a, "message_id", (str, _NONE), w),
                from_addr=_get(a, "from", str, w),
                subject=_get(a, "subject", str, w),
                note=_get(a, "note", (str, _NONE), w),
            )
        )
    skipped: list[SkippedMessage] = []
    for i, k in enumerate(_get(doc, "skipped", list, "")):
        w = f"skipped[{i}]."
        if not isinstance(k, dict):
            raise _bad(w.rstrip("."), "an object", k)
        skipped.append(
            SkippedMessage(
                rule=_get(k, "rule", str, w),
                folder=_get(k, "folder", str, w),
                uidvalidity=UidValidity(_get(k, "uidvalidity", int, w)),
                uid=Uid(_get(k, "uid", int, w)),
                size=_get(k, "size", int, w),
                reason=_get(k, "reason", str, w),
            )
        )
    quota_doc = _get(doc, "quota", (list, _NONE), "")
    quota = None
    if quota_doc is not None:
        quota = tuple(
            QuotaProjection(
                root=_get(q, "root", str, f"quota[{i}]."),
                resource=_get(q, "resource", str, f"quota[{i}]."),
                usage=_get(q, "usage", int, f"quota[{i}]."),
                limit=_get(q, "limit", (int, _NONE), f"quota[{i}]."),
                projected_usage=_get(q, "projected_usage", (int, _NONE), f"quota[{i}]."),
            )
            for i, q in enumerate(_objects(quota_doc, "quota"))
        )
    sdoc = _get(doc, "summary", dict, "")
    summary = PlanSummary(
        messages=_get(sdoc, "messages", int, "summary."),
        frees_bytes=_get(sdoc, "frees_bytes", int, "summary."),
        skipped=_get(sdoc, "skipped", int, "summary."),
        by_rule=tuple(
            RuleSummary(
                rule=_get(r, "rule", str, f"summary.by_rule[{i}]."),
                action=_get(r, "action", str, f"summary.by_rule[{i}]."),
                messages=_get(r, "messages", int, f"summary.by_rule[{i}]."),
                frees_bytes=_get(r, "frees_bytes", int, f"summary.by_rule[{i}]."),
                skipped=_get(r, "skipped", int, f"summary.by_rule[{i}]."),
            )
            for i, r in enumerate(
                _objects(_get(sdoc, "by_rule", list, "summary."), "summary.by_rule")
            )
        ),
        by_folder=tuple(
            FolderSummary(
                folder=_get(f, "folder", str, f"summary.by_folder[{i}]."),
                messages=_get(f, "messages", int, f"summary.by_folder[{i}]."),
                frees_bytes=_get(f, "frees_bytes", int, f"summary.by_folder[{i}]."),
            )
            for i, f in enumerate(
                _objects(_get(sdoc, "by_folder", list, "summary."), "summary.by_folder")
            )
        ),
    )
    return Plan(
        target=_get(doc, "target", str, ""),
        account=_get(doc, "account", str, ""),
        rules_file=_get(doc, "rules_file", str, ""),
        created_at=_from_rfc3339(doc.get("created_at"), "created_at"),
        quota=quota,
        actions=tuple(actions),
        skipped=tuple(skipped),
        summary=summary,
        notes=tuple(_strings(_get(doc, "notes", list, ""), "notes")),
    )


def _objects(items: list[Any], where: str) -> list[Mapping[str, Any]]:
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _bad(f"{where}[{i}]", "an object", item)
    return items


def _strings(items: list[Any], where: str) -> list[str]:
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise _bad(f"{where}[{i}]", "a string", item)
    return items
