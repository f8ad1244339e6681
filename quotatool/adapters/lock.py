"""One run per account at a time: an exclusive, non-blocking ``flock`` on a per-account file.

``flock(2)`` locks belong to the open file description, so the kernel drops the lock when the
process dies however it dies (SIGKILL included): a stale lock file never blocks the next run,
and no "is that pid still alive" guessing is needed. The holder's pid is written into the file
only so that the refusal can name it.

The file is created 0600 with ``O_NOFOLLOW`` (SAFETY.md promise 14), so a symlink planted at
the lock path is refused rather than followed.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
from pathlib import Path
from types import TracebackType

from quotatool.errors import ConfigError, LockHeldError

__all__ = ["AccountLock", "lock_file_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")


def lock_file_name(key: str) -> str:
    """Return a file name for ``key`` that cannot leave the lock directory (promise 15).

    Readable characters are kept so that a person can tell which account a lock is for; a
    short hash of the full key keeps two keys that differ only in replaced characters apart.
    """
    readable = _UNSAFE.sub("_", key).strip(".")[:80] or "account"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
    return f"{readable}-{digest}.lock"


class AccountLock:
    """``with AccountLock(key, directory):``; LockHeldError at once if another run holds it."""

    def __init__(self, key: str, directory: Path) -> None:
        self.key = key
        self.path = directory / lock_file_name(key)
        self._fd: int | None = None

    def __enter__(self) -> AccountLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        if self._fd is not None:
            return
        try:
            # Each missing level 0700: mkdir(parents=True) would use the default mode for them.
            for level in reversed(
                [p for p in (self.path.parent, *self.path.parent.parents) if not p.exists()]
            ):
                level.mkdir(mode=0o700, exist_ok=True)
            fd = os.open(
                self.path,
                os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
            )
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ConfigError(
                    f"lock file {self.path} is a symbolic link; refusing to follow it",
                    hint="remove the link; quotatool creates the lock file itself",
                ) from exc
            raise ConfigError(f"cannot open lock file {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                who = f" (pid {holder})" if holder else ""
                raise LockHeldError(
                    f"another quotatool run{who} is working on account {self.key!r}; "
                    f"lock file {self.path}",
                    hint="wait for it to finish; the lock is released when that process exits",
                ) from exc
            raise ConfigError(f"cannot lock {self.path}: {exc.strerror}") from exc
        # Only the holder writes, so the pid read by a refused run is the holder's.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        # The file stays: unlinking it would let a third process lock a new inode while a
        # second one still waits on the old one.
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None


def _read_pid(fd: int) -> int | None:
    try:
        raw = os.pread(fd, 32, 0)
    except OSError:
        return None
    text = raw.decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None
