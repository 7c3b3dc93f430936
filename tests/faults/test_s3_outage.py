"""The S3 endpoint goes away in the middle of an intake run: the run waits for it and loses nothing.

A TCP proxy stands between the store and the test endpoint. Once the run has uploaded its first
package file the proxy stops listening and drops every open connection, so requests are refused as
when MinIO restarts; 30 s later it listens again on the same port. The run must finish with exactly
the objects and records an undisturbed run gives. An outage longer than the retry window must end
the run with a clear error instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import S3Endpoint, check_outcomes, outcomes
from kepu.config import Settings, load_settings
from kepu.context import Context, open_context
from kepu.db.schema import TABLES
from kepu.errors import StorageError
from kepu.intake import steps
from kepu.storage import S3Store

pytestmark = [pytest.mark.faults, pytest.mark.integration]

OUTAGE_S = 30.0
RUN_ID = "outage-1"


class OutageProxy:
    """Forwards a local port to the S3 endpoint and can take the port down and bring it back.

    While down nothing listens on the port (connections are refused) and every connection that was
    open when it went down is cut, as when the endpoint's process is restarted.
    """

    def __init__(self, target_url: str) -> None:
        host, _, port = target_url.removeprefix("http://").partition(":")
        self.target = (host, int(port))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.accepted_after_outage = 0
        self.outages: list[tuple[float, float | None]] = []
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        server = socket.create_server(("127.0.0.1", self.port))  # SO_REUSEADDR: the same port again
        server.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(server, self._stop), daemon=True)
        self._thread.start()
        if self.outages and self.outages[-1][1] is None:
            self.outages[-1] = (self.outages[-1][0], time.monotonic())

    def down(self) -> None:
        self.outages.append((time.monotonic(), None))
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()

    def outage(self, seconds: float | None) -> None:
        """Go down now and come back after ``seconds`` (never, for ``None``), without blocking."""
        self.down()
        if seconds is not None:
            timer = threading.Timer(seconds, self.up)
            timer.daemon = True
            timer.start()

    def close(self) -> None:
        self.down()

    def _serve(self, server: socket.socket, stop: threading.Event) -> None:
        with server:
            while not stop.is_set():
                try:
                    client, _ = server.accept()
                except TimeoutError:
                    continue
                try:
                    upstream = socket.create_connection(self.target, timeout=10)
                except OSError:
                    client.close()
                    continue
                upstream.settimeout(None)
                with self._lock:
                    self._conns += [client, upstream]
                    if len(self.outages) > 0:
                        self.accepted_after_outage += 1
                for src, dst in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(1 << 16):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)


@pytest.fixture
def proxy(s3_endpoint: S3Endpoint) -> Iterator[OutageProxy]:
    p = OutageProxy(s3_endpoint.endpoint_url)
    p.up()
    try:
        yield p
    finally:
        p.close()


def _settings(
    tmp_path: Path, name: str, endpoint: str, inbox: Path, campaign: Path, env: dict[str, str] | None = None
) -> Settings:
    """Settings of one run: its own bucket (created directly on the endpoint) and its own SQLite records."""
    bucket = f"kepu-outage-{name}-{secrets.token_hex(4)}"
    home = tmp_path / name
    settings = load_settings(
        {
            "KEPU_HOME": str(home),
            "KEPU_DATABASE_URL": f"sqlite:///{home / 'records.db'}",
            "KEPU_STORE_URL": f"s3://{bucket}",
            "KEPU_S3_ENDPOINT_URL": endpoint,
            "KEPU_SCRATCH_DIR": str(home / "scratch"),
            "KEPU_INBOX": str(inbox),
            "KEPU_CAMPAIGN_FILE": str(campaign),
            **(env or {}),
        }
    )
    return settings


def _direct_store(settings: Settings, endpoint: str) -> S3Store:
    """The run's bucket as reached without the proxy, for setting up and for looking at the result."""
    bucket = settings.store_url.removeprefix("s3://")
    store = S3Store(bucket, endpoint_url=endpoint, retry_window_s=0)
    store.ensure_bucket()
    return store


