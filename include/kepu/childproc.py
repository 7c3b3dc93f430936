"""What a child process kepu starts runs between fork and exec, so that it never outlives its starter.

On Linux the kernel sends the child a signal when the thread that started it ends (``PR_SET_PDEATHSIG``),
however that thread's process dies, even by SIGKILL. Used for the ffmpeg/ffprobe children
(:mod:`kepu.media.runner`, SIGKILL: an encoder has nothing to save) and for the Airflow components
(:mod:`kepu.localairflow`, SIGTERM: a scheduler closes its database connections first).

The parent-death signal reaches only direct children; :func:`start_guard` starts a guard process that kills
the rest of the tree (a task under a scheduler, its encoder) when the starter was killed without stopping it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

#: prctl option: the signal a child gets when the thread that started it ends (linux/prctl.h).
PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    prctl: Callable[..., int] = libc.prctl
    return prctl


# Loaded once, at import: the child between fork and exec must not load libraries (find_library even
# runs a subprocess).
_prctl = _load_prctl()


def die_with_parent(parent_pid: int, sig: signal.Signals) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get ``sig`` when its parent dies; None where that is not possible.

    ``parent_pid`` is the starter's pid, taken before the fork: a parent that died before the request took
    effect is seen as a changed parent pid, and the child then signals itself.
    """
    prctl = _prctl
    if prctl is None:
        return None

    def setup() -> None:
        prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), sig)

    return setup


# --- a guard for process trees whose starter is killed outright ----------------------------------------

#: Seconds the guard gives what its starter left behind to stop by itself before it kills it.
GUARD_GRACE_S = 30.0
#: How often the guard looks at its starter's process tree.
GUARD_INTERVAL_S = 0.5

_guard: subprocess.Popen[bytes] | None = None


def start_guard(grace_s: float = GUARD_GRACE_S) -> subprocess.Popen[bytes] | None:
    """Start (once per process) a guard that outlives this process and, if this process dies without
    stopping what it started, kills every descendant it had.

    The parent-death signal reaches only the direct children, and a child that handles it (a scheduler
    waiting for its running tasks, a task retrying a dead API server) may keep running, with its own
    children, for minutes. The guard records this process's tree every :data:`GUARD_INTERVAL_S`; once this
    process is gone it gives what is left ``grace_s`` seconds, then kills it. It runs in a session of its
    own (a Ctrl-C in the terminal does not reach it) and ends by itself when nothing is left to wait for.
    Returns None where it cannot run (no psutil, not Linux).
    """
    global _guard
    if _guard is not None and _guard.poll() is None:
        return _guard
    if not sys.platform.startswith("linux"):
        return None
    try:
        import psutil  # noqa: F401 - the guard needs it
    except ImportError:
        return None
    _guard = subprocess.Popen(
        [sys.executable, "-m", "kepu.childproc", str(os.getpid()), f"{grace_s:g}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [_package_root(), os.environ.get("PYTHONPATH")])),
        },
    )
    return _guard


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def guard(parent: int, grace_s: float, interval_s: float = GUARD_INTERVAL_S) -> list[int]:
    """Watch ``parent``'s descendants until ``parent`` is gone, then kill what is left of them after
    ``grace_s`` seconds; return the pids that had to be killed."""
    import psutil

    me = os.getpid()
    seen: dict[tuple[int, float], psutil.Process] = {}

    def record(procs: list[psutil.Process]) -> None:
        for proc in procs:
            try:
                key = (proc.pid, proc.create_time())
            except psutil.Error:
                continue
            if proc.pid != me:
                seen.setdefault(key, proc)

    try:
        root = psutil.Process(parent)
    except psutil.NoSuchProcess:
        return []
    while os.getppid() == parent:
        try:
            record(root.children(recursive=True))
        except psutil.NoSuchProcess:
            break
        for key in [k for k, p in seen.items() if not _running(p)]:
            del seen[key]
        time.sleep(interval_s)

    def left() -> list[psutil.Process]:
        alive = [p for p in seen.values() if _running(p)]
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                record(proc.children(recursive=True))
        return [p for p in seen.values() if _running(p)]

    deadline = time.monotonic() + grace_s
    while left() and time.monotonic() < deadline:
        time.sleep(interval_s)
    killed = left()
    for proc in killed:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(killed, timeout=10)
    return [p.pid for p in killed]


def _running(proc: object) -> bool:
    import psutil

    assert isinstance(proc, psutil.Process)
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


if __name__ == "__main__":
    guard(int(sys.argv[1]), float(sys.argv[2]))
