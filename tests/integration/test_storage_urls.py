"""URLs a browser can fetch objects from: presigned GETs on S3, the file itself on the local store."""

from __future__ import annotations

import urllib.request
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from kepu.config import Settings
from kepu.errors import StorageError
from kepu.storage import PRESIGNED_EXPIRY_S, LocalStore, S3Store, object_key, open_store

pytestmark = pytest.mark.integration

KEY = object_key("c2022", "S-001", "rendition", "发布版 1080p.mp4")


def test_presigned_get_on_s3(s3_settings: Settings) -> None:
    store = open_store(s3_settings)
    assert isinstance(store, S3Store)
    store.put_bytes(KEY, b"0123456789" * 100)
    url = store.presigned_url(KEY, expires_s=120)
    assert url is not None
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["120"]
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Range": "bytes=10-19"}), timeout=10) as resp:
        assert resp.status == 206 and resp.read() == b"0123456789"
    default = store.presigned_url(KEY)
    assert default is not None and parse_qs(urlsplit(default).query)["X-Amz-Expires"] == [str(PRESIGNED_EXPIRY_S)]


def test_presigned_urls_for_the_public_endpoint(s3_settings: Settings) -> None:
    api = urlsplit(s3_settings.s3_endpoint_url or "")
    public = f"http://localhost:{api.port}"  # another name for the same endpoint, as a proxy would give
    store = open_store(replace(s3_settings, s3_public_url=public))
    store.put_bytes(KEY, b"hello")
    url = store.presigned_url(KEY)
    assert url is not None and url.startswith(public + "/")
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == b"hello"


def test_presigned_lifetime_is_bounded(s3_settings: Settings) -> None:
    store = open_store(s3_settings)
    for bad in (0, -5, 8 * 24 * 3600):
        with pytest.raises(StorageError, match="lifetime"):
            store.presigned_url(KEY, expires_s=bad)
    with pytest.raises(StorageError, match="invalid object key"):
        store.presigned_url("../x")


def test_local_store_has_no_url_but_its_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.put_bytes(KEY, b"abc")
    assert store.presigned_url(KEY) is None
    path = store.local_path(KEY)
    assert path is not None and path.read_bytes() == b"abc"
    assert store.local_path(object_key("c2022", "S-001", "rendition", "missing.mp4")) is None
    with pytest.raises(StorageError):
        store.local_path("../../etc/passwd")
