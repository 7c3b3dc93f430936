"""Shared fixtures: a throw-away PostgreSQL database, a local S3 endpoint, SQLite URLs."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from kepu.config import Settings, load_settings
from kepu.devtools.scale import write_scaled_campaign  # re-exported: tests build campaigns scaled to their videos
from media_factory import TEST_MEDIA

log = logging.getLogger(__name__)
T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]
#: The settings that point a kepu process at these caches: tests that start kepu with an environment of their own
#: pass them on (:func:`cache_env`).
CACHE_VARS = ("KEPU_SAMPLE_CACHE", "KEPU_MEDIA_MEMO")

DEFAULT_PG_DSN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def pytest_configure(config: pytest.Config) -> None:
    # The machine's test media (media_factory.TEST_MEDIA): every sample inbox a test makes (here, in a pytest-xdist
    # worker, or in a kepu child process) takes its base clips and covers from the one cache.
    os.environ.setdefault("KEPU_SAMPLE_CACHE", str(TEST_MEDIA / "sample"))
    # One media memo (kepu.media.memo) for every process of the run and for the next runs: each distinct video is
    # probed, analysed, pictured and read by OCR once, by whichever test meets it first. Its key holds the command
    # and the tool that ran it, so a changed check or another ffmpeg measures again; what is judged from a kept
    # measurement is judged afresh each time. Tests of the memo itself, and of what happens when a measuring
    # command fails, use a memo of their own or none.
    os.environ.setdefault("KEPU_MEDIA_MEMO", str(TEST_MEDIA / "memo"))


#: Seconds a test of these kinds is expected to take when it sets no ``long`` marker: a hint for the order below.
_KIND_S = {"celery": 60.0, "faults": 60.0, "e2e": 60.0}


def _expected_s(item: pytest.Item) -> float:
    mark = item.get_closest_marker("long")
    if mark is not None:
        return float(mark.args[0])
    return max((s for kind, s in _KIND_S.items() if item.get_closest_marker(kind)), default=0.0)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist, each worker's first stretch of the collection starts with its share of the long tests
    (:func:`long_first`). Every worker collects the same order, as xdist requires."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 0)
    items[:] = long_first(items, workers, _expected_s, lambda item: item.nodeid.split("::")[0])


def long_first(items: list[T], workers: int, expected_s: Callable[[T], float], group_of: Callable[[T], str]) -> list[T]:
    """``items`` ordered so that each of ``workers`` equal consecutive runs starts with its share of the long ones.

    ``--dist worksteal`` hands each worker an equal run of consecutive tests and later moves tests from the end of
    the busiest worker's run to an idle one. The long tests (``expected_s`` above 0: those that start Airflow, a
    demo or a browser, minutes each and mostly waiting) are grouped (by module: their module fixtures are made
    once), the groups dealt longest first to the run with the least expected time and put at its front; the other
    tests fill the runs in their given order. So no long test starts last, and a worker that finishes early takes
    short ones. With fewer than two workers or no long test the order is kept.
    """
    groups: dict[str, list[T]] = {}
    for item in items:
        if expected_s(item) > 0:
            groups.setdefault(group_of(item), []).append(item)
    if workers < 2 or not groups:
        return list(items)
    # The sizes worksteal gives: each worker in turn gets the remaining tests divided by the workers left.
    sizes, left = [], len(items)
    for w in range(workers):
        sizes.append(left // (workers - w))
        left -= sizes[-1]
    runs: list[list[T]] = [[] for _ in range(workers)]
    load = [0.0] * workers
    for group in sorted(groups.values(), key=lambda g: -sum(map(expected_s, g))):
        fits = [w for w in range(workers) if len(runs[w]) + len(group) <= sizes[w]] or list(range(workers))
        w = min(fits, key=lambda i: load[i])
        runs[w] += group
        load[w] += sum(map(expected_s, group))
    placed = {id(item) for run in runs for item in run}
    rest = iter([item for item in items if id(item) not in placed])
    for w in range(workers):
        runs[w] += [item for _, item in zip(range(sizes[w] - len(runs[w])), rest, strict=False)]
    runs[-1] += list(rest)
    return [item for run in runs for item in run]


def cache_env() -> dict[str, str]:
    """The variables of :data:`CACHE_VARS` as this run set them."""
    return {name: os.environ[name] for name in CACHE_VARS if name in os.environ}


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def service_unavailable(reason: str) -> None:
    """Skip a test whose service is missing; under CI=true a missing service is a broken set-up: fail."""
    if _in_ci():
        pytest.fail(f"CI=true requires it: {reason}", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """URL of a new, empty PostgreSQL database named ``{prefix}_<random>``, dropped afterwards.

    The server comes from ``KEPU_TEST_PG_DSN`` (default: user postgres on 127.0.0.1:5432); when it
    does not answer the test is skipped (failed under CI=true, see :func:`service_unavailable`).
    """
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    server = make_url(os.environ.get("KEPU_TEST_PG_DSN") or DEFAULT_PG_DSN)
    if server.drivername in ("postgresql", "postgres"):
        server = server.set(drivername="postgresql+psycopg2")
    admin = sa.create_engine(
        server, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}, poolclass=sa.NullPool
    )
    name = f"{prefix}_{secrets.token_hex(6)}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        service_unavailable(f"PostgreSQL at {server.render_as_string(hide_password=True)} does not answer: {exc}")
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        from kepu.db import dispose_engine

        dispose_engine(url)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for one test, dropped after it (no test sees another's rows)."""
    with fresh_database("kepu_test") as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    """URL of a SQLite database file in the test's temporary folder (not yet created)."""
    url = f"sqlite:///{tmp_path / 'records' / 'records.db'}"
    yield url
    from kepu.db import dispose_engine

    dispose_engine(url)