def _start_outage_after_first_package_file(ctx: Context, proxy: OutageProxy, seconds: float | None) -> None:
    """Take the proxy down right after the first object of a submission has been uploaded."""
    sent: list[str] = []

    def before(params: dict[str, Any], **_: Any) -> None:
        sent.append(str(params.get("Key", "")))

    def after(http_response: Any, **_: Any) -> None:
        if not proxy.outages and "/submissions/" in sent[-1] and http_response.status_code == 200:
            logging.getLogger(__name__).info("endpoint outage starts after %s", sent[-1])
            proxy.outage(seconds)

    events = ctx.store.client.meta.events  # type: ignore[attr-defined]
    events.register("before-parameter-build.s3.PutObject", before)
    events.register("after-call.s3.PutObject", after)


# Keys of values that differ between two runs by design: times and generated ids.
_VOLATILE = re.compile(r"(^|_)(at|id|elapsed_s|time)$")
# Tool messages quoted in findings name the run's scratch copy and a memory address (ffprobe's "@ 0x…").
_SCRATCH = re.compile(r"kepu-s3-[A-Za-z0-9_]+|0x[0-9a-f]{6,}")


def _normalise_text(text: str, settings: Settings) -> str:
    """``text`` without what names one run: its bucket, its home folder, its temporary names."""
    text = text.replace(settings.store_url.removeprefix("s3://"), "<bucket>").replace(str(settings.home), "<home>")
    return _SCRATCH.sub("<tmp>", text)


def _objects(store: S3Store, settings: Settings) -> dict[str, tuple[str, str, str]]:
    """Every object of the bucket: (recorded sha256, sha256 of its bytes, sha256 of its run-neutral bytes)."""
    out: dict[str, tuple[str, str, str]] = {}
    for key in store.list_keys(""):
        body = store.client.get_object(Bucket=store.bucket, Key=key)
        data = body["Body"].read()
        neutral = data
        if key.endswith((".csv", ".json", ".txt")):
            neutral = _normalise_text(data.decode("utf-8"), settings).encode("utf-8")
        out[key] = (
            str(body.get("Metadata", {}).get("sha256", "")),
            hashlib.sha256(data).hexdigest(),
            hashlib.sha256(neutral).hexdigest(),
        )
    return out


# The decoder's messages on a damaged stream: which comes first, and its wording ("Invalid NAL unit size" or "Error
# splitting the input into NAL units"), depend on the timing of ffmpeg's frame threads. Two runs agree that there
# were some; their text is not compared.
_DECODER_MESSAGES = "read_errors"


def _normalise(value: Any, settings: Settings) -> Any:
    if isinstance(value, dict):
        return {
            k: bool(v) if k == _DECODER_MESSAGES else _normalise(v, settings)
            for k, v in sorted(value.items())
            if not _VOLATILE.search(k)
        }
    if isinstance(value, list):
        return [_normalise(v, settings) for v in value]
    if isinstance(value, str):
        return _normalise_text(value, settings)
    return value


def _rows(settings: Settings) -> dict[str, list[Any]]:
    """Every row of every table, without generated ids and times, in a stable order."""
    engine = sa.create_engine(settings.database_url, poolclass=sa.NullPool)
    out: dict[str, list[Any]] = {}
    try:
        with engine.connect() as conn:
            for table in TABLES:
                rows = [_normalise(dict(r._mapping), settings) for r in conn.execute(sa.select(table))]
                out[table.name] = sorted(rows, key=repr)
    finally:
        engine.dispose()
    return out


def _differences(got: Any, want: Any, path: str = "") -> list[str]:
    """Where two normalised values differ, as ``path: got != want`` lines (short enough to read in a CI log)."""
    if isinstance(got, dict) and isinstance(want, dict):
        return [
            line
            for key in sorted(set(got) | set(want), key=str)
            for line in _differences(got.get(key, "<missing>"), want.get(key, "<missing>"), f"{path}.{key}")
        ]
    if isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        return [
            line for i, (g, w) in enumerate(zip(got, want, strict=True)) for line in _differences(g, w, f"{path}[{i}]")
        ]
    return [] if got == want else [f"{path}: {got!r:.300} != {want!r:.300}"]


def _generated(key: str) -> bool:
    """Objects that say when they were made (the validation record, the workbook, the report): their bytes
    differ from run to run, so only their key and integrity are compared."""
    return "/audit/" in key or key.endswith(("/exports/eligibility.xlsx", "/exports/eligibility-report.html"))


