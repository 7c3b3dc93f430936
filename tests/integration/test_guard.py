"""The guard of :mod:`kepu.childproc`: when its starter is killed outright, what the starter left running
(a child that ignores SIGTERM, that child's own child) is killed after the grace period; while the starter
lives, the guard touches nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from guard_support import GRACE_S

pytestmark = pytest.mark.integration

TESTS = Path(__file__).resolve().parents[1]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the guard runs on Linux")
def test_the_guard_kills_what_a_killed_starter_left(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent / "include"), str(TESTS)])}
    starter = subprocess.Popen([sys.executable, str(TESTS / "guard_support.py"), str(pidfile)], env=env)
    pids: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 60
        while not pidfile.exists() and time.monotonic() < deadline and starter.poll() is None:
            time.sleep(0.1)
        pids = json.loads(pidfile.read_text())
        # While the starter lives, the guard leaves everything alone.
        time.sleep(GRACE_S + 1)
        assert all(_alive(pid) for pid in pids.values()), pids
        assert psutil.Process(pids["guard"]).ppid() == starter.pid

        starter.kill()
        starter.wait(timeout=10)
        # The child ignores SIGTERM and has no parent-death signal: without the guard it would live on.
        deadline = time.monotonic() + GRACE_S + 30
        while any(_alive(pid) for pid in pids.values()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [name for name, pid in pids.items() if _alive(pid)] == []
    finally:
        if starter.poll() is None:
            starter.kill()
        for pid in pids.values():
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
