"""Write an output file atomically, so a reader never sees half of it.

A Prometheus textfile collector (node_exporter), a CI job or a dashboard may read the file at
any moment. The text goes to a temporary file in the same directory (a rename is only atomic
within one file system), is fsynced, then renamed over the target; the directory is fsynced
so the rename survives a crash. ``tempfile.mkstemp`` creates the temporary file 0600 with
``O_EXCL``, so nothing planted there is followed (SAFETY.md promise 14).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from quotatool.errors import QuotatoolError

__all__ = ["write_atomic"]


def _mode_to_keep(path: Path) -> int:
    # A new file is 0600 (promise 14). An existing regular file keeps its permission bits, so
    # an admin who made the metrics file readable for node_exporter (chmod 644) keeps that.
    try:
        st = path.stat()
    except FileNotFoundError:
        return 0o600
    except OSError as exc:
        raise QuotatoolError(f"cannot write {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise QuotatoolError(f"cannot write {path}: it is not a regular file")
    return stat.S_IMODE(st.st_mode)


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) in one step; raise QuotatoolError on failure."""
    path = path.expanduser()
    directory = path.parent if str(path.parent) else Path(".")
    mode = _mode_to_keep(path)
    try:
        fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise QuotatoolError(
            f"cannot write {path}: {exc.strerror}",
            hint="the directory must exist and be writable (the file is renamed into place)",
        ) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        os.replace(temp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise QuotatoolError(f"cannot write {path}: {exc.strerror or exc}") from exc
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return  # The file is in place; only its durability across a crash is weaker.
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