def test_intake_rides_out_a_30s_endpoint_outage(
    tmp_path: Path,
    s3_env: S3Endpoint,
    proxy: OutageProxy,
    small_inbox: tuple[Path, dict[str, tuple[str, set[str]]]],
    small_campaign: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    inbox, expected = small_inbox
    endpoint = s3_env.endpoint_url

    # The undisturbed run, straight to the endpoint.
    reference = _settings(tmp_path, "reference", endpoint, inbox, small_campaign)
    ref_store = _direct_store(reference, endpoint)
    ref_ctx = open_context(reference, migrate=True)
    steps.run_intake(ref_ctx, run_id=RUN_ID)

    # The same run through the proxy, which goes down for 30 s once the first package file is stored.
    disturbed = _settings(tmp_path, "disturbed", proxy.url, inbox, small_campaign)
    store = _direct_store(disturbed, endpoint)
    ctx = open_context(disturbed, migrate=True)
    assert isinstance(ctx.store, S3Store) and ctx.store.retry_window_s == 120
    _start_outage_after_first_package_file(ctx, proxy, OUTAGE_S)
    with caplog.at_level(logging.WARNING, logger="kepu.storage"):
        summary = steps.run_intake(ctx, run_id=RUN_ID)

    # The outage did happen in the middle of the run, was waited out, and the run went on after it.
    assert len(proxy.outages) == 1 and proxy.outages[0][1] is not None
    assert proxy.accepted_after_outage > 0
    retries = [r for r in caplog.records if r.name == "kepu.storage" and "retrying in" in r.getMessage()]
    assert retries, "no request was retried: the outage did not hit the run"
    assert summary["submissions"] == len(expected)
    check_outcomes(outcomes(disturbed), expected)

    # Same objects with the same bytes, each one whole (its bytes match its recorded digest).
    got, want = _objects(store, disturbed), _objects(ref_store, reference)
    assert sorted(got) == sorted(want)
    assert [k for k, (recorded, actual, _) in got.items() if recorded != actual] == []
    assert [k for k in got if got[k][2] != want[k][2] and not _generated(k)] == []
    # No upload was left half done, and no file was recorded twice.
    assert store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []
    material_keys = [
        m.object_key for s in ctx.records.list_submissions(ctx.campaign.id) for m in ctx.records.list_materials(s.id)
    ]
    assert material_keys and len(material_keys) == len(set(material_keys)) and set(material_keys) <= set(got)

    # Same records.
    assert _differences(_rows(disturbed), _rows(reference)) == []


def test_an_outage_longer_than_the_window_fails_the_run_clearly(
    tmp_path: Path,
    s3_env: S3Endpoint,
    proxy: OutageProxy,
    small_inbox: tuple[Path, dict[str, tuple[str, set[str]]]],
    small_campaign: Path,
) -> None:
    inbox, _ = small_inbox
    settings = _settings(tmp_path, "short", proxy.url, inbox, small_campaign, {"KEPU_S3_RETRY_WINDOW_S": "4"})
    store = _direct_store(settings, s3_env.endpoint_url)
    ctx = open_context(settings, migrate=True)
    assert isinstance(ctx.store, S3Store) and ctx.store.retry_window_s == 4
    _start_outage_after_first_package_file(ctx, proxy, None)  # never comes back

    with pytest.raises(StorageError) as failure:
        steps.run_intake(ctx, run_id=RUN_ID)
    message = str(failure.value)
    assert "gave up after" in message and "KEPU_S3_RETRY_WINDOW_S" in message and proxy.url in message
    assert "无法访问" in message
    # The run is not recorded as a success and no submission got past the step that failed.
    with sa.create_engine(settings.database_url, poolclass=sa.NullPool).connect() as conn:
        runs = {r.id: r.status for r in conn.execute(sa.text("SELECT id, status FROM runs"))}
    assert runs.get(RUN_ID) != "success"
    assert all(s.status != "checked" for s in ctx.records.list_submissions(ctx.campaign.id))
    # What was stored before the outage is whole; the half-sent upload left no object behind.
    for key, (recorded, actual, _) in _objects(store, settings).items():
        assert recorded == actual, key
