"""The single place that runs ffmpeg and ffprobe.

Every media subprocess goes through :func:`run`, so each one is logged with its exact argv, bounded
by a timeout, and killed together with anything it spawned when that timeout passes. On Linux the
tool is also killed by the kernel when the process that started it dies (even by SIGKILL), so an
encoder never outlives its task and never writes into a folder a retry uses.

Each tool also runs under an address-space limit (``RLIMIT_AS``, see :func:`kepu.config.ffmpeg_memory_limit_mb`):
a crafted file that makes FFmpeg allocate without end fails with :class:`MemoryLimitError` instead of
taking the worker's memory. FFmpeg prints ``Cannot allocate memory`` for a failed allocation but sometimes
carries on and exits with status 0, so that message fails the run too whenever a limit is set.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import resource
import shlex
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from kepu.childproc import die_with_parent
from kepu.config import ffmpeg_memory_limit_mb
from kepu.errors import MediaToolError

log = logging.getLogger(__name__)

#: No media command gets less than this, however short the media: process start-up, probing and
#: container parsing cost a few seconds on a loaded worker whatever the duration.
TIMEOUT_FLOOR_S = 60.0
#: No media command gets more than this: a hung ffmpeg must free its worker slot eventually.
TIMEOUT_CAP_S = 3 * 3600.0
#: How many trailing stderr lines an error message carries (ffmpeg states its reason last).
STDERR_TAIL_LINES = 12
#: A probe (duration still unknown) gets this many times the floor.
PROBE_FLOOR_FACTOR = 2.0


@dataclass(frozen=True)
class CompletedRun:
    """A media command that exited with status 0."""

    argv: list[str]
    returncode: int
    stdout: bytes
    stderr: bytes
    elapsed_s: float


class ToolExitError(MediaToolError):
    """The tool ran and exited unsuccessfully (non-zero status or killed by a signal).

    Kept apart from other :class:`MediaToolError` cases (tool missing, timeout) because only this
    one can mean that the *input* is bad: callers such as the probe turn it into a material finding.
    """

    def __init__(self, argv: list[str], returncode: int, stderr_tail: str) -> None:
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        tool = os.path.basename(argv[0]) if argv else "?"
        status = f"was killed by signal {-returncode}" if returncode < 0 else f"exited with status {returncode}"
        super().__init__(argv, f"{tool} {status}: {stderr_tail or '(no error output)'}")


class MemoryLimitError(ToolExitError):
    """The tool needed more memory than its address-space limit allows.

    A :class:`ToolExitError`, so every caller that turns a failed run into the file's ``M-UNREADABLE`` finding
    does so here too; ``stderr_tail`` starts with the reason in Chinese and English, so the finding says it.
    """

    def __init__(self, argv: list[str], returncode: int, stderr_tail: str, limit_mb: int) -> None:
        self.limit_mb = limit_mb
        self.returncode = returncode
        reason = f"所需内存超过上限 {limit_mb} MiB needed more memory than the limit of {limit_mb} MiB"
        self.stderr_tail = f"{reason}; {stderr_tail}" if stderr_tail else reason
        tool = os.path.basename(argv[0]) if argv else "?"
        MediaToolError.__init__(self, argv, f"{tool}: {self.stderr_tail}")


#: What FFmpeg (or the loader, or libc) prints when an allocation or a thread's stack was refused.
#: A thread whose stack cannot be mapped fails with EAGAIN ("Resource temporarily unavailable") or only says
#: that the codec's thread set-up failed (``ff_frame_thread_encoder_init failed``).
_OUT_OF_MEMORY = re.compile(
    rb"(?i)cannot allocate memory|could not allocate|could not be allocated|failed to allocate|error allocating|"
    rb"out of memory|failed to map segment|bad_alloc|pthread_create|thread_(?:encoder_)?init failed|"
    rb"resource temporarily unavailable"
)
#: Signals a tool may die of when an allocation it did not check fails under the limit.
_CRASH_SIGNALS = frozenset({-signal.SIGSEGV, -signal.SIGABRT, -signal.SIGBUS})


def stderr_tail(stderr: bytes, lines: int = STDERR_TAIL_LINES) -> str:
    """The last non-empty lines of a tool's stderr, decoded leniently, joined with `` | ``."""
    text = stderr.decode("utf-8", errors="replace")
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


