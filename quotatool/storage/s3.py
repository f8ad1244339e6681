"""S3-compatible object stores (AWS, MinIO, Cloudflare R2, Backblaze B2, Wasabi) via obstore.

Why obstore (the ``s3`` extra) and not boto3: obstore is two packages (itself and
typing-extensions) with type hints, streams uploads from an iterator, and sends no default
checksum headers; boto3 since 1.36 adds CRC32 checksum headers by default that R2, B2 and
older MinIO reject unless ``request_checksum_calculation = "when_required"`` is set, and it
brings botocore, s3transfer, jmespath and urllib3 along. We do not rely on any server-side
checksum either way: :class:`~quotatool.storage.base.HashingStream` hashes what we send and
:meth:`S3Store.verify` hashes what the server gives back.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, NoReturn

import obstore
from obstore.exceptions import (
    BaseError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from obstore.store import S3Store as _ObstoreS3

from quotatool.storage.base import (
    CHUNK,
    Data,
    HashingStream,
    ObjectMismatchError,
    ObjectMissingError,
    StoreConfig,
    StoredObject,
    StoreError,
    StoreUnavailableError,
    check_key,
    verify_chunks,
)

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig, S3Config

__all__ = ["S3Store"]

# Below this, an upload is one PUT of the materialized payload; above, a multipart upload
# streams it (obstore's default part size). One PUT leaves nothing behind when it fails.
_MULTIPART_ABOVE = 8 * 1024 * 1024


class S3Store:
    """Objects under ``s3://bucket/prefix/``."""

    def __init__(self, bucket: str, prefix: str, config: StoreConfig) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint = config.endpoint
        s3: S3Config = {"virtual_hosted_style_request": config.virtual_hosted}
        if config.endpoint:
            s3["endpoint"] = config.endpoint
        if config.region:
            s3["region"] = config.region
        if config.access_key_id:
            s3["access_key_id"] = config.access_key_id
        if config.secret_access_key:
            s3["secret_access_key"] = config.secret_access_key
        if config.session_token:
            s3["session_token"] = config.session_token
        client: ClientConfig = {
            "allow_http": config.allow_http,
            "timeout": timedelta(seconds=config.timeout),
            "connect_timeout": timedelta(seconds=min(config.timeout, 10.0)),
        }
        retry: RetryConfig = {
            "max_retries": config.retries,
            "retry_timeout": timedelta(seconds=config.timeout),
            "backoff": {
                "init_backoff": timedelta(milliseconds=100),
                "max_backoff": timedelta(seconds=5),
                "base": 2,
            },
        }
        try:
            self._store = _ObstoreS3(
                bucket,
                prefix=self.prefix or None,
                config=s3,
                client_options=client,
                retry_config=retry,
            )
        except BaseError as exc:
            raise StoreError(f"{self.describe()}: {_first_line(exc)}") from exc

    def describe(self) -> str:
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"S3 store s3://{self.bucket}/{self.prefix}{where}"

    def url_for(self, key: str) -> str:
        base = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        return f"{base}/{check_key(key)}"

    def put(self, key: str, data: Data, *, sha256: str, size: int) -> StoredObject:
        check_key(key)
        if self.head(key) == size:
            try:
                return self.verify(key, sha256=sha256, size=size)
            except ObjectMismatchError:
                pass  # damaged in the store: upload it anew
        stream = HashingStream(data, key=key, sha256=sha256, size=size)
        try:
            obstore.put(
                self._store,
                key,
                iter(stream),
                use_multipart=size > _MULTIPART_ABOVE,
                chunk_size=_MULTIPART_ABOVE,
                max_concurrency=2,
            )
        except ObjectMismatchError:
            raise
        except (BaseError, OSError) as exc:
            self._fail(exc, f"cannot upload {self.url_for(key)}")
        return self.verify(key, sha256=sha256, size=size)

    def get(self, key: str) -> Iterator[bytes]:
        url = self.url_for(key)
        try:
            result = obstore.get(self._store, key)
            for chunk in result.stream(min_chunk_size=CHUNK):
                yield bytes(chunk)
        except (BaseError, OSError) as exc:
            self._fail(exc, f"cannot read {url}")

    def head(self, key: str) -> int | None:
        try:
            return int(obstore.head(self._store, check_key(key))["size"])
        except (FileNotFoundError, NotFoundError):
            return None
        except (BaseError, OSError) as exc:
            self._fail(exc, f"cannot look up {self.url_for(key)}")

    def verify(self, key: str, *, sha256: str, size: int) -> StoredObject:
        return verify_chunks(
            self.get(key), key=key, url=self.url_for(key), sha256=sha256, size=size
        )

    def _fail(self, exc: BaseException, what: str) -> NoReturn:
        """Translate an obstore error into one line of ours (library errors stay here)."""
        detail = _first_line(exc)
        if isinstance(exc, FileNotFoundError | NotFoundError):
            raise ObjectMissingError(f"{what}: not in the store") from exc
        if isinstance(exc, PermissionDeniedError | UnauthenticatedError):
            raise StoreError(
                f"{what}: access denied: {detail}",
                hint="check the store's credentials and the bucket's permissions",
            ) from exc
        if _unreachable(detail):
            raise StoreUnavailableError(
                f"{what}: {self.describe()} is not reachable: {detail}",
                hint="check the endpoint and the network, then run again; nothing was changed",
            ) from exc
        raise StoreError(f"{what}: {detail}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_UNREACHABLE_HINTS = (
    "error sending request",
    "connection refused",
    "connection reset",
    "timed out",
    "timeout",
    "dns error",
    "connection closed",
    "broken pipe",
)


def _unreachable(detail: str) -> bool:
    lower = detail.lower()
    return any(hint in lower for hint in _UNREACHABLE_HINTS)
