"""Check thresholds in the config file: per account and in the [check] section."""

from __future__ import annotations

from pathlib import Path

import pytest

from quotatool.config.accounts import parse_config
from quotatool.core.thresholds import FolderLimit, Threshold, ThresholdSettings, resolve_policy
from quotatool.errors import ConfigError

CONFIG = """
[check]
warning = "70%"
folder_limits = { Trash = "100MiB" }

[accounts.shared]
url = "imaps://team@mail.example.org"
critical = "9GiB"
folder_limits = { INBOX = "2GiB", "Archive/*" = "5GiB" }

[accounts.plain]
url = "imaps://me@mail.example.org"
"""


def test_thresholds_per_account_and_defaults(tmp_path: Path) -> None:
    config = parse_config(CONFIG, tmp_path / "config.toml")
    assert config.check == ThresholdSettings(
        warning=Threshold(percent=70.0), folder_limits=(FolderLimit("Trash", 100 * 2**20),)
    )
    shared = config.accounts["shared"].thresholds
    assert shared.warning is None
    assert shared.critical == Threshold(octets=9 * 2**30)
    assert shared.folder_limits == (
        FolderLimit("INBOX", 2 * 2**30),
        FolderLimit("Archive/*", 5 * 2**30),
    )
    assert config.accounts["plain"].thresholds == ThresholdSettings()
    policy = resolve_policy(shared, config.check)
    assert policy.warning == Threshold(percent=70.0)
    assert policy.critical == Threshold(octets=9 * 2**30)
    assert {f.folder for f in policy.folder_limits} == {"INBOX", "Archive/*", "Trash"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[check]\nwarning = 80\n", 'check.warning: expected a string like "80%"'),
        ('[check]\nwarnig = "80%"\n', "check: unknown key 'warnig'"),
        ('[check]\ncritical = "95"\nwarning = "8O%"\n', "check.warning: expected a percentage"),
        (
            '[accounts.a]\nurl = "imaps://u@h"\ncritical = "9G"\n',
            "accounts.a.critical: expected a percentage like 80% or a size like 9GiB: ambiguous",
        ),
        (
            '[accounts.a]\nurl = "imaps://u@h"\nfolder_limits = { INBOX = "2G" }\n',
            "accounts.a.folder_limits.INBOX: ambiguous size",
        ),
        ('[accounts.a]\nurl = "imaps://u@h"\nfolder_limits = "x"\n', "expected a table like"),
        ("check = 3\n", "check: expected a table"),
    ],
)
def test_threshold_errors_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, tmp_path / "config.toml")
    assert info.value.message.startswith(f"{tmp_path / 'config.toml'}: ")
    assert message in info.value.message
