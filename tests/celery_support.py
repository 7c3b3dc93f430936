"""Services and processes for the CeleryExecutor tests: Redis, throw-away PostgreSQL databases, workers.

Redis and PostgreSQL are found on loopback (``KEPU_TEST_REDIS_URL``, ``KEPU_TEST_PG_DSN``). When one
does not answer the tests are skipped, except under CI=true, where they fail: a missing service is a
broken set-up there.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from conftest import fresh_database, service_unavailable
from kepu.localairflow import DEFAULT_QUEUE, MEDIA_QUEUE, LocalAirflow

DEFAULT_REDIS = "redis://127.0.0.1:6379"

#: A worker killed with its task is noticed after this many seconds without a heartbeat (default 300).
HEARTBEAT_ENV = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
}


def redis_broker_url() -> str:
    """A broker URL on the test Redis: a random non-zero database of the default 16 (each Airflow
    instance also prefixes its keys, so sharing a database with anyone is harmless)."""
    import redis

    server = os.environ.get("KEPU_TEST_REDIS_URL") or DEFAULT_REDIS
    client = redis.Redis.from_url(server, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_unavailable(f"Redis at {server} does not answer: {exc}")
    finally:
        client.close()
    return urlsplit(server)._replace(path=f"/{random.randint(1, 15)}").geturl()


@contextlib.contextmanager
def celery_airflow(home: Path, extra_env: Mapping[str, str] | None = None) -> Iterator[LocalAirflow]:
    """The embedded Airflow with the CeleryExecutor, on a fresh metadata database, without workers."""
    broker = redis_broker_url()
    with fresh_database("kepu_airflow") as metadata_url:
        airflow = LocalAirflow(
            home,
            executor="celery",
            metadata_url=metadata_url,
            broker_url=broker,
            extra_env={**HEARTBEAT_ENV, **(extra_env or {})},
        )
        try:
            airflow.start(timeout=300)
            yield airflow
        finally:
            airflow.stop()


def media_concurrency() -> int:
    """The media worker's pool processes: one ffmpeg per core."""
    return os.cpu_count() or 1


@contextlib.contextmanager
def two_workers(airflow: LocalAirflow, env: Mapping[str, str]) -> Iterator[None]:
    """A ``default`` worker and a ``media`` worker (concurrency = cores), with the kepu settings ``env``."""
    airflow.start_worker("default", [DEFAULT_QUEUE], 2, env=env, wait=False)
    airflow.start_worker("media", [MEDIA_QUEUE], media_concurrency(), env=env, wait=False)
    try:
        airflow.wait_for_worker("default")
        airflow.wait_for_worker("media")
        yield
    finally:
        for name in list(airflow.workers):
            airflow.stop_worker(name)
