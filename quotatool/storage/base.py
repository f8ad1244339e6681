"""The object store interface: what offload and restore need from a place that keeps payloads.

Keys are content-addressed (``sha256/ab/cd/<64 hex>``, DESIGN.md §5) and checked here, so a
name from a message never becomes a path or an object name (SAFETY.md promise 15). Stores
compute SHA-256 and size themselves while data streams through them and read every object back
to verify it: servers (and test servers especially) accept wrong checksums, and a stub without
its object loses the attachment.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from quotatool.errors import ExitCode, QuotatoolError

__all__ = [
    "KEY_PATTERN",
    "Data",
    "HashingStream",
    "ObjectMismatchError",
    "ObjectMissingError",
    "Store",
    "StoreConfig",
    "StoreError",
    "StoreUnavailableError",
    "StoredObject",
    "check_key",
    "chunks_of",
    "verify_chunks",
]

KEY_PATTERN = re.compile(r"\Asha256/([0-9a-f]{2})/([0-9a-f]{2})/(\1\2[0-9a-f]{60})\Z")
"""The only object keys a store accepts: two levels of the hash's first hex digits, then it."""

CHUNK = 1024 * 1024
"""Octets read or written at a time while streaming."""

Data = bytes | Iterable[bytes]
"""A payload: whole, or as chunks streamed from elsewhere."""


class StoreError(QuotatoolError):
    """An object store failed or refused an operation."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached (server down, network, timeout)."""

    exit_code = ExitCode.UNAVAILABLE


class ObjectMissingError(StoreError):
    """The object is not in the store."""

    exit_code = ExitCode.NOT_FOUND


class ObjectMismatchError(StoreError):
    """Data does not match its recorded size or SHA-256 (on the way in, or as stored)."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    """An object as verified in a store."""

    key: str
    """Content-addressed key."""
    size: int
    """Octets, counted by us."""
    sha256: str
    """SHA-256 in lower-case hex, computed by us."""
    url: str
    """Where it is, as a URL (``file://...``, ``s3://...``): what a stub records."""


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """How to reach a store, beyond its URL (a ``[stores.NAME]`` table of the config file).

    Secrets arrive resolved: the config layer resolves secret specs when a store is opened.
    """

    endpoint: str | None = None
    """S3 API endpoint URL (MinIO, R2, B2, Wasabi...); ``None`` for AWS."""
    region: str | None = None
    """S3 region; ``None`` lets the library decide (``us-east-1`` for most non-AWS servers)."""
    access_key_id: str | None = field(default=None, repr=False)
    """S3 access key id; ``None`` to use the environment or instance credentials."""
    secret_access_key: str | None = field(default=None, repr=False)
    """S3 secret access key."""
    session_token: str | None = field(default=None, repr=False)
    """S3 session token for temporary credentials."""
    virtual_hosted: bool = False
    """Use ``bucket.host`` URLs instead of ``host/bucket`` (path style works everywhere)."""
    allow_http: bool = False
    """Allow a plain-HTTP endpoint (a loopback test server); off by default."""
    timeout: float = 60.0
    """Seconds one request may take."""
    retries: int = 3
    """Retries of a failed request before the store is reported unavailable."""
    link_url: str | None = None
    """Template of a human-facing link shown in the stub (``{key}``, ``{sha256}``...)."""


class Store(Protocol):
    """A place that keeps payloads under content-addressed keys."""

    def describe(self) -> str:
        """Return the store as the user may see it (never with secrets)."""

    def url_for(self, key: str) -> str:
        """Return the URL of ``key`` in this store (recorded in stubs)."""

    def put(self, key: str, data: Data, *, sha256: str, size: int) -> StoredObject:
        """Store ``data`` under ``key`` and return it verified.

        The data's SHA-256 and size are computed while it streams; when they differ from
        ``sha256`` / ``size`` nothing is stored (ObjectMismatchError). An object already
        stored under ``key`` with the right content is kept (a retry is idempotent); one that
        does not verify is replaced.
        """

    def get(self, key: str) -> Iterator[bytes]:
        """Yield the object's octets in chunks; ObjectMissingError when there is none."""

    def head(self, key: str) -> int | None:
        """Return the stored object's size, ``None`` when there is none."""

    def verify(self, key: str, *, sha256: str, size: int) -> StoredObject:
        """Read the object back and check size and SHA-256 (ObjectMismatchError if not)."""


def check_key(key: str) -> str:
    """Return ``key`` when it is a content-addressed key; raise StoreError otherwise."""
    if not KEY_PATTERN.match(key):
        raise StoreError(f"not a content-addressed object key: {key!r}")
    return key


def chunks_of(data: Data) -> Iterator[bytes]:
    """Yield ``data`` in chunks of at most :data:`CHUNK` octets."""
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        for i in range(0, len(view), CHUNK):
            yield bytes(view[i : i + CHUNK])
        return
    yield from data


class HashingStream:
    """Pass chunks through while counting and hashing them; check the total at the end.

    Iterating it yields the chunks; when the source is exhausted and size or SHA-256 differ
    from what was declared, it raises ObjectMismatchError *instead of finishing*, so an upload
    reading from it is abandoned rather than completed with the wrong content.
    """

    def __init__(self, data: Data, *, key: str, sha256: str, size: int) -> None:
        self._chunks = chunks_of(data)
        self.key = key
        self.expected_sha256 = sha256
        self.expected_size = size
        self.size = 0
        self._hash = hashlib.sha256()

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.size += len(chunk)
            if self.size > self.expected_size:
                raise ObjectMismatchError(
                    f"object {self.key}: more than the expected {self.expected_size} octets"
                )
            self._hash.update(chunk)
            yield chunk
        self.check()

    def check(self) -> None:
        """Raise ObjectMismatchError unless the data seen so far is what was declared."""
        got = self._hash.hexdigest()
        if self.size != self.expected_size or got != self.expected_sha256:
            raise ObjectMismatchError(
                f"object {self.key}: got {self.size} octets with SHA-256 {got}, "
                f"expected {self.expected_size} octets with SHA-256 {self.expected_sha256}"
            )


def verify_chunks(
    chunks: Iterable[bytes], *, key: str, url: str, sha256: str, size: int
) -> StoredObject:
    """Hash an object read back from a store; raise ObjectMismatchError when it differs."""
    digest = hashlib.sha256()
    total = 0
    for chunk in chunks:
        total += len(chunk)
        digest.update(chunk)
    got = digest.hexdigest()
    if total != size or got != sha256:
        raise ObjectMismatchError(
            f"stored object {url} does not match: {total} octets with SHA-256 {got}, "
            f"expected {size} octets with SHA-256 {sha256}",
            hint="the object was changed or damaged in the store; run the offload again "
            "to upload it anew",
        )
    return StoredObject(key=key, size=total, sha256=got, url=url)
