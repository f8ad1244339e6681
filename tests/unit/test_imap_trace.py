from __future__ import annotations

from quotatool.adapters.imap import _Trace


def test_login_arguments_are_redacted() -> None:
    lines: list[str] = []
    trace = _Trace(lines.append)
    trace.client(b'a001 LOGIN alice "canary-pw"\r\n')
    trace.server(b"a001 OK Logged in\r\n")
    trace.client(b'a002 LIST "" *\r\n')
    assert lines[0] == "> a001 LOGIN [redacted]"
    assert lines[1] == "< a001 OK Logged in"
    assert lines[2] == '> a002 LIST "" *'
    assert not any("canary" in line for line in lines)


def test_sasl_continuations_are_redacted_until_the_tagged_answer() -> None:
    lines: list[str] = []
    trace = _Trace(lines.append)
    trace.client(b"a001 AUTHENTICATE XOAUTH2\r\n")
    trace.server(b"+ \r\n")
    trace.client(b"dXNlcj1jYW5hcnk=\r\n")
    trace.server(b"a001 OK done\r\n")
    trace.client(b"a002 NOOP\r\n")
    assert lines == [
        "> a001 AUTHENTICATE XOAUTH2 [redacted]",
        "< +",
        "> [redacted]",
        "< a001 OK done",
        "> a002 NOOP",
    ]


def test_literals_show_only_their_size_and_long_lines_are_clipped() -> None:
    lines: list[str] = []
    trace = _Trace(lines.append)
    trace.literal(1234)
    trace.server(b"* OK " + b"x" * 1000 + b"\r\n")
    assert lines[0] == "< [literal of 1234 bytes not shown]"
    assert len(lines[1]) < 400
    assert lines[1].endswith("more]")
