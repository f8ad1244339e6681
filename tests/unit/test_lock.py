"""AccountLock: one run per account, refused at once, released on exit and on process death."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from quotatool.adapters.lock import AccountLock, lock_file_name
from quotatool.errors import ConfigError, ExitCode, LockHeldError

_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from quotatool.adapters.lock import AccountLock
    lock = AccountLock(sys.argv[1], Path(sys.argv[2]))
    lock.acquire()
    print("held", flush=True)
    time.sleep(60)
    """
)


def _spawn_holder(key: str, directory: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, key, str(directory)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_holder_in_the_same_process_is_refused(tmp_path: Path) -> None:
    with AccountLock("anna@imap.example.org", tmp_path):
        with pytest.raises(LockHeldError) as info:
            AccountLock("anna@imap.example.org", tmp_path).acquire()
        assert info.value.exit_code == ExitCode.LOCKED == 6
        assert "anna@imap.example.org" in info.value.message
        assert str(tmp_path) in info.value.message
        assert f"pid {os.getpid()}" in info.value.message
    # Released on exit: a new run gets it.
    with AccountLock("anna@imap.example.org", tmp_path) as again:
        assert again.held


def test_other_accounts_are_independent(tmp_path: Path) -> None:
    with AccountLock("anna@a", tmp_path), AccountLock("bob@a", tmp_path) as bob:
        assert bob.held


def test_another_process_holds_it_and_death_releases_it(tmp_path: Path) -> None:
    proc = _spawn_holder("anna@a", tmp_path)
    try:
        with pytest.raises(LockHeldError) as info:
            AccountLock("anna@a", tmp_path).acquire()
        assert f"pid {proc.pid}" in info.value.message
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    # SIGKILL leaves the file behind with the dead pid in it; the kernel dropped the lock.
    assert (tmp_path / lock_file_name("anna@a")).exists()
    with AccountLock("anna@a", tmp_path) as lock:
        assert lock.held


def test_lock_file_is_private_and_names_stay_inside(tmp_path: Path) -> None:
    key = "../../etc/passwd\x00\n"
    with AccountLock(key, tmp_path / "state") as lock:
        assert lock.path.parent == tmp_path / "state"
        assert "/" not in lock_file_name(key)
        assert (lock.path.stat().st_mode & 0o777) == 0o600
        assert ((tmp_path / "state").stat().st_mode & 0o777) == 0o700
    assert lock_file_name("a/b") != lock_file_name("a_b")


def test_symlink_at_the_lock_path_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_text("keep")
    (tmp_path / lock_file_name("anna@a")).symlink_to(target)
    with pytest.raises(ConfigError, match="symbolic link"):
        AccountLock("anna@a", tmp_path).acquire()
    assert target.read_text() == "keep"