def media_timeout(
    duration_s: float | None,
    factor: float,
    *,
    floor_s: float = TIMEOUT_FLOOR_S,
    cap_s: float = TIMEOUT_CAP_S,
) -> float:
    """A timeout proportional to the media duration, never below ``floor_s`` nor above ``cap_s``.

    An unknown duration gets the cap: refusing to run would lose the file, and the cap still bounds
    a hung process.
    """
    if factor <= 0:
        raise ValueError(f"timeout factor must be positive, got {factor}")
    if duration_s is None or duration_s != duration_s or duration_s < 0:  # None, NaN or negative
        return cap_s
    return max(floor_s, min(cap_s, duration_s * factor))


def probe_timeout(floor_s: float = TIMEOUT_FLOOR_S) -> float:
    """Timeout of an ffprobe call, before the duration is known: a fixed multiple of the floor."""
    return floor_s * PROBE_FLOOR_FACTOR


def _address_space(limit_mb: int | None) -> tuple[int, int] | None:
    """The (soft, hard) RLIMIT_AS for a child, never above the limit this process already has."""
    if not limit_mb:
        return None
    wanted = limit_mb << 20
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    return wanted, wanted


def _child_setup(parent_pid: int, address_space: tuple[int, int] | None = None) -> Callable[[], None] | None:
    """What the child runs before exec: limit its address space; die with SIGKILL when its parent dies.

    The death signal follows the thread that forked: run() waits in that thread until the child ends.
    """
    die = die_with_parent(parent_pid, signal.SIGKILL)
    if die is None and address_space is None:
        return None

    def setup() -> None:
        if address_space is not None:
            # Before exec: the limit holds from the tool's first allocation, and it cannot raise it again.
            resource.setrlimit(resource.RLIMIT_AS, address_space)
        if die is not None:
            die()

    return setup


def _out_of_memory(returncode: int, stderr: bytes) -> bool:
    """Whether a tool run under an address-space limit failed for want of memory."""
    return bool(_OUT_OF_MEMORY.search(stderr)) or returncode in _CRASH_SIGNALS


def run(
    argv: list[str], *, timeout: float, input: bytes | None = None, memory_limit_mb: int | None = None
) -> CompletedRun:
    """Run ``argv`` to completion and return its output; raise :class:`MediaToolError` on failure.

    The child gets its own process group (session) so that a timeout can kill it and every process
    it started, not just the direct child; on Linux it also gets SIGKILL when this process dies,
    however it dies. Without ``input`` the child's stdin is ``/dev/null``: ffmpeg otherwise reads
    the terminal for interactive keys and can stall a worker.

    The child's address space is limited to ``memory_limit_mb`` MiB (default: the configured limit,
    ``KEPU_FFMPEG_MEMORY_LIMIT_MB``; 0 means none); a run that needed more raises :class:`MemoryLimitError`.
    """
    if not argv:
        raise ValueError("empty argv")
    limit_mb = ffmpeg_memory_limit_mb() if memory_limit_mb is None else memory_limit_mb
    log.info("running: %s", shlex.join(argv))
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_child_setup(os.getpid(), _address_space(limit_mb)),
        )
    except OSError as exc:
        raise MediaToolError(argv, f"cannot start {argv[0]}: {exc}") from exc

    try:
        stdout, stderr = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        _kill_group(proc)
        _, stderr = proc.communicate()
        elapsed = time.monotonic() - started
        log.warning("timed out after %.1f s, killed: %s", elapsed, shlex.join(argv))
        tail = stderr_tail(stderr)
        message = f"{os.path.basename(argv[0])} timed out after {timeout:.0f} s"
        raise MediaToolError(argv, f"{message}: {tail}" if tail else message, timed_out=True) from exc
    except BaseException:
        # Interrupted (e.g. the task was cancelled): never leave an orphan encoder running.
        _kill_group(proc)
        proc.communicate()
        raise

    elapsed = time.monotonic() - started
    if (
        limit_mb
        and (proc.returncode != 0 or b"Cannot allocate memory" in stderr)
        and _out_of_memory(proc.returncode, stderr)
    ):
        # Checked on success too: a decoder that could not allocate drops frames and ffmpeg still exits 0,
        # which would measure a part of the file as if it were the whole.
        log.warning("needed more than %d MiB after %.1f s: %s", limit_mb, elapsed, shlex.join(argv))
        raise MemoryLimitError(argv, proc.returncode, stderr_tail(stderr), limit_mb)
    if proc.returncode != 0:
        log.warning("failed after %.1f s (status %s): %s", elapsed, proc.returncode, shlex.join(argv))
        raise ToolExitError(argv, proc.returncode, stderr_tail(stderr))
    log.debug("finished in %.1f s: %s", elapsed, argv[0])
    return CompletedRun(argv=argv, returncode=0, stdout=stdout, stderr=stderr, elapsed_s=elapsed)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # ProcessLookupError: the group is already gone; only the zombie remains, reaped by communicate().
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
