"""The local directory store: content-addressed, private, atomic, verified."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from quotatool.core.stub import object_key
from quotatool.storage import (
    ObjectMismatchError,
    ObjectMissingError,
    StoreError,
    open_store,
)
from quotatool.storage.local import LocalStore, default_root

DATA = b"%PDF-1.4 " * 1000
SHA = hashlib.sha256(DATA).hexdigest()
KEY = object_key(SHA)


def _store(tmp_path: Path) -> LocalStore:
    store = open_store(f"file://{tmp_path}/offload")
    assert isinstance(store, LocalStore)
    return store


def test_put_writes_a_private_content_addressed_file(tmp_path: Path) -> None:
    store = _store(tmp_path)
    obj = store.put(KEY, DATA, sha256=SHA, size=len(DATA))
    path = tmp_path / "offload" / "sha256" / SHA[:2] / SHA[2:4] / SHA
    assert path.read_bytes() == DATA
    assert (obj.size, obj.sha256, obj.key) == (len(DATA), SHA, KEY)
    assert obj.url == f"file://{tmp_path}/offload/{KEY}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in (path.parent, path.parent.parent, path.parent.parent.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert b"".join(store.get(KEY)) == DATA
    assert store.head(KEY) == len(DATA)
    assert os.listdir(path.parent) == [SHA]  # no temporary file left behind


@pytest.mark.parametrize(
    "key",
    [
        "../../etc/passwd",
        "sha256/../../../x",
        "report.pdf",
        f"sha256/{SHA[:2]}/{SHA[2:4]}/{SHA}/../../x",
        f"sha256/00/00/{SHA}",  # directories that do not match the hash
        f"/sha256/{SHA[:2]}/{SHA[2:4]}/{SHA}",
        f"sha256/{SHA[:2]}/{SHA[2:4]}/{SHA.upper()}",
    ],
)
def test_only_content_addressed_keys_become_paths(tmp_path: Path, key: str) -> None:
    store = _store(tmp_path)
    with pytest.raises(StoreError, match="not a content-addressed object key"):
        store.put(key, DATA, sha256=SHA, size=len(DATA))
    with pytest.raises(StoreError):
        store.head(key)
    assert not (tmp_path / "offload").exists() or not any((tmp_path / "offload").rglob("*x"))


def test_a_retried_put_is_idempotent(tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = store.put(KEY, DATA, sha256=SHA, size=len(DATA))
    path = store.path_for(KEY)
    inode = path.stat().st_ino
    again = store.put(KEY, iter([DATA[:10], DATA[10:]]), sha256=SHA, size=len(DATA))
    assert again == first
    assert path.stat().st_ino == inode  # kept, not written again


def test_data_that_does_not_match_its_hash_is_not_stored(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with pytest.raises(ObjectMismatchError, match="expected 9000 octets"):
        store.put(KEY, DATA[:-1] + b"!", sha256=SHA, size=len(DATA))
    with pytest.raises(ObjectMismatchError, match="more than the expected"):
        store.put(KEY, DATA + b"!", sha256=SHA, size=len(DATA))
    assert store.head(KEY) is None
    assert [p.name for p in store.path_for(KEY).parent.iterdir()] == []


def test_a_failing_source_leaves_no_file(tmp_path: Path) -> None:
    store = _store(tmp_path)

    def broken() -> Iterator[bytes]:
        yield DATA[:100]
        raise ConnectionError("IMAP connection lost")

    with pytest.raises(ConnectionError):
        store.put(KEY, broken(), sha256=SHA, size=len(DATA))
    assert store.head(KEY) is None
    assert list(store.path_for(KEY).parent.iterdir()) == []


def test_verify_catches_a_damaged_object_and_put_repairs_it(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.put(KEY, DATA, sha256=SHA, size=len(DATA))
    path = store.path_for(KEY)
    damaged = bytearray(DATA)
    damaged[4000] ^= 0x20
    path.write_bytes(bytes(damaged))  # same size, one bit flipped
    with pytest.raises(ObjectMismatchError, match="does not match") as err:
        store.verify(KEY, sha256=SHA, size=len(DATA))
    assert err.value.hint is not None
    assert store.put(KEY, DATA, sha256=SHA, size=len(DATA)).sha256 == SHA
    assert path.read_bytes() == DATA
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_missing_objects_and_planted_symlinks(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with pytest.raises(ObjectMissingError, match="is not in the store"):
        store.verify(KEY, sha256=SHA, size=len(DATA))
    # A symlink planted where a directory belongs must not redirect the write.
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "offload" / "sha256").mkdir(parents=True)
    (tmp_path / "offload" / "sha256" / SHA[:2]).symlink_to(outside)
    with pytest.raises(StoreError, match="not a directory"):
        store.put(KEY, DATA, sha256=SHA, size=len(DATA))
    assert list(outside.iterdir()) == []


def test_store_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_root() == tmp_path / "data" / "quotatool" / "offload"
    default = open_store("")
    assert isinstance(default, LocalStore)
    assert default.root == tmp_path / "data" / "quotatool" / "offload"
    home = open_store("file://~/off")
    assert isinstance(home, LocalStore)
    assert home.root == tmp_path / "home" / "off"
    plain = open_store(str(tmp_path / "p"))
    assert isinstance(plain, LocalStore)
    assert plain.root == tmp_path / "p"
    spaced = open_store("file:///srv/my%20mail")
    assert isinstance(spaced, LocalStore)
    assert spaced.url_for(KEY) == f"file:///srv/my%20mail/{KEY}"
    with pytest.raises(StoreError, match="unknown scheme 'ftp'; use one of file://, s3://"):
        open_store("ftp://host/x")
    with pytest.raises(StoreError, match="expected file:///absolute/path"):
        open_store("file://relative/path")
    with pytest.raises(StoreError, match="expected s3://BUCKET/PREFIX"):
        open_store("s3:///no-bucket")


def test_s3_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "obstore", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "quotatool.storage.s3", raising=False)
    with pytest.raises(StoreError, match="needs S3 support") as err:
        open_store("s3://bucket/prefix")
    assert err.value.hint == "pip install 'quotatool[s3]'"
