from __future__ import annotations

import os
from pathlib import Path

import pytest

from quotatool.config.accounts import load_config, parse_config
from quotatool.config.secrets import SecretSpec, resolve_secret
from quotatool.config.targets import ImapTarget, LocalTarget, parse_target_url
from quotatool.errors import ConfigError, SecretError, UsageError


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("imaps://alice@mail.example.org", ImapTarget("mail.example.org", 993, "alice")),
        (
            "imap://bob@127.0.0.1:1143",
            ImapTarget("127.0.0.1", 1143, "bob", tls="starttls"),
        ),
        (
            "imaps://alice%40example.org@host:10993",
            ImapTarget("host", 10993, "alice@example.org"),
        ),
        ("imaps://alice*admin@host", ImapTarget("host", 993, "alice*admin")),
    ],
)
def test_imap_urls(url: str, expected: ImapTarget) -> None:
    assert parse_target_url(url) == expected


def test_local_targets(tmp_path: Path) -> None:
    assert parse_target_url(f"maildir:{tmp_path}") == LocalTarget("maildir", tmp_path)
    assert parse_target_url("mbox:/var/mail/x") == LocalTarget("mbox", Path("/var/mail/x"))


def test_display_hides_default_port() -> None:
    assert ImapTarget("h", 993, "u").display() == "imaps://u@h"
    assert ImapTarget("h", 1143, "u", tls="starttls").display() == "imap://u@h:1143"


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("imaps://alice:secret@host", "password in the target URL"),
        ("imaps://host", "names no user"),
        ("pop3://alice@host", "unknown target"),
        ("imaps://alice@host:99999", "invalid port"),
        ("maildir:", "names no path"),
    ],
)
def test_bad_urls(url: str, fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_target_url(url)
    assert fragment in info.value.message
    assert "secret" not in info.value.message


def test_config_accounts(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        """
[accounts.work]
url = "imap://alice@mail.example.org"
ca_file = "/etc/ca.pem"
password.command = ["pass", "show", "mail"]

[accounts.local]
url = "maildir:/srv/mail"
"""
    )
    config = load_config(cfg)
    work = config.accounts["work"]
    assert work.target == ImapTarget("mail.example.org", 143, "alice", tls="starttls")
    assert work.ca_file == Path("/etc/ca.pem")
    assert work.password == SecretSpec(
        "command", ("pass", "show", "mail"), origin=f"{cfg}: accounts.work.password"
    )
    assert isinstance(config.accounts["local"].target, LocalTarget)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[accounts.a]\nurl = "imaps://u@h"\npasword = "x"\n', "accounts.a: unknown key 'pasword'"),
        ('[acounts.a]\nurl = "x"\n', "unknown key 'acounts'"),
        ("[accounts.a]\nurl = 3\n", "accounts.a.url: expected a URL"),
        ('[accounts.a]\nurl = "imaps://u@h"\ntls = "maybe"\n', "accounts.a.tls: expected one of"),
        (
            '[accounts.a]\nurl = "imaps://u@h"\npassword = { env = "A", file = "b" }\n',
            "accounts.a.password: expected exactly one of",
        ),
        ('[accounts.a\nurl = "x"\n', "invalid TOML"),
    ],
)
def test_config_errors_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, tmp_path / "config.toml")
    assert info.value.message.startswith(f"{tmp_path / 'config.toml'}: ")
    assert message in info.value.message


def test_raw_password_in_world_readable_config_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[accounts.a]\nurl = "imaps://u@h"\npassword = "hunter2"\n')
    cfg.chmod(0o644)
    with pytest.raises(SecretError) as info:
        load_config(cfg)
    assert "readable by other users" in info.value.message
    assert "hunter2" not in info.value.message
    cfg.chmod(0o600)
    config = load_config(cfg)
    assert any("holds the password itself" in w for w in config.warnings)


def test_missing_explicit_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_secret_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QT_TEST_SECRET", "from-env")
    assert resolve_secret(SecretSpec("env", "QT_TEST_SECRET")) == "from-env"
    assert resolve_secret(SecretSpec("command", "printf 'from-cmd\\nsecond'")) == "from-cmd"
    assert resolve_secret(SecretSpec("command", ("printf", "argv"))) == "argv"
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    secret.chmod(0o600)
    assert resolve_secret(SecretSpec("file", str(secret))) == "from-file"


def test_secret_errors_never_show_the_secret(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("canary-7f3a\n")
    os.chmod(secret, 0o640)
    with pytest.raises(SecretError) as info:
        resolve_secret(SecretSpec("file", str(secret)))
    assert "chmod 600" in (info.value.hint or "")
    assert "canary" not in info.value.message
    with pytest.raises(SecretError) as info:
        resolve_secret(SecretSpec("command", f"cat {secret}; cat {secret} >&2; exit 3"))
    assert "exit code 3" in info.value.message
    assert "canary" not in info.value.message
    with pytest.raises(SecretError, match="not set"):
        resolve_secret(SecretSpec("env", "QT_SURELY_UNSET_VARIABLE"))
