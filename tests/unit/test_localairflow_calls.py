"""How the embedded Airflow is driven without Airflow's command line: the metadata database prepared by one
process, run again when SQLite found it locked and not otherwise; runs triggered, DAGs unpaused and backfills
created through the api-server's REST API as its admin, asked again on a 5xx of the SQLite database only."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kepu import localairflow
from kepu.errors import KepuError
from kepu.localairflow import MEDIA_POOL, LocalAirflow

pytestmark = pytest.mark.unit

LOCKED = (
    "sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) database is locked\n[SQL: INSERT INTO slot_pool …]"
)


class Script:
    """Stands in for subprocess.run: answers each call with the next (returncode, stderr)."""

    def __init__(self, *answers: tuple[int, str]) -> None:
        self.answers = list(answers)
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        code, err = self.answers.pop(0)
        return subprocess.CompletedProcess(argv, code, stdout="ready\n" if code == 0 else "", stderr=err)


@pytest.fixture
def no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(localairflow.time, "sleep", lambda s: None)


def test_a_locked_sqlite_database_is_prepared_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_wait: None
) -> None:
    script = Script((1, LOCKED), (1, LOCKED), (0, ""))
    monkeypatch.setattr(localairflow.subprocess, "run", script)
    LocalAirflow(tmp_path, media_slots=3).prepare_metadata()
    assert len(script.calls) == 3
    assert all(call[:3] == [sys.executable, "-m", "kepu.orchestration.metadata"] for call in script.calls)
    assert all(call[3:6] == ["--pool", MEDIA_POOL, "3"] for call in script.calls)


def test_the_api_server_alone_needs_no_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script((0, ""))
    monkeypatch.setattr(localairflow.subprocess, "run", script)
    LocalAirflow(tmp_path).prepare_metadata(media_pool=False)
    assert script.calls == [[sys.executable, "-m", "kepu.orchestration.metadata"]]


def test_a_lock_that_stays_fails_with_the_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_wait: None) -> None:
    script = Script(*[(1, LOCKED)] * localairflow.SQLITE_LOCKED_ATTEMPTS)
    monkeypatch.setattr(localairflow.subprocess, "run", script)
    with pytest.raises(KepuError, match="database is locked"):
        LocalAirflow(tmp_path).prepare_metadata()
    assert len(script.calls) == localairflow.SQLITE_LOCKED_ATTEMPTS


@pytest.mark.parametrize(
    ("metadata_url", "stderr"),
    [
        (None, "alembic.util.exc.CommandError: Can't locate revision identified by 'ffffffffffff'"),
        ("postgresql://postgres@127.0.0.1:5432/airflow", LOCKED),
    ],
    ids=["other-error", "not-sqlite"],
)
def test_other_failures_are_not_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_wait: None, metadata_url: str | None, stderr: str
) -> None:
    script = Script((1, stderr), (0, ""))
    monkeypatch.setattr(localairflow.subprocess, "run", script)
    with pytest.raises(KepuError, match="could not prepare the metadata database"):
        LocalAirflow(tmp_path, metadata_url=metadata_url).prepare_metadata()
    assert len(script.calls) == 1


class ApiServer:
    """Stands in for the api-server: hands out tokens for the admin's password, records every API request and
    answers each with the next scripted status (then 200)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.tokens = 0
        self.password = ""
        self.lock = threading.Lock()

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        answer: dict[str, Any]
        with self.lock:
            if handler.path == "/auth/token":
                given = json.loads(body)
                ok = given == {"username": "admin", "password": self.password}
                self.tokens += ok
                status, answer = (201, {"access_token": f"token-{self.tokens}"}) if ok else (401, {"detail": "no"})
            else:
                self.requests.append(
                    {
                        "method": handler.command,
                        "path": handler.path,
                        "auth": handler.headers.get("Authorization"),
                        "body": json.loads(body) if body else None,
                    }
                )
                status = self.statuses.pop(0) if self.statuses else 200
                answer = {"detail": f"status {status}"} if status >= 400 else {"ok": True}
        data = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


@pytest.fixture
def api_server() -> Iterator[tuple[ApiServer, int]]:
    state = ApiServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            state.answer(self)

        do_PATCH = do_POST

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield state, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _airflow(tmp_path: Path, state: ApiServer, port: int, metadata_url: str | None = None) -> LocalAirflow:
    airflow = LocalAirflow(tmp_path, port=port, metadata_url=metadata_url)
    state.password = airflow.admin_password
    return airflow


