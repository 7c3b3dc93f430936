"""The api-server's guard on a SQLite metadata database: requests that may write run one at a time, each to its end;
reads are never held; on another database nothing is held."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest

from kepu.orchestration.sqlite_writes import OneWriteAtATime, Receive, Scope, Send

pytestmark = pytest.mark.unit


class Recorder:
    """An ASGI app whose requests take a while: records when each started and ended."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = f"{scope.get('method', scope['type'])} {scope.get('path', '')}"
        self.events.append(("start", name))
        await asyncio.sleep(0.05)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        self.events.append(("end", name))


def _serve(guard: OneWriteAtATime, requests: list[tuple[str, str]]) -> None:
    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        return None

    async def main() -> None:
        scopes: list[Scope] = [{"type": "http", "method": method, "path": path} for method, path in requests]
        await asyncio.gather(*(guard(scope, receive, send) for scope in scopes))

    asyncio.run(main())


def test_writes_run_one_after_the_other_each_to_its_end() -> None:
    app = Recorder()
    _serve(
        OneWriteAtATime(app, enabled=True),
        [("POST", "/api/v2/dags/kepu_release_results/dagRuns"), ("PATCH", "/api/v2/dags/kepu_release_results")],
    )
    assert app.events == [
        ("start", "POST /api/v2/dags/kepu_release_results/dagRuns"),
        ("end", "POST /api/v2/dags/kepu_release_results/dagRuns"),
        ("start", "PATCH /api/v2/dags/kepu_release_results"),
        ("end", "PATCH /api/v2/dags/kepu_release_results"),
    ]


def test_reads_are_not_held_by_a_write() -> None:
    app = Recorder()
    _serve(
        OneWriteAtATime(app, enabled=True),
        [("PUT", "/execution/task-instances/1/heartbeat"), ("GET", "/api/v2/dags"), ("HEAD", "/"), ("OPTIONS", "/")],
    )
    assert [kind for kind, _ in app.events[:4]] == ["start"] * 4, app.events  # all four under way at once


def test_on_another_database_nothing_is_held() -> None:
    app = Recorder()
    _serve(OneWriteAtATime(app, enabled=False), [("POST", "/a"), ("PATCH", "/b"), ("DELETE", "/c")])
    assert [kind for kind, _ in app.events] == ["start", "start", "start", "end", "end", "end"]


def test_by_default_it_follows_the_metadata_database(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.configuration import conf

    monkeypatch.setattr(conf, "get", lambda *a, **k: "sqlite:////tmp/airflow.db")
    assert OneWriteAtATime(Recorder()).enabled
    monkeypatch.setattr(conf, "get", lambda *a, **k: "postgresql+psycopg2://postgres@127.0.0.1/airflow")
    assert not OneWriteAtATime(Recorder()).enabled
