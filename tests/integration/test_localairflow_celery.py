"""Pieces of the embedded Airflow's Celery mode that need no Airflow: the process-tree kill, the broker keys."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from celery_support import redis_broker_url
from kepu.errors import KepuError
from kepu.localairflow import LocalAirflow, kill_tree, process_tree

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.faults
def test_kill_tree_reaches_descendants_that_left_the_process_group() -> None:
    # A supervisor-like tree: a child in its own session (as Airflow's task processes and ffmpeg are),
    # and one in the parent's group.
    root = subprocess.Popen(["bash", "-c", "setsid sleep 300 & sleep 300 & wait"], start_new_session=True)
    try:
        # Three processes in two sessions: the first child is forked before it calls setsid(), so wait for both.
        deadline = time.monotonic() + 10
        tree: list[int] = []
        sessions: set[int] = set()
        while time.monotonic() < deadline:
            tree = process_tree(root.pid)
            sessions = {os.getsid(pid) for pid in tree}
            if len(tree) == 3 and len(sessions) == 2:
                break
            time.sleep(0.05)
        assert len(tree) == 3, tree
        assert len(sessions) == 2, sessions  # killpg on the root's group would miss one
        killed = kill_tree(root.pid)
        assert sorted(killed) == sorted(tree)
        root.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in tree) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in tree if _alive(pid)]
    finally:
        if root.poll() is None:
            root.kill()
            root.wait()


def test_flush_broker_deletes_only_its_own_keys(tmp_path: Path) -> None:
    import redis

    broker = redis_broker_url()
    airflow = LocalAirflow(
        tmp_path / "airflow",
        executor="celery",
        metadata_url="postgresql://postgres@127.0.0.1/unused",
        broker_url=broker,
    )
    other = LocalAirflow(
        tmp_path / "other", executor="celery", metadata_url="postgresql://postgres@127.0.0.1/unused", broker_url=broker
    )
    assert airflow.broker_prefix != other.broker_prefix
    assert airflow.env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX"] == airflow.broker_prefix
    assert airflow.env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql+psycopg2://postgres@127.0.0.1/unused"
    client = redis.Redis.from_url(broker)
    mine = [f"{airflow.broker_prefix}media", f"{airflow.broker_prefix}unacked"]
    theirs = f"{other.broker_prefix}media"
    unrelated = f"not-kepu-{secrets.token_hex(6)}"
    try:
        for key in [*mine, theirs, unrelated]:
            client.set(key, "x")
        assert airflow.flush_broker() == 2
        assert [client.exists(key) for key in mine] == [0, 0]
        assert client.exists(theirs) == 1 and client.exists(unrelated) == 1
    finally:
        client.delete(*mine, theirs, unrelated)
        client.close()


def test_celery_mode_needs_its_services(tmp_path: Path) -> None:
    with pytest.raises(KepuError, match="metadata_url"):
        LocalAirflow(tmp_path, executor="celery", broker_url="redis://127.0.0.1:6379/1")
    with pytest.raises(KepuError, match="Celery workers need"):
        LocalAirflow(tmp_path).start_worker("media", ["media"])
