"""The local directory store: the default, ``$XDG_DATA_HOME/quotatool/offload``.

An object is the file ``<root>/sha256/ab/cd/<hex>``: only hex digits from the key become path
components (no name from a message ever does, SAFETY.md promise 15). Writes are atomic: a
temporary file in the same directory, created exclusively and without following symlinks,
mode 0600, fsynced, renamed into place, and the directory fsynced (SAFETY.md promise 14 and the
Maildir discipline of fact 7). Directories are created 0700.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from quotatool.storage.base import (
    CHUNK,
    Data,
    HashingStream,
    ObjectMismatchError,
    ObjectMissingError,
    StoredObject,
    StoreError,
    check_key,
    verify_chunks,
)

__all__ = ["LocalStore", "default_root"]

_FILE_MODE = 0o600
_DIR_MODE = 0o700
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def default_root() -> Path:
    """Return ``$XDG_DATA_HOME/quotatool/offload`` (``~/.local/share`` when unset)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "quotatool" / "offload"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStore:
    """Objects as files under a root directory."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().absolute()

    def describe(self) -> str:
        return f"local store {self.root}"

    def url_for(self, key: str) -> str:
        return f"{self.root.as_uri()}/{check_key(key)}"

    def path_for(self, key: str) -> Path:
        """Return the file that holds ``key`` (the key is checked: hex digits only)."""
        return self.root.joinpath(*check_key(key).split("/"))

    def _make_dirs(self, directory: Path) -> None:
        try:
            self.root.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {self.root}: {exc.strerror}") from exc
        current = self.root
        for name in directory.relative_to(self.root).parts:
            current = current / name
            try:
                os.mkdir(current, _DIR_MODE)
            except FileExistsError:
                pass
            except OSError as exc:
                raise StoreError(f"cannot create {current}: {exc.strerror}") from exc
            # A symlink planted inside the store must not lead writes elsewhere.
            if not stat.S_ISDIR(os.lstat(current).st_mode):
                raise StoreError(f"{current} is not a directory (a symlink or a file)")

    def put(self, key: str, data: Data, *, sha256: str, size: int) -> StoredObject:
        path = self.path_for(key)
        if self.head(key) == size:
            try:
                return self.verify(key, sha256=sha256, size=size)
            except ObjectMismatchError:
                pass  # damaged: write it anew below
        self._make_dirs(path.parent)
        temp = path.parent / f".tmp-{secrets.token_hex(8)}"
        stream = HashingStream(data, key=key, sha256=sha256, size=size)
        try:
            self._write(temp, path, stream)
        except BaseException:
            # Source errors (the IMAP connection, a hash mismatch) pass through unchanged.
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            raise
        return self.verify(key, sha256=sha256, size=size)

    @staticmethod
    def _write(temp: Path, path: Path, stream: HashingStream) -> None:
        """Write ``stream`` to ``temp``, fsync it, rename it to ``path``, fsync the directory."""
        chunks = iter(stream)
        try:
            fd = os.open(
                temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, _FILE_MODE
            )
        except OSError as exc:
            raise StoreError(f"cannot write {path}: {exc.strerror}") from exc
        try:
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    try:
                        view = view[os.write(fd, view) :]
                    except OSError as exc:
                        raise StoreError(f"cannot write {path}: {exc.strerror}") from exc
            try:
                os.fsync(fd)
            except OSError as exc:
                raise StoreError(f"cannot write {path}: {exc.strerror}") from exc
        finally:
            os.close(fd)
        try:
            os.replace(temp, path)
            _fsync_dir(path.parent)
        except OSError as exc:
            raise StoreError(f"cannot write {path}: {exc.strerror}") from exc

    def _open(self, key: str) -> int:
        path = self.path_for(key)
        try:
            return os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
        except FileNotFoundError as exc:
            raise ObjectMissingError(f"object {self.url_for(key)} is not in the store") from exc
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StoreError(f"{path} is a symlink; refusing to follow it") from exc
            raise StoreError(f"cannot read {path}: {exc.strerror}") from exc

    def get(self, key: str) -> Iterator[bytes]:
        fd = self._open(key)
        try:
            while chunk := os.read(fd, CHUNK):
                yield chunk
        finally:
            os.close(fd)

    def head(self, key: str) -> int | None:
        try:
            st = os.lstat(self.path_for(key))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {self.path_for(key)}: {exc.strerror}") from exc
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    def verify(self, key: str, *, sha256: str, size: int) -> StoredObject:
        return verify_chunks(
            self.get(key), key=key, url=self.url_for(key), sha256=sha256, size=size
        )
