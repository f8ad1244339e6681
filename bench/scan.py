"""Time ``quotatool scan`` of a big seeded mailbox against baselines measured in the same run.

On one private Dovecot and one mailbox (seeded once by bench/seed.py and cached, so a second
run starts in a second), every round times:

(a) the floor: the bulk ``UID FETCH 1:*`` quotatool sends (same items, same EXAMINE per
    folder, same connection set-up through ``ImapSource``), read from the IMAPS socket and
    thrown away unparsed;
(b) ``doveadm fetch 'uid size.virtual flags imap.bodystructure' mailbox '*' ALL`` to
    /dev/null: the server reading the same metadata without IMAP or TLS;
(c) ``quotatool scan --json`` as a subprocess, whose totals must equal what was seeded.

It prints the best of ``--repeat`` rounds, quotatool's ratio to (a), messages per second and
quotatool's peak RSS (``wait4`` rusage of that one child), then an in-process breakdown of
the same work over bytes captured from the socket: framing and parsing, BODYSTRUCTURE and
header decoding, the usage summary and the JSON. Nothing here asserts a time.

    python bench/scan.py [--messages 100000] [--seed 1] [--repeat 3] [--fresh] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from seed import seed_mailbox  # noqa: E402 - bench/ is not a package

from quotatool.adapters.fetch_parser import FetchStreamParser, RawFetch  # noqa: E402
from quotatool.adapters.imap import (  # noqa: E402
    FETCH_ITEMS,
    ImapConnectOptions,
    ImapSource,
    _to_message,
)
from quotatool.config.targets import ImapTarget  # noqa: E402
from quotatool.core.bodystructure import summarize as summarize_bodystructure  # noqa: E402
from quotatool.core.headers import parse_header_fields  # noqa: E402
from quotatool.core.usage import summarize  # noqa: E402
from quotatool.model import (  # noqa: E402
    FolderScan,
    FolderStatus,
    Inventory,
    MessageInfo,
    UidValidity,
)
from quotatool.ports import NullProgress  # noqa: E402
from quotatool.report.scan_json import render_scan_json  # noqa: E402
from quotatool.services.scan import scan  # noqa: E402
from tests.dovecot import DOVEADM, DovecotServer  # noqa: E402

USER = "bench"
CACHE = Path("/var/tmp/quotatool-bench")
MIB = 1024 * 1024
_READ_CHUNK = 256 * 1024  # what ImapSource reads at a time
TARGET_RATIO = 3.0
TARGET_RSS_MIB = 250


# -- the cached mailbox ---------------------------------------------------------------------------


def open_mailbox(
    cache: Path, messages: int, seed: int, fresh: bool
) -> tuple[DovecotServer, dict[str, Any], bool]:
    """Start Dovecot on the cached mailbox, seeding it first when missing or ``fresh``.

    Returns the running server, what ``seed_mailbox`` wrote, and whether it seeded now.
    """
    cache.mkdir(parents=True, exist_ok=True)
    cache.chmod(0o755)  # the mail uid (nobody) must traverse to the homes below
    root = cache / f"n{messages}-seed{seed}"
    summary_path = root / "seeded.json"
    if fresh or not summary_path.exists():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir()
        server = DovecotServer(root=root).start()
        try:
            server.add_user(USER, quota="100G")
            summary = seed_mailbox(server, USER, messages, seed)
        except BaseException:
            server.stop()
            raise
        # Written last: its presence means the seeding finished.
        summary_path.write_text(json.dumps(summary, indent=1))
        return server, summary, True
    server = DovecotServer(root=root)
    # The users exist on disk; tell the fixture so start() does not try to create them again.
    for path in sorted((root / "passwd").iterdir()):
        name, _, rest = path.read_text().partition(":")
        server.users[name] = rest.split(":", 1)[0].removeprefix("{PLAIN}")
    server.start()
    return server, json.loads(summary_path.read_text()), False


def connect_options(server: DovecotServer) -> ImapConnectOptions:
    """Build what ``quotatool.cli.wiring`` builds for ``imaps://bench@127.0.0.1:PORT``."""
    password = server.users[USER]
    return ImapConnectOptions(
        target=ImapTarget(host=server.host, port=server.imaps_port, user=USER),
        secret=lambda: password,
        ca_file=server.ca_file,
    )


