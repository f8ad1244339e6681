"""Where quotatool keeps its own state: journals and account locks.

XDG Base Directory Specification 0.8: ``$XDG_STATE_HOME`` (default ``~/.local/state``) holds
"state data that should persist between (application) restarts" and is not important or
portable enough for ``$XDG_DATA_HOME`` — exactly what a journal of a run is.
"""

from __future__ import annotations

import os
from pathlib import Path

from quotatool.errors import ConfigError

__all__ = ["STATE_DIR_ENV", "state_dir"]

STATE_DIR_ENV = "QUOTATOOL_STATE_DIR"


def state_dir() -> Path:
    """Return the state directory, created 0700 if missing.

    ``$QUOTATOOL_STATE_DIR`` first, then ``$XDG_STATE_HOME/quotatool``, then
    ``~/.local/state/quotatool``. An existing directory that others can read or write is
    refused: journals name folders and subjects' UIDs (SAFETY.md promise 14).
    """
    explicit = os.environ.get(STATE_DIR_ENV)
    if explicit:
        path = Path(explicit).expanduser()
    else:
        xdg = os.environ.get("XDG_STATE_HOME")
        # The spec says a relative XDG path is invalid and must be ignored.
        base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "state"
        path = base / "quotatool"
    try:
        # Path.mkdir(parents=True) would give missing parents the default mode: make each
        # missing level 0700 ourselves (SAFETY.md promise 14).
        for level in reversed([p for p in (path, *path.parents) if not p.exists()]):
            level.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
    except OSError as exc:
        raise ConfigError(f"cannot create state directory {path}: {exc.strerror or exc}") from exc
    if not path.is_dir() or path.is_symlink():
        raise ConfigError(f"state directory {path} is not a directory")
    if info.st_mode & 0o077:
        raise ConfigError(
            f"state directory {path} is accessible by other users "
            f"(mode {info.st_mode & 0o777:04o})",
            hint=f"chmod 700 {path}",
        )
    return path
