"""Write a deterministic sample Maildir++ for ``quotatool demo``: no server, no real mail.

Same ``now`` and ``seed`` give byte-identical files under identical names, so the demo's report
is reproducible. The mailbox holds what the demo's rules act on: years of newsletters with a
``List-ID`` (delete candidates), old mail by year (archive candidates), and big attachments,
a few of them huge (offload candidates); plus flagged and unseen mail, which rules protect by
default, RFC 2047 subjects, RFC 2231 file names and a non-ASCII folder.

Messages are written by hand rather than with :mod:`email`'s generator: its output (header
folding, boundaries) may change between Python versions, which would break byte-for-byte
reproducibility, and writing templates is several times faster. Payloads are pseudo-random
bytes from :class:`random.Random`, seeded (fast, and the demo needs sizes, not pictures).
"""

from __future__ import annotations

import base64
import os
import quopri
import random
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from imapclient import imap_utf7

from quotatool.errors import UsageError

__all__ = ["SAMPLE_ACCOUNT", "SampleSummary", "write_sample_maildir"]

SAMPLE_ACCOUNT = "demo"
"""The account name the demo reports the sample under."""

_DAY = 86400
_YEAR = 365 * _DAY
_MIB = 1024 * 1024
_ME = ("Alex Beispiel", "alex@example.org")
_HOST = "quotatool-demo"
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_PEOPLE = (
    ("Jürgen Müller", "juergen.mueller@example.de"),
    ("Zoë Martin", "zoe@example.net"),
    ("François Dubois", "f.dubois@example.fr"),
    ("Priya Raman", "priya@example.com"),
    ("Tom Becker", "tom.becker@example.org"),
    ("Ayşe Yılmaz", "ayse@example.com.tr"),
    ("Lena Schröder", "lena@example.de"),
    ("Sam O'Neill", "sam@example.ie"),
    ("Kenji Sato", "kenji@example.jp"),
    ("Maria García", "maria.garcia@example.es"),
)
_SHOPS = (
    ("Stadtwerke Köln", "rechnung@stadtwerke.example.de", "Rechnung"),
    ("Mobilfunk AG", "billing@mobilfunk.example.com", "Ihre Rechnung"),
    ("Bücherstube", "shop@buecherstube.example.de", "Rechnung zu Bestellung"),
)
# (name, address, list id, days between issues, years running, kilobytes of HTML)
_NEWSLETTERS = (
    ("Tech Weekly", "news@techweekly.example.com", "<weekly.techweekly.example.com>", 7, 3, 30),
    ("Reisezeit", "newsletter@reisezeit.example.de", "<news.reisezeit.example.de>", 14, 4, 45),
    ("Shop Deals", "deals@shop.example.com", "<deals.shop.example.com>", 7, 2, 20),
    ("Vereinsblatt", "info@verein.example.org", "<blatt.verein.example.org>", 30, 6, 15),
)
_TOPICS = (
    "Treffen am Freitag",
    "Re: Urlaubsplanung",
    "Fotos vom Wochenende 📷",
    "Projekt-Update",
    "Übergabe der Schlüssel",
    "Quick question",
    "Re: Re: Geburtstagsfeier",
    "Notes from today's meeting",
    "Grüße aus München",
    "Dinner next week?",
    "Fwd: Vertrag",
    "Café am Samstag ☕",
)
_TEXT = (
    "Hallo,\n\nkurze Rückmeldung zu unserem Gespräch: passt alles, ich melde mich morgen.\n"
    "\nViele Grüße\n"
)


@dataclass(frozen=True, slots=True)
class SampleSummary:
    """What :func:`write_sample_maildir` wrote."""

    path: Path
    """The Maildir++ root (its own cur/new/tmp are INBOX)."""
    folders: tuple[str, ...]
    """Display names of the folders holding messages (``/`` as delimiter), sorted."""
    messages: int
    """Number of messages written."""
    bytes: int
    """Sum of the messages' sizes as IMAP counts them (RFC822.SIZE, CRLF line ends)."""


