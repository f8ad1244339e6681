"""From one parsed FETCH response to a MessageInfo: every field lands where it belongs."""

from __future__ import annotations

from quotatool.adapters.fetch_parser import RawFetch
from quotatool.adapters.imap import _to_message
from quotatool.core.bodystructure import decoded_size_estimate
from quotatool.model import Attachment, MessageInfo

# Every value distinct, so a field filled from the wrong source cannot pass.
HEADER = (
    b"From: =?utf-8?q?J=C3=BCrgen?= <Juergen@Example.DE>\r\n"
    b"To: a@example.org, B@Example.org\r\n"
    b"Subject: quarterly numbers\r\n"
    b"Date: Tue, 02 Jan 2024 03:04:05 +0000\r\n"
    b"Message-ID: <m1@example.de>\r\n"
    b"List-ID: Team list <team.example.org>\r\n\r\n"
)
PDF = (
    b"application",
    b"pdf",
    (b"name", b"r.pdf"),
    None,
    None,
    b"base64",
    4000,
    None,
    (b"attachment", (b"filename", b"r.pdf")),
    None,
    None,
)
TEXT = (
    b"text",
    b"plain",
    (b"charset", b"utf-8"),
    None,
    None,
    b"7bit",
    10,
    1,
    None,
    None,
    None,
    None,
)
MIXED = (TEXT, PDF, b"mixed", (b"boundary", b"b1"), None, None, None)


def test_every_field_comes_from_its_own_source() -> None:
    raw = RawFetch(
        seq=3,
        uid=42,
        size=5555,
        internaldate=1_700_000_000,
        flags=("\\Seen", "$Work"),
        modseq=987,
        bodystructure=MIXED,
        header=HEADER,
    )
    warnings: list[str] = []
    m = _to_message("Projekte/Übersicht", raw, {}, warnings.append)
    assert m == MessageInfo(
        folder="Projekte/Übersicht",
        uid=42,  # type: ignore[arg-type]
        size=5555,
        internaldate=1_700_000_000,
        flags=frozenset({"\\Seen", "$Work"}),
        date=1_704_164_645,
        from_addr="juergen@example.de",
        from_name="Jürgen",
        to=("a@example.org", "b@example.org"),
        subject="quarterly numbers",
        message_id="<m1@example.de>",
        list_id="Team list <team.example.org>",
        attachments=(
            Attachment(
                "2",
                "application/pdf",
                "r.pdf",
                4000,
                decoded_size_estimate("base64", 4000),
                "base64",
            ),
        ),
        content_type="multipart/mixed",
        modseq=987,
        unparsed=False,
    )
    assert warnings == []


def test_a_broken_response_is_unparsed_with_a_warning() -> None:
    raw = RawFetch(
        seq=1,
        uid=7,
        size=100,
        internaldate=0,
        flags=(),
        modseq=None,
        bodystructure=None,
        header=b"",
        error="BODYSTRUCTURE truncated",
    )
    warnings: list[str] = []
    m = _to_message("INBOX", raw, {}, warnings.append)
    assert (m.uid, m.size, m.unparsed, m.modseq, m.attachments) == (7, 100, True, None, ())
    assert len(warnings) == 1
    assert "UID 7" in warnings[0]
