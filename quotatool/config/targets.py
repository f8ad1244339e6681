"""Parse a TARGET: an account name or a URL (DESIGN.md §3)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from quotatool.errors import UsageError

TlsMode = Literal["implicit", "starttls", "none"]
AuthMechanism = Literal["login", "plain", "xoauth2", "oauthbearer"]


@dataclass(frozen=True, slots=True)
class ImapTarget:
    """An IMAP account to connect to."""

    host: str
    """Server host name or address."""
    port: int
    """TCP port."""
    user: str
    """Login name (may be ``user*master`` for a master-user login)."""
    tls: TlsMode = "implicit"
    """``implicit`` (imaps), ``starttls`` (imap, required), or ``none`` (explicit opt-out)."""

    def display(self) -> str:
        """Return the target as a URL without secrets."""
        scheme = "imaps" if self.tls == "implicit" else "imap"
        default = 993 if self.tls == "implicit" else 143
        port = "" if self.port == default else f":{self.port}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{self.user}@{host}{port}"


@dataclass(frozen=True, slots=True)
class LocalTarget:
    """A local Maildir or mbox."""

    kind: Literal["maildir", "mbox"]
    """Which format."""
    path: Path
    """Where it is."""

    def display(self) -> str:
        return f"{self.kind}:{self.path}"


Target = ImapTarget | LocalTarget


def looks_like_url(text: str) -> bool:
    """Tell a URL/path target from an account name."""
    return text.startswith(("imap://", "imaps://", "maildir:", "mbox:"))


def parse_target_url(text: str) -> Target:
    """Parse ``imaps://user@host[:port]``, ``imap://...``, ``maildir:PATH`` or ``mbox:PATH``."""
    for kind in ("maildir", "mbox"):
        prefix = f"{kind}:"
        if text.startswith(prefix):
            raw = text[len(prefix) :]
            if raw.startswith("//"):
                raw = raw[2:]
            if not raw:
                raise UsageError(f"target {text!r} names no path", hint=f"write {kind}:PATH")
            return LocalTarget(kind=kind, path=Path(raw).expanduser())
    parts = urlsplit(text)
    if parts.scheme not in ("imap", "imaps"):
        raise UsageError(
            f"unknown target {text!r}",
            hint="use an account name from the config file, imaps://user@host, "
            "imap://user@host, maildir:PATH or mbox:PATH",
        )
    if parts.password is not None:
        raise UsageError(
            "a password in the target URL is not accepted (it would show in the process list)",
            hint="use QUOTATOOL_PASSWORD, --password-command or the config file",
        )
    if not parts.username:
        raise UsageError(f"target {text!r} names no user", hint="write imaps://USER@HOST")
    host = parts.hostname
    if not host:
        raise UsageError(f"target {text!r} names no host")
    try:
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"target {text!r} has an invalid port") from exc
    tls: TlsMode = "implicit" if parts.scheme == "imaps" else "starttls"
    if port is None:
        port = 993 if tls == "implicit" else 143
    if parts.path not in ("", "/"):
        raise UsageError(f"target {text!r}: a folder path in the URL is not supported")
    return ImapTarget(host=host, port=port, user=unquote(parts.username), tls=tls)
