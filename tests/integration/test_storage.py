"""Both object-store backends: the shared contract, then what is particular to each."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import kepu.storage as storage_mod
from kepu.config import Settings
from kepu.errors import StorageError
from kepu.storage import (
    MULTIPART_THRESHOLD,
    LocalStore,
    ObjectStore,
    S3Store,
    object_key,
    open_store,
    sha256_file,
    submission_prefix,
)

pytestmark = pytest.mark.integration

SUB = submission_prefix("c2022", "S-001")


def write_file(path: Path, size: int, seed: bytes = b"kepu") -> Path:
    """A file of ``size`` pseudo-random bytes, written in pieces (never whole in memory)."""
    block = hashlib.sha256(seed).digest() * (1 << 15)  # 1 MiB
    with open(path, "wb") as fh:
        left = size
        while left > 0:
            fh.write(block[: min(left, len(block))])
            left -= len(block)
    return path


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    settings: Settings = request.getfixturevalue("s3_settings")
    return open_store(settings)


# --------------------------------------------------------------------------------------------------
# Contract


def test_put_head_and_read_back(store: ObjectStore, tmp_path: Path) -> None:
    src = write_file(tmp_path / "src.mp4", 300_000)
    key = object_key("c2022", "S-001", "video", "作品 终版.mp4")
    stored = store.put_file(key, src)
    digest, size = sha256_file(src)
    assert (stored.key, stored.size, stored.sha256) == (key, size, digest)
    assert store.head(key) == stored
    assert store.exists(key)
    assert stored.uri == store.uri(key)

    dest = store.download(key, tmp_path / "out" / "copy.mp4")
    assert dest.read_bytes() == src.read_bytes()
    with store.open_local(key) as local:
        assert local.suffix == ".mp4"
        assert sha256_file(local) == (digest, size)


def test_missing_objects(store: ObjectStore, tmp_path: Path) -> None:
    key = f"{SUB}video/none.mp4"
    assert store.head(key) is None
    assert not store.exists(key)
    store.delete(key)  # a missing key is fine
    with pytest.raises(StorageError, match=r"none\.mp4"), store.open_local(key):
        pass
    with pytest.raises(StorageError, match=r"none\.mp4"):
        store.download(key, tmp_path / "x.mp4")


def test_put_bytes_rerun_and_overwrite(store: ObjectStore) -> None:
    key = f"{SUB}form/form.json"
    first = store.put_bytes(key, b'{"title": "\xe7\xa7\x91\xe6\x99\xae"}', content_type="application/json")
    assert store.put_bytes(key, b'{"title": "\xe7\xa7\x91\xe6\x99\xae"}') == first
    second = store.put_bytes(key, b"{}")
    assert second.size == 2
    assert second.sha256 == hashlib.sha256(b"{}").hexdigest()
    assert store.head(key) == second


def test_list_keys_and_delete_prefix_except(store: ObjectStore) -> None:
    other = submission_prefix("c2022", "S-0010")  # shares "S-001" as a string prefix
    keys = [
        f"{SUB}video/a.mp4",
        f"{SUB}cover/b.jpg",
        f"{SUB}attachment/旧的.pdf",
        f"{SUB}attachment/新的.pdf",
        f"{other}video/x.mp4",
    ]
    for k in keys:
        store.put_bytes(k, k.encode())
    assert list(store.list_keys(SUB)) == sorted(keys[:4])
    assert list(store.list_keys("campaigns/c2022/submissions/S-001")) == sorted(keys)
    assert list(store.list_keys("campaigns/none/")) == []

    keep = {f"{SUB}video/a.mp4", f"{SUB}cover/b.jpg", f"{SUB}attachment/新的.pdf"}
    # Given without the trailing slash, the prefix still means the folder, so S-0010 is spared.
    deleted = store.delete_prefix_except(SUB.rstrip("/"), keep)
    assert deleted == [f"{SUB}attachment/旧的.pdf"]
    assert set(store.list_keys("campaigns/")) == keep | {f"{other}video/x.mp4"}
    assert store.delete_prefix_except(SUB, keep) == []

    with pytest.raises(StorageError, match="empty"):
        store.delete_prefix_except("/", set())


# --------------------------------------------------------------------------------------------------
# Local folder


def test_local_rerun_is_a_no_op(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    src = write_file(tmp_path / "v.mp4", 50_000)
    key = f"{SUB}video/v.mp4"
    first = store.put_file(key, src)
    path = tmp_path / "store" / key
    before = path.stat()
    assert store.put_file(key, src) == first
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    # Sidecars and temp files never show up as keys.
    assert list(store.list_keys("")) == [key]


def test_local_put_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path / "store")
    key = f"{SUB}video/v.mp4"
    old = store.put_bytes(key, b"old content")
    src = write_file(tmp_path / "new.mp4", 3 * (1 << 20))

    real_copy = storage_mod._copy_hashing

    def crash_midway(src_fh: Any, dst_fh: Any) -> tuple[str, int]:
        dst_fh.write(src_fh.read(1 << 20))
        raise OSError("disk full")

    monkeypatch.setattr(storage_mod, "_copy_hashing", crash_midway)
    with pytest.raises(StorageError, match=r"v\.mp4.*disk full"):
        store.put_file(key, src)
    monkeypatch.setattr(storage_mod, "_copy_hashing", real_copy)

    folder = tmp_path / "store" / SUB / "video"
    assert (folder / "v.mp4").read_bytes() == b"old content"
    assert store.head(key) == old
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp-")]


def test_local_stale_sidecar_is_not_trusted(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    key = f"{SUB}synopsis/s.txt"
    store.put_bytes(key, b"first")
    # Replaced behind the store's back: size and mtime no longer match the sidecar.
    (tmp_path / "store" / key).write_bytes(b"second version")
    head = store.head(key)
    assert head is not None
    assert head.sha256 == hashlib.sha256(b"second version").hexdigest()
    assert head.size == len(b"second version")


def test_local_delete_prunes_empty_folders(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = LocalStore(root)
    key = f"{SUB}video/v.mp4"
    store.put_bytes(key, b"x")
    store.delete(key)
    assert list(root.iterdir()) == []
    assert root.is_dir()


def test_local_open_local_is_the_file_itself(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    key = f"{SUB}cover/c.jpg"
    store.put_bytes(key, b"jpeg")
    with store.open_local(key) as path:
        assert path == tmp_path / "store" / key
    assert path.exists()


# --------------------------------------------------------------------------------------------------
# S3


def closed_port() -> int:
    """A local TCP port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def count_calls(store: S3Store) -> Counter[str]:
    calls: Counter[str] = Counter()

    def on_call(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    store.client.meta.events.register("before-call.s3", on_call)
    return calls


@pytest.fixture
def s3_store(s3_settings: Settings) -> S3Store:
    store = open_store(s3_settings)
    assert isinstance(store, S3Store)
    return store


def test_s3_large_file_is_multipart_and_rerun_skips_upload(s3_store: S3Store, tmp_path: Path) -> None:
    src = write_file(tmp_path / "big.mp4", MULTIPART_THRESHOLD + 3 * (1 << 20))
    digest, size = sha256_file(src)
    key = f"{SUB}video/big.mp4"
    calls = count_calls(s3_store)

    stored = s3_store.put_file(key, src)
    assert (stored.size, stored.sha256) == (size, digest)
    assert calls["CreateMultipartUpload"] == 1
    assert calls["UploadPart"] == 2
    assert calls["PutObject"] == 0

    raw = s3_store.client.head_object(Bucket=s3_store.bucket, Key=key)
    assert raw["ETag"].strip('"').endswith("-2")  # a multipart ETag
    assert raw["Metadata"]["sha256"] == digest
    assert raw["ContentType"] == "video/mp4"
    assert s3_store.head(key) == stored

    calls.clear()
    assert s3_store.put_file(key, src) == stored
    assert calls == Counter({"HeadObject": 1})


def test_s3_changed_file_is_uploaded_again(s3_store: S3Store, tmp_path: Path) -> None:
    key = f"{SUB}cover/c.jpg"
    src = tmp_path / "c.jpg"
    src.write_bytes(b"one")
    s3_store.put_file(key, src)
    src.write_bytes(b"two")
    calls = count_calls(s3_store)
    stored = s3_store.put_file(key, src)
    assert calls["PutObject"] == 1
    assert stored.sha256 == hashlib.sha256(b"two").hexdigest()
    assert s3_store.head(key) == stored


def test_s3_object_without_digest_is_replaced(s3_store: S3Store, tmp_path: Path) -> None:
    key = f"{SUB}synopsis/s.txt"
    s3_store.client.put_object(Bucket=s3_store.bucket, Key=key, Body=b"same")
    head = s3_store.head(key)
    assert head is not None and head.sha256 == ""
    stored = s3_store.put_bytes(key, b"same")
    assert stored.sha256 == hashlib.sha256(b"same").hexdigest()
    assert s3_store.head(key) == stored


def test_s3_prefix_and_uri(s3_settings: Settings, tmp_path: Path) -> None:
    bucket = s3_settings.store_url.removeprefix("s3://")
    store = S3Store(bucket, "/archive/2022/", endpoint_url=s3_settings.s3_endpoint_url)
    key = f"{SUB}report/r.pdf"
    store.put_bytes(key, b"%PDF")
    assert store.uri(key) == f"s3://{bucket}/archive/2022/{key}"
    assert list(store.list_keys("campaigns/")) == [key]
    raw = store.client.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in raw["Contents"]] == [f"archive/2022/{key}"]


