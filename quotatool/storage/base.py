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

from quotatool.model import StoredObject
from quotatool.ports_write import (
    Data,
    ObjectMismatchError,
    ObjectMissingError,
    StoreConfig,
    StoreError,
    StoreUnavailableError,
)
from quotatool.ports_write import ObjectStore as Store

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

# The interface, its errors and values live in quotatool.ports_write and quotatool.model, so
# that services depend on the Protocol and never on this package (pyproject's layer contract);
# they are re-exported here for the backends and for callers of quotatool.storage.


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
