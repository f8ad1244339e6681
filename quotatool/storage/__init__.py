"""Object stores for offloaded attachments, opened by URL through a registry keyed by scheme.

``file:///path`` (or a plain path, or nothing: ``$XDG_DATA_HOME/quotatool/offload``) is a local
directory; ``s3://bucket/prefix`` is any S3-compatible service and needs the ``s3`` extra.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from pathlib import Path

from quotatool.storage.base import (
    ObjectMismatchError,
    ObjectMissingError,
    Store,
    StoreConfig,
    StoredObject,
    StoreError,
    StoreUnavailableError,
)
from quotatool.storage.local import LocalStore, default_root

__all__ = [
    "SCHEMES",
    "ObjectMismatchError",
    "ObjectMissingError",
    "Store",
    "StoreConfig",
    "StoreError",
    "StoreUnavailableError",
    "StoredObject",
    "default_store_url",
    "open_store",
]


def _open_file(url: str, config: StoreConfig) -> Store:
    rest = url[len("file://") :]
    if rest.startswith("~"):
        return LocalStore(Path(urllib.parse.unquote(rest)).expanduser())
    if rest.startswith("localhost/"):
        rest = rest[len("localhost") :]
    if not rest.startswith("/"):
        raise StoreError(
            f"store URL {url!r}: expected file:///absolute/path or file://~/path",
        )
    return LocalStore(Path(urllib.parse.unquote(rest)))


def _open_s3(url: str, config: StoreConfig) -> Store:
    parsed = urllib.parse.urlsplit(url)
    if not parsed.netloc or parsed.query or parsed.fragment or "@" in parsed.netloc:
        raise StoreError(
            f"store URL {url!r}: expected s3://BUCKET/PREFIX",
            hint="put the endpoint, region and credentials in the store's config table",
        )
    try:
        # Imported only here: obstore comes with the optional s3 extra.
        from quotatool.storage.s3 import S3Store
    except ImportError as exc:
        raise StoreError(
            f"store URL {url!r} needs S3 support, which is not installed ({exc.name} missing)",
            hint="pip install 'quotatool[s3]'",
        ) from exc
    return S3Store(parsed.netloc, urllib.parse.unquote(parsed.path), config)


_OPENERS: dict[str, Callable[[str, StoreConfig], Store]] = {
    "file": _open_file,
    "s3": _open_s3,
}

SCHEMES = tuple(sorted(_OPENERS))
"""URL schemes :func:`open_store` knows."""


def default_store_url() -> str:
    """Return the ``file://`` URL of the default local store (``$XDG_DATA_HOME/...``)."""
    return "file://" + urllib.parse.quote(str(default_root()))


def open_store(url: str, config: StoreConfig | None = None) -> Store:
    """Open the store a URL names; a plain path (or ``""``: the default) is a local store."""
    config = config or StoreConfig()
    if not url:
        return LocalStore(default_root())
    scheme, sep, _ = url.partition("://")
    if not sep:
        return LocalStore(Path(url))
    opener = _OPENERS.get(scheme.lower())
    if opener is None:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise StoreError(f"store URL {url!r}: unknown scheme {scheme!r}; use one of {known}")
    return opener(url, config)
