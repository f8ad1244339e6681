"""The result of a real run as JSON (schema ``quotatool.result/1``).

``done``, ``skipped`` and ``failed`` list one object per message; ``already_done`` counts the
steps an earlier run finished (a rerun of a completed plan reports them, and frees nothing).
``planned_bytes`` is what the whole plan promised, ``done_bytes`` what the steps done by this
run were planned to free, and ``freed_bytes`` what the server's STORAGE quota actually moved
(``quota_before`` minus ``quota_after``; ``null`` without quota). Sizes are octets.
"""

from __future__ import annotations

import json
from typing import Any

from quotatool.model import Archive, QuotaResource
from quotatool.services.execute import ExecutionResult, StepOutcome

__all__ = ["SCHEMA", "render_result_json", "result_document"]

SCHEMA = "quotatool.result/1"


def _quota(quota: tuple[QuotaResource, ...] | None) -> list[dict[str, Any]] | None:
    if quota is None:
        return None
    return [
        {"root": q.root, "resource": q.resource, "usage": q.usage, "limit": q.limit} for q in quota
    ]


def _step(o: StepOutcome) -> dict[str, Any]:
    a = o.action
    doc: dict[str, Any] = {
        "folder": a.folder,
        "uidvalidity": a.uidvalidity,
        "uid": a.uid,
        "action": a.action.kind,
        "destination": a.action.destination if isinstance(a.action, Archive) else None,
        "rule": a.rule,
        "size": a.size,
        "frees_bytes": a.frees_bytes,
        "message_id": a.message_id,
    }
    if o.status == "done":
        doc["destination_uid"] = o.destination_uid
        doc["resumed"] = o.resumed
    else:
        doc["reason"] = o.reason
    return doc


def result_document(result: ExecutionResult, exit_code: int) -> dict[str, Any]:
    """Return the result as JSON-ready values, keys in their documented order."""
    return {
        "schema": SCHEMA,
        "target": result.target,
        "plan_id": result.plan_id,
        "exit_code": exit_code,
        "planned_bytes": result.planned_bytes,
        "done_bytes": result.done_bytes,
        "freed_bytes": result.freed_bytes,
        "quota_before": _quota(result.quota_before),
        "quota_after": _quota(result.quota_after),
        "archive_method": result.archive_method,
        "counts": {
            "done": len(result.done),
            "already_done": len(result.already_done),
            "skipped": len(result.skipped),
            "failed": len(result.failed),
        },
        "done": [_step(o) for o in result.done],
        "already_done": len(result.already_done),
        "skipped": [_step(o) for o in result.skipped],
        "failed": [_step(o) for o in result.failed],
    }


def render_result_json(result: ExecutionResult, exit_code: int) -> str:
    """Return the JSON document, ending in a newline."""
    return json.dumps(result_document(result, exit_code), ensure_ascii=False, indent=2) + "\n"
