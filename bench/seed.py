"""Seed a large, realistic mailbox on a private Dovecot, fast.

Messages are written as Maildir files and indexed with ``doveadm force-resync``
(``DovecotServer.seed_maildir``): about ten times faster than APPEND (DOVECOT-NOTES.md).
The mix: ~60% single text/plain, ~25% multipart/alternative, ~15% multipart/mixed with 1-3
attachments (pdf/jpeg/docx/zip, 20 KiB-2 MiB, mostly small), a few hundred senders across
some dozens of domains, dates 2015-2026, List-ID newsletters, RFC 2047 names and subjects, and
several folders including a non-ASCII one. Same ``seed``, same mailbox.

Messages are built from templates, not with the ``email`` package: its generator is several
times slower, which matters at 100,000 messages (bench/scan.py seeds before it times).

    python bench/seed.py [--messages 100000] [--seed 1]

From Python (bench/scan.py)::

    from seed import seed_mailbox
    summary = seed_mailbox(server, "bench", 100_000, seed=1)
"""

from __future__ import annotations

import argparse
import base64
import random
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.dovecot import DovecotServer

__all__ = ["FOLDERS", "seed_mailbox"]

KIB = 1024
MIB = 1024 * KIB
START = int(datetime(2015, 1, 1, tzinfo=UTC).timestamp())
END = int(datetime(2026, 6, 30, tzinfo=UTC).timestamp())
ME = "Alex Beispiel <alex@example.org>"

# (folder, share of all messages). Newsletters also land in INBOX now and then.
FOLDERS: tuple[tuple[str, float], ...] = (
    ("INBOX", 0.40),
    ("Sent", 0.12),
    ("Newsletters", 0.10),
    ("Archive/2019", 0.06),
    ("Archive/2020", 0.06),
    ("Archive/2021", 0.06),
    ("Projekte/Übersicht", 0.05),
    ("Receipts", 0.05),
    ("Family", 0.04),
    ("Trash", 0.03),
    ("Junk", 0.03),
)
_FIRST = [
    "Anna",
    "Ben",
    "Chloé",
    "David",
    "Emma",
    "Felix",
    "Greta",
    "Hannah",
    "Ivan",
    "Jana",
    "Karim",
    "Lena",
    "Marta",
    "Noah",
    "Olga",
    "Paul",
    "Quentin",
    "Rosa",
    "Sven",
    "Tomás",
    "Uma",
    "Víctor",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zoë",
    "Jürgen",
    "Ayşe",
    "Søren",
    "Łukasz",
]
_LAST = [
    "Müller",
    "Schmidt",
    "García",
    "Dubois",
    "Rossi",
    "Novak",
    "Kowalski",
    "Yılmaz",
    "Sato",
    "Raman",
    "Becker",
    "O'Neill",
    "Schröder",
    "Jensen",
    "Silva",
    "Nguyen",
    "Ivanova",
    "Horvat",
    "Berg",
    "Costa",
]
_WORDS = [
    "mail",
    "storage",
    "quota",
    "report",
    "budget",
    "meeting",
    "invoice",
    "travel",
    "photos",
    "plan",
    "review",
    "draft",
    "project",
    "summer",
    "winter",
    "update",
    "question",
    "offer",
    "contract",
    "team",
    "holiday",
    "family",
    "school",
    "data",
]
_TLDS = ("com", "org", "net", "de", "fr", "es", "it", "co.uk", "nl", "jp")
_SUBJECTS = (
    "Re: {w} for next week",
    "{w} and {w2}",
    "Fwd: {w} {w2}",
    "Quick question about the {w}",
    "Übersicht: {w} ({w2})",
    "Café meeting – {w}",
    "[{w}] notes from today",
    "Your {w} is ready",
    "Re: Re: {w}",
    "Photos 📷 {w}",
)
# (content type, file extension, share of attachments)
_ATTACHMENT_TYPES = (
    ("application/pdf", "pdf", 0.40),
    ("image/jpeg", "jpg", 0.30),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx", 0.18),
    ("application/zip", "zip", 0.12),
)


@dataclass(frozen=True, slots=True)
class _Sender:
    display: str
    """The header value, RFC 2047-encoded where needed."""
    domain: str


def _encode_word(text: str) -> str:
    # RFC 2047 §4.1 B encoding; ASCII text stays as it is.
    if text.isascii():
        return text
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


def _rfc5322_date(ts: int) -> str:
    when = datetime.fromtimestamp(ts, UTC)
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return (
        f"{days[when.weekday()]}, {when.day:02d} {months[when.month - 1]} {when.year} "
        f"{when:%H:%M:%S} +0000"
    )