def test_s3_open_local_removes_its_temp_copy(s3_store: S3Store, s3_settings: Settings) -> None:
    key = f"{SUB}video/v.mp4"
    s3_store.put_bytes(key, b"video")
    with s3_store.open_local(key) as path:
        assert path.read_bytes() == b"video"
        assert path.name == "v.mp4"
        assert s3_settings.scratch_dir in path.parents
    assert not path.exists()
    assert list(s3_settings.scratch_dir.iterdir()) == []


def test_s3_list_paginates(s3_store: S3Store) -> None:
    # More than one page of ListObjectsV2 (1000 keys); written directly to keep the test quick.
    keys = [f"{SUB}attachment/{i:05d}.txt" for i in range(1003)]
    for k in keys:
        s3_store.client.put_object(Bucket=s3_store.bucket, Key=k, Body=b"")
    calls = count_calls(s3_store)
    assert list(s3_store.list_keys(SUB)) == keys
    assert calls["ListObjectsV2"] == 2
    assert len(s3_store.delete_prefix_except(SUB, set(keys[:3]))) == 1000
    assert calls["DeleteObjects"] == 1
    assert list(s3_store.list_keys(SUB)) == keys[:3]


def test_s3_errors_name_the_key(s3_env: object) -> None:
    store = S3Store("bucket", endpoint_url=f"http://127.0.0.1:{closed_port()}", max_attempts=1, retry_window_s=0)
    with pytest.raises(StorageError, match=r"campaigns/c/x\.mp4"):
        store.head("campaigns/c/x.mp4")