def test_a_trigger_unpauses_then_starts_the_run_as_the_admin(tmp_path: Path, api_server: tuple[ApiServer, int]) -> None:
    state, port = api_server
    airflow = _airflow(tmp_path, state, port)
    airflow.trigger("kepu_intake", "run-1", {"force": True})
    airflow.trigger("kepu_judging", "run-2")
    assert [(r["method"], r["path"], r["body"]) for r in state.requests] == [
        ("PATCH", "/api/v2/dags/kepu_intake", {"is_paused": False}),
        (
            "POST",
            "/api/v2/dags/kepu_intake/dagRuns",
            {"dag_run_id": "run-1", "logical_date": None, "conf": {"force": True}},
        ),
        ("PATCH", "/api/v2/dags/kepu_judging", {"is_paused": False}),
        ("POST", "/api/v2/dags/kepu_judging/dagRuns", {"dag_run_id": "run-2", "logical_date": None, "conf": {}}),
    ]
    assert state.tokens == 1 and {r["auth"] for r in state.requests} == {"Bearer token-1"}


def test_a_backfill_reads_dates_in_the_campaign_s_zone(tmp_path: Path, api_server: tuple[ApiServer, int]) -> None:
    state, port = api_server
    _airflow(tmp_path, state, port).backfill("kepu_intake", "2022-11-02", "2022-11-04T12:00:00+00:00")
    assert state.requests[1] == {
        "method": "POST",
        "path": "/api/v2/backfills",
        "auth": "Bearer token-1",
        "body": {
            "dag_id": "kepu_intake",
            "from_date": "2022-11-02T00:00:00+08:00",
            "to_date": "2022-11-04T12:00:00+00:00",
            "reprocess_behavior": "completed",
        },
    }


def test_a_locked_sqlite_database_is_asked_again_and_an_expired_token_renewed(
    tmp_path: Path, api_server: tuple[ApiServer, int], no_wait: None
) -> None:
    state, port = api_server
    airflow = _airflow(tmp_path, state, port)
    state.statuses = [401, 500, 503]
    airflow.unpause("kepu_intake")
    assert len(state.requests) == 4
    assert [r["auth"] for r in state.requests] == [
        "Bearer token-1",
        "Bearer token-2",
        "Bearer token-2",
        "Bearer token-2",
    ]


@pytest.mark.parametrize(
    ("metadata_url", "statuses", "asked"),
    [
        (None, [409], 1),
        (None, [500] * localairflow.SQLITE_LOCKED_ATTEMPTS, localairflow.SQLITE_LOCKED_ATTEMPTS),
        ("postgresql://postgres@127.0.0.1:5432/airflow", [500], 1),
    ],
    ids=["conflict", "lock-that-stays", "not-sqlite"],
)
def test_an_error_answer_fails_with_airflow_s_detail(
    tmp_path: Path,
    api_server: tuple[ApiServer, int],
    no_wait: None,
    metadata_url: str | None,
    statuses: list[int],
    asked: int,
) -> None:
    state, port = api_server
    airflow = _airflow(tmp_path, state, port, metadata_url)
    state.statuses = list(statuses)
    with pytest.raises(KepuError, match=f"HTTP {statuses[-1]} .*status {statuses[-1]}"):
        airflow.api("POST", "/api/v2/dags/kepu_intake/dagRuns", {"dag_run_id": "run-1"})
    assert len(state.requests) == asked


def test_a_refused_login_says_so(tmp_path: Path, api_server: tuple[ApiServer, int]) -> None:
    state, port = api_server
    airflow = _airflow(tmp_path, state, port)
    state.password = "another"
    with pytest.raises(KepuError, match="refused the admin's login: HTTP 401"):
        airflow.unpause("kepu_intake")
    assert state.requests == []


def test_an_api_server_that_does_not_answer_says_so(tmp_path: Path) -> None:
    port = localairflow.free_port()  # nothing listens there
    airflow = LocalAirflow(tmp_path, port=port)
    with pytest.raises(KepuError, match=f"api-server at http://127.0.0.1:{port} did not answer the admin's login"):
        airflow.trigger("kepu_intake", "run-1")
    airflow._api_token = "token-1"
    with pytest.raises(KepuError, match=f"PATCH /api/v2/dags/kepu_intake: the api-server at .*:{port} did not answer"):
        airflow.unpause("kepu_intake")
