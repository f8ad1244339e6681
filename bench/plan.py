"""Benchmark: plan 100,000 messages with a 20-rule file, in memory (no server).

Builds a synthetic inventory (deterministic for --seed: eleven folders, a few hundred senders,
repeating subjects, newsletters with List-ID, 15% with attachments, mixed flags), then times
parsing the rules, ``build_plan`` (best of --repeat runs), the plan's JSON and its table, and
prints seconds. The issue's target: planning adds under 1 s to the scan. No timed assertion.

    python bench/plan.py [--messages 100000] [--repeat 3] [--seed 7]
"""

from __future__ import annotations

import argparse
import gc
import io
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from rich.console import Console

from quotatool.config.rules_file import parse_rules
from quotatool.core.plan import build_plan, plan_to_json
from quotatool.core.rules import RuleSet
from quotatool.model import (
    Attachment,
    FolderScan,
    FolderStatus,
    Inventory,
    MessageInfo,
    QuotaResource,
    Uid,
    UidValidity,
)
from quotatool.report.plan_table import render_plan_table

T = TypeVar("T")
NOW = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp())
DAY = 86400
FOLDERS = [
    ("INBOX", None),
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Newsletters", None),
    ("Archive/2019", None),
    ("Archive/2020", None),
    ("Archive/2021", None),
    ("Projekte/Übersicht", None),
    ("Receipts", None),
]
ATTACHMENT_TYPES = [
    ("application/pdf", ".pdf"),
    ("image/jpeg", ".jpg"),
    ("application/zip", ".zip"),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx"),
    ("video/mp4", ".mp4"),
]

RULES = """\
version = 1

[defaults]
protect_special_use = ["\\\\Drafts", "\\\\Sent"]
timezone = "Europe/Berlin"

[[rule]]
name = "junk"
folders = ["\\\\Junk"]
older_than = "14d"
include_unseen = true
action = "delete"

[[rule]]
name = "trash"
folders = ["\\\\Trash"]
older_than = "30d"
include_flagged = true
include_unseen = true
action = "delete"

[[rule]]
name = "newsletters"
list_id = "*"
older_than = "1y"
keep_newest = 5
per = "sender"
action = "delete"

[[rule]]
name = "deals"
from = "*@deals.example.com"
older_than = "90d"
action = "delete"

[[rule]]
name = "notifications"
from = ["noreply@*", "no-reply@*", "notifications@*"]
older_than = "180d"
action = "delete"

[[rule]]
name = "ci mail"
subject = 're:^\\[(ci|build)\\] '
older_than = "30d"
action = "delete"

[[rule]]
name = "calendar"
attachment_types = [".ics", "text/calendar"]
older_than = "1y"
action = "delete"

[[rule]]
name = "huge videos"
attachment_types = ["video/*"]
attachment_larger_than = "20MiB"
older_than = "90d"
action = "offload"
offload_to = "s3://mail-offload/alex"

[[rule]]
name = "big pdfs"
attachment_types = [".pdf"]
attachment_larger_than = "5MiB"
older_than = "180d"
action = "offload"
offload_to = "file:///srv/offload"

[[rule]]
name = "big images"
attachment_types = ["image/*"]
attachment_larger_than = "2MiB"
older_than = "2y"
action = "offload"
offload_to = "file:///srv/offload"

[[rule]]
name = "zips"
attachment_types = ["application/zip", ".zip"]
older_than = "1y"
action = "offload"
offload_to = "archive-store"

[[rule]]
name = "receipts to mbox"
folders = ["Receipts"]
older_than = "3y"
action = "archive"
archive_to = "mbox:~/Mail/{account}/receipts-{year}.mbox"

[[rule]]
name = "huge messages"
larger_than = "25MB"
older_than = "2y"
action = "archive"
archive_to = "maildir:~/Mail/{account}/big"

[[rule]]
name = "old archive folders"
folders = ["Archive/*"]
older_than = "5y"
smaller_than = "10KiB"
not_flags = ["\\\\Answered"]
action = "delete"

[[rule]]
name = "project mail"
folders = ["Projekte/*"]
older_than = "4y"
action = "archive"
archive_to = "Archive/{year}"

[[rule]]
name = "shop mail"
from = 're:@(shop|store|billing)\\.'
older_than = "2y"
action = "delete"

[[rule]]
name = "to the list"
to = "*@lists.example.org"
older_than = "1y"
action = "delete"

[[rule]]
name = "keywords"
flags = ["$Junk"]
action = "delete"

[[rule]]
name = "recent big"
newer_than = "30d"
larger_than = "50MB"
action = "archive"
archive_to = "mbox:~/Mail/big-{year}.mbox"

[[rule]]
name = "old inbox"
folders = ["INBOX"]
older_than = "3y"
has_attachment = false
action = "archive"
archive_to = "Archive/{year}"
"""


