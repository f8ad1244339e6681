"""Helpers of the offload and restore tests: seed messages with attachments, run the CLI.

Runs go through the real command line in a child process (``python -m quotatool``), so the
crash hook, SIGKILL and the exact error lines are those a user meets. What is in the mailbox is
read independently with IMAPClient; the store with plain file reads or boto3.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.dovecot import DovecotServer, MailUser
from tests.integration.execute_support import ROOT, Run
from tests.mailgen import make_message
from tests.tcp_proxy import FaultProxy

WHEN = 1_600_000_000  # 2020-09-13: older than any rule's age


def payload(n: int, size: int = 40_000) -> bytes:
    """Return a distinct, incompressible-looking payload for message ``n``."""
    seed = hashlib.sha256(f"payload {n}".encode()).digest()
    out = bytearray()
    block = seed
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


def attachment_message(n: int, *, size: int = 40_000, subject: str | None = None) -> bytes:
    """Return a message with a text body, one PDF attachment and one small text attachment."""
    return make_message(
        subject=subject or f"off-{n}",
        body=f"Hello {n},\nsee the attached report.\n",
        attachments=[
            (f"report-{n}.pdf", "application/pdf", payload(n, size)),
            ("notes.txt", "text/plain", b"small notes\r\n"),
        ],
        message_id=f"<off-{n}@offload.test>",
    )


def seed(
    server: DovecotServer, user: MailUser, count: int, *, folder: str = "INBOX", size: int = 40_000
) -> None:
    messages = [(attachment_message(n, size=size), WHEN + n, "S") for n in range(count)]
    server.seed_maildir(user.name, folder, messages)


def offload_rules(store: str, *, larger_than: str = "10KiB", subject: str = "off-*") -> str:
    return (
        "version = 1\n[defaults]\nprotect_unseen = false\nprotect_flagged = false\n"
        "[[rule]]\n"
        'name = "offload"\n'
        'action = "offload"\n'
        f'subject = "{subject}"\n'
        f'attachment_larger_than = "{larger_than}"\n'
        f"offload_to = '{store}'\n"
    )


def write_config(path: Path, stores: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for name, table in stores.items():
        lines.append(f"[stores.{name}]")
        for key, value in table.items():
            if isinstance(value, bool):
                lines.append(f"{key} = {'true' if value else 'false'}")
            elif isinstance(value, int | float):
                lines.append(f"{key} = {value}")
            else:
                lines.append(f"{key} = '{value}'")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def cli(
    server: DovecotServer,
    user: MailUser,
    args: list[str],
    state: Path,
    *,
    config: Path | None = None,
    env: dict[str, str] | None = None,
    port: int | None = None,
    plain: bool = False,
    module: str = "quotatool",
    target: str | None = None,
    timeout: float = 120,
) -> Run:
    """Run ``python -m MODULE ARGS TARGET-OPTIONS`` as a user would, in a child process."""
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    state.chmod(0o700)
    scheme = "imap" if plain else "imaps"
    url = f"{scheme}://{user.name}@{server.host}:{port or server.imaps_port}"
    if target is not None:
        # An account of that name in a config file (with the stores of ``config``), so that
        # the plan, made for the user's name, is accepted for a run through a proxy.
        body = f"[accounts.{target}]\nurl = '{url}'\n" + ("tls = 'none'\n" if plain else "")
        if config is not None:
            body += config.read_text(encoding="utf-8")
        config = state / "account.toml"
        config.write_text(body, encoding="utf-8")
        config.chmod(0o600)
    target = target or url
    environ = {k: v for k, v in os.environ.items() if not k.startswith("QUOTATOOL_")}
    environ.update(
        QUOTATOOL_PASSWORD=user.password,
        QUOTATOOL_STATE_DIR=str(state),
        NO_COLOR="1",
        PYTHONPATH=str(ROOT),
    )
    environ.update(env or {})
    argv = [sys.executable, "-m", module, args[0], target, *args[1:]]
    argv += ["--ca-file", str(server.ca_file), "--timeout", "20"]
    if plain:
        argv += ["--tls", "none"]
    if config is None:
        config = state / "none.toml"
        config.write_text("", encoding="utf-8")
    environ["QUOTATOOL_CONFIG"] = str(config)
    done = subprocess.run(
        argv, capture_output=True, text=True, env=environ, cwd=ROOT, timeout=timeout, check=False
    )
    return Run(done.returncode, done.stdout, done.stderr)


@dataclass
class Stored:
    """One message as the server has it."""

    uid: int
    raw: bytes
    flags: frozenset[bytes]
    internaldate: datetime

    @property
    def message_id(self) -> str:
        msg = email.message_from_bytes(self.raw, policy=email.policy.compat32)
        return str(msg["Message-ID"])


def messages(server: DovecotServer, user: MailUser, folder: str = "INBOX") -> list[Stored]:
    client = server.connect(user.name)
    try:
        client.normalise_times = False
        client.select_folder(folder, readonly=True)
        uids = client.search(["ALL"])
        out = []
        if uids:
            data = client.fetch(uids, [b"BODY.PEEK[]", b"FLAGS", b"INTERNALDATE"])
            for uid in sorted(data):
                d = data[uid]
                out.append(
                    Stored(
                        uid=uid,
                        raw=d[b"BODY[]"],
                        flags=frozenset(d[b"FLAGS"]),
                        internaldate=d[b"INTERNALDATE"],
                    )
                )
        return out
    finally:
        client.logout()


def decoded_parts(raw: bytes) -> list[tuple[str, bytes]]:
    """Return (content type, decoded payload) of every leaf, in order."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    out = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        body = part.get_payload(decode=True)
        out.append((part.get_content_type(), body if isinstance(body, bytes) else b""))
    return out


class CorruptingProxy(FaultProxy):
    """A TCP proxy that changes :attr:`PATTERN` in what the server sends back.

    Put in front of the S3 server, uploads arrive intact and every download of an object
    made of the pattern comes back different at the same size: a store that does not keep
    what it was given, which its own checksums would not reveal to us.
    """

    PATTERN = b"QUOTATOOL-PAYLOAD-PATTERN-"
    CORRUPT = b"QUOTATOOL-PAYLOAD-CORRUPT-"

    def _from_server(self, link: Any, data: bytes) -> tuple[bytes, bool]:
        return super()._from_server(link, data.replace(self.PATTERN, self.CORRUPT))
