"""Secret specs (password, token): exactly one of command, env, file or a raw value.

A secret is resolved only when a connection needs it, and never stored anywhere else.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from quotatool.errors import SecretError

SecretKind = Literal["command", "env", "file", "value"]

_COMMAND_TIMEOUT_S = 60


@dataclass(frozen=True, slots=True)
class SecretSpec:
    """Where a secret comes from; ``describe()`` is safe to print, the value never is."""

    kind: SecretKind
    """Which source: a command's first output line, an environment variable, a file, or raw."""
    source: str | tuple[str, ...]
    """The command (a string run by ``sh -c`` or an argv tuple), variable name, path or value."""
    origin: str = ""
    """Where the spec was written (``config.toml: accounts.alice.password``), for messages."""

    def describe(self) -> str:
        """Return a description without the secret itself."""
        if self.kind == "command":
            text = self.source if isinstance(self.source, str) else shlex.join(self.source)
            return f"command {text!r}"
        if self.kind == "env":
            return f"environment variable {self.source}"
        if self.kind == "file":
            return f"file {self.source}"
        return "a value written in the config file"


def check_private_file(path: Path, what: str) -> None:
    """Refuse a secret-bearing file that others can read (SAFETY.md promise 14)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise SecretError(f"cannot read {what} {path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(
            f"{what} {path} is readable by other users (mode {stat.S_IMODE(mode):o})",
            hint=f"run: chmod 600 {shlex.quote(str(path))}",
        )


def resolve_secret(spec: SecretSpec) -> str:
    """Return the secret's value; errors never contain the value."""
    where = f" ({spec.origin})" if spec.origin else ""
    if spec.kind == "value":
        assert isinstance(spec.source, str)
        return spec.source
    if spec.kind == "env":
        assert isinstance(spec.source, str)
        value = os.environ.get(spec.source)
        if not value:
            raise SecretError(f"environment variable {spec.source} is not set{where}")
        return value
    if spec.kind == "file":
        assert isinstance(spec.source, str)
        path = Path(spec.source).expanduser()
        check_private_file(path, "secret file")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretError(f"cannot read secret file {path}{where}: {exc}") from exc
        value = text.splitlines()[0] if text else ""
        if not value:
            raise SecretError(f"secret file {path} is empty{where}")
        return value
    return _run_command(spec, where)


def _run_command(spec: SecretSpec, where: str) -> str:
    # A string is a shell command line, as in mbsync's PassCmd and msmtp's passwordeval.
    source = spec.source
    argv = ["/bin/sh", "-c", source] if isinstance(source, str) else list(source)
    try:
        done = subprocess.run(  # noqa: S603 - the user's own configured command
            argv,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=_COMMAND_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError as exc:
        raise SecretError(f"password command not found: {argv[0]}{where}") from exc
    except subprocess.TimeoutExpired as exc:
        raise SecretError(
            f"password {spec.describe()} did not finish within {_COMMAND_TIMEOUT_S} s{where}"
        ) from exc
    if done.returncode != 0:
        raise SecretError(
            f"password {spec.describe()} failed with exit code {done.returncode}{where}",
            hint="run the command yourself to see why",
        )
    lines = done.stdout.decode("utf-8", "replace").splitlines()
    value = lines[0].strip() if lines else ""
    if not value:
        raise SecretError(f"password {spec.describe()} printed nothing{where}")
    return value