# -- (a) the floor --------------------------------------------------------------------------------


def _drain(reader: Any, tag: bytes, keep: list[bytes] | None) -> int:
    """Read until the tagged reply of ``tag`` has arrived; return the octets read."""
    end = b"\r\n" + tag + b" "
    tail = b""
    total = 0
    while True:
        data = reader.read1(_READ_CHUNK)
        if not data:
            raise RuntimeError("the server closed the connection during the FETCH")
        total += len(data)
        if keep is not None:
            keep.append(data)
        window = tail + data
        at = window.find(end)
        if at >= 0 and window.find(b"\r\n", at + len(end)) >= 0:
            return total
        # Enough of the end to find the tagged line however the chunks fall.
        tail = window[-256:]


def floor_fetch(
    options: ImapConnectOptions, capture: dict[str, tuple[bytes, list[bytes]]] | None = None
) -> tuple[float, int]:
    """Time connect, login, LIST, then EXAMINE and the bulk FETCH per folder, unparsed.

    Returns (seconds, octets of FETCH responses). With ``capture``, keep each folder's tag
    and chunks for the in-process breakdown.
    """
    start = time.perf_counter()
    source = ImapSource(options)
    total = 0
    try:
        client = source._client
        imap = client._imap
        items = FETCH_ITEMS + (b" MODSEQ" if "CONDSTORE" in source.capabilities() else b"")
        source.quota()
        for folder in source.list_folders():
            if not folder.selectable:
                continue
            response = client.select_folder(folder.name, readonly=True)
            if not int(response.get(b"EXISTS", 0)):
                continue
            tag: bytes = imap._new_tag()
            imap.sock.sendall(tag + b" UID FETCH 1:* (" + items + b")\r\n")
            keep: list[bytes] | None = [] if capture is not None else None
            total += _drain(imap.file, tag, keep)
            imap.tagged_commands.pop(tag, None)
            if capture is not None and keep is not None:
                capture[folder.name] = (tag, keep)
    finally:
        source.close()
    return time.perf_counter() - start, total


# -- (b) doveadm -----------------------------------------------------------------------------------


def doveadm_fetch(server: DovecotServer) -> float:
    argv = [
        DOVEADM,
        "-c",
        str(server.config_path),
        "fetch",
        "-u",
        USER,
        "uid size.virtual flags imap.bodystructure",
        "mailbox",
        "*",
        "ALL",
    ]
    start = time.perf_counter()
    result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"doveadm fetch exited {result.returncode}: {result.stderr.decode()}")
    return elapsed


# -- (c) quotatool ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScanRun:
    seconds: float
    max_rss: int
    """Peak resident set of the quotatool process, octets."""
    cpu: float
    """User plus system CPU seconds of the quotatool process."""
    document: dict[str, Any]


def quotatool_scan(server: DovecotServer, workdir: Path, source: Path | None = None) -> ScanRun:
    """Run ``quotatool scan --json`` as the user would; measure its wall time and peak RSS.

    ``source`` is another checkout's directory to import quotatool from instead.
    """
    argv = [
        sys.executable,
        "-m",
        "quotatool",
        "scan",
        "--json",
        f"imaps://{USER}@{server.host}:{server.imaps_port}",
        "--ca-file",
        str(server.ca_file),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUOTATOOL_")}
    env["QUOTATOOL_PASSWORD"] = server.users[USER]
    env["XDG_CONFIG_HOME"] = str(workdir)  # no config file of the person running this
    if source is not None:
        env["PYTHONPATH"] = str(source)
    out_path = workdir / "scan.json"
    err_path = workdir / "scan.stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        # cwd: "python -m" puts the working directory first on sys.path, before PYTHONPATH.
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=workdir
        )
        # wait4 gives this one child's rusage (RUSAGE_CHILDREN would mix in doveadm).
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(
            f"quotatool scan exited {process.returncode}:\n{err_path.read_text(errors='replace')}"
        )
    # Linux reports ru_maxrss in KiB.
    return ScanRun(
        elapsed,
        usage.ru_maxrss * 1024,
        usage.ru_utime + usage.ru_stime,
        json.loads(out_path.read_text()),
    )