@dataclass(frozen=True, slots=True)
class _Mail:
    folder: str
    date: int
    flags: str
    """Maildir info letters, sorted (``FRS``); ``None``-like ``"-"`` puts it in new/."""
    raw: bytes


def _rfc5322_date(ts: int) -> str:
    t = datetime.fromtimestamp(ts, UTC)
    return (
        f"{_DAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year} "
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} +0000"
    )


def _words(text: str) -> str:
    """Encode a header value as RFC 2047 encoded words when it is not plain ASCII."""
    if text.isascii():
        return text
    chunks: list[str] = []
    current = ""
    for ch in text:
        # RFC 2047 §2: an encoded word is at most 75 characters; 45 octets stay well below.
        if len((current + ch).encode()) > 45:
            chunks.append(current)
            current = ""
        current += ch
    chunks.append(current)
    return "\n ".join(
        "=?utf-8?b?" + base64.b64encode(c.encode()).decode("ascii") + "?=" for c in chunks
    )


def _addr(name: str, addr: str) -> str:
    if name.isascii() and "'" not in name:
        return f"{name} <{addr}>"
    if name.isascii():
        return f'"{name}" <{addr}>'
    return f"{_words(name)} <{addr}>"


def _b64(data: bytes) -> bytes:
    return base64.encodebytes(data)  # RFC 2045 §6.8: 76-character lines


# Maps every octet onto the base64 alphabet, each letter from exactly four octets: random
# octets become uniformly random base64 text, i.e. the encoding of random octets.
_B64_TABLE = bytes(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i % 64] for i in range(256)
)


