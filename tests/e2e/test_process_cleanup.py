"""``kepu airflow`` and ``kepu demo`` stop every process they started — on Ctrl-C (SIGINT), on SIGTERM, when the
demo gives up, and when the process is killed outright — and the UI listens on loopback unless told otherwise.

Each test runs the real command in a child process and watches its process tree with psutil the whole time
(the scheduler's executor workers and the tasks' ffmpeg come and go), then looks for any of them left."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from conftest import cache_env
from kepu.localairflow import free_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


class Command:
    """``python -m kepu.cli ARGS`` with its output collected and its process tree watched until it exits."""

    def __init__(self, args: list[str], home: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "KEPU_"))}
        # The run's own settings only, but the sample clips and the media memo this run keeps: the demo under test
        # makes and checks the same small inbox as the other tests.
        env.update(cache_env())
        env["KEPU_HOME"] = str(home)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "include"), env.get("PYTHONPATH", "")])
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kepu.cli", *args],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.seen: dict[tuple[int, float], psutil.Process] = {}
        #: Command lines of the processes seen, read while they ran.
        self.cmdlines: dict[tuple[int, float], str] = {}
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._watch, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def _watch(self) -> None:
        try:
            root = psutil.Process(self.proc.pid)
        except psutil.NoSuchProcess:
            return
        while self.proc.poll() is None:
            try:
                for child in root.children(recursive=True):
                    try:
                        key = (child.pid, child.create_time())
                        self.seen.setdefault(key, child)
                        # Read again on every pass: a child seen between its fork and its exec still shows the
                        # command line of the process that started it. A zombie shows none: its last one stays.
                        cmdline = " ".join(child.cmdline()[:3])
                        if cmdline:
                            self.cmdlines[key] = cmdline
                    except psutil.Error:
                        continue
            except psutil.NoSuchProcess:
                return
            time.sleep(0.2)

    @property
    def output(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output:
                return
            if self.proc.poll() is not None:
                pytest.fail(f"exited ({self.proc.returncode}) before printing {text!r}:\n{self.output[-4000:]}")
            time.sleep(0.5)
        pytest.fail(f"no {text!r} within {timeout:.0f} s:\n{self.output[-4000:]}")

    def names(self) -> set[str]:
        return set(self.cmdlines.values())

    def wait_for_processes(self, components: tuple[str, ...], timeout: float = 30) -> str:
        """The command lines seen, once each of ``components`` is among them (or ``timeout`` has passed)."""
        deadline = time.monotonic() + timeout
        while True:
            names = " | ".join(self.names())
            missing = [c for c in components if c not in names and c.replace("-", "_") not in names]
            if not missing or time.monotonic() > deadline:
                return names
            time.sleep(0.5)

    def left(self) -> list[str]:
        """Processes of the tree still alive (zombies count as gone)."""
        alive = []
        for p in self.seen.values():
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{p.pid} {' '.join(p.cmdline()[:4])}")
            except psutil.NoSuchProcess:
                continue
        return alive

    def finish(self, timeout: float = 180) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    def end(self) -> None:
        """After a failed assertion: stop the command so that no test leaves it running."""
        if self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.finish(timeout=120)

    def kill_all(self) -> None:
        for p in self.seen.values():
            try:
                p.kill()
            except psutil.Error:
                continue


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "kepu"


def _no_leftovers(cmd: Command, grace: float = 15) -> None:
    deadline = time.monotonic() + grace
    while cmd.left() and time.monotonic() < deadline:
        time.sleep(0.5)
    left = cmd.left()
    cmd.kill_all()
    assert not left, f"left running: {left}"


def _listening(cmd: Command) -> list[tuple[str, int]]:
    out = []
    for p in [psutil.Process(cmd.proc.pid), *cmd.seen.values()]:
        try:
            out += [(c.laddr.ip, c.laddr.port) for c in p.net_connections(kind="inet") if c.status == "LISTEN"]
        except psutil.Error:
            continue
    return out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_kepu_airflow_stops_everything_and_listens_on_loopback(home: Path, sig: signal.Signals) -> None:
    port = free_port()
    cmd = Command(["airflow", "--port", str(port)], home)
    try:
        cmd.wait_for("Ctrl-C")
        assert f"http://127.0.0.1:{port}" in cmd.output
        components = ("api-server", "scheduler", "dag-processor", "triggerer")
        names = cmd.wait_for_processes(components)
        for component in components:
            assert component in names or component.replace("-", "_") in names, names
        listening = _listening(cmd)
        assert ("127.0.0.1", port) in listening, listening
        assert all(ip in ("127.0.0.1", "::1") for ip, _ in listening), listening
        cmd.proc.send_signal(sig)
        assert cmd.finish() == 128 + sig, cmd.output[-3000:]
        assert "已停止 stopped" in cmd.output
    finally:
        cmd.end()
    _no_leftovers(cmd)


def test_kepu_airflow_killed_outright_takes_its_components_along(home: Path) -> None:
    cmd = Command(["airflow", "--port", str(free_port())], home)
    try:
        cmd.wait_for("Ctrl-C")
    except BaseException:
        cmd.end()
        raise
    cmd.proc.kill()  # no handler runs: the components' parent-death signal ends them
    cmd.finish()
    _no_leftovers(cmd, grace=60)


@pytest.mark.long(110)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_kepu_demo_stops_everything_mid_run(home: Path, sig: signal.Signals) -> None:
    cmd = Command(["demo", "--profile", "small"], home)
    try:
        cmd.wait_for("任务 tasks", timeout=900)  # the run is under way and the demo shows its progress
        cmd.proc.send_signal(sig)
        assert cmd.finish() == 128 + sig, cmd.output[-3000:]
    finally:
        cmd.end()
    assert "scheduler" in " | ".join(cmd.names())
    _no_leftovers(cmd)


@pytest.mark.long(105)
def test_kepu_demo_that_gives_up_stops_everything_and_says_where_it_stood(home: Path) -> None:
    cmd = Command(["demo", "--profile", "small", "--timeout", "1"], home)
    assert cmd.finish(timeout=900) == 2, cmd.output[-3000:]
    assert "--timeout 1 s reached" in cmd.output and "done; running:" in cmd.output, cmd.output[-3000:]
    assert "scheduler" in " | ".join(cmd.names())
    _no_leftovers(cmd)