class _Generator:
    """Builds the messages of one mailbox; all randomness from one seeded generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        rng = self.rng
        domains = [f"{rng.choice(_WORDS)}{i}.example.{rng.choice(_TLDS)}" for i in range(60)] + [
            "gmail.example.com",
            "web.example.de",
            "outlook.example.com",
        ]
        self.people: list[_Sender] = []
        for i in range(300):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            # Free-mail domains are common: a third of people use one of three.
            domain = rng.choice(domains[-3:]) if rng.random() < 0.33 else rng.choice(domains)
            local = f"{first}.{last}{i}".lower().encode("ascii", "ignore").decode()
            local = local.replace("'", "")
            name = _encode_word(f"{first} {last}")
            self.people.append(_Sender(f'"{name}" <{local}@{domain}>', domain))
        self.shops = [
            _Sender(f"{rng.choice(_WORDS).title()} Shop <billing@{d}>", d)
            for d in rng.sample(domains[:-3], 40)
        ]
        self.lists = [
            (
                _Sender(f"{rng.choice(_WORDS).title()} Weekly <news@lists.{d}>", "lists." + d),
                f"<weekly.lists.{d}>",
            )
            for d in rng.sample(domains[:-3], 20)
        ]
        # One pool of base64 lines; attachments are slices of it (content is irrelevant to a
        # metadata scan, and slicing is far faster than fresh random bytes per attachment).
        pool = base64.encodebytes(rng.randbytes(3 * MIB))
        self.pool_lines = pool.count(b"\n")
        self.pool = pool
        self.line_len = pool.index(b"\n") + 1
        self.kinds: Counter[str] = Counter()
        self.attachments = 0
        self.attachment_bytes = 0
        self.count = 0

    def date(self, folder: str) -> int:
        if folder.startswith("Archive/"):
            year = int(folder.partition("/")[2])
            start = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
            end = int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp())
            return self.rng.randrange(start, end)
        # Denser towards the end: most of a mailbox is recent.
        return END - int((self.rng.random() ** 1.6) * (END - START))

    def subject(self) -> str:
        template = self.rng.choice(_SUBJECTS)
        return _encode_word(template.format(w=self.rng.choice(_WORDS), w2=self.rng.choice(_WORDS)))

    def text(self, lines: int) -> str:
        words = _WORDS
        rng = self.rng
        return "".join(
            " ".join(rng.choice(words) for _ in range(rng.randint(6, 14))) + "\n"
            for _ in range(lines)
        )

    def attachment_size(self) -> int:
        roll = self.rng.random()
        # Mostly small, a long tail: 90% 20-60 KiB, 8% up to 500 KiB, 2% up to 2 MiB.
        if roll < 0.90:
            return self.rng.randrange(20 * KIB, 60 * KIB)
        if roll < 0.98:
            return self.rng.randrange(60 * KIB, 500 * KIB)
        return self.rng.randrange(500 * KIB, 2 * MIB)

    def encoded(self, size: int) -> bytes:
        lines = -(-size * 4 // 3 // (self.line_len - 1))
        first = self.rng.randrange(0, self.pool_lines - lines)
        start = first * self.line_len
        return self.pool[start : start + lines * self.line_len]

    def message(self, folder: str) -> tuple[bytes, int, str]:
        rng = self.rng
        self.count += 1
        date = self.date(folder)
        extra = ""
        newsletter = folder == "Newsletters" or (folder == "INBOX" and rng.random() < 0.08)
        if newsletter:
            sender, list_id = rng.choice(self.lists)
            extra = (
                f"List-ID: {list_id}\nList-Unsubscribe: <mailto:leave@{sender.domain}>\n"
                "Precedence: bulk\n"
            )
            sender_text, to_text = sender.display, ME
        elif folder == "Receipts":
            sender_text, to_text = rng.choice(self.shops).display, ME
        elif folder == "Sent":
            sender_text, to_text = ME, rng.choice(self.people).display
        else:
            sender_text, to_text = rng.choice(self.people).display, ME
        head = (
            f"Return-Path: <bounce@example.org>\nFrom: {sender_text}\nTo: {to_text}\n"
            f"Subject: {self.subject()}\nDate: {_rfc5322_date(date)}\n"
            f"Message-ID: <{self.count}.{rng.getrandbits(40):x}@seed.example.org>\n"
            f"{extra}MIME-Version: 1.0\n"
        )
        roll = rng.random()
        # Newsletters (~13% of all) are multipart/alternative too: with 14% of the rest that
        # makes ~25% alternative, 17% of the rest ~15% with attachments, ~60% plain text.
        if newsletter or roll < 0.14:
            kind = "alternative"
            boundary = f"=_alt_{self.count:x}"
            text = self.text(rng.randint(3, 20))
            html = "<html><body>\n" + text.replace("\n", "<br>\n") * rng.randint(2, 6)
            body = (
                f'Content-Type: multipart/alternative; boundary="{boundary}"\n\n'
                f"--{boundary}\nContent-Type: text/plain; charset=utf-8\n\n{text}\n"
                f"--{boundary}\nContent-Type: text/html; charset=utf-8\n\n{html}</body></html>\n"
                f"--{boundary}--\n"
            ).encode()
        elif roll < 0.31:
            kind = "attachments"
            body = self.mixed()
        else:
            kind = "plain"
            body = (
                "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
                + self.text(rng.randint(2, 40))
            ).encode()
        self.kinds[kind] += 1
        flags = "S" if folder in ("Sent", "Trash") or rng.random() < 0.85 else ""
        if rng.random() < 0.03:
            flags += "F"
        if rng.random() < 0.1:
            flags += "R"
        return head.encode() + body, date, flags

    def mixed(self) -> bytes:
        rng = self.rng
        boundary = f"=_mix_{self.count:x}"
        parts = [
            f'Content-Type: multipart/mixed; boundary="{boundary}"\n\n'
            f"--{boundary}\nContent-Type: text/plain; charset=utf-8\n\n"
            f"{self.text(rng.randint(2, 10))}\n".encode()
        ]
        count = rng.choices((1, 2, 3), weights=(60, 30, 10))[0]
        for _ in range(count):
            ctype, ext, _ = rng.choices(_ATTACHMENT_TYPES, [t[2] for t in _ATTACHMENT_TYPES])[0]
            name = f"{rng.choice(_WORDS)}-{rng.randrange(1000)}.{ext}"
            if rng.random() < 0.1:
                name = "Übersicht " + name  # RFC 2231 §4 parameter, percent-encoded UTF-8
                disposition = f"attachment; filename*=utf-8''{urllib.parse.quote(name)}"
            else:
                disposition = f'attachment; filename="{name}"'
            encoded = self.encoded(self.attachment_size())
            self.attachments += 1
            self.attachment_bytes += len(encoded)
            parts.append(
                f"--{boundary}\nContent-Type: {ctype}\nContent-Disposition: {disposition}\n"
                "Content-Transfer-Encoding: base64\n\n".encode()
                + encoded
            )
        parts.append(f"--{boundary}--\n".encode())
        return b"".join(parts)


def seed_mailbox(
    server: DovecotServer, user: str, n: int = 100_000, seed: int = 1
) -> dict[str, Any]:
    """Write ``n`` messages for ``user`` and index them; return what was written.

    The result has ``messages``, ``bytes`` (sum of RFC822.SIZE), ``folders`` (name ->
    ``{"messages", "bytes"}``), ``kinds`` (plain / alternative / attachments counts),
    ``attachments``, ``attachment_bytes`` (encoded), ``seed`` and ``seconds``.
    """
    start = time.monotonic()
    gen = _Generator(seed)
    shares = [share for _, share in FOLDERS]
    counts = Counter(gen.rng.choices([name for name, _ in FOLDERS], shares, k=n))
    folders: dict[str, dict[str, int]] = {}
    for folder, _ in FOLDERS:
        if not counts[folder]:
            continue
        sizes = {"messages": 0, "bytes": 0}

        def messages(
            folder: str = folder, sizes: dict[str, int] = sizes
        ) -> Iterator[tuple[bytes, int, str]]:
            for _ in range(counts[folder]):
                raw, date, flags = gen.message(folder)
                sizes["messages"] += 1
                # RFC822.SIZE counts CRLF line ends; the templates write LF.
                sizes["bytes"] += len(raw) + raw.count(b"\n")
                yield raw, date, flags

        server.seed_maildir(user, folder, messages())
        folders[folder] = sizes
    return {
        "user": user,
        "seed": seed,
        "messages": sum(f["messages"] for f in folders.values()),
        "bytes": sum(f["bytes"] for f in folders.values()),
        "folders": folders,
        "kinds": dict(gen.kinds),
        "attachments": gen.attachments,
        "attachment_bytes": gen.attachment_bytes,
        "seconds": time.monotonic() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="leave the server running")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.dovecot import DovecotServer  # the repository's test fixture

    server = DovecotServer().start()
    try:
        server.add_user("bench", quota="100G")
        result = seed_mailbox(server, "bench", args.messages, args.seed)
        seconds = result["seconds"]
        print(
            f"seeded {result['messages']:,} messages, {result['bytes'] / MIB:,.0f} MiB "
            f"({result['attachments']:,} attachments) in {seconds:.1f} s "
            f"({result['messages'] / seconds:,.0f} messages/s)"
        )
        print(f"kinds: {result['kinds']}")
        for folder, sizes in result["folders"].items():
            status = server.mailbox_status("bench", folder)
            check = "ok" if status == (sizes["messages"], sizes["bytes"]) else f"MISMATCH {status}"
            print(
                f"  {folder:20} {sizes['messages']:>7,} {sizes['bytes'] / MIB:>9,.1f} MiB  {check}"
            )
        if args.keep:
            print(
                f"server left running: {server.root} (IMAPS port {server.imaps_port}, "
                f"bench password {server.users['bench']})"
            )
    finally:
        if not args.keep:
            server.stop()


if __name__ == "__main__":
    main()
