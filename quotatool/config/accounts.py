"""The config file: accounts, check thresholds (and, for other commands, stores).

``$XDG_CONFIG_HOME/quotatool/config.toml`` unless ``--config`` or ``QUOTATOOL_CONFIG`` names
another. Every error names the file and the key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast, get_args

from quotatool.config.secrets import SecretSpec, check_private_file
from quotatool.config.targets import (
    AuthMechanism,
    ImapTarget,
    Target,
    TlsMode,
    parse_target_url,
)
from quotatool.core.thresholds import (
    FolderLimit,
    Threshold,
    ThresholdSettings,
    parse_threshold,
)
from quotatool.errors import ConfigError, QuotatoolError
from quotatool.units import UnitError, parse_size

_TOP_LEVEL_KEYS = frozenset({"accounts", "stores", "check"})
_THRESHOLD_KEYS = frozenset({"warning", "critical", "folder_limits"})
_ACCOUNT_KEYS = frozenset(
    {"url", "tls", "ca_file", "auth", "password", "token", "timeout", *_THRESHOLD_KEYS}
)
_SECRET_KINDS = ("command", "env", "file")


@dataclass(frozen=True, slots=True)
class AccountConfig:
    """One account as the config file describes it."""

    name: str
    """The account's name (the TOML key)."""
    target: Target
    """Where the mailbox is."""
    ca_file: Path | None = None
    """An extra CA certificate file to trust."""
    auth: AuthMechanism = "login"
    """How to authenticate."""
    password: SecretSpec | None = None
    """Where the password comes from (LOGIN/PLAIN)."""
    token: SecretSpec | None = None
    """Where an OAuth2 access token comes from (XOAUTH2/OAUTHBEARER)."""
    timeout: float = 60.0
    """Socket timeout in seconds."""
    thresholds: ThresholdSettings = field(default_factory=ThresholdSettings)
    """``quotatool check`` thresholds set for this account (``warning``, ``critical``,
    ``folder_limits``); unset ones come from the ``[check]`` section."""


@dataclass(frozen=True, slots=True)
class Config:
    """The parsed config file."""

    path: Path | None
    """The file read, ``None`` when there is none."""
    accounts: Mapping[str, AccountConfig] = field(default_factory=dict)
    """Accounts by name."""
    raw: Mapping[str, Any] = field(default_factory=dict)
    """The whole document, for sections other modules validate (stores, check)."""
    warnings: tuple[str, ...] = ()
    """Problems worth telling the user that do not stop the run."""
    check: ThresholdSettings = field(default_factory=ThresholdSettings)
    """Default ``quotatool check`` thresholds from the ``[check]`` section."""


def default_config_path() -> Path:
    """Return where the config file lives when nothing else says."""
    env = os.environ.get("QUOTATOOL_CONFIG")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "quotatool" / "config.toml"


def load_config(path: Path | None) -> Config:
    """Read the config file; a missing default file is an empty config, a named one an error."""
    explicit = path is not None or bool(os.environ.get("QUOTATOOL_CONFIG"))
    file = path.expanduser() if path is not None else default_config_path()
    if not file.exists():
        if explicit:
            raise ConfigError(f"config file {file} does not exist")
        return Config(path=None)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {file}: {exc}") from exc
    return parse_config(text, file)


