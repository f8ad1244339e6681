"""The S3 store against a real S3 API server on loopback (moto, see tests/s3server.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from quotatool.core.stub import object_key
from quotatool.storage import (
    ObjectMismatchError,
    ObjectMissingError,
    StoreError,
    StoreUnavailableError,
    open_store,
)
from tests import s3server
from tests.s3server import S3Bucket, S3Server

# The fixtures of tests/s3server.py, made visible to pytest in this module.
s3_server = s3server.s3_server
s3_bucket = s3server.s3_bucket

DATA = bytes(range(256)) * 4000
SHA = hashlib.sha256(DATA).hexdigest()
KEY = object_key(SHA)


def test_put_get_verify(s3_bucket: S3Bucket) -> None:
    store = open_store(s3_bucket.url("mail/offload"), s3_bucket.config())
    obj = store.put(KEY, DATA, sha256=SHA, size=len(DATA))
    assert obj.url == f"s3://{s3_bucket.name}/mail/offload/{KEY}"
    assert (obj.size, obj.sha256) == (len(DATA), SHA)
    assert s3_bucket.keys() == [f"mail/offload/{KEY}"]
    assert b"".join(store.get(KEY)) == DATA
    assert store.head(KEY) == len(DATA)
    assert store.verify(KEY, sha256=SHA, size=len(DATA)) == obj
    assert "S3 store s3://" in store.describe()
    assert "quotatool-test-secret" not in repr(s3_bucket.config())


def test_a_retried_put_is_idempotent_and_streams(s3_bucket: S3Bucket) -> None:
    store = open_store(s3_bucket.url(), s3_bucket.config())
    big = DATA * 10  # above the single-PUT limit: a streamed multipart upload
    sha = hashlib.sha256(big).hexdigest()
    chunks = (big[i : i + 1_000_000] for i in range(0, len(big), 1_000_000))
    first = store.put(object_key(sha), chunks, sha256=sha, size=len(big))
    again = store.put(object_key(sha), big, sha256=sha, size=len(big))
    assert first == again
    assert b"".join(store.get(object_key(sha))) == big
    assert len(s3_bucket.keys()) == 1


def test_data_that_does_not_match_its_hash_is_not_uploaded(s3_bucket: S3Bucket) -> None:
    store = open_store(s3_bucket.url(), s3_bucket.config())
    with pytest.raises(ObjectMismatchError, match="expected 1024000 octets"):
        store.put(KEY, DATA[:-1] + b"\x00", sha256=SHA, size=len(DATA))
    assert store.head(KEY) is None
    assert s3_bucket.keys() == []


def test_a_corrupted_object_is_detected_and_replaced(s3_bucket: S3Bucket) -> None:
    store = open_store(s3_bucket.url("p"), s3_bucket.config())
    store.put(KEY, DATA, sha256=SHA, size=len(DATA))
    damaged = bytearray(DATA)
    damaged[12345] ^= 0xFF
    # The server accepts whatever it is sent: write a same-sized, different object.
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key=f"p/{KEY}", Body=bytes(damaged))
    with pytest.raises(ObjectMismatchError, match="does not match"):
        store.verify(KEY, sha256=SHA, size=len(DATA))
    assert store.put(KEY, DATA, sha256=SHA, size=len(DATA)).sha256 == SHA
    assert b"".join(store.get(KEY)) == DATA


def test_missing_objects_keys_and_buckets(s3_bucket: S3Bucket) -> None:
    store = open_store(s3_bucket.url(), s3_bucket.config())
    assert store.head(KEY) is None
    with pytest.raises(ObjectMissingError, match="not in the store"):
        store.verify(KEY, sha256=SHA, size=len(DATA))
    with pytest.raises(StoreError, match="not a content-addressed object key"):
        store.put("../evil", DATA, sha256=SHA, size=len(DATA))
    missing = open_store(f"s3://no-such-bucket-{s3_bucket.name}/x", s3_bucket.config())
    with pytest.raises(StoreError) as err:
        missing.put(KEY, DATA, sha256=SHA, size=len(DATA))
    assert "cannot" in err.value.message


def test_server_stopped_mid_put_is_a_clear_error() -> None:
    server = S3Server.start()
    bucket = server.new_bucket()
    store = open_store(bucket.url(), bucket.config(timeout=5.0, retries=1))
    big = DATA * 20
    sha = hashlib.sha256(big).hexdigest()

    def stop_after_first_part() -> Iterator[bytes]:
        yield big[: 10 * 1024 * 1024]
        server.stop()
        yield big[10 * 1024 * 1024 :]

    with pytest.raises(StoreUnavailableError, match="is not reachable") as err:
        store.put(object_key(sha), stop_after_first_part(), sha256=sha, size=len(big))
    assert err.value.hint is not None
    assert err.value.exit_code == 7
    # Nothing answers any more: a lookup says so too, in one line.
    with pytest.raises(StoreUnavailableError) as err2:
        store.head(object_key(sha))
    assert "\n" not in err2.value.message


def test_unreachable_endpoint(s3_server: S3Server) -> None:
    store = open_store(
        "s3://bucket/x", s3_server.config(endpoint="http://127.0.0.1:9", timeout=3.0, retries=0)
    )
    with pytest.raises(StoreUnavailableError, match=r"http://127\.0\.0\.1:9 is not reachable"):
        store.head(KEY)
