"""JSON around the plan: the plan itself, one message's verdict, and the demo's two reports.

The plan's own document (schema ``quotatool.plan/1``) is written by
:func:`quotatool.core.plan.plan_to_json`, because the real run reads it back; this module only
adds the documents that are for reading. Key names and their order are part of the interface.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from quotatool.core.plan import plan_document, plan_to_json
from quotatool.core.rules import Explanation
from quotatool.core.usage import ScanReport
from quotatool.model import Archive, MessageInfo, Offload, Plan, PlannedAction, SkippedMessage
from quotatool.report.scan_json import scan_document
from quotatool.report.text import rfc3339

__all__ = [
    "DEMO_SCHEMA",
    "VERDICT_SCHEMA",
    "render_demo_json",
    "render_plan_json",
    "render_verdict_json",
]

VERDICT_SCHEMA = "quotatool.explain/1"
DEMO_SCHEMA = "quotatool.demo/1"


def render_plan_json(plan: Plan) -> str:
    """Return the plan document (``quotatool.plan/1``), the same bytes ``--save-plan`` writes."""
    return plan_to_json(plan)


def _action(a: PlannedAction) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "rule": a.rule,
        "action": a.action.kind,
        "frees_bytes": a.frees_bytes,
    }
    if isinstance(a.action, Archive):
        doc["destination"] = a.action.destination
        doc["local"] = a.action.local
    elif isinstance(a.action, Offload):
        doc["store"] = a.action.store
        doc["parts"] = [p.section for p in a.action.parts]
    doc["note"] = a.note
    return doc


def render_verdict_json(
    *,
    message: MessageInfo,
    uidvalidity: int,
    special_use: str | None,
    explanations: Sequence[Explanation],
    rule_lines: Mapping[str, int],
    rules_file: str,
    action: PlannedAction | None,
    skipped: SkippedMessage | None,
) -> str:
    """Return one message's verdict (schema ``quotatool.explain/1``) ending in a newline."""
    doc = {
        "schema": VERDICT_SCHEMA,
        "rules_file": rules_file,
        "message": {
            "folder": message.folder,
            "special_use": special_use,
            "uidvalidity": uidvalidity,
            "uid": message.uid,
            "size": message.size,
            "date": rfc3339(message.internaldate),
            "flags": sorted(message.flags),
            "from": message.from_addr,
            "subject": message.subject,
        },
        "rules": [
            {
                "rule": e.rule,
                "line": rule_lines.get(e.rule),
                "matched": e.matched,
                "reason": e.reason,
            }
            for e in explanations
        ],
        "action": None if action is None else _action(action),
        "skipped": None if skipped is None else {"rule": skipped.rule, "reason": skipped.reason},
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def render_demo_json(report: ScanReport, plan: Plan) -> str:
    """Return the demo's scan report and plan as one document (schema ``quotatool.demo/1``).

    ``scan`` and ``plan`` hold exactly the documents ``quotatool scan --json`` and
    ``quotatool clean --dry-run --json`` print for the sample mailbox.
    """
    doc = {"schema": DEMO_SCHEMA, "scan": scan_document(report), "plan": plan_document(plan)}
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
