"""Check results as one JSON document (schema ``quotatool.check/1``).

Key names and their order are part of the interface; a new key may be added, renaming or
removing one needs a new schema version.
"""

from __future__ import annotations

import json
from typing import Any

from quotatool.core.thresholds import AccountCheck, CheckRun, FolderCheck
from quotatool.report.check_text import status_line
from quotatool.report.text import rfc3339

__all__ = ["SCHEMA", "check_document", "render_check_json"]

SCHEMA = "quotatool.check/1"


def _folder(f: FolderCheck) -> dict[str, Any]:
    return {
        "folder": f.folder,
        "bytes": f.octets,
        "limit": f.limit,
        "warning": f.warning,
        "status": f.status.name,
    }


def _account(r: AccountCheck) -> dict[str, Any]:
    pct = r.percent
    return {
        "account": r.account,
        "status": r.status.name,
        "exit_code": int(r.status),
        "line": status_line(r),
        "storage": None
        if r.usage is None
        else {
            "usage": r.usage,
            "limit": r.limit,
            "percent": None if pct is None else round(pct, 2),
            "warning": r.warning,
            "critical": r.critical,
            "status": r.storage_status.name,
        },
        "folders": [_folder(f) for f in r.folders],
        "error": r.error,
        "checked_at": rfc3339(r.checked_at),
    }


def check_document(run: CheckRun) -> dict[str, Any]:
    """Return the run as plain JSON-ready values, keys in their documented order."""
    return {
        "schema": SCHEMA,
        "status": run.status.name,
        "exit_code": int(run.status),
        "checked_at": rfc3339(run.checked_at),
        "accounts": [_account(r) for r in run.results],
    }


def render_check_json(run: CheckRun) -> str:
    """Return the run as an indented JSON document ending in a newline."""
    return json.dumps(check_document(run), ensure_ascii=False, indent=2) + "\n"