def synthetic_inventory(n: int, seed: int) -> Inventory:
    rnd = random.Random(seed)
    domains = [f"example{i}.org" for i in range(60)] + ["deals.example.com", "shop.example.net"]
    senders = [f"user{i}@{rnd.choice(domains)}" for i in range(300)]
    senders += ["noreply@service.example.com", "notifications@git.example.org"]
    lists = [(f"news@list{i}.example.org", f"<news.list{i}.example.org>") for i in range(12)]
    subjects = [f"Subject line number {i}" for i in range(2000)]
    subjects += ["[ci] build 42 failed", "[build] nightly ok", "Re: Re: [urgent] invoice"]
    per_folder: dict[str, list[MessageInfo]] = {name: [] for name, _ in FOLDERS}
    weights = [30, 15, 1, 3, 3, 20, 5, 5, 5, 6, 7]
    for i in range(n):
        folder = rnd.choices(FOLDERS, weights)[0][0]
        age = int(rnd.random() ** 1.7 * 11 * 365 * DAY)
        list_id = None
        if folder == "Newsletters" or rnd.random() < 0.05:
            sender, list_id = rnd.choice(lists)
        else:
            sender = rnd.choice(senders)
        flags = {"\\Seen"} if rnd.random() < 0.9 else set()
        if rnd.random() < 0.03:
            flags.add("\\Flagged")
        if rnd.random() < 0.2:
            flags.add("\\Answered")
        if rnd.random() < 0.01:
            flags.add("$Junk")
        attachments: tuple[Attachment, ...] = ()
        size = rnd.randint(800, 60_000)
        if rnd.random() < 0.15:
            parts = []
            for k in range(rnd.randint(1, 3)):
                ctype, ext = rnd.choice(ATTACHMENT_TYPES)
                asize = int(rnd.lognormvariate(11, 1.6))
                parts.append(
                    Attachment(
                        str(k + 2), ctype, f"file{i}-{k}{ext}", asize, asize * 3 // 4, "base64"
                    )
                )
                size += asize
            attachments = tuple(parts)
        seq = len(per_folder[folder]) + 1
        per_folder[folder].append(
            MessageInfo(
                folder=folder,
                uid=Uid(seq),
                size=size,
                internaldate=NOW - age,
                flags=frozenset(flags),
                date=NOW - age - 30,
                from_addr=sender,
                from_name="",
                to=("alex@example.org",) if rnd.random() < 0.9 else ("team@lists.example.org",),
                subject=rnd.choice(subjects),
                message_id=f"<m{i}@example.org>",
                list_id=list_id,
                attachments=attachments,
                content_type="multipart/mixed" if attachments else "text/plain",
                modseq=i + 1,
            )
        )
    special = dict(FOLDERS)
    folders = tuple(
        FolderScan(
            status=FolderStatus(
                name=name,
                uidvalidity=UidValidity(1000 + k),
                messages=len(ms),
                uidnext=len(ms) + 1,
                special_use=special[name],
            ),
            messages=tuple(ms),
        )
        for k, (name, ms) in enumerate(per_folder.items())
    )
    total = sum(m.size for fs in folders for m in fs.messages)
    return Inventory(
        target="imaps://alex@mail.example.org",
        scanned_at=NOW,
        folders=folders,
        quota=(QuotaResource("User quota", "STORAGE", total, total * 2),),
        capabilities=frozenset({"IMAP4REV1", "CONDSTORE", "UIDPLUS", "MOVE", "QUOTA"}),
    )


def timed(fn: Callable[[], T], repeat: int = 1) -> tuple[float, T]:
    best = float("inf")
    result: T
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def measure(inventory: Inventory, ruleset: RuleSet, repeat: int) -> dict[str, float]:
    """Time build_plan, the plan's JSON and its table (best of ``repeat`` each)."""
    t_plan, plan = timed(
        lambda: build_plan(
            inventory, ruleset, now=NOW, rules_file="bench-rules.toml", account="alex"
        ),
        repeat,
    )
    t_json, text = timed(lambda: plan_to_json(plan), repeat)

    def table() -> None:
        render_plan_table(plan, Console(file=io.StringIO(), width=120), explain=False)

    t_table, _ = timed(table, repeat)
    return {
        "plan": t_plan,
        "json": t_json,
        "table": t_table,
        "actions": plan.summary.messages,
        "skipped": plan.summary.skipped,
        "mb": len(text) / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    # Timings on a shared machine vary; this loop lets readers scale them (about 0.5 s on an
    # idle 2020s laptop core).
    t_ref, _ = timed(lambda: sum(i * i for i in range(10_000_000)))
    t_build, inventory = timed(lambda: synthetic_inventory(args.messages, args.seed))
    t_rules, ruleset = timed(lambda: parse_rules(RULES, "bench-rules.toml"), args.repeat)
    n = sum(len(fs.messages) for fs in inventory.folders)
    print(
        f"inventory: {n:,} messages in {len(inventory.folders)} folders (built in {t_build:.2f} s)"
    )
    print(f"rules:     {len(ruleset.rules)} rules, parsed in {t_rules * 1000:.1f} ms")
    # (1) the inventory still in the cyclic collector's generations: every full collection
    # during planning walks all of it. (2) frozen, as quotatool.services.scan leaves it.
    for label, freeze in (("collector walks the inventory", False), ("inventory frozen", True)):
        if freeze:
            gc.freeze()
        r = measure(inventory, ruleset, args.repeat)
        print(f"-- {label}")
        print(
            f"plan:      {r['plan']:.3f} s (best of {args.repeat}): {int(r['actions']):,} "
            f"actions, {int(r['skipped']):,} left alone"
        )
        print(f"json:      {r['json']:.3f} s ({r['mb']:.1f} MB)")
        print(f"table:     {r['table']:.3f} s")
        dry = t_rules + r["plan"] + r["table"]
        print(f"dry run on top of the scan (rules, plan, table): {dry:.3f} s (target: under 1 s)")
        print(f"  with --json or --save-plan as well: {dry + r['json']:.3f} s")
    print(f"reference: 10M-iteration Python loop took {t_ref:.2f} s on this machine")


if __name__ == "__main__":
    main()
