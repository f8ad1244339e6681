"""Shared helpers of the real-run tests: seed, plan, run in a subprocess, read the end state.

The end state is read independently of quotatool: a separate IMAPClient connection for the
folders (Message-ID and SHA-256 of every message's bytes) and plain file reads for the local
archives, so a test compares what is really there.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quotatool.adapters.archive_local import decode_mboxrd
from quotatool.adapters.imap import ImapConnectOptions, ImapSource
from quotatool.config.rules_file import parse_rules
from quotatool.config.targets import ImapTarget
from quotatool.core.plan import plan_to_json
from quotatool.model import Plan
from quotatool.services.plan import plan_cleanup
from tests.dovecot import DovecotServer, MailUser

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_767_225_600  # 2026-01-01: every seeded message is older than a year


def rules(*rules: str) -> str:
    head = "version = 1\n[defaults]\nprotect_unseen = false\nprotect_flagged = false\n"
    return head + "\n".join(rules)


def rule(name: str, subject: str, action: str, archive_to: str | None = None) -> str:
    lines = [
        "[[rule]]",
        f'name = "{name}"',
        f'action = "{action}"',
        f'subject = "{subject}"',
    ]
    if archive_to is not None:
        lines.append(f"archive_to = '{archive_to}'")
    return "\n".join(lines) + "\n"


def make_plan(server: DovecotServer, user: MailUser, rules_text: str) -> Plan:
    source = ImapSource(
        ImapConnectOptions(
            target=ImapTarget(host=server.host, port=server.imaps_port, user=user.name),
            secret=lambda: user.password,
            ca_file=server.ca_file,
        )
    )
    try:
        result = plan_cleanup(
            source,
            parse_rules(rules_text, "rules.toml"),
            now=NOW,
            rules_file="rules.toml",
            account=user.name,
        )
    finally:
        source.close()
    return result.plan


def save_plan(plan: Plan, path: Path) -> Path:
    path.write_text(plan_to_json(plan), encoding="utf-8")
    return path


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.stdout)
        return doc


def run_plan(
    server: DovecotServer,
    user: MailUser,
    plan_path: Path,
    state: Path,
    *,
    batch: int = 500,
    env: dict[str, str] | None = None,
    port: int | None = None,
    tls: str | None = None,
    wrapper: list[str] | None = None,
    timeout: float = 120,
) -> Run:
    """Run the plan in a child process with run_clean (``--yes``, JSON output)."""
    scheme = "imap" if tls == "none" else "imaps"
    target = f"{scheme}://{user.name}@{server.host}:{port or server.imaps_port}"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("QUOTATOOL_")}
    environ.update(
        {
            "QUOTATOOL_PASSWORD": user.password,
            "QUOTATOOL_STATE_DIR": str(state),
            "NO_COLOR": "1",
            "PYTHONPATH": str(ROOT),
        }
    )
    environ.update(env or {})
    argv = [sys.executable, "-m", "tests.integration.clean_child", str(plan_path), target]
    argv += [str(server.ca_file), str(batch)] + ([tls] if tls else [])
    done = subprocess.run(
        (wrapper or []) + argv,
        capture_output=True,
        text=True,
        env=environ,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def _message_id(raw: bytes) -> str:
    for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
    return ""


def folder_contents(server: DovecotServer, user: MailUser) -> dict[str, Counter[tuple[str, str]]]:
    """Return every folder's messages as a multiset of (Message-ID, SHA-256 of the bytes)."""
    client = server.connect(user.name)
    out: dict[str, Counter[tuple[str, str]]] = {}
    try:
        for flags, _delim, name in client.list_folders():
            if b"\\Noselect" in flags or b"\\NonExistent" in flags:
                continue
            client.select_folder(name, readonly=True)
            uids = client.search(["ALL"])
            counter: Counter[tuple[str, str]] = Counter()
            if uids:
                for data in client.fetch(uids, [b"BODY.PEEK[]"]).values():
                    raw = data[b"BODY[]"]
                    counter[(_message_id(raw), hashlib.sha256(raw).hexdigest())] += 1
            out[str(name)] = counter
    finally:
        client.logout()
    return out


def mbox_contents(path: Path) -> Counter[tuple[str, str]]:
    """Read an mboxrd file we wrote (gzip when it ends in .gz) back into messages."""
    if not path.exists():
        return Counter()
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    counter: Counter[tuple[str, str]] = Counter()
    entries = data.split(b"\nFrom MAILER-DAEMON ")
    for n, entry in enumerate(entries):
        text = entry if n == 0 else b"From MAILER-DAEMON " + entry
        if not text:
            continue
        if n < len(entries) - 1:
            text += b"\n"
        raw = decode_mboxrd(text)
        counter[(_message_id(raw), hashlib.sha256(raw).hexdigest())] += 1
    return counter


def maildir_contents(path: Path) -> Counter[tuple[str, str]]:
    counter: Counter[tuple[str, str]] = Counter()
    for sub in ("cur", "new"):
        directory = path / sub
        if directory.is_dir():
            for entry in directory.iterdir():
                raw = entry.read_bytes()
                counter[(_message_id(raw), hashlib.sha256(raw).hexdigest())] += 1
    return counter
