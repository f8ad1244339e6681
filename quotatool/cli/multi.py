"""Many accounts in one run: several TARGETs, ``--all``, ``--users-from FILE``, ``--jobs N``.

Each account is one job: it takes the account's lock, opens its own connection and turns its
own failure into a result, so one broken account never stops the others. Jobs run in a thread
pool: the work is waiting on the network (TLS, LOGIN, GETQUOTAROOT), where threads scale.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from quotatool.adapters.imap import ImapSource
from quotatool.adapters.lock import AccountLock
from quotatool.adapters.maildir import MaildirSource
from quotatool.adapters.mbox import MboxSource
from quotatool.cli.wiring import ConnectionOptions, imap_options, resolve_account
from quotatool.config.accounts import AccountConfig, Config
from quotatool.config.paths import state_dir
from quotatool.config.targets import ImapTarget, LocalTarget, Target
from quotatool.errors import ConfigError, UsageError
from quotatool.ports import MailSource

__all__ = [
    "MASTER_SEPARATOR",
    "AccountJob",
    "AllOpt",
    "JobsOpt",
    "OutputOpt",
    "QuietOpt",
    "UsersFromOpt",
    "account_lock",
    "lock_directory",
    "lock_key",
    "open_job_source",
    "plan_jobs",
    "read_users",
    "run_parallel",
    "shared_secret_for",
]

# Dovecot's auth_master_user_separator in its documentation and in our test server; Cyrus and
# others use SASL authorization identities instead, which a LOGIN command cannot carry.
MASTER_SEPARATOR = "*"
DEFAULT_JOBS = 4

AllOpt = Annotated[
    bool, typer.Option("--all", help="Every account in the config file, in file order.")
]
JobsOpt = Annotated[
    int,
    typer.Option("--jobs", min=1, max=64, help="How many accounts to work on at the same time."),
]
UsersFromOpt = Annotated[
    Path | None,
    typer.Option(
        "--users-from",
        help="Read user names (one a line) from FILE and log in as USER*MASTER, where TARGET "
        "is the master user's account.",
        show_default=False,
    ),
]
OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output",
        help="Write the output to FILE atomically (temp file and rename) instead of stdout.",
        show_default=False,
    ),
]
QuietOpt = Annotated[
    bool,
    typer.Option("--quiet", help="Print only problems; no progress bar."),
]


@dataclass(frozen=True, slots=True)
class AccountJob:
    """One account to work on."""

    name: str
    """How the output names the account (config name, TARGET, or the user of a master login)."""
    account: AccountConfig
    """How to reach it."""
    lock_key: str
    """The mailbox's lock key: the same mailbox named two ways shares one lock."""


def lock_key(target: Target) -> str:
    """Return the lock key of the mailbox ``target`` reaches (its URL without secrets)."""
    return target.display()


def read_users(path: Path) -> list[str]:
    """Return the user names in ``path``: one a line; blank lines and ``#`` comments skipped."""
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the users file {path}: {exc}") from exc
    users: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        user = raw.split("#", 1)[0].strip()
        if not user:
            continue
        if MASTER_SEPARATOR in user or any(c.isspace() for c in user):
            raise ConfigError(f"{path}:{number}: not a user name: {user!r}")
        if user not in users:
            users.append(user)
    if not users:
        raise ConfigError(f"the users file {path} names no user")
    return users


def _master_jobs(targets: Sequence[str], users_from: Path, config: Config) -> list[AccountJob]:
    if len(targets) != 1:
        raise UsageError(
            "--users-from needs exactly one TARGET: the master user's account",
            hint="for example: quotatool check imaps://admin@mail.example.org "
            "--users-from users.txt",
        )
    master = resolve_account(targets[0], config)
    where = master.target
    if not isinstance(where, ImapTarget):
        raise UsageError("--users-from works with IMAP accounts only")
    jobs = []
    for user in read_users(users_from):
        login = ImapTarget(
            host=where.host,
            port=where.port,
            user=f"{user}{MASTER_SEPARATOR}{where.user}",
            tls=where.tls,
        )
        mailbox = dataclasses.replace(login, user=user)
        account = dataclasses.replace(master, name=user, target=login)
        jobs.append(AccountJob(name=user, account=account, lock_key=lock_key(mailbox)))
    return jobs


def plan_jobs(
    targets: Sequence[str], *, all_accounts: bool, users_from: Path | None, config: Config
) -> list[AccountJob]:
    """Return the accounts a command line names, each once, in the order named."""
    if users_from is not None:
        if all_accounts:
            raise UsageError("--all and --users-from cannot be combined")
        return _master_jobs(targets, users_from, config)
    if all_accounts:
        if targets:
            raise UsageError("--all takes no TARGET", hint="name accounts, or use --all alone")
        if not config.accounts:
            where = config.path or "no config file found"
            raise ConfigError(f"--all: the config file names no account ({where})")
        accounts = list(config.accounts.values())
    elif targets:
        accounts = [resolve_account(t, config) for t in targets]
    else:
        raise UsageError("no TARGET given", hint="name an account or a URL, or use --all")
    jobs: list[AccountJob] = []
    for account in accounts:
        if all(j.name != account.name for j in jobs):
            jobs.append(AccountJob(account.name, account, lock_key(account.target)))
    return jobs


class _SharedSecret:
    """Ask for (or run the command for) a secret once, however many jobs need it."""

    def __init__(self, provider: Callable[[], str]) -> None:
        self._provider = provider
        self._lock = threading.Lock()
        self._value: str | None = None

    def __call__(self) -> str:
        # One at a time: two password prompts on one terminal would garble each other.
        with self._lock:
            if self._value is None:
                self._value = self._provider()
            return self._value


def open_job_source(
    job: AccountJob, options: ConnectionOptions, *, shared_secret: _SharedSecret | None = None
) -> MailSource:
    """Open the job's mailbox read-only; with ``shared_secret`` every job uses that secret."""
    where = job.account.target
    if isinstance(where, LocalTarget):
        if where.kind == "maildir":
            return MaildirSource(where.path)
        return MboxSource(where.path)
    connect = imap_options(job.account, where, options)
    if shared_secret is not None:
        connect = dataclasses.replace(connect, secret=shared_secret)
    return ImapSource(connect)


def shared_secret_for(
    jobs: Sequence[AccountJob], options: ConnectionOptions
) -> _SharedSecret | None:
    """Return one secret for master-user jobs (they all log in with the master's password)."""
    first = jobs[0].account.target if jobs else None
    if not isinstance(first, ImapTarget) or MASTER_SEPARATOR not in first.user:
        return None
    return _SharedSecret(imap_options(jobs[0].account, first, options).secret)


def account_lock(job: AccountJob, directory: Path) -> AccountLock:
    """Return the job's lock (taken with ``with``; LockHeldError at once when held)."""
    return AccountLock(job.lock_key, directory)


def lock_directory() -> Path:
    """Return where account locks live (the state directory)."""
    return state_dir()


J = TypeVar("J")
R = TypeVar("R")


def run_parallel(jobs: Sequence[J], work: Callable[[J], R], max_jobs: int) -> list[R]:
    """Return ``work(job)`` for every job, in job order, at most ``max_jobs`` at a time."""
    if max_jobs <= 1 or len(jobs) <= 1:
        return [work(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=min(max_jobs, len(jobs))) as pool:
        return list(pool.map(work, jobs))