class DelayedProxy:
    """Forwards a local port to ``target``, but only starts listening after ``delay`` seconds.

    Until then connections are refused, as during a short outage of the S3 endpoint.
    """

    def __init__(self, target: str, delay: float) -> None:
        host, _, port = target.removeprefix("http://").partition(":")
        self.target = (host, int(port))
        self.delay = delay
        self.port = closed_port()
        self.accepted = 0
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> DelayedProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _serve(self) -> None:
        if self._stop.wait(self.delay):
            return
        with socket.create_server(("127.0.0.1", self.port)) as server:
            server.settimeout(0.1)
            while not self._stop.is_set():
                try:
                    client, _ = server.accept()
                except TimeoutError:
                    continue
                self.accepted += 1
                upstream = socket.create_connection(self.target)
                self._sockets += [client, upstream]
                for src, dst in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(1 << 16):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)


def test_s3_short_endpoint_outage_is_survived(s3_store: S3Store, s3_settings: Settings) -> None:
    assert s3_settings.s3_endpoint_url
    with DelayedProxy(s3_settings.s3_endpoint_url, delay=1.0) as proxy:
        store = S3Store(s3_store.bucket, endpoint_url=proxy.url)
        started = time.monotonic()
        stored = store.put_bytes(f"{SUB}form/form.json", b"{}")
        assert time.monotonic() - started >= 1.0
        assert proxy.accepted >= 1
    assert s3_store.head(f"{SUB}form/form.json") == stored


def test_s3_retry_policy_is_a_short_standard_one_inside_the_window(s3_env: object) -> None:
    # botocore retries a request a few times; the long wait for an endpoint to come back is the store's
    # own retry window (tests/faults/test_s3_outage.py).
    store = S3Store("bucket", endpoint_url="http://127.0.0.1:9")
    retries = store.client.meta.config.retries
    assert retries == {"mode": "standard", "total_max_attempts": storage_mod.S3_REQUEST_ATTEMPTS}
    assert store.retry_window_s == storage_mod.S3_RETRY_WINDOW_S == 120


def test_s3_missing_bucket_is_not_created_implicitly(s3_settings: Settings, tmp_path: Path) -> None:
    store = S3Store("kepu-never-created", endpoint_url=s3_settings.s3_endpoint_url)
    with pytest.raises(StorageError, match=r"a\.txt"):
        store.put_bytes("a.txt", b"x")
    assert "kepu-never-created" not in {b["Name"] for b in store.client.list_buckets().get("Buckets", [])}