class _Writer:
    """Builds the sample's messages from one seeded generator, in a fixed order."""

    def __init__(self, now: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.seed = seed
        self.count = 0
        self.mails: list[_Mail] = []

    # -- pieces -------------------------------------------------------------------------------

    def payload(self, size: int, magic: bytes) -> bytes:
        """Return the base64 text (76-character lines) of ``size`` random octets after ``magic``.

        The text is drawn directly rather than encoded: ``base64.encodebytes`` of 60 MB took
        most of the sample's generation time. The first line is encoded for real so the
        decoded part starts with the file type's magic number.
        """
        assert len(magic) <= 57 <= size
        first = magic + self.rng.randbytes(57 - len(magic))
        full, tail = divmod(size - 57, 57)
        body = bytearray(self.rng.randbytes(full * 77).translate(_B64_TABLE))
        body[76::77] = b"\n" * full
        return _b64(first) + bytes(body) + _b64(self.rng.randbytes(tail))

    def boundary(self) -> str:
        self.count += 1
        return f"=_qt{self.seed}_{self.count:06d}"

    def header(
        self,
        sender: tuple[str, str],
        to: tuple[str, str],
        subject: str,
        date: int,
        extra: str = "",
    ) -> str:
        self.count += 1
        return (
            f"Return-Path: <{sender[1]}>\n"
            f"Message-ID: <{self.count}.{self.seed}@{_HOST}.example>\n"
            f"Date: {_rfc5322_date(date)}\n"
            f"From: {_addr(*sender)}\n"
            f"To: {_addr(*to)}\n"
            f"Subject: {_words(subject)}\n"
            f"{extra}MIME-Version: 1.0\n"
        )

    @staticmethod
    def text_part(text: str) -> str:
        if text.isascii():
            return f"Content-Type: text/plain; charset=us-ascii\n\n{text}"
        body = quopri.encodestring(text.encode()).decode("ascii")
        return (
            "Content-Type: text/plain; charset=utf-8\n"
            f"Content-Transfer-Encoding: quoted-printable\n\n{body}"
        )

    @staticmethod
    def file_part(ctype: str, filename: str, encoded: bytes) -> str:
        """Return an attachment part; ``encoded`` is its base64 body."""
        quoted = urllib.parse.quote(filename, safe="")
        if filename.isascii():
            disposition = f'attachment; filename="{filename}"'
            name = f'name="{filename}"'
        else:
            # RFC 2231 §4 for the disposition; many mailers add an RFC 2047 `name` as well.
            disposition = f"attachment;\n filename*=utf-8''{quoted}"
            name = f'name="{_words(filename)}"'
        return (
            f"Content-Type: {ctype};\n {name}\n"
            f"Content-Disposition: {disposition}\n"
            f"Content-Transfer-Encoding: base64\n\n{encoded.decode('ascii')}"
        )

    def multipart(self, subtype: str, parts: list[str]) -> str:
        b = self.boundary()
        body = "".join(f"--{b}\n{p}\n" for p in parts)
        return (
            f'Content-Type: multipart/{subtype}; boundary="{b}"\n\n'
            f"This is a multi-part message in MIME format.\n\n{body}--{b}--\n"
        )

    def add(self, folder: str, date: int, flags: str, head: str, body: str) -> None:
        self.mails.append(_Mail(folder, date, flags, (head + body).encode("utf-8")))

    # -- kinds of mail --------------------------------------------------------------------------

    def when(self, start: int, end: int) -> int:
        return self.rng.randrange(start, max(end, start + 1))

    def seen_flags(self, date: int, *, flagged_share: float = 0.03) -> str:
        recent = date > self.now - 14 * _DAY
        flags = ""
        if self.rng.random() < flagged_share:
            flags += "F"
        if self.rng.random() < 0.15:
            flags += "R"
        if not recent or self.rng.random() < 0.3:
            flags += "S"
        return flags

    def personal(self, folder: str, date: int, *, outgoing: bool = False) -> None:
        person = self.rng.choice(_PEOPLE)
        sender, to = (_ME, person) if outgoing else (person, _ME)
        subject = self.rng.choice(_TOPICS)
        head = self.header(sender, to, subject, date)
        roll = self.rng.random()
        if roll < 0.60:
            body = self.text_part(_TEXT * self.rng.randint(1, 6))
        elif roll < 0.90:
            html = "<html><body><p>" + _TEXT.replace("\n", "<br>\n") * 3 + "</p></body></html>\n"
            body = self.multipart(
                "alternative",
                [self.text_part(_TEXT * 3), f"Content-Type: text/html; charset=utf-8\n\n{html}"],
            )
        else:
            body = self.multipart("mixed", [self.text_part(_TEXT), *self.attachments()])
        flags = "S" if outgoing else self.seen_flags(date)
        self.add(folder, date, flags, head, body)

    def attachments(self) -> list[str]:
        roll = self.rng.random()
        if roll < 0.35:
            count = self.rng.randint(1, 2)
            names = ("Fotos Köln.jpg", "IMG_2041.jpg", "Strand.jpg", "Familie – Weihnachten.jpg")
            return [
                self.file_part(
                    "image/jpeg",
                    self.rng.choice(names),
                    self.payload(self.rng.randrange(30_000, 250_000), b"\xff\xd8\xff\xe0"),
                )
                for _ in range(count)
            ]
        if roll < 0.55:
            return [
                self.file_part(
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                    self.rng.choice(("Bericht.docx", "Protokoll Sitzung.docx", "CV.docx")),
                    self.payload(self.rng.randrange(15_000, 120_000), b"PK\x03\x04"),
                )
            ]
        if roll < 0.70:
            return [
                self.file_part(
                    "application/zip",
                    self.rng.choice(("Unterlagen.zip", "photos.zip", "Präsentation.zip")),
                    self.payload(self.rng.randrange(100_000, 600_000), b"PK\x03\x04"),
                )
            ]
        if roll < 0.85:
            ics = (
                "BEGIN:VCALENDAR\nVERSION:2.0\nMETHOD:REQUEST\nBEGIN:VEVENT\n"
                f"UID:{self.count}@{_HOST}.example\nSUMMARY:Teamtreffen\n"
                "DTSTART:20240110T090000Z\nEND:VEVENT\nEND:VCALENDAR\n"
            )
            return [
                "Content-Type: text/calendar; charset=utf-8; method=REQUEST\n\n" + ics,
                self.file_part("application/ics", "invite.ics", _b64(ics.encode())),
            ]
        return [self.forwarded()]

    def forwarded(self) -> str:
        """Return a whole message attached as message/rfc822, itself carrying a PDF."""
        date = self.when(self.now - 8 * _YEAR, self.now - _YEAR)
        inner_head = self.header(self.rng.choice(_PEOPLE), _ME, "Vertrag zur Unterschrift", date)
        pdf = self.payload(self.rng.randrange(40_000, 250_000), b"%PDF-1.4\n")
        inner = inner_head + self.multipart(
            "mixed", [self.text_part(_TEXT), self.file_part("application/pdf", "Vertrag.pdf", pdf)]
        )
        return (
            'Content-Type: message/rfc822; name="Vertrag.eml"\n'
            'Content-Disposition: attachment; filename="Vertrag.eml"\n\n' + inner
        )

    def invoice(self, folder: str, date: int) -> None:
        name, addr, subject = self.rng.choice(_SHOPS)
        number = self.rng.randrange(100000, 999999)
        head = self.header((name, addr), _ME, f"{subject} {number}", date)
        pdf = self.payload(self.rng.randrange(15_000, 120_000), b"%PDF-1.4\n")
        body = self.multipart(
            "mixed",
            [
                self.text_part(f"Guten Tag,\n\nanbei Ihre Rechnung Nr. {number}.\n"),
                self.file_part("application/pdf", f"Rechnung-{number}.pdf", pdf),
            ],
        )
        self.add(folder, date, self.seen_flags(date, flagged_share=0.1), head, body)

    def newsletter(self, spec: tuple[str, str, str, int, int, int], date: int) -> None:
        name, addr, list_id, _, _, kib = spec
        issue = self.rng.randrange(1, 500)
        extra = (
            f"List-ID: {name} {list_id}\n"
            f"List-Unsubscribe: <mailto:unsubscribe@{addr.partition('@')[2]}>\n"
            "Precedence: bulk\n"
        )
        head = self.header((name, addr), _ME, f"{name} – Ausgabe {issue}", date, extra)
        filler = "<p>Lorem ipsum dolor sit amet, Angebote & Neuigkeiten.</p>\n"
        html = "<html><body>\n" + filler * (kib * 1024 // len(filler)) + "</body></html>\n"
        body = self.multipart(
            "alternative",
            [
                self.text_part(f"{name}, Ausgabe {issue}\n\nAlle Artikel im Browser lesen.\n"),
                f"Content-Type: text/html; charset=utf-8\n\n{html}",
            ],
        )
        flags = "S" if self.rng.random() < 0.85 or date > self.now - 7 * _DAY else ""
        self.add("Newsletters", date, flags, head, body)

    def huge(self, folder: str, date: int, ctype: str, filename: str, size: int) -> None:
        sender = _ME if folder == "Sent" else self.rng.choice(_PEOPLE)
        to = self.rng.choice(_PEOPLE) if folder == "Sent" else _ME
        head = self.header(sender, to, f"{filename} (groß)", date)
        magic = b"%PDF-1.4\n" if ctype == "application/pdf" else b"\x00\x00\x00\x18ftypmp42"
        body = self.multipart(
            "mixed",
            [self.text_part(_TEXT), self.file_part(ctype, filename, self.payload(size, magic))],
        )
        self.add(folder, date, "S", head, body)

    # -- the whole mailbox ------------------------------------------------------------------------

    def build(self) -> None:
        now = self.now
        this_year = datetime.fromtimestamp(now, UTC).year
        first_year = datetime.fromtimestamp(now - 10 * _YEAR, UTC).year
        for year in range(first_year, this_year - 2):
            start = max(int(datetime(year, 1, 1, tzinfo=UTC).timestamp()), now - 10 * _YEAR)
            end = int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp())
            for _ in range(75):
                if self.rng.random() < 0.2:
                    self.invoice(f"Archive/{year}", self.when(start, end))
                else:
                    self.personal(f"Archive/{year}", self.when(start, end))
        for _ in range(650):
            # Denser towards today: most of a mailbox is recent.
            age = int((self.rng.random() ** 2) * 4 * _YEAR)
            date = now - 600 - age
            if self.rng.random() < 0.12:
                self.invoice("INBOX", date)
            else:
                self.personal("INBOX", date)
        for _ in range(320):
            self.personal("Sent", self.when(now - 10 * _YEAR, now - 3600), outgoing=True)
        for spec in _NEWSLETTERS:
            step, years = spec[3] * _DAY, spec[4]
            date = now - years * _YEAR + self.rng.randrange(step)
            while date < now - 3600:
                self.newsletter(spec, date)
                date += step
        for _ in range(40):
            date = self.when(now - 6 * _YEAR, now - 30 * _DAY)
            head = self.header(self.rng.choice(_PEOPLE), _ME, "Urlaubsfotos 🌍 Überblick", date)
            body = self.multipart(
                "mixed",
                [
                    self.text_part("Hier die Bilder von unserer Reise nach Köln.\n"),
                    *[
                        self.file_part(
                            "image/jpeg",
                            "Fotos Köln.jpg",
                            self.payload(self.rng.randrange(50_000, 250_000), b"\xff\xd8\xff"),
                        )
                        for _ in range(self.rng.randint(1, 2))
                    ],
                ],
            )
            self.add("Reisen/Überblick", date, "S", head, body)
        for _ in range(30):
            self.personal("Trash", self.when(now - 60 * _DAY, now - 3600))
        self.huge("INBOX", now - 3 * _YEAR + 40 * _DAY, "video/mp4", "Hochzeit.mp4", 10 * _MIB)
        self.huge("Sent", now - 2 * _YEAR, "video/mp4", "Geburtstag Oma.mp4", 13 * _MIB // 2)
        oldest_archive = f"Archive/{first_year + 1}"
        scan_date = int(datetime(first_year + 1, 6, 1, tzinfo=UTC).timestamp())
        self.huge(oldest_archive, scan_date, "application/pdf", "Scan Steuer 2016.pdf", 6 * _MIB)
        self.huge("INBOX", now - 200 * _DAY, "application/pdf", "Bauplan Scan.pdf", 59 * _MIB // 10)
        # The newest unseen INBOX mail sits in new/, as a delivery agent leaves it.
        inbox = sorted((m for m in self.mails if m.folder == "INBOX"), key=lambda m: m.date)
        fresh = {id(m) for m in inbox[-5:] if "S" not in m.flags}
        self.mails = [
            _Mail(m.folder, m.date, "-", m.raw) if id(m) in fresh else m for m in self.mails
        ]


def _folder_dir(root: Path, name: str) -> Path:
    if name == "INBOX":
        return root
    # Maildir++: "." separates the levels on disk; names are modified UTF-7 (RFC 3501 §5.1.3).
    encoded: bytes = imap_utf7.encode(name)
    return root / ("." + encoded.decode("ascii").replace("/", "."))


def write_sample_maildir(path: Path, *, now: int, seed: int = 2026) -> SampleSummary:
    """Write the sample Maildir++ under ``path`` (new or empty) and describe it.

    The same ``now`` and ``seed`` always give the same file names and bytes; each file's
    mtime (the INTERNALDATE a Maildir reader reports) is its message's date.
    """
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UsageError(f"{path} is not an empty directory", hint="name a new or empty directory")
    writer = _Writer(now, seed)
    writer.build()
    folders = sorted({m.folder for m in writer.mails})
    for name in folders:
        for sub in ("cur", "new", "tmp"):
            (_folder_dir(path, name) / sub).mkdir(parents=True, exist_ok=True)
    total = 0
    for seq, mail in enumerate(sorted(writer.mails, key=lambda m: (m.folder, m.date)), start=1):
        size = len(mail.raw)
        vsize = size + mail.raw.count(b"\n")  # every line ends in LF; IMAP counts CRLF
        base = f"{mail.date}.M{seq:06d}P{seed}.{_HOST},S={size},W={vsize}"
        if mail.flags == "-":
            target = _folder_dir(path, mail.folder) / "new" / base
        else:
            flags = "".join(sorted(mail.flags))
            target = _folder_dir(path, mail.folder) / "cur" / f"{base}:2,{flags}"
        target.write_bytes(mail.raw)
        os.utime(target, (mail.date, mail.date))
        total += vsize
    return SampleSummary(path=path, folders=tuple(folders), messages=len(writer.mails), bytes=total)
