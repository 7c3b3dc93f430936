"""Object keys: a submitter's file name can never leave its submission's prefix."""

from __future__ import annotations

import hashlib
import unicodedata
from pathlib import Path

import pytest

from kepu.config import load_settings
from kepu.errors import StorageError
from kepu.storage import (
    ROLES,
    LocalStore,
    export_key,
    object_key,
    open_store,
    safe_filename,
    sha256_file,
    submission_prefix,
)

pytestmark = pytest.mark.unit

PREFIX = "campaigns/c2022/submissions/S-001/"


def key_for(name: str, role: str = "video") -> str:
    return object_key("c2022", "S-001", role, name)


def assert_inside(key: str, role: str = "video") -> str:
    """The key sits directly in the role folder; returns its file-name part."""
    assert key.startswith(f"{PREFIX}{role}/")
    name = key[len(f"{PREFIX}{role}/") :]
    assert name
    assert "/" not in name and "\\" not in name
    assert not name.startswith(".")
    return name


def test_layout() -> None:
    assert key_for("片子.mp4") == f"{PREFIX}video/片子.mp4"
    assert export_key("c2022", "结果 汇总.xlsx") == "campaigns/c2022/exports/结果 汇总.xlsx"
    assert submission_prefix("c2022", "S-001") == PREFIX


def test_unicode_is_kept_and_nfc_normalised() -> None:
    decomposed = unicodedata.normalize("NFD", "Café 科普视频（终版）.mp4")
    name = assert_inside(key_for(decomposed))
    assert name == unicodedata.normalize("NFC", "Café 科普视频（终版）.mp4")
    assert name == unicodedata.normalize("NFC", name)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..", "file"),
        ("../..", "file"),
        ("a\\b", "b"),
        ("..\\..\\windows\\system.ini", "system.ini"),
        ("/etc/passwd", "passwd"),
        ("C:\\Users\\张三\\Desktop\\作品.mp4", "作品.mp4"),
        ("video/", "video"),
        (".hidden", "hidden"),
        ("...mp4", "mp4"),
        ("name.mp4.", "name.mp4"),
        ("", "file"),
        ("   ", "file"),
        ("\x00\x01\x1f", "file"),
        ("bad\nname\t.mp4", "badname.mp4"),
        ("a:b*c?.mp4", "a_b_c_.mp4"),
        # A right-to-left override would disguise the real extension ("exe" shown as "mp4").
        ("movie\u202e4pm.exe", "movie4pm.exe"),
    ],
)
def test_unsafe_names_are_neutralised(raw: str, expected: str) -> None:
    assert safe_filename(raw) == expected
    assert assert_inside(key_for(raw)) == expected


def test_long_names_are_truncated_keeping_the_extension() -> None:
    name = safe_filename("长" * 300 + ".mp4")
    assert name.endswith(".mp4")
    assert len(name.encode("utf-8")) <= 200
    assert name.startswith("长")


def test_unknown_role_is_rejected() -> None:
    with pytest.raises(StorageError, match="unknown object role"):
        object_key("c2022", "S-001", "videos", "a.mp4")
    for role in ROLES:
        assert_inside(key_for("a.mp4", role), role)


@pytest.mark.parametrize("bad", ["", "c/2022", "..", "c 2022", "c2022/../x", "科普"])
def test_bad_ids_are_rejected(bad: str) -> None:
    with pytest.raises(StorageError, match="invalid campaign id"):
        object_key(bad, "S-001", "video", "a.mp4")
    with pytest.raises(StorageError, match="invalid submission id"):
        object_key("c2022", bad, "video", "a.mp4")
    with pytest.raises(StorageError, match="invalid campaign id"):
        export_key(bad, "x.xlsx")


@pytest.mark.parametrize("bad_key", ["", "/abs/key", "a//b", "a/../b", "a/./b", "a/.b", "a\\b", "a/b\x00", "x/" * 600])
def test_store_rejects_keys_that_escape_or_hide(tmp_path: Path, bad_key: str) -> None:
    store = LocalStore(tmp_path)
    with pytest.raises(StorageError, match="invalid object key"):
        store.put_bytes(bad_key, b"x")
    assert list(tmp_path.iterdir()) == []


def test_sha256_file_streams(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc" * 1000)
    digest, size = sha256_file(path, chunk=7)
    assert size == 3000
    assert digest == hashlib.sha256(b"abc" * 1000).hexdigest()


def test_open_store_picks_backend_from_url(tmp_path: Path) -> None:
    folder = tmp_path / "存储 folder"
    settings = load_settings({"KEPU_HOME": str(tmp_path), "KEPU_STORE_URL": folder.as_uri()})
    store = open_store(settings)
    assert isinstance(store, LocalStore)
    assert store.root == folder
    assert store.uri("a/b.mp4") == (folder / "a" / "b.mp4").as_uri()


def test_open_store_rejects_remote_file_urls(tmp_path: Path) -> None:
    settings = load_settings({"KEPU_HOME": str(tmp_path), "KEPU_STORE_URL": "file://server/share"})
    with pytest.raises(StorageError, match="local folder"):
        open_store(settings)
