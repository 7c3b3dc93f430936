"""``terminate_trees``: a component stops its own children on its one SIGTERM; what stays is signalled, then killed.

The stand-in component behaves as Airflow's scheduler does with its executor's workers: its children ignore
SIGTERM and stop on a message from it, and a second SIGTERM makes it leave without sending that message.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from kepu.localairflow import OWN_STOP_S, terminate_trees

pytestmark = pytest.mark.unit

COMPONENT = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    from pathlib import Path

    out = Path(sys.argv[1])
    child = (
        "import signal, sys, time\\n"
        "signal.signal(signal.SIGTERM, lambda *a: open(sys.argv[1], 'a').write('child got SIGTERM\\\\n'))\\n"
        "if sys.stdin.readline() != 'stop\\\\n':\\n"
        "    time.sleep(3600)  # its parent left without a word: it waits, as an executor's worker does\\n"
        "open(sys.argv[1], 'a').write('child stopped by its parent\\\\n')\\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", child, str(out)], stdin=subprocess.PIPE, text=True)
    signals = []

    def stop(signum, frame):
        signals.append(signum)
        if len(signals) > 1:
            out.open("a").write("component got a second SIGTERM\\n")
            os._exit(1)  # "do not wait": the worker never gets its message

    signal.signal(signal.SIGTERM, stop)
    out.open("a").write(f"ready {worker.pid}\\n")
    while not signals:
        time.sleep(0.05)
    time.sleep(float(sys.argv[2]))  # the time it takes to wind down
    worker.stdin.write("stop\\n")
    worker.stdin.flush()
    worker.wait()
    out.open("a").write("component stopped\\n")
    """
)


def _start(tmp_path: Path, wind_down_s: float) -> tuple[subprocess.Popen[bytes], Path]:
    out = tmp_path / "events.txt"
    proc = subprocess.Popen([sys.executable, "-c", COMPONENT, str(out), str(wind_down_s)], start_new_session=True)
    deadline = time.monotonic() + 30
    while not (out.exists() and "ready" in out.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert out.exists() and "ready" in out.read_text()
    return proc, out


def test_a_component_stops_its_own_children_on_one_sigterm(tmp_path: Path) -> None:
    proc, out = _start(tmp_path, wind_down_s=0.5)
    worker = int(out.read_text().split()[1])
    started = time.monotonic()
    pids = terminate_trees([proc.pid], grace=30)
    elapsed = time.monotonic() - started
    proc.wait(timeout=5)
    events = out.read_text().splitlines()
    assert worker in pids and proc.pid in pids
    assert "child stopped by its parent" in events and "component stopped" in events, events
    assert "child got SIGTERM" not in events and "component got a second SIGTERM" not in events, events
    assert elapsed < OWN_STOP_S, elapsed  # nobody waited for the grace
    assert not psutil.pid_exists(worker) or psutil.Process(worker).status() == psutil.STATUS_ZOMBIE


def test_a_component_slower_than_its_turn_is_signalled_again_and_what_ignores_it_is_killed(tmp_path: Path) -> None:
    proc, out = _start(tmp_path, wind_down_s=60)
    worker = int(out.read_text().split()[1])
    started = time.monotonic()
    terminate_trees([proc.pid], grace=OWN_STOP_S + 2)
    elapsed = time.monotonic() - started
    proc.wait(timeout=5)
    events = out.read_text().splitlines()
    # After its turn the whole group is signalled: the component leaves at once, the worker ignores it and is
    # killed when the grace is over.
    assert "component got a second SIGTERM" in events and "child got SIGTERM" in events, events
    assert "child stopped by its parent" not in events, events
    assert OWN_STOP_S <= elapsed < OWN_STOP_S + 2 + 10, elapsed
    assert not psutil.pid_exists(worker) or psutil.Process(worker).status() == psutil.STATUS_ZOMBIE
