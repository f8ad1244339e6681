"""``[stores.NAME]`` tables of the config file: where offloaded attachments go, and how to log in.

    [stores.archive]
    url = "s3://mail-attachments/alice"
    endpoint = "https://s3.eu-central-003.backblazeb2.com"
    region = "eu-central-003"
    access_key_id = { env = "B2_KEY_ID" }
    secret_access_key = { command = ["pass", "show", "b2/alice"] }
    link_url = "https://files.example.org/{key}"

A rule names a store by its name (``offload_to = "archive"``) or by URL. Secrets are secret
specs as for account passwords (command, env or file; a raw value is warned about) and are
resolved only when the store is opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quotatool.config.accounts import Config, _parse_secret
from quotatool.config.secrets import SecretSpec, check_private_file, resolve_secret
from quotatool.errors import ConfigError
from quotatool.ports_write import StoreConfig

__all__ = ["StoreEntry", "find_store", "parse_stores", "resolve_store"]

_KEYS = frozenset(
    {
        "url",
        "endpoint",
        "region",
        "access_key_id",
        "secret_access_key",
        "session_token",
        "virtual_hosted",
        "allow_http",
        "timeout",
        "retries",
        "link_url",
    }
)
_SECRETS = ("access_key_id", "secret_access_key", "session_token")


@dataclass(frozen=True, slots=True)
class StoreEntry:
    """One ``[stores.NAME]`` table, validated; secrets still as specs."""

    name: str
    """The table's name."""
    url: str
    """The store URL (``file://...``, ``s3://...``)."""
    settings: Mapping[str, Any]
    """endpoint, region, virtual_hosted, allow_http, timeout, retries, link_url."""
    secrets: Mapping[str, SecretSpec]
    """access_key_id, secret_access_key, session_token as secret specs."""

    def config(self) -> StoreConfig:
        """Return the StoreConfig with the secrets resolved (run their commands now)."""
        values: dict[str, Any] = dict(self.settings)
        values.update({k: resolve_secret(spec) for k, spec in self.secrets.items()})
        return StoreConfig(**values)


def _expect(where: str, value: object, kind: type | tuple[type, ...], what: str) -> None:
    if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
        raise ConfigError(f"{where}: expected {what}, got {value!r}")


def _entry(file: Path | None, name: str, table: object, warnings: list[str]) -> StoreEntry:
    where = f"{file}: stores.{name}" if file else f"stores.{name}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    for key in table:
        if key not in _KEYS:
            raise ConfigError(
                f"{where}: unknown key {key!r}", hint=f"known keys: {', '.join(sorted(_KEYS))}"
            )
    url = table.get("url")
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{where}.url: expected a URL like s3://BUCKET/PREFIX or file:///PATH")
    settings: dict[str, Any] = {}
    for key in ("endpoint", "region", "link_url"):
        if key in table:
            _expect(f"{where}.{key}", table[key], str, "a string")
            settings[key] = table[key]
    for key in ("virtual_hosted", "allow_http"):
        if key in table:
            _expect(f"{where}.{key}", table[key], bool, "true or false")
            settings[key] = table[key]
    if "timeout" in table:
        _expect(f"{where}.timeout", table["timeout"], (int, float), "a number of seconds")
        if table["timeout"] <= 0:
            raise ConfigError(f"{where}.timeout: expected a positive number of seconds")
        settings["timeout"] = float(table["timeout"])
    if "retries" in table:
        _expect(f"{where}.retries", table["retries"], int, "a whole number")
        if table["retries"] < 0:
            raise ConfigError(f"{where}.retries: expected 0 or more")
        settings["retries"] = table["retries"]
    secrets: dict[str, SecretSpec] = {}
    for key in _SECRETS:
        spec = _parse_secret(f"{where}.{key}", table.get(key), warnings)
        if spec is not None:
            if spec.kind == "value" and file is not None:
                # A raw secret in the file: the file itself is now a secret file.
                check_private_file(file, "config file with a store secret")
            secrets[key] = spec
    return StoreEntry(name=name, url=url.strip(), settings=settings, secrets=secrets)


def parse_stores(config: Config) -> tuple[dict[str, StoreEntry], tuple[str, ...]]:
    """Return the config file's stores by name, and warnings (raw secrets in the file)."""
    raw = config.raw.get("stores", {})
    if not isinstance(raw, dict):
        raise ConfigError(f"{config.path}: stores: expected tables like [stores.NAME]")
    warnings: list[str] = []
    entries = {name: _entry(config.path, name, table, warnings) for name, table in raw.items()}
    return entries, tuple(warnings)


def find_store(ref: str, config: Config) -> StoreEntry | None:
    """Return the store a rule's ``offload_to`` or a stub's store URL names, if configured.

    A name must be configured; a URL is matched against the configured stores' URLs (so a
    restore finds the credentials of the store a stub points to) and is otherwise used as is.
    """
    entries, _ = parse_stores(config)
    if "://" not in ref:
        return entries.get(ref)
    want = ref.rstrip("/")
    return next((e for e in entries.values() if e.url.rstrip("/") == want), None)


def resolve_store(ref: str, config: Config) -> tuple[str, StoreConfig]:
    """Return the URL and StoreConfig (secrets resolved) of a store name or URL."""
    entry = find_store(ref, config)
    if entry is not None:
        return entry.url, entry.config()
    if "://" not in ref:
        where = f" in {config.path}" if config.path else " (no config file found)"
        entries, _ = parse_stores(config)
        known = ", ".join(sorted(entries)) or "none"
        raise ConfigError(
            f"unknown store {ref!r}{where}",
            hint=f"known stores: {known}; or give a URL such as s3://BUCKET/PREFIX",
        )
    return ref, StoreConfig()
