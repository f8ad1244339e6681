"""Build test messages with the ``email`` package: CRLF line ends, as IMAP sends them."""

from __future__ import annotations

import email.policy
import email.utils
import itertools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage

__all__ = ["make_message"]

_counter = itertools.count(1)


def make_message(
    *,
    subject: str = "Test message",
    from_: str = "Sender <sender@example.org>",
    to: str = "Recipient <rcpt@example.org>",
    date: int | datetime | None = None,
    body: str = "Hello,\n\nthis is a test message.\n",
    html: str | None = None,
    attachments: Sequence[tuple[str, str, bytes]] = (),
    message_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """Return one RFC 5322 message with CRLF line ends.

    Args:
        date: POSIX seconds or a datetime (default: 2024-01-02 03:04:05 UTC, fixed so tests
            are reproducible).
        html: adds a text/html alternative to ``body`` (multipart/alternative).
        attachments: ``(filename, "type/subtype", payload)``, each base64-encoded by the
            ``email`` package (text types too, so the payload bytes stay exact).
        message_id: default ``<test-N@example.org>`` with a per-process counter.
        headers: extra header fields (``List-ID`` and the like).
    """
    when = date if date is not None else 1704164645
    if isinstance(when, int):
        when = datetime.fromtimestamp(when, UTC)
    message = EmailMessage()
    message["From"] = from_
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = email.utils.format_datetime(when)
    message["Message-ID"] = message_id or f"<test-{next(_counter)}@example.org>"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for filename, mimetype, payload in attachments:
        maintype, _, subtype = mimetype.partition("/")
        # Bytes with a maintype go through base64 for every type: exact round trips.
        message.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    # The SMTP policy writes CRLF line ends (RFC 5322 §2.1), which is what RFC822.SIZE counts.
    return message.as_bytes(policy=email.policy.SMTP)
