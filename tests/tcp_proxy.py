"""A small threaded TCP fault proxy for tests of lost connections and lost replies.

Written here because Debian has no toxiproxy package and a test needs only three faults: cut
the stream after N more bytes in one direction, drop the server's tagged reply to a chosen
IMAP command (the server did the work, the client never hears of it: SAFETY.md fact 4), and
record what the client sent so a test can check which commands went out. It sees bytes only:
to read commands, let the client speak clear-text IMAP to it (Dovecot allows LOGIN in the
clear on loopback).

    with FaultProxy(server.host, server.imap_port) as proxy:
        proxy.drop_reply_to(rb"^\\S+ UID EXPUNGE ")
        ...connect to proxy.host, proxy.port...
        assert b"UID EXPUNGE 7" in proxy.client_data()
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from dataclasses import dataclass, field

__all__ = ["FaultProxy"]

CLIENT_TO_SERVER = "client"
SERVER_TO_CLIENT = "server"
_CHUNK = 65536


@dataclass
class _Link:
    client: socket.socket
    server: socket.socket
    sent: bytearray = field(default_factory=bytearray)
    client_line: bytes = b""
    server_held: bytes = b""
    drop_tag: bytes | None = None
    closed: bool = False


class FaultProxy:
    """Forward loopback connections to a target; inject faults on request.

    Faults are one-shot and apply to whichever connection hits them first.
    """

    host = "127.0.0.1"

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server((self.host, 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._budget: dict[str, int | None] = {CLIENT_TO_SERVER: None, SERVER_TO_CLIENT: None}
        self._drop_pattern: re.Pattern[bytes] | None = None
        self.fired = threading.Event()
        """Set when a fault has cut a connection."""
        self._threads: list[threading.Thread] = []
        self._running = True
        self._accepter = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> FaultProxy:
        self._accepter.start()
        return self

    def stop(self) -> None:
        self._running = False
        # close() alone does not wake a thread blocked in accept() on Linux; shutdown() does.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        # The accepter first: once it is gone, no new link or thread can appear.
        if self._accepter.is_alive():
            self._accepter.join(timeout=5)
        with self._lock:
            links, threads = list(self._links), list(self._threads)
        for link in links:
            self._close(link)
        for thread in threads:
            thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults -------------------------------------------------------------------------------

    def cut_after(self, nbytes: int, direction: str = SERVER_TO_CLIENT) -> None:
        """Forward ``nbytes`` more bytes in ``direction`` ("client" or "server"), then close."""
        if direction not in self._budget:
            raise ValueError(f"direction must be 'client' or 'server', not {direction!r}")
        with self._lock:
            self._budget[direction] = nbytes

    def drop_reply_to(self, pattern: bytes | re.Pattern[bytes]) -> None:
        """Drop the tagged reply to the next client command line matching ``pattern``.

        The command reaches the server; untagged data and continuations before the tagged
        reply still reach the client; the tagged line is withheld and the connection closed.
        """
        with self._lock:
            self._drop_pattern = re.compile(pattern) if isinstance(pattern, bytes) else pattern

    # -- records ------------------------------------------------------------------------------

    def client_data(self) -> bytes:
        """Return everything clients sent, all connections in order of opening."""
        with self._lock:
            return b"".join(bytes(link.sent) for link in self._links)

    def commands(self) -> list[bytes]:
        """Return the client's lines (CRLF removed), literal data included as lines."""
        return self.client_data().splitlines()

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._links)

    # -- plumbing -----------------------------------------------------------------------------

    def _accept(self) -> None:
        while self._running:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            link = _Link(client, server)
            with self._lock:
                self._links.append(link)
            for direction in (CLIENT_TO_SERVER, SERVER_TO_CLIENT):
                thread = threading.Thread(target=self._pump, args=(link, direction), daemon=True)
                thread.start()
                with self._lock:
                    self._threads.append(thread)

    def _pump(self, link: _Link, direction: str) -> None:
        source, sink = (
            (link.client, link.server)
            if direction == CLIENT_TO_SERVER
            else (link.server, link.client)
        )
        while True:
            try:
                data = source.recv(_CHUNK)
            except OSError:
                data = b""
            if not data:
                self._close(link)
                return
            if direction == CLIENT_TO_SERVER:
                forward, cut = self._from_client(link, data)
            else:
                forward, cut = self._from_server(link, data)
            try:
                sink.sendall(forward)
            except OSError:
                cut = True
            if cut:
                self._close(link)
                return

    def _spend(self, direction: str, data: bytes) -> tuple[bytes, bool]:
        # Called with the lock held.
        budget = self._budget[direction]
        if budget is None:
            return data, False
        if len(data) < budget:
            self._budget[direction] = budget - len(data)
            return data, False
        self._budget[direction] = None
        self.fired.set()
        return data[:budget], True

    def _from_client(self, link: _Link, data: bytes) -> tuple[bytes, bool]:
        with self._lock:
            data, cut = self._spend(CLIENT_TO_SERVER, data)
            link.sent += data
            lines = (link.client_line + data).split(b"\n")
            link.client_line = lines.pop()
            if self._drop_pattern is not None:
                for line in lines:
                    if self._drop_pattern.search(line.rstrip(b"\r")):
                        # Arm before forwarding, so the reply cannot slip past.
                        link.drop_tag = line.split(b" ", 1)[0]
                        self._drop_pattern = None
                        break
            return data, cut

    def _from_server(self, link: _Link, data: bytes) -> tuple[bytes, bool]:
        with self._lock:
            tag = link.drop_tag
            if tag is not None:
                # Hold back a partial last line until it is complete: it may be the reply.
                held = link.server_held + data
                end = held.rfind(b"\n") + 1
                complete, link.server_held = held[:end], held[end:]
                forward = b""
                for line in complete.splitlines(keepends=True):
                    if line.startswith(tag + b" "):
                        link.drop_tag = None
                        self.fired.set()
                        return forward, True
                    forward += line
                data = forward
            return self._spend(SERVER_TO_CLIENT, data)

    def _close(self, link: _Link) -> None:
        with self._lock:
            if link.closed:
                return
            link.closed = True
        for sock in (link.client, link.server):
            # shutdown() wakes the other pump's recv(); close() alone may not.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
