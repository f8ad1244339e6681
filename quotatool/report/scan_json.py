"""The scan report as one JSON document (schema ``quotatool.scan/1``).

Key names and their order are part of the interface: scripts and dashboards read them. A new
key may be added; renaming or removing one needs a new schema version.
"""

from __future__ import annotations

import json
from typing import Any

from quotatool.core.plan import rule_summary_document
from quotatool.core.usage import Bucket, FolderUsage, LargeAttachment, ScanReport
from quotatool.model import MessageInfo, QuotaResource
from quotatool.report.text import rfc3339

SCHEMA = "quotatool.scan/1"


def _date(ts: int | None) -> str | None:
    return None if ts is None else rfc3339(ts)


def _quota(q: QuotaResource) -> dict[str, Any]:
    percent = q.percent
    return {
        "root": q.root,
        "resource": q.resource,
        "usage": q.usage,
        "limit": q.limit,
        "percent": None if percent is None else round(percent, 2),
    }


def _folder(f: FolderUsage) -> dict[str, Any]:
    return {
        "name": f.name,
        "messages": f.messages,
        "bytes": f.bytes,
        "unseen": f.unseen,
        "attachments": f.attachments,
        "attachment_bytes": f.attachment_bytes,
        "oldest": _date(f.oldest),
        "newest": _date(f.newest),
        "special_use": f.special_use,
    }


def _message(m: MessageInfo) -> dict[str, Any]:
    return {
        "folder": m.folder,
        "uid": m.uid,
        "size": m.size,
        "date": rfc3339(m.internaldate),
        "from": m.from_addr,
        "subject": m.subject,
        "attachments": len(m.attachments),
    }


def _attachment(a: LargeAttachment) -> dict[str, Any]:
    return {
        "folder": a.folder,
        "uid": a.uid,
        "filename": a.filename,
        "content_type": a.content_type,
        "size": a.size,
        "decoded_size": a.decoded_size,
        "date": rfc3339(a.date),
        "from": a.from_addr,
        "subject": a.subject,
    }


def _bucket(b: Bucket) -> dict[str, Any]:
    return {
        "key": b.key,
        "messages": b.messages,
        "bytes": b.bytes,
        "attachments": b.attachments,
        "attachment_bytes": b.attachment_bytes,
    }


def scan_document(report: ScanReport) -> dict[str, Any]:
    """Return the report as plain JSON-ready values, keys in their documented order."""
    t = report.totals
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "target": report.target,
        "scanned_at": rfc3339(report.scanned_at),
        # RFC 9208: STORAGE usage and limit are already octets here (QuotaResource converts
        # the server's 1024-octet units); other resources keep the server's unit.
        "quota": None if report.quota is None else [_quota(q) for q in report.quota],
        "totals": {
            "messages": t.messages,
            "bytes": t.bytes,
            "attachments": t.attachments,
            "attachment_bytes": t.attachment_bytes,
            "unseen": t.unseen,
            "unparsed": t.unparsed,
            "folders": t.folders,
        },
        "folders": [_folder(f) for f in report.folders],
        "largest_messages": [_message(m) for m in report.largest_messages],
        "largest_attachments": [_attachment(a) for a in report.largest_attachments],
        "by_sender": [_bucket(b) for b in report.by_sender],
        "by_domain": [_bucket(b) for b in report.by_domain],
        "by_year": [_bucket(b) for b in report.by_year],
        "by_type": [_bucket(b) for b in report.by_type],
        "warnings": list(report.warnings),
    }
    if report.reclaimable is not None:
        # Only with scan --rules: what each rule would free, as clean --dry-run plans it.
        doc["reclaimable"] = [rule_summary_document(r) for r in report.reclaimable]
    return doc


def render_scan_json(report: ScanReport) -> str:
    """Return the report as an indented JSON document ending in a newline."""
    return json.dumps(scan_document(report), ensure_ascii=False, indent=2) + "\n"
