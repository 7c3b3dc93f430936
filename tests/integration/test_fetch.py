"""Downloads from a local web server, and an object-store prefix used as the inbox."""

from __future__ import annotations

import hashlib
import io
import re
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypedDict

import pytest

from kepu.campaign import load_campaign
from kepu.config import DEFAULT_CAMPAIGN_FILE, Settings
from kepu.intake.fetch import FetchError, content_disposition_filename, fetch_rows, fetch_url
from kepu.intake.packages import package_files, parse_folder_name, safe_extract, submission_id
from kepu.intake.sources import SheetRow, discover_s3, materialise
from kepu.storage import LocalStore, ObjectStore, S3Store, open_store

pytestmark = pytest.mark.integration
C = load_campaign(DEFAULT_CAMPAIGN_FILE)

PAYLOAD = hashlib.sha256(b"kepu").digest() * 6250  # 200,000 bytes
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
HALF = len(PAYLOAD) // 2


@dataclass
class Seen:
    """What the test server was asked, per path."""

    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, path: str, headers: dict[str, str]) -> int:
        with self.lock:
            self.requests.append((path, headers))
            return sum(1 for p, _ in self.requests if p == path)

    def of(self, path: str) -> list[dict[str, str]]:
        return [h for p, h in self.requests if p == path]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: Seen

    def log_message(self, format: str, *args: object) -> None:  # the test output stays quiet
        return

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _ranged(self, data: bytes, extra: dict[str, str] | None = None) -> None:
        """Serve ``data`` honouring a ``Range: bytes=N-`` request."""
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        headers = {"Accept-Ranges": "bytes", **(extra or {})}
        if m:
            start = int(m.group(1))
            if start >= len(data):
                self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                return
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            self._send(206, data[start:], headers)
        else:
            self._send(200, data, headers)

    def do_GET(self) -> None:
        n = self.seen.record(self.path, dict(self.headers.items()))
        if self.path == "/file.bin":
            self._ranged(PAYLOAD)
        elif self.path == "/drop.bin":
            if n == 1:
                # Announce the whole file, send half of it and hang up.
                self.send_response(200)
                self.send_header("Content-Length", str(len(PAYLOAD)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                self.wfile.write(PAYLOAD[:HALF])
                self.wfile.flush()
                self.close_connection = True
            else:
                self._ranged(PAYLOAD)
        elif self.path == "/drop-norange.bin":
            if n == 1:
                self.send_response(200)
                self.send_header("Content-Length", str(len(PAYLOAD)))
                self.end_headers()
                self.wfile.write(PAYLOAD[:HALF])
                self.wfile.flush()
                self.close_connection = True
            else:
                # Ranges are not understood: the whole file again, with 200.
                self._send(200, PAYLOAD)
        elif self.path == "/flaky.bin":
            if n <= 2:
                self._send(500, b"busy")
            else:
                self._send(200, PAYLOAD)
        elif self.path == "/always500":
            self._send(503, b"down")
        elif self.path == "/missing":
            self._send(404, b"not here")
        elif self.path == "/huge.bin":
            # Claims 50 MB; nothing should be read, let alone written.
            self._send(200, b"", length=50_000_000)
        elif self.path == "/endless":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                for _ in range(200):
                    self.wfile.write(PAYLOAD[:10_000])
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif self.path == "/moved":
            self._send(302, b"", {"Location": "/file.bin"})
        elif self.path == "/to-share":
            self._send(302, b"", {"Location": "https://pan.baidu.com/s/1abc"})
        elif self.path == "/evil":
            self._send(200, PAYLOAD, {"Content-Disposition": 'attachment; filename="../../x"'})
        elif self.path == "/named":
            self._send(
                200,
                PAYLOAD,
                {
                    "Content-Disposition": 'attachment; filename="fallback.zip"; '
                    "filename*=UTF-8''%E4%BC%9A%E9%A3%9E%E7%9A%84%E7%A7%8D%E5%AD%90.zip"
                },
            )
        else:
            self._send(404, b"")


@pytest.fixture
def web(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Seen]]:
    seen = Seen()
    handler = type("BoundHandler", (Handler,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    # Loopback is never fetched by default: the test admits this one server, port included.
    monkeypatch.setenv("KEPU_FETCH_ALLOW_HOSTS", f"127.0.0.1:{server.server_address[1]}")
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class Quick(TypedDict):
    backoff_s: float
    timeout: float


FAST: Quick = {"backoff_s": 0.01, "timeout": 5}


def test_full_download_with_checksum(web: tuple[str, Seen], tmp_path: Path) -> None:
    base, seen = web
    dest = tmp_path / "out" / "video.mp4"
    result = fetch_url(f"{base}/file.bin", dest, max_bytes=1_000_000, expected_sha256=PAYLOAD_SHA, **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert (result.path, result.size, result.sha256, result.attempts, result.resumed) == (
        dest,
        len(PAYLOAD),
        PAYLOAD_SHA,
        1,
        False,
    )
    assert not dest.with_name("video.mp4.part").exists()
    # A second call with the checksum finds the file complete and does not ask the server again.
    again = fetch_url(f"{base}/file.bin", dest, max_bytes=1_000_000, expected_sha256=PAYLOAD_SHA, **FAST)
    assert again.attempts == 0
    assert len(seen.of("/file.bin")) == 1


def test_dropped_connection_is_resumed_with_range(web: tuple[str, Seen], tmp_path: Path) -> None:
    base, seen = web
    dest = tmp_path / "video.mp4"
    result = fetch_url(f"{base}/drop.bin", dest, max_bytes=1_000_000, expected_sha256=PAYLOAD_SHA, **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert result.resumed and result.attempts == 2
    first, second = seen.of("/drop.bin")
    assert "Range" not in first
    # The second request starts where the partial file ends: some of the half that arrived (the
    # last, incomplete read is lost with the connection), never from zero.
    m = re.fullmatch(r"bytes=(\d+)-", second["Range"])
    assert m is not None and 0 < int(m.group(1)) <= HALF


def test_partial_file_from_an_earlier_run_is_resumed(web: tuple[str, Seen], tmp_path: Path) -> None:
    base, seen = web
    dest = tmp_path / "video.mp4"
    dest.with_name("video.mp4.part").write_bytes(PAYLOAD[:1234])
    result = fetch_url(f"{base}/file.bin", dest, max_bytes=1_000_000, expected_sha256=PAYLOAD_SHA, **FAST)
    assert result.resumed and result.sha256 == PAYLOAD_SHA
    assert seen.of("/file.bin")[0]["Range"] == "bytes=1234-"


def test_server_without_ranges_restarts_from_the_beginning(web: tuple[str, Seen], tmp_path: Path) -> None:
    base, seen = web
    dest = tmp_path / "video.mp4"
    result = fetch_url(f"{base}/drop-norange.bin", dest, max_bytes=1_000_000, expected_sha256=PAYLOAD_SHA, **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert not result.resumed
    assert len(seen.of("/drop-norange.bin")) == 2


def test_server_errors_are_retried(web: tuple[str, Seen], tmp_path: Path) -> None:
    base, seen = web
    dest = tmp_path / "video.mp4"
    result = fetch_url(f"{base}/flaky.bin", dest, max_bytes=1_000_000, **FAST)
    assert result.attempts == 3
    assert dest.read_bytes() == PAYLOAD
    assert len(seen.of("/flaky.bin")) == 3


def test_retries_run_out(web: tuple[str, Seen], tmp_path: Path) -> None:
    base, seen = web
    dest = tmp_path / "video.mp4"
    with pytest.raises(FetchError, match="gave up after 3 attempt"):
        fetch_url(f"{base}/always500", dest, max_bytes=1_000_000, retries=2, **FAST)
    assert len(seen.of("/always500")) == 3
    assert not dest.exists()


def test_client_error_is_not_retried(web: tuple[str, Seen], tmp_path: Path) -> None:
    base, seen = web
    with pytest.raises(FetchError) as err:
        fetch_url(f"{base}/missing", tmp_path / "a.mp4", max_bytes=1_000_000, **FAST)
    assert err.value.status == 404
    assert len(seen.of("/missing")) == 1


def test_content_length_over_the_cap_is_refused_before_download(web: tuple[str, Seen], tmp_path: Path) -> None:
    base, _ = web
    dest = tmp_path / "video.mp4"
    with pytest.raises(FetchError, match="over the limit of 1000000") as err:
        fetch_url(f"{base}/huge.bin", dest, max_bytes=1_000_000, **FAST)
    assert "超过上限" in err.value.reason_zh
    assert list(tmp_path.iterdir()) == []


def test_stream_over_the_cap_is_aborted(web: tuple[str, Seen], tmp_path: Path) -> None:
    base, _ = web
    dest = tmp_path / "video.mp4"
    with pytest.raises(FetchError, match="passed the limit of 50000 bytes"):
        fetch_url(f"{base}/endless", dest, max_bytes=50_000, **FAST)
    assert list(tmp_path.iterdir()) == []


def test_bad_checksum_leaves_no_file(web: tuple[str, Seen], tmp_path: Path) -> None:
    base, _ = web
    dest = tmp_path / "video.mp4"
    with pytest.raises(FetchError, match="does not match"):
        fetch_url(f"{base}/file.bin", dest, max_bytes=1_000_000, expected_sha256="0" * 64, **FAST)
    assert list(tmp_path.iterdir()) == []


def test_malicious_content_disposition_stays_in_the_folder(web: tuple[str, Seen], tmp_path: Path) -> None:
    base, _ = web
    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    result = fetch_url(f"{base}/evil", folder, max_bytes=1_000_000, **FAST)
    assert result.server_filename == "../../x"
    assert result.path == (folder / "x").resolve()
    assert result.path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["x"]


def test_rfc5987_file_name_is_used(web: tuple[str, Seen], tmp_path: Path) -> None:
    base, _ = web
    result = fetch_url(f"{base}/named", tmp_path, max_bytes=1_000_000, **FAST)
    assert result.path.name == "会飞的种子.zip"
    assert result.path.parent == tmp_path.resolve()


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("attachment; filename=\"a.zip\"; filename*=UTF-8''%E4%BD%9C%E5%93%81.zip", "作品.zip"),
        ('attachment; filename="plain name.mp4"', "plain name.mp4"),
        ("attachment; filename=bare.mp4", "bare.mp4"),
        ('attachment; filename="作品.zip"'.encode().decode("latin-1"), "作品.zip"),
        ("inline", None),
        (None, None),
    ],
)
def test_content_disposition_filename(header: str | None, name: str | None) -> None:
    assert content_disposition_filename(header) == name


def test_redirects_are_followed_but_never_to_a_share(web: tuple[str, Seen], tmp_path: Path) -> None:
    base, seen = web
    result = fetch_url(f"{base}/moved", tmp_path, max_bytes=1_000_000, **FAST)
    assert result.path.name == "file.bin" and result.sha256 == PAYLOAD_SHA
    with pytest.raises(FetchError, match="redirects to a cloud share"):
        fetch_url(f"{base}/to-share", tmp_path / "x.zip", max_bytes=1_000_000, **FAST)
    assert not (tmp_path / "x.zip").exists()
    assert [p for p, _ in seen.requests] == ["/moved", "/file.bin", "/to-share"]


def test_share_links_are_not_fetched(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="manual download"):
        fetch_url("https://pan.baidu.com/s/1abc", tmp_path / "x", max_bytes=10)
    assert list(tmp_path.iterdir()) == []


def test_fetch_rows_lists_what_was_not_fetched(web: tuple[str, Seen], tmp_path: Path) -> None:
    base, _ = web

    def row(n: int, title: str, link: str | None) -> SheetRow:
        return SheetRow(row_number=n, kind="video", channel=None, unit="甲", province=None, title=title, link=link)

    rows = [
        row(2, "直链", f"{base}/file.bin"),
        row(3, "网盘", "https://pan.baidu.com/s/1abc"),
        row(4, "坏了", f"{base}/missing"),
    ]
    outcome = fetch_rows(rows, tmp_path / "dl", max_bytes=1_000_000, **FAST)
    assert [(r.title, res.sha256) for r, res in outcome.fetched] == [("直链", PAYLOAD_SHA)]
    assert outcome.fetched[0][1].path.is_relative_to((tmp_path / "dl").resolve())
    pending = {p.title: p.reason_en for p in outcome.pending}
    assert pending == {
        "网盘": "cloud share needs a manual download",
        "坏了": "download failed: server answered HTTP 404",
    }


# --- an object-store prefix as inbox ---------------------------------------------------------------


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture(params=["s3", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    settings: Settings = request.getfixturevalue("s3_settings")
    return open_store(settings)


FOLDER_A = "北京市+北京市青少年科技中心+月亮为什么有阴晴圆缺"
FOLDER_B = "上海+上海市少年宫+水的旅行"
ARCHIVE = "广东+广州市少年宫+会飞的种子.zip"


def fill_inbox(store: ObjectStore) -> dict[str, bytes]:
    objects = {
        f"inbox/{FOLDER_A}/月亮.mp4": PAYLOAD,
        f"inbox/{FOLDER_A}/封面.jpg": b"\xff\xd8\xff" + b"\0" * 100,
        f"inbox/{FOLDER_A}/资料/简介.txt": "月亮的故事".encode(),
        f"inbox/{FOLDER_B}/水的旅行.mp4": PAYLOAD[:5000],
        f"inbox/{ARCHIVE}": zip_bytes({"会飞的种子/成稿.mp4": PAYLOAD[:3000], "会飞的种子/简介.txt": b"seed"}),
        "inbox/说明.docx": b"not a package",
        "elsewhere/北京+某单位+别的作品/a.mp4": b"outside the prefix",
    }
    for key, data in objects.items():
        store.put_bytes(key, data)
    if isinstance(store, S3Store):
        # What other tools leave behind: a folder placeholder and desktop junk.
        store.client.put_object(Bucket=store.bucket, Key="inbox/空文件夹/", Body=b"")
        store.client.put_object(Bucket=store.bucket, Key=f"inbox/{FOLDER_B}/Thumbs.db", Body=b"junk")
    return objects


def test_s3_prefix_packages_are_discovered_and_materialised(store: ObjectStore, tmp_path: Path) -> None:
    objects = fill_inbox(store)
    packages = discover_s3(store, "inbox/", C)
    assert [(p.name, p.kind) for p in packages] == sorted(
        [(FOLDER_A, "folder"), (FOLDER_B, "folder"), (ARCHIVE, "archive")]
    )
    by_name = {p.name: p for p in packages}
    assert {o.rel for o in by_name[FOLDER_A].objects} == {"月亮.mp4", "封面.jpg", "资料/简介.txt"}
    assert {o.rel for o in by_name[FOLDER_B].objects} == {"水的旅行.mp4"}
    assert all(p.submission_id == submission_id(C.id, p.name) for p in packages)
    assert len({p.fingerprint for p in packages}) == 3

    scratch = tmp_path / "scratch"
    local_a = materialise(by_name[FOLDER_A], store, scratch)
    assert local_a == (scratch / FOLDER_A).resolve()
    files = {f.relative_to(local_a).as_posix(): f.read_bytes() for f in package_files(local_a)}
    assert files == {rel: objects[f"inbox/{FOLDER_A}/{rel}"] for rel in ("月亮.mp4", "封面.jpg", "资料/简介.txt")}
    assert parse_folder_name(local_a.name, C).title == "月亮为什么有阴晴圆缺"

    local_zip = materialise(by_name[ARCHIVE], store, scratch)
    assert local_zip.name == ARCHIVE and local_zip.read_bytes() == objects[f"inbox/{ARCHIVE}"]
    extracted, findings = safe_extract(local_zip, scratch / "extracted", C)
    assert findings == []
    assert sorted(f.name for f in package_files(extracted)) == ["成稿.mp4", "简介.txt"]

    # Materialising again replaces the earlier copy; nothing else is left in the scratch folder.
    assert materialise(by_name[FOLDER_A], store, scratch) == local_a
    assert sorted(p.name for p in scratch.iterdir()) == sorted([FOLDER_A, ARCHIVE, "extracted"])


def test_changed_remote_package_gets_a_new_fingerprint(store: ObjectStore) -> None:
    fill_inbox(store)
    before = {p.name: p.fingerprint for p in discover_s3(store, "inbox", C)}
    store.put_bytes(f"inbox/{FOLDER_B}/水的旅行.mp4", PAYLOAD[:6000])
    after = {p.name: p.fingerprint for p in discover_s3(store, "inbox", C)}
    assert after[FOLDER_B] != before[FOLDER_B]
    assert after[FOLDER_A] == before[FOLDER_A] and after[ARCHIVE] == before[ARCHIVE]
