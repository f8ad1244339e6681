"""The fault proxy forwards, records, cuts and drops replies as its docstring says."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.tcp_proxy import FaultProxy


class _LineHandler(socketserver.StreamRequestHandler):
    """Echo server speaking a sliver of IMAP: ``TAG CMD`` gets ``* CMD`` then ``TAG OK``."""

    server: _Server

    def handle(self) -> None:
        # The proxy cutting the connection is the point of these tests, not an error.
        with contextlib.suppress(OSError):
            self._serve()

    def _serve(self) -> None:
        for line in self.rfile:
            self.server.received.append(line)
            tag, _, command = line.rstrip(b"\r\n").partition(b" ")
            if command == b"BIG":
                self.wfile.write(b"* " + b"x" * 10_000 + b"\r\n" + tag + b" OK big\r\n")
            else:
                self.wfile.write(b"* " + command + b"\r\n" + tag + b" OK done\r\n")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _LineHandler)
        self.received: list[bytes] = []


@pytest.fixture(scope="module")
def line_server() -> Iterator[_Server]:
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(line_server: _Server) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", line_server.server_address[1]) as fault_proxy:
        yield fault_proxy


def _connect(proxy: FaultProxy) -> socket.socket:
    return socket.create_connection((proxy.host, proxy.port), timeout=5)


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before {marker!r}: {data!r}"
        data += chunk
    return data


def test_forwards_both_ways_and_records_commands(proxy: FaultProxy) -> None:
    with _connect(proxy) as sock:
        sock.sendall(b"a1 NOOP\r\na2 UID EXPUNGE 7\r\n")
        reply = _read_until(sock, b"a2 OK done\r\n")
    assert reply == b"* NOOP\r\na1 OK done\r\n* UID EXPUNGE 7\r\na2 OK done\r\n"
    assert proxy.commands() == [b"a1 NOOP", b"a2 UID EXPUNGE 7"]
    assert proxy.connections == 1
    assert not proxy.fired.is_set()


def test_cut_server_to_client_after_n_bytes(proxy: FaultProxy) -> None:
    with _connect(proxy) as sock:
        proxy.cut_after(20, "server")
        sock.sendall(b"a1 BIG\r\n")
        received = _read_all(sock)
    assert received == (b"* " + b"x" * 10_000)[:20]
    assert proxy.fired.is_set()


def test_cut_client_to_server_after_n_bytes(proxy: FaultProxy, line_server: _Server) -> None:
    line_server.received.clear()
    with _connect(proxy) as sock:
        proxy.cut_after(12, "client")
        sock.sendall(b"a1 NOOP\r\na2 LOGOUT\r\n")
        received = _read_all(sock)
    # Only "a1 NOOP\r\na2 " (12 bytes) went through, then the connection closed.
    assert proxy.client_data() == b"a1 NOOP\r\na2 "
    deadline = time.monotonic() + 5
    while not line_server.received and time.monotonic() < deadline:
        time.sleep(0.01)
    assert line_server.received[0] == b"a1 NOOP\r\n"
    assert b"a2 LOGOUT\r\n" not in line_server.received
    assert b"a2 OK" not in received


def test_drop_reply_to_a_matching_command(proxy: FaultProxy, line_server: _Server) -> None:
    line_server.received.clear()
    proxy.drop_reply_to(rb"^\S+ APPEND ")
    with _connect(proxy) as sock:
        sock.sendall(b"a1 NOOP\r\n")
        first = _read_until(sock, b"a1 OK done\r\n")
        sock.sendall(b"a2 APPEND INBOX\r\n")
        rest = _read_all(sock)
    assert first == b"* NOOP\r\na1 OK done\r\n"
    # The untagged data arrives, the tagged reply does not, and the server did get the command.
    assert rest == b"* APPEND INBOX\r\n"
    assert line_server.received[-1] == b"a2 APPEND INBOX\r\n"
    assert proxy.fired.is_set()


def test_faults_are_one_shot(proxy: FaultProxy) -> None:
    proxy.drop_reply_to(rb"NOOP")
    with _connect(proxy) as sock:
        sock.sendall(b"a1 NOOP\r\n")
        assert _read_all(sock) == b"* NOOP\r\n"
    with _connect(proxy) as sock:
        sock.sendall(b"b1 NOOP\r\n")
        assert _read_until(sock, b"b1 OK done\r\n") == b"* NOOP\r\nb1 OK done\r\n"
    assert proxy.connections == 2
    assert proxy.commands() == [b"a1 NOOP", b"b1 NOOP"]


def test_rejects_unknown_direction(proxy: FaultProxy) -> None:
    with pytest.raises(ValueError, match="direction"):
        proxy.cut_after(1, "sideways")


@settings(max_examples=25, deadline=None)
@given(payload=st.binary(min_size=1, max_size=5000), cut=st.integers(min_value=0, max_value=6000))
def test_cut_forwards_exactly_a_prefix(line_server: _Server, payload: bytes, cut: int) -> None:
    # Whatever the chunking, the client gets exactly the first `cut` bytes of the reply.
    line = b"t " + payload.replace(b"\n", b"_").replace(b"\r", b"_") + b"\r\n"
    expected = b"* " + line[2:] + b"t OK done\r\n"
    with FaultProxy("127.0.0.1", line_server.server_address[1]) as proxy:
        proxy.cut_after(cut, "server")
        with _connect(proxy) as sock:
            sock.sendall(line)
            if cut >= len(expected):
                received = _read_until(sock, b"t OK done\r\n")
            else:
                received = _read_all(sock)
    assert received == expected[:cut]
