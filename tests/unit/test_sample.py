"""The demo's sample Maildir: deterministic, readable by MaildirSource, material for each rule."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from quotatool.adapters.maildir import MaildirSource
from quotatool.adapters.sample import SAMPLE_ACCOUNT, SampleSummary, write_sample_maildir
from quotatool.errors import UsageError
from quotatool.model import MessageInfo
from quotatool.ports import NullProgress

NOW = int(datetime(2026, 11, 28, tzinfo=UTC).timestamp())
MIB = 1024 * 1024


def _tree(root: Path) -> dict[str, tuple[str, int]]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
            out[str(p.relative_to(root))] = (digest, p.stat().st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[SampleSummary, list[MessageInfo]]:
    summary = write_sample_maildir(tmp_path_factory.mktemp("sample") / "Maildir", now=NOW)
    source = MaildirSource(summary.path)
    messages: list[MessageInfo] = []
    warnings: list[str] = []
    for folder in source.list_folders():
        if folder.selectable:
            _, it = source.scan_folder(folder, warnings.append, NullProgress())
            messages.extend(it)
    assert warnings == []
    return summary, messages


def test_two_writes_are_identical(tmp_path: Path) -> None:
    a = write_sample_maildir(tmp_path / "a", now=NOW)
    b = write_sample_maildir(tmp_path / "b", now=NOW)
    assert (a.folders, a.messages, a.bytes) == (b.folders, b.messages, b.bytes)
    tree_a, tree_b = _tree(a.path), _tree(b.path)
    assert tree_a == tree_b
    assert len(tree_a) == a.messages
    other = write_sample_maildir(tmp_path / "c", now=NOW, seed=7)
    assert _tree(other.path) != tree_a


def test_source_reads_exactly_the_summary(sample: tuple[SampleSummary, list[MessageInfo]]) -> None:
    summary, messages = sample
    assert SAMPLE_ACCOUNT == "demo"
    assert len(messages) == summary.messages
    assert sum(m.size for m in messages) == summary.bytes
    source = MaildirSource(summary.path)
    selectable = sorted(f.name for f in source.list_folders() if f.selectable)
    assert tuple(selectable) == summary.folders
    assert 1500 <= summary.messages <= 2500
    assert summary.bytes <= 125 * MIB


def test_non_ascii_folder_round_trips(sample: tuple[SampleSummary, list[MessageInfo]]) -> None:
    summary, messages = sample
    assert "Reisen/Überblick" in summary.folders
    assert (summary.path / ".Reisen.&ANw-berblick" / "cur").is_dir()
    assert any(m.folder == "Reisen/Überblick" for m in messages)
    sent = [f for f in MaildirSource(summary.path).list_folders() if f.name == "Sent"]
    assert sent[0].special_use == "\\Sent"


def test_material_for_every_demo_rule(sample: tuple[SampleSummary, list[MessageInfo]]) -> None:
    _, messages = sample
    year_ago = NOW - 365 * 86400
    old_news = [m for m in messages if m.list_id and m.date is not None and m.date < year_ago]
    assert len(old_news) > 100
    assert len({m.list_id for m in old_news}) >= 3
    old_inbox = [
        m for m in messages if m.folder == "INBOX" and m.internaldate < NOW - 2 * 365 * 86400
    ]
    assert len(old_inbox) > 20
    huge = [m for m in messages if m.size >= 8 * MIB]
    assert 3 <= len(huge) <= 4
    assert all(m.size <= 20 * MIB for m in huge)
    big_attachments = [a for m in messages for a in m.attachments if a.size > MIB]
    assert len(big_attachments) >= 4
    assert any(m.flags >= {"\\Flagged"} for m in messages)
    assert any("\\Seen" not in m.flags for m in messages if m.folder == "INBOX")
    oldest = min(m.internaldate for m in messages)
    assert NOW - 10 * 365 * 86400 - 86400 * 3 <= oldest < NOW - 8 * 365 * 86400
    assert max(m.internaldate for m in messages) < NOW


def test_realistic_names_and_types(sample: tuple[SampleSummary, list[MessageInfo]]) -> None:
    _, messages = sample
    attachments = [a for m in messages for a in m.attachments]
    names = {a.filename for a in attachments}
    types = {a.content_type for a in attachments}
    assert "Fotos Köln.jpg" in names
    assert {"application/pdf", "image/jpeg", "application/zip", "message/rfc822"} <= types
    assert "application/ics" in types
    assert any(n and n.endswith(".docx") for n in names)
    subjects = {m.subject for m in messages}
    assert "Grüße aus München" in subjects
    assert "Urlaubsfotos 🌍 Überblick" in subjects
    assert any(m.from_name == "Jürgen Müller" for m in messages)


def test_internaldate_is_the_message_date(sample: tuple[SampleSummary, list[MessageInfo]]) -> None:
    _, messages = sample
    assert all(m.date == m.internaldate for m in messages)


def test_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("keep me")
    with pytest.raises(UsageError, match="not an empty directory"):
        write_sample_maildir(tmp_path, now=NOW)
    assert (tmp_path / "x").read_text() == "keep me"
