"""Options shared by commands: same flag, same meaning, everywhere."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class TlsChoice(StrEnum):
    implicit = "implicit"
    starttls = "starttls"
    none = "none"


class AuthChoice(StrEnum):
    login = "login"
    plain = "plain"
    xoauth2 = "xoauth2"
    oauthbearer = "oauthbearer"


TargetArg = Annotated[
    str,
    typer.Argument(
        help="Account name from the config file, or imaps://USER@HOST[:PORT], "
        "imap://USER@HOST[:PORT] (STARTTLS), maildir:PATH, mbox:PATH.",
        show_default=False,
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Config file [default: $XDG_CONFIG_HOME/quotatool/config.toml or $QUOTATOOL_CONFIG].",
        show_default=False,
    ),
]
CaFileOpt = Annotated[
    Path | None,
    typer.Option("--ca-file", help="Also trust this CA certificate (PEM).", show_default=False),
]
TlsOpt = Annotated[
    TlsChoice | None,
    typer.Option(
        "--tls",
        help="TLS mode; the URL scheme decides by default. 'none' sends everything in clear text.",
        show_default=False,
    ),
]
AuthOpt = Annotated[
    AuthChoice | None,
    typer.Option("--auth", help="Authentication mechanism [default: login].", show_default=False),
]
PasswordCommandOpt = Annotated[
    str | None,
    typer.Option(
        "--password-command",
        help="Shell command that prints the password (or token) on its first line.",
        show_default=False,
    ),
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option("--timeout", help="Seconds to wait for the server.", show_default=False),
]
DebugOpt = Annotated[
    bool,
    typer.Option(
        "--debug",
        help="Show the IMAP conversation (credentials redacted) and tracebacks on stderr.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Shorthand for --format json.")]
TopOpt = Annotated[
    int, typer.Option("--top", min=1, max=1000, help="How many entries in each top list.")
]
FolderOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--folder", help="Only folders matching this glob (repeatable).", show_default=False
    ),
]
ExcludeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--exclude", help="Skip folders matching this glob (repeatable).", show_default=False
    ),
]