def parse_config(text: str, file: Path) -> Config:
    """Validate a config document read from ``file``."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}") from exc
    for key in doc:
        if key not in _TOP_LEVEL_KEYS:
            raise ConfigError(
                f"{file}: unknown key {key!r}",
                hint=f"known sections: {', '.join(sorted(_TOP_LEVEL_KEYS))}",
            )
    accounts_raw = doc.get("accounts", {})
    if not isinstance(accounts_raw, dict):
        raise ConfigError(f"{file}: accounts: expected a table like [accounts.NAME]")
    accounts: dict[str, AccountConfig] = {}
    warnings: list[str] = []
    for name, table in accounts_raw.items():
        accounts[name] = _parse_account(file, name, table, warnings)
    if any(a.password is not None and a.password.kind == "value" for a in accounts.values()):
        # A raw password in the file: the file itself is now a secret file.
        check_private_file(file, "config file with a password")
    check_raw = doc.get("check", {})
    if not isinstance(check_raw, dict):
        raise ConfigError(f"{file}: check: expected a table like [check]")
    for key in check_raw:
        if key not in _THRESHOLD_KEYS:
            raise ConfigError(
                f"{file}: check: unknown key {key!r}",
                hint=f"known keys: {', '.join(sorted(_THRESHOLD_KEYS))}",
            )
    return Config(
        path=file,
        accounts=accounts,
        raw=doc,
        warnings=tuple(warnings),
        check=_parse_thresholds(f"{file}: check", check_raw),
    )


def _parse_threshold(where: str, value: object) -> Threshold | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ConfigError(f'{where}: expected a string like "80%" or "9GiB", got {value!r}')
    if not isinstance(value, str):
        raise ConfigError(f'{where}: expected a string like "80%" or "9GiB"')
    try:
        return parse_threshold(value)
    except UnitError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _parse_thresholds(where: str, table: Mapping[str, object]) -> ThresholdSettings:
    """Read ``warning``, ``critical`` and ``folder_limits`` (a table of folder = size)."""
    limits_raw = table.get("folder_limits", {})
    if not isinstance(limits_raw, dict):
        raise ConfigError(f'{where}.folder_limits: expected a table like {{ INBOX = "2GiB" }}')
    limits: list[FolderLimit] = []
    for folder, size in limits_raw.items():
        try:
            octets = parse_size(size)
        except UnitError as exc:
            raise ConfigError(f"{where}.folder_limits.{folder}: {exc}") from exc
        if octets <= 0:
            raise ConfigError(f"{where}.folder_limits.{folder}: a limit must be above 0")
        limits.append(FolderLimit(folder=folder, limit=octets))
    return ThresholdSettings(
        warning=_parse_threshold(f"{where}.warning", table.get("warning")),
        critical=_parse_threshold(f"{where}.critical", table.get("critical")),
        folder_limits=tuple(limits),
    )


def _parse_account(file: Path, name: str, table: object, warnings: list[str]) -> AccountConfig:
    where = f"{file}: accounts.{name}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    for key in table:
        if key not in _ACCOUNT_KEYS:
            raise ConfigError(
                f"{where}: unknown key {key!r}",
                hint=f"known keys: {', '.join(sorted(_ACCOUNT_KEYS))}",
            )
    url = table.get("url")
    if not isinstance(url, str):
        raise ConfigError(f"{where}.url: expected a URL like imaps://user@host, got {url!r}")
    try:
        target = parse_target_url(url)
    except QuotatoolError as exc:
        raise ConfigError(f"{where}.url: {exc.message}", hint=exc.hint) from exc
    tls = table.get("tls")
    if tls is not None:
        if tls not in get_args(TlsMode):
            raise ConfigError(f"{where}.tls: expected one of implicit, starttls, none, got {tls!r}")
        if not isinstance(target, ImapTarget):
            raise ConfigError(f"{where}.tls: only IMAP accounts use TLS")
        target = ImapTarget(
            host=target.host, port=target.port, user=target.user, tls=cast(TlsMode, tls)
        )
    ca_file = table.get("ca_file")
    if ca_file is not None and not isinstance(ca_file, str):
        raise ConfigError(f"{where}.ca_file: expected a path, got {ca_file!r}")
    auth = table.get("auth", "login")
    if auth not in get_args(AuthMechanism):
        raise ConfigError(
            f"{where}.auth: expected one of login, plain, xoauth2, oauthbearer, got {auth!r}"
        )
    timeout = table.get("timeout", 60.0)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        raise ConfigError(f"{where}.timeout: expected a positive number of seconds")
    password = _parse_secret(f"{where}.password", table.get("password"), warnings)
    token = _parse_secret(f"{where}.token", table.get("token"), warnings)
    return AccountConfig(
        name=name,
        target=target,
        ca_file=Path(ca_file).expanduser() if ca_file else None,
        auth=cast(AuthMechanism, auth),
        password=password,
        token=token,
        timeout=float(timeout),
        thresholds=_parse_thresholds(where, table),
    )


def _parse_secret(where: str, value: object, warnings: list[str]) -> SecretSpec | None:
    if value is None:
        return None
    if isinstance(value, str):
        warnings.append(
            f"{where} holds the password itself; a command, env or file entry keeps it out "
            "of the config file"
        )
        return SecretSpec(kind="value", source=value, origin=where)
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table with one of command, env or file")
    kinds = [k for k in value if k in _SECRET_KINDS]
    unknown = [k for k in value if k not in _SECRET_KINDS]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; expected command, env or file")
    if len(kinds) != 1:
        raise ConfigError(f"{where}: expected exactly one of command, env or file")
    kind = kinds[0]
    source = value[kind]
    if kind == "command":
        if isinstance(source, list) and source and all(isinstance(s, str) for s in source):
            return SecretSpec(kind="command", source=tuple(source), origin=where)
        if isinstance(source, str) and source.strip():
            return SecretSpec(kind="command", source=source, origin=where)
        raise ConfigError(f"{where}.command: expected a command string or a list of strings")
    if not isinstance(source, str) or not source:
        raise ConfigError(f"{where}.{kind}: expected a string")
    return SecretSpec(kind=cast(Any, kind), source=source, origin=where)
