"""Micro-benchmark: parse 100,000 metadata FETCH responses held in memory.

Times quotatool's FetchStreamParser (fed 64 KiB chunks) plus summarize() and
parse_header_fields() per message, against imapclient's parse_fetch_response on a slice,
and prints microseconds per message and the ratio. No timed assertion: read the numbers.

    python bench/parse_micro.py [--messages 100000] [--slice 5000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import time
from collections.abc import Callable

from imapclient.response_parser import parse_fetch_response

from quotatool.adapters.fetch_parser import FetchStreamParser
from quotatool.core.bodystructure import summarize
from quotatool.core.headers import parse_header_fields

CHUNK = 64 * 1024
TAG = b"A042"
MONTHS = b"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
SENDERS = [
    b'"Example News" <news@lists.example.org>',
    b"Alice Martin <alice.martin@example.com>",
    b"=?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jm@example.de>",
    b"billing@shop.example.net",
    b"Bob <bob@example.org>",
]
SUBJECTS = [
    b"Weekly digest: 14 new posts in your groups",
    b"Re: quarterly numbers and the plan for next year",
    b"=?utf-8?b?UmU6IFLDqXVuaW9uIGRlIGxhIHNlbWFpbmU=?=",
    b"Your invoice 2026-0412 is ready",
    b"[list] proposal: drop support for the old API",
]
FLAGS = [b"(\\Seen)", b"()", b"(\\Seen \\Answered)", b"(\\Seen $NotJunk)", b"(\\Flagged \\Seen)"]


def text_part(rng: random.Random, subtype: bytes = b"plain") -> bytes:
    size = rng.randint(200, 20000)
    return b'("text" "%s" ("charset" "utf-8") NIL NIL "quoted-printable" %d %d NIL NIL NIL NIL)' % (
        subtype,
        size,
        size // 60 + 1,
    )


def alternative(rng: random.Random) -> bytes:
    boundary = b"----=_Part_%d_%d.%d" % (rng.randint(1, 99999), rng.randint(1, 10**9), 1700000000)
    return b'(%s%s "alternative" ("boundary" "%s") NIL NIL NIL)' % (
        text_part(rng),
        text_part(rng, b"html"),
        boundary,
    )


def attachment(rng: random.Random) -> bytes:
    kind, ext = rng.choice(
        [
            (b'"application" "pdf"', b"pdf"),
            (b'"image" "jpeg"', b"jpg"),
            (b'"application" "zip"', b"zip"),
        ]
    )
    name = b"document-%d.%s" % (rng.randint(1, 9999), ext)
    size = rng.randint(10_000, 5_000_000)
    return (
        b'(%s ("name" "%s") NIL NIL "base64" %d NIL ("attachment" ("filename" "%s" "size" "%d")) '
        b"NIL NIL)" % (kind, name, size, name, size * 3 // 4)
    )


def bodystructure(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.60:
        return text_part(rng)
    if roll < 0.85:
        return alternative(rng)
    parts = [alternative(rng) if rng.random() < 0.5 else text_part(rng)]
    parts += [attachment(rng) for _ in range(rng.randint(1, 3))]
    return b'(%s "mixed" ("boundary" "b%d") NIL NIL NIL)' % (b"".join(parts), rng.randint(1, 10**6))


def header(rng: random.Random, n: int) -> bytes:
    day = rng.randint(1, 28)
    lines = [
        b"From: " + rng.choice(SENDERS),
        b"To: user@example.com",
        b"Subject: " + rng.choice(SUBJECTS),
        b"Date: Tue, %d %s 20%02d %02d:%02d:%02d +0100"
        % (day, rng.choice(MONTHS), rng.randint(10, 26), rng.randint(0, 23), rng.randint(0, 59), 7),
        b"Message-ID: <%d.%d@mail.example.com>" % (n, rng.randint(1, 10**12)),
    ]
    if rng.random() < 0.3:
        lines.append(b"List-ID: Example discussion <discuss.lists.example.org>")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def response(rng: random.Random, seq: int) -> bytes:
    hdr = header(rng, seq)
    return (
        b'* %d FETCH (UID %d RFC822.SIZE %d INTERNALDATE "%02d-%s-2025 %02d:%02d:%02d +0100" '
        b"FLAGS %s BODYSTRUCTURE %s BODY[HEADER.FIELDS (FROM TO SUBJECT DATE MESSAGE-ID LIST-ID)] "
        b"{%d}\r\n%s)\r\n"
        % (
            seq,
            seq + 1000,
            rng.randint(1000, 9_000_000),
            rng.randint(1, 28),
            rng.choice(MONTHS),
            rng.randint(0, 23),
            rng.randint(0, 59),
            rng.randint(0, 59),
            rng.choice(FLAGS),
            bodystructure(rng),
            len(hdr),
            hdr,
        )
    )


def build(n: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [response(rng, i) for i in range(1, n + 1)]


def run_ours(stream: bytes) -> int:
    parser = FetchStreamParser(TAG)
    count = 0
    for i in range(0, len(stream), CHUNK):
        for raw in parser.feed(stream[i : i + CHUNK]):
            summarize(raw.bodystructure)
            parse_header_fields(raw.header)
            count += 1
    assert parser.done
    return count


def run_parser_only(stream: bytes) -> int:
    parser = FetchStreamParser(TAG)
    count = 0
    for i in range(0, len(stream), CHUNK):
        count += len(parser.feed(stream[i : i + CHUNK]))
    return count


def imaplib_records(responses: list[bytes]) -> list[bytes | tuple[bytes, bytes]]:
    """Shape responses the way imaplib hands them to imapclient ("n (...)", literal split)."""
    records: list[bytes | tuple[bytes, bytes]] = []
    for resp in responses:
        head, _, rest = resp.partition(b"\r\n")
        marker = head.rindex(b"{")
        size = int(head[marker + 1 : -1])
        text = head[2:].replace(b" FETCH ", b" ", 1)
        records.append((text, rest[:size]))
        records.append(rest[size:-2])
    return records


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--slice", type=int, default=5_000)
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs (shared CPUs are noisy)")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()

    responses = build(args.messages)
    stream = b"".join(responses) + TAG + b" OK Fetch completed (0.123 + 0.000 secs).\r\n"
    print(f"stream: {args.messages} messages, {len(stream) / 2**20:.1f} MiB")

    def best(fn: Callable[[], object]) -> float:
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    assert run_parser_only(stream) == args.messages
    t_parse = best(lambda: run_parser_only(stream))
    t_ours = best(lambda: run_ours(stream))
    records = imaplib_records(responses[: args.slice])
    assert len(parse_fetch_response(records)) == args.slice
    t_ic = best(lambda: parse_fetch_response(records))

    us = 1e6 / args.messages
    us_ic = 1e6 * t_ic / args.slice
    print(f"FetchStreamParser.feed only          {t_parse * us:7.2f} µs/message")
    print(f"feed + summarize + headers           {t_ours * us:7.2f} µs/message")
    print(f"imapclient parse_fetch_response      {us_ic:7.2f} µs/message ({args.slice} messages)")
    print(f"ratio imapclient / feed only         {us_ic / (t_parse * us):7.1f}x")
    print(f"ratio imapclient / full per-message  {us_ic / (t_ours * us):7.1f}x")

    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        run_ours(stream)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