def check_totals(document: dict[str, Any], seeded: dict[str, Any]) -> None:
    """Fail loudly unless the scan found exactly the messages and octets that were seeded."""
    totals = document["totals"]
    problems = []
    if totals["messages"] != seeded["messages"] or totals["bytes"] != seeded["bytes"]:
        problems.append(
            f"totals: scanned {totals['messages']:,} messages / {totals['bytes']:,} bytes, "
            f"seeded {seeded['messages']:,} / {seeded['bytes']:,}"
        )
    if totals["unparsed"]:
        problems.append(f"{totals['unparsed']} messages unparsed")
    found = {f["name"]: (f["messages"], f["bytes"]) for f in document["folders"]}
    for name, sizes in seeded["folders"].items():
        if found.get(name) != (sizes["messages"], sizes["bytes"]):
            problems.append(f"folder {name}: scanned {found.get(name)}, seeded {sizes}")
    if problems:
        raise SystemExit("scan does not match the seeded mailbox:\n  " + "\n  ".join(problems))


# -- in-process breakdown --------------------------------------------------------------------------


def _best(repeat: int, work: Callable[[], object]) -> float:
    # CPU time, not wall time: the breakdown should not move when other work shares the CPUs.
    times = []
    for _ in range(repeat):
        start = time.process_time()
        work()
        times.append(time.process_time() - start)
    return min(times)


def breakdown(options: ImapConnectOptions, repeat: int) -> list[tuple[str, float]]:
    """Time each stage of a scan in process, over FETCH bytes captured from the socket."""
    capture: dict[str, tuple[bytes, list[bytes]]] = {}
    floor_fetch(options, capture)

    def parse() -> dict[str, list[RawFetch]]:
        out: dict[str, list[RawFetch]] = {}
        for folder, (tag, chunks) in capture.items():
            parser = FetchStreamParser(tag)
            raws: list[RawFetch] = []
            for chunk in chunks:
                raws += parser.feed(chunk)
            assert parser.done, folder
            out[folder] = raws
        return out

    raws = parse()
    everything = [raw for folder_raws in raws.values() for raw in folder_raws]

    def messages() -> dict[str, tuple[MessageInfo, ...]]:
        flag_sets: dict[tuple[str, ...], frozenset[str]] = {}
        return {
            folder: tuple(_to_message(folder, raw, flag_sets, _no_warning) for raw in folder_raws)
            for folder, folder_raws in raws.items()
        }

    built = messages()
    inventory = Inventory(
        target="bench",
        scanned_at=0,
        folders=tuple(
            FolderScan(
                status=_status(folder, len(msgs)),
                messages=msgs,
            )
            for folder, msgs in built.items()
        ),
    )
    report = summarize(inventory)
    return [
        ("frame + parse FETCH (FetchStreamParser)", _best(repeat, parse)),
        (
            "  of MessageInfo: BODYSTRUCTURE summarize",
            _best(repeat, lambda: [summarize_bodystructure(r.bodystructure) for r in everything]),
        ),
        (
            "  of MessageInfo: parse_header_fields",
            _best(repeat, lambda: [parse_header_fields(r.header) for r in everything]),
        ),
        ("build MessageInfo (_to_message, all of it)", _best(repeat, messages)),
        ("usage summarize", _best(repeat, lambda: summarize(inventory))),
        ("JSON render", _best(repeat, lambda: render_scan_json(report))),
    ]


def _no_warning(line: str) -> None:
    raise RuntimeError(f"unexpected warning: {line}")


def _status(folder: str, messages: int) -> FolderStatus:
    return FolderStatus(name=folder, uidvalidity=UidValidity(1), messages=messages)


def profile_scan(options: ImapConnectOptions, lines: int) -> None:
    """Profile one in-process scan (connection, parse, MessageInfo, summary)."""
    profiler = cProfile.Profile()
    source = ImapSource(options)
    try:
        profiler.enable()
        inventory = scan(source, now=0, progress=NullProgress())
        summarize(inventory)
        profiler.disable()
    finally:
        source.close()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(lines)


