"""What a child process kepu starts runs between fork and exec, so that it never outlives its starter.

On Linux the kernel sends the child a signal when the thread that started it ends (``PR_SET_PDEATHSIG``),
however that thread's process dies, even by SIGKILL. Used for the ffmpeg/ffprobe children
(:mod:`kepu.media.runner`, SIGKILL: an encoder has nothing to save) and for the Airflow components
(:mod:`kepu.localairflow`, SIGTERM: a scheduler closes its database connections first).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
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
