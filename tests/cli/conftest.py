"""Fixtures of the command-line tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from quotatool.adapters.sample import write_sample_maildir

SAMPLE_NOW = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp())


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's sample mailbox as a Maildir, its dates relative to 2026-06-01."""
    path = tmp_path_factory.mktemp("sample") / "Maildir"
    write_sample_maildir(path, now=SAMPLE_NOW)
    return path