@dataclass(frozen=True)
class S3Endpoint:
    endpoint_url: str
    access_key: str = "testing"
    secret_key: str = "testing"
    region: str = "us-east-1"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    """moto's S3 server on 127.0.0.1 (a free port), for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Endpoint(endpoint_url=f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_endpoint: S3Endpoint, monkeypatch: pytest.MonkeyPatch) -> S3Endpoint:
    """The AWS_* variables pointing boto3 at the test endpoint's credentials, for one test."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_endpoint.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_endpoint.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_endpoint.region)
    # Anything that could point boto3 elsewhere or at other credentials is removed.
    for var in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    return s3_endpoint


@pytest.fixture
def s3_settings(tmp_path: Path, s3_env: S3Endpoint) -> Settings:
    """Settings whose store is a fresh, existing bucket on the test endpoint."""
    from kepu.storage import S3Store, open_store

    bucket = f"kepu-test-{secrets.token_hex(6)}"
    settings = load_settings(
        {
            "KEPU_HOME": str(tmp_path / "home"),
            "KEPU_DATABASE_URL": f"sqlite:///{tmp_path / 'home' / 'records.db'}",
            "KEPU_STORE_URL": f"s3://{bucket}",
            "KEPU_S3_ENDPOINT_URL": s3_env.endpoint_url,
            "KEPU_S3_REGION": s3_env.region,
            "KEPU_SCRATCH_DIR": str(tmp_path / "scratch"),
        }
    )
    store = open_store(settings)
    assert isinstance(store, S3Store)
    store.ensure_bucket()
    return settings


# --- the small sample inbox and a campaign scaled to it --------------------------------------------


@pytest.fixture(scope="session")
def small_campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kepu.devtools.sample import PROFILES

    small = PROFILES["small"]
    return write_scaled_campaign(
        tmp_path_factory.mktemp("campaign") / "small.yaml", duration_s=small.duration_limits_s, size=small.size_limits
    )


@pytest.fixture(scope="session")
def small_inbox(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, tuple[str, set[str]]]]:
    """The small sample inbox plus the bad packages, and what each must get: (verdict, codes).

    A package's codes are its declared defect and the ones it brings along (``also``); the verdict
    is the one its most severe code gives. Generated once per session; tests must not change it
    (copy it first when they do).
    """
    from kepu.campaign import load_campaign
    from kepu.config import DEFAULT_CAMPAIGN_FILE
    from kepu.devtools.sample import generate_inbox, write_bad_packages

    inbox = tmp_path_factory.mktemp("inbox")
    packages = [*generate_inbox(inbox, profile="small"), *write_bad_packages(inbox)]
    campaign = load_campaign(DEFAULT_CAMPAIGN_FILE)
    expected: dict[str, tuple[str, set[str]]] = {}
    for p in packages:
        codes = p.codes
        severities = {campaign.finding(code).severity for code in codes}
        verdict = "fail" if "error" in severities else "review" if "warning" in severities else "pass"
        expected[p.folder] = (verdict, codes)
    return inbox, expected


def outcomes(settings: Settings) -> dict[str, tuple[str | None, set[str]]]:
    """(verdict, finding codes) of every submission, by the name it arrived under, as exported."""
    from kepu.context import open_context
    from kepu.intake.export import eligibility_rows

    ctx = open_context(settings)
    rows = eligibility_rows(ctx.records, ctx.campaign)
    return {r["source_name"]: (r["verdict"] or None, set(filter(None, r["codes"].split(";")))) for r in rows}


def check_outcomes(got: dict[str, tuple[str | None, set[str]]], expected: dict[str, tuple[str, set[str]]]) -> None:
    """Each package has its expected verdict and codes; a conformant one has no finding at all."""
    assert set(got) == set(expected)
    for name, (verdict, codes) in expected.items():
        assert got[name][0] == verdict, (name, got[name])
        assert codes <= got[name][1], (name, got[name])
        if verdict == "pass":
            assert got[name][1] == set(), (name, got[name])
