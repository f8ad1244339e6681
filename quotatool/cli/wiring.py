"""Turn a TARGET and connection options into a MailSource (the CLI wires, services use)."""

from __future__ import annotations

import getpass
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from quotatool.adapters.imap import ImapConnectOptions, ImapSource, TraceSink
from quotatool.adapters.maildir import MaildirSource
from quotatool.adapters.mbox import MboxSource
from quotatool.cli.errors import print_warning
from quotatool.cli.options import AuthChoice, TlsChoice
from quotatool.config.accounts import AccountConfig, Config, load_config
from quotatool.config.rules_file import load_rules
from quotatool.config.secrets import SecretSpec, resolve_secret
from quotatool.config.targets import (
    AuthMechanism,
    ImapTarget,
    LocalTarget,
    TlsMode,
    looks_like_url,
    parse_target_url,
)
from quotatool.core.rules import ActionKind, RuleSet
from quotatool.errors import ConfigError, SecretError, UsageError
from quotatool.ports import MailSource
from quotatool.storage import default_store_url

PASSWORD_ENV = "QUOTATOOL_PASSWORD"  # noqa: S105 - a variable name, not a password


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    """What the command line says about reaching a target."""

    config: Path | None = None
    ca_file: Path | None = None
    tls: TlsChoice | None = None
    auth: AuthChoice | None = None
    password_command: str | None = None
    timeout: float | None = None
    debug: bool = False


def load_cli_config(path: Path | None) -> Config:
    config = load_config(path)
    for line in config.warnings:
        print_warning(line)
    return config


def resolve_account(target: str, config: Config) -> AccountConfig:
    """Return the account a TARGET names: a URL, or a name from the config file."""
    if looks_like_url(target):
        return AccountConfig(name=target, target=parse_target_url(target))
    account = config.accounts.get(target)
    if account is None:
        where = f" in {config.path}" if config.path else " (no config file found)"
        known = ", ".join(sorted(config.accounts)) or "none"
        raise ConfigError(
            f"unknown account {target!r}{where}",
            hint=f"known accounts: {known}; or give a URL such as imaps://user@host",
        )
    return account


def open_source(target: str, options: ConnectionOptions, config: Config) -> MailSource:
    """Open the mailbox a TARGET names, read-only."""
    account = resolve_account(target, config)
    where = account.target
    if isinstance(where, LocalTarget):
        if where.kind == "maildir":
            return MaildirSource(where.path)
        return MboxSource(where.path)
    return ImapSource(imap_options(account, where, options))


_TLS_MODES: dict[TlsChoice, TlsMode] = {
    TlsChoice.implicit: "implicit",
    TlsChoice.starttls: "starttls",
    TlsChoice.none: "none",
}


def imap_options(
    account: AccountConfig, where: ImapTarget, options: ConnectionOptions
) -> ImapConnectOptions:
    if options.tls is not None:
        where = ImapTarget(
            host=where.host, port=where.port, user=where.user, tls=_TLS_MODES[options.tls]
        )
    auth = options.auth.value if options.auth is not None else account.auth
    secret = secret_callable(_secret_provider(account, where, auth, options), where)
    trace: TraceSink | None = None
    if options.debug:

        def trace(line: str) -> None:
            sys.stderr.write(line + "\n")

    return ImapConnectOptions(
        target=where,
        secret=secret,
        auth=auth,
        ca_file=options.ca_file or account.ca_file,
        timeout=options.timeout or account.timeout,
        trace=trace,
    )


def _secret_provider(
    account: AccountConfig, where: ImapTarget, auth: AuthMechanism, options: ConnectionOptions
) -> SecretSpec:
    """Pick where the secret comes from; the value is only read at login."""
    if options.password_command:
        return SecretSpec(
            kind="command", source=options.password_command, origin="--password-command"
        )
    if os.environ.get(PASSWORD_ENV):
        return SecretSpec(kind="env", source=PASSWORD_ENV)
    oauth = auth in ("xoauth2", "oauthbearer")
    spec = account.token if oauth else account.password
    if spec is None and not oauth:
        spec = account.token
    if spec is not None:
        return spec
    if sys.stdin.isatty() and not oauth:
        return SecretSpec(kind="value", source="", origin="prompt")
    what = "an access token" if oauth else "a password"
    raise SecretError(
        f"no {what} for {where.display()}",
        hint=f"set {PASSWORD_ENV}, use --password-command, or add a password entry "
        "(command, env or file) to the account in the config file",
    )


class _Prompted:
    """Ask on the terminal, once, only when the login needs it."""

    def __init__(self, prompt: str) -> None:
        self._prompt = prompt

    def __call__(self) -> str:
        value = getpass.getpass(self._prompt)
        if not value:
            raise UsageError("no password given")
        return value


def secret_callable(spec: SecretSpec, where: ImapTarget) -> _Prompted | _Resolver:
    if spec.origin == "prompt":
        return _Prompted(f"Password for {where.display()}: ")
    return _Resolver(spec)


class _Resolver:
    def __init__(self, spec: SecretSpec) -> None:
        self._spec = spec

    def __call__(self) -> str:
        return resolve_secret(self._spec)


def with_default_store(ruleset: RuleSet) -> RuleSet:
    """Give every offload rule without ``offload_to`` the local default store's URL."""
    if not any(r.action is ActionKind.OFFLOAD and r.offload_to is None for r in ruleset.rules):
        return ruleset
    url = default_store_url()
    rules = tuple(
        replace(r, offload_to=url) if r.action is ActionKind.OFFLOAD and r.offload_to is None else r
        for r in ruleset.rules
    )
    return replace(ruleset, rules=rules)


def load_cli_rules(path: Path) -> RuleSet:
    """Read and check a rules file; offload rules without a store get the default one."""
    return with_default_store(load_rules(path))
