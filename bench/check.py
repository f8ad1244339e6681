"""Time ``quotatool check --all --jobs 8`` over many accounts against checking them one by one.

On one private Dovecot, ``--accounts`` users (50 by default) get a few messages each, at
different levels of a 1 MiB quota, and a config file names them all (each password from its
own environment variable, as ``password.env`` entries). Every round times:

(a) ``quotatool check --all --jobs 8``: one process, eight accounts at a time;
(b) ``quotatool check --all --jobs 1``: one process, one account after the other;
(c) ``quotatool check NAME`` once per account: a shell loop over the accounts.

It prints the best of ``--repeat`` rounds and the ratios (b)/(a) and (c)/(a): how much the
thread pool buys. The verdicts of (a) and (b) must be the same. Nothing here asserts a time.

On loopback every round trip is free and client and server share two cores, so the pool can
only overlap CPU work. A check of a real server waits on the network for about five round trips
(TLS handshake, greeting, LOGIN, GETQUOTAROOT, LOGOUT); ``--latency MS`` (default 20, a
typical round trip across a country) puts a relay in front of Dovecot that delays every reply
by that much, and the same three runs are timed through it.

    python bench/check.py [--accounts 50] [--jobs 8] [--repeat 3] [--latency 20]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from tests.dovecot import DovecotServer  # noqa: E402

KIB = 1024


def message(octets: int, n: int) -> bytes:
    head = f"From: bench@example.org\r\nSubject: filler {n}\r\n\r\n".encode()
    body = (b"x" * 76 + b"\r\n") * max(0, (octets - len(head)) // 78)
    return head + body


class LatencyRelay:
    """Relay TCP from a loopback port to Dovecot, delaying each reply chunk by ``delay`` s."""

    def __init__(self, port: int, delay: float) -> None:
        self.target = ("127.0.0.1", port)
        self.delay = delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, server, 0.0), daemon=True).start()
            threading.Thread(
                target=self._pump, args=(server, client, self.delay), daemon=True
            ).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, delay: float) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if delay:
                    time.sleep(delay)
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()


def seed(server: DovecotServer, count: int) -> None:
    """Create ``count`` users with 0-98% of a 1 MiB quota."""
    for i in range(count):
        name = f"acct{i:03d}"
        server.add_user(name, quota="1M")
        # 0..9 messages of 100 KiB: levels from empty to 98%, so every status shows up.
        server.seed_maildir(
            name, "INBOX", [(message(100 * KIB, j), 1_700_000_000, "S") for j in range(i % 10)]
        )


def run(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("QUOTATOOL_")}
    environ.update(env)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "quotatool", "check", *args],
        capture_output=True,
        text=True,
        env=environ,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1, 2) or "UNKNOWN" in done.stdout:
        raise SystemExit(f"check {' '.join(args)} failed ({done.returncode}):\n{done.stdout}")
    return elapsed, done.stdout


def config_only(
    server: DovecotServer, count: int, directory: Path, port: int
) -> tuple[Path, dict[str, str]]:
    """Write a config file naming the seeded users, reaching Dovecot through ``port``."""
    env = {
        "QUOTATOOL_CONFIG": str(directory / "config.toml"),
        "QUOTATOOL_STATE_DIR": str(directory / "state"),
        "NO_COLOR": "1",
    }
    sections = []
    for i in range(count):
        name = f"acct{i:03d}"
        variable = f"QT_BENCH_PW_{i}"
        env[variable] = server.users[name]
        sections.append(
            f'[accounts.{name}]\nurl = "imaps://{name}@{server.host}:{port}"\n'
            f'ca_file = "{server.ca_file}"\npassword.env = "{variable}"\n'
        )
    config = directory / "config.toml"
    config.write_text("\n".join(sections))
    return config, env


def time_runs(label: str, options: argparse.Namespace, env: dict[str, str]) -> None:
    names = [f"acct{i:03d}" for i in range(options.accounts)]
    run(["--all", "--jobs", "1"], env)  # warm the server's caches and the OS page cache
    parallel, serial, loop = [], [], []
    for _ in range(options.repeat):
        seconds, fast = run(["--all", "--jobs", str(options.jobs)], env)
        parallel.append(seconds)
        seconds, slow = run(["--all", "--jobs", "1"], env)
        serial.append(seconds)
        if fast != slow:
            raise SystemExit("--jobs changed the verdicts")
        loop.append(sum(run([name], env)[0] for name in names))
    a, b, c = min(parallel), min(serial), min(loop)
    n, jobs = options.accounts, options.jobs
    print(f"\n{label}, {n} accounts:")
    print(f"  check --all --jobs {jobs:<3} {a:7.2f} s  ({n / a:5.1f} accounts/s)")
    print(f"  check --all --jobs 1   {b:7.2f} s  ({n / b:5.1f} accounts/s)")
    print(f"  check NAME, one by one {c:7.2f} s  ({n / c:5.1f} accounts/s)")
    print(f"  ratio --jobs 1 / --jobs {jobs}:    {b / a:5.2f}x")
    print(f"  ratio one by one / --jobs {jobs}:  {c / a:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency", type=float, default=20.0, help="ms per reply; 0: skip")
    options = parser.parse_args()

    with DovecotServer() as server:
        started = time.perf_counter()
        seed(server, options.accounts)
        print(f"seeded {options.accounts} accounts in {time.perf_counter() - started:.1f} s")
        print(f"{os.cpu_count()} cores, best of {options.repeat} rounds")
        with tempfile.TemporaryDirectory() as tmp:
            _, env = config_only(server, options.accounts, Path(tmp), server.imaps_port)
            time_runs("loopback", options, env)
        if options.latency > 0:
            relay = LatencyRelay(server.imaps_port, options.latency / 1000)
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    _, env = config_only(server, options.accounts, Path(tmp), relay.port)
                    time_runs(f"{options.latency:g} ms per reply", options, env)
            finally:
                relay.close()


if __name__ == "__main__":
    main()
