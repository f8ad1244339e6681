"""A real S3 API server on loopback for tests: moto's ThreadedMotoServer bound to 127.0.0.1.

Use it from any test module (or a conftest) by importing the fixtures::

    from tests import s3server

    s3_server = s3server.s3_server  # pytest finds fixtures by module-level name
    s3_bucket = s3server.s3_bucket

* ``s3_server`` (session): one server for the run; ``.endpoint``, ``.config()``.
* ``s3_bucket`` (function): a new empty bucket on it; ``.url(prefix)`` gives ``s3://...`` for
  :func:`quotatool.storage.open_store`, ``.config()`` the matching StoreConfig,
  ``.client()`` a boto3 client to inspect or tamper with objects behind the store's back.
* :meth:`S3Server.start` starts a private server (for a test that stops it mid-run).

moto speaks the S3 REST API over HTTP like MinIO or R2 would (signatures, multipart uploads,
HEAD, ranged GET) and keeps objects in memory. It ships as a PyPI package and runs in-process,
which ``rclone serve s3`` (added in rclone 1.65; Debian 12 has 1.60) and MinIO (not in Debian)
do not offer here. A server that does not start fails the run: it never skips.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from quotatool.storage import StoreConfig

__all__ = ["S3Bucket", "S3Server", "s3_bucket", "s3_server"]

ACCESS_KEY = "quotatool-test"
SECRET_KEY = "quotatool-test-secret"
REGION = "us-east-1"
_buckets = itertools.count(1)


@dataclass
class S3Server:
    """A running loopback S3 server."""

    server: ThreadedMotoServer
    endpoint: str
    """``http://127.0.0.1:PORT``."""

    @classmethod
    def start(cls) -> S3Server:
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        return cls(server=server, endpoint=f"http://{host}:{port}")

    def stop(self) -> None:
        self.server.stop()

    def config(self, **overrides: Any) -> StoreConfig:
        """Return a StoreConfig for this server (plain HTTP allowed: loopback only)."""
        values: dict[str, Any] = {
            "endpoint": self.endpoint,
            "region": REGION,
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
            "allow_http": True,
            "timeout": 10.0,
            "retries": 1,
        }
        values.update(overrides)
        return StoreConfig(**values)

    def client(self) -> Any:
        """Return a boto3 S3 client for this server."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def new_bucket(self) -> S3Bucket:
        name = f"qt-test-{next(_buckets)}"
        self.client().create_bucket(Bucket=name)
        return S3Bucket(server=self, name=name)


@dataclass
class S3Bucket:
    """An empty bucket on an :class:`S3Server`."""

    server: S3Server
    name: str

    def url(self, prefix: str = "offload") -> str:
        return f"s3://{self.name}/{prefix}" if prefix else f"s3://{self.name}"

    def config(self, **overrides: Any) -> StoreConfig:
        return self.server.config(**overrides)

    def client(self) -> Any:
        return self.server.client()

    def keys(self) -> list[str]:
        """Return every object key in the bucket (prefix included), sorted."""
        listing = self.client().list_objects_v2(Bucket=self.name)
        return sorted(obj["Key"] for obj in listing.get("Contents", []))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One loopback S3 server for the whole run."""
    server = S3Server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> S3Bucket:
    """A new, empty bucket on the session's S3 server."""
    return s3_server.new_bucket()