# -- main ------------------------------------------------------------------------------------------


def _fmt(times: list[float]) -> str:
    return " ".join(f"{t:.2f}" for t in times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best one counts")
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the mailbox is kept")
    parser.add_argument("--fresh", action="store_true", help="seed again even when cached")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the in-process part")
    parser.add_argument("--profile", action="store_true", help="cProfile an in-process scan")
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="DIR",
        help="also time (c) importing quotatool from DIR (another checkout), in the same rounds",
    )
    args = parser.parse_args()
    repeat = max(args.repeat, 1)

    server, seeded, seeded_now = open_mailbox(args.cache, args.messages, args.seed, args.fresh)
    try:
        n = seeded["messages"]
        how = f"seeded now in {seeded['seconds']:.0f} s" if seeded_now else "cached"
        print(
            f"mailbox: {n:,} messages, {seeded['bytes'] / MIB:,.0f} MiB in "
            f"{len(seeded['folders'])} folders ({how}: {args.cache})"
        )
        options = connect_options(server)
        # The first BODYSTRUCTURE fetch after seeding or a restart fills Dovecot's cache
        # file and page cache; it is reported, not counted.
        first, octets = floor_fetch(options)
        print(f"first read (not counted): {first:.2f} s, {octets / MIB:,.1f} MiB of responses")

        floor: list[float] = []
        doveadm: list[float] = []
        runs: list[ScanRun] = []
        other: list[ScanRun] = []
        with tempfile.TemporaryDirectory(prefix="qt-bench-") as tmp:
            for _ in range(repeat):
                floor.append(floor_fetch(options)[0])
                doveadm.append(doveadm_fetch(server))
                run = quotatool_scan(server, Path(tmp))
                check_totals(run.document, seeded)
                runs.append(run)
                if args.compare is not None:
                    run = quotatool_scan(server, Path(tmp), args.compare)
                    check_totals(run.document, seeded)
                    other.append(run)
        best_a, best_b = min(floor), min(doveadm)
        best_c = min(r.seconds for r in runs)
        rss = max(r.max_rss for r in runs)
        cpu = min(r.cpu for r in runs)
        print(f"\nbest of {repeat} (all runs in seconds)")
        print(f"(a) floor: UID FETCH over IMAPS, unparsed  {best_a:6.2f} s   [{_fmt(floor)}]")
        print(f"(b) doveadm fetch to /dev/null              {best_b:6.2f} s   [{_fmt(doveadm)}]")
        print(
            f"(c) quotatool scan --json (subprocess)      {best_c:6.2f} s   "
            f"[{_fmt([r.seconds for r in runs])}]"
        )
        ratio = best_c / best_a
        print(
            f"\nquotatool / floor: {ratio:.2f}x (target <= {TARGET_RATIO:.0f}x)   "
            f"quotatool / doveadm: {best_c / best_b:.2f}x"
        )
        print(
            f"quotatool: {n / best_c:,.0f} messages/s, peak RSS {rss / MIB:,.0f} MiB "
            f"(target < {TARGET_RSS_MIB} MiB); totals match the seeded mailbox"
        )
        print(f"quotatool CPU (user + system): {cpu:.2f} s, {cpu / n * 1e6:.1f} µs/message")
        if other:
            best_o = min(r.seconds for r in other)
            cpu_o = min(r.cpu for r in other)
            print(
                f"quotatool from {args.compare}: {best_o:.2f} s "
                f"[{_fmt([r.seconds for r in other])}], {best_o / best_a:.2f}x the floor, "
                f"CPU {cpu_o:.2f} s, peak RSS {max(r.max_rss for r in other) / MIB:,.0f} MiB"
            )

        if not args.no_breakdown:
            print("\nin process, CPU time over the captured FETCH bytes (best of the rounds):")
            for label, seconds in breakdown(options, repeat):
                print(f"  {label:44} {seconds:6.2f} s  {seconds / n * 1e6:6.1f} µs/message")
        if args.profile:
            profile_scan(options, 30)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
