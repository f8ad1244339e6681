"""The error tree: every failure a user can meet, each with an exit code and an optional hint.

Adapters translate library exceptions into these at the boundary; the CLI prints
``quotatool: error: <message>`` and ``hint: <hint>`` and exits with ``exit_code``.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, documented in the README."""

    OK = 0
    ERROR = 1
    USAGE = 2
    PARTIAL = 3
    CONFIG = 4
    AUTH = 5
    LOCKED = 6
    UNAVAILABLE = 7
    TLS = 8
    NOT_FOUND = 9


class QuotatoolError(Exception):
    """Base of every error quotatool reports to a user as one line."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(QuotatoolError):
    """The command line asks for something that cannot be done."""

    exit_code = ExitCode.USAGE


class ConfigError(QuotatoolError):
    """A config, rules or secret file is missing, unreadable or invalid."""

    exit_code = ExitCode.CONFIG


class SecretError(ConfigError):
    """A secret (password, token) could not be obtained."""


class AuthError(QuotatoolError):
    """The server refused the credentials."""

    exit_code = ExitCode.AUTH


class TlsError(QuotatoolError):
    """TLS could not be established or the certificate was not trusted."""

    exit_code = ExitCode.TLS


class ServerUnavailableError(QuotatoolError):
    """The server could not be reached, or the connection was lost."""

    exit_code = ExitCode.UNAVAILABLE


class ProtocolError(QuotatoolError):
    """The server answered something we cannot use."""

    exit_code = ExitCode.ERROR


class FolderNotFoundError(QuotatoolError):
    """A folder does not exist (or vanished while we worked)."""

    exit_code = ExitCode.NOT_FOUND


class SourceNotFoundError(QuotatoolError):
    """A local Maildir or mbox path does not exist or is not what it claims to be."""

    exit_code = ExitCode.NOT_FOUND


class LockHeldError(QuotatoolError):
    """Another quotatool run holds the lock for this account."""

    exit_code = ExitCode.LOCKED


class ParseError(QuotatoolError):
    """Server or file data that could not be parsed (a message is skipped, not the run)."""

    exit_code = ExitCode.ERROR
