"""Measurements kept by content: a file already probed or analysed is not decoded again.

A forced rerun, a backfill after a deadline extension or ``kepu check`` of a package that was already
checked would otherwise probe and decode every unchanged video once more (the analysis pass decodes the
whole programme: about one CPU-second per ten seconds of 1080p). The commands memoised here only read
their input and print what they measured, and their output depends on nothing but

* the exact argv, with the input's path replaced by the SHA-256 of its bytes, and
* the tool that ran it (its resolved path, size and modification time: an upgraded FFmpeg is another tool),

so the output of a successful run is stored under a digest of both, and a later run of the same command
on the same bytes returns it without starting the tool. The findings are still judged afresh from it by
the current campaign. A failed, killed or timed-out run is never stored: it is tried again next time.

The memo is a folder (``KEPU_MEDIA_MEMO``; by default ``$KEPU_HOME/cache/media``; ``off`` turns it off).
Every entry is written under a temporary name and renamed, so processes may share the folder; an entry
that cannot be read is ignored and written again. Removing the folder only costs time.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kepu.config import media_memo_dir
from kepu.media.runner import CompletedRun, run

log = logging.getLogger(__name__)

#: Part of every key: bumped when what an entry holds changes, so older entries are never misread.
MEMO_FORMAT = 1
_READ_CHUNK = 1 << 20


@functools.lru_cache(maxsize=256)
def _digest_of(path: str, device: int, inode: int, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_READ_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """SHA-256 of the file's bytes; computed once per process for a file left unchanged."""
    st = path.stat()
    return _digest_of(str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def tool_identity(name: str) -> str | None:
    """Which tool ``name`` runs here (resolved path, size, modification time); None when it is not found."""
    found = shutil.which(name)
    if found is None:
        return None
    resolved = os.path.realpath(found)
    st = os.stat(resolved)
    return f"{resolved}:{st.st_size}:{st.st_mtime_ns}"


def memo_key(argv: list[str], reads: Path) -> str | None:
    """The key of ``argv`` run on the bytes of ``reads``; None when the tool cannot be identified."""
    tool = tool_identity(argv[0])
    if tool is None:
        return None
    where = str(reads)
    content = f"sha256:{file_digest(reads)}"
    words = [arg.replace(where, content) for arg in argv[1:]]
    text = json.dumps([MEMO_FORMAT, tool, words], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _entry(folder: Path, key: str) -> Path:
    return folder / key[:2] / f"{key}.json"


def _load(path: Path, argv: list[str]) -> CompletedRun | None:
    try:
        data = json.loads(path.read_text("utf-8"))
        stdout = zlib.decompress(base64.b64decode(data["stdout"]))
        stderr = zlib.decompress(base64.b64decode(data["stderr"]))
        elapsed = float(data["elapsed_s"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, zlib.error) as exc:
        log.warning("media memo entry %s cannot be read (%s): running the command again", path.name, exc)
        return None
    return CompletedRun(argv=argv, returncode=0, stdout=stdout, stderr=stderr, elapsed_s=elapsed)


def _store(path: Path, completed: CompletedRun) -> None:
    data: dict[str, Any] = {
        "format": MEMO_FORMAT,
        "tool": os.path.basename(completed.argv[0]),
        "elapsed_s": completed.elapsed_s,
        "stdout": base64.b64encode(zlib.compress(completed.stdout, 6)).decode("ascii"),
        "stderr": base64.b64encode(zlib.compress(completed.stderr, 6)).decode("ascii"),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem[:16]}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        # A full or read-only disk costs the next run time, never this one its result.
        log.warning("media memo: cannot keep %s (%s)", path.name, exc)


def run_memoised(
    argv: list[str],
    *,
    reads: Path,
    timeout: float,
    runner: Callable[..., CompletedRun] = run,
    folder: Path | None = None,
) -> CompletedRun:
    """``runner(argv, timeout=timeout)``, or its stored output when the same command already ran on the same bytes.

    ``reads`` is the one file the command reads (its path appears in ``argv``); the command must write
    nothing but its standard output and error. ``folder`` defaults to :func:`kepu.config.media_memo_dir`;
    with no folder the command simply runs. Errors of the runner propagate unchanged and store nothing.
    """
    where = media_memo_dir() if folder is None else folder
    key = memo_key(argv, reads) if where is not None else None
    if where is None or key is None:
        return runner(argv, timeout=timeout)
    entry = _entry(where, key)
    kept = _load(entry, argv)
    if kept is not None:
        log.info("measured before (media memo %s): %s", key[:12], reads.name)
        return kept
    completed = runner(argv, timeout=timeout)
    _store(entry, completed)
    return completed
