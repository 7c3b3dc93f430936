"""Measurements and stills kept by content: a file already probed, analysed or pictured is not decoded again.

A forced rerun, a backfill after a deadline extension or ``kepu check`` of a package that was already
checked would otherwise probe and decode every unchanged video once more (the analysis pass decodes the
whole programme: about one CPU-second per ten seconds of 1080p). The commands memoised here read one
file and print what they measured, or write small files made from it (the poster, thumbnails and
subtitle crops); what they print and write depends on nothing but

* the exact argv, with the input's path replaced by the SHA-256 of its bytes (and each output's path by
  its position), and
* the tool that ran it (its resolved path, size and modification time: an upgraded FFmpeg is another tool),

so the output of a successful run is stored under a digest of both, and a later run of the same command
on the same bytes returns it, its files written again where the later run wants them, without starting
the tool. Findings are still judged afresh from it by the campaign in force. A failed, killed or
timed-out run is never stored: it is tried again next time. A kept run is returned whatever the memory
limit or the timeout of the later one: it succeeded.

What is read from such a file by other means than a command (the text OCR reads on a subtitle crop) is kept the
same way by :func:`kept_value`, under the file's SHA-256 and the reader's version and settings.

The memo is a folder (``KEPU_MEDIA_MEMO``; by default ``$KEPU_HOME/cache/media``; ``off`` turns it off).
Every entry is written under a temporary name and renamed, so processes may share the folder; a process
that wants an entry another one is making waits for it (a lock file per entry); an entry that cannot be
read is ignored and written again. Removing the folder only costs time.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from kepu.config import media_memo_dir
from kepu.media.runner import CompletedRun, run
from kepu.storage import private_dir, sha256_file

log = logging.getLogger(__name__)

#: Part of every key: bumped when what an entry holds changes, so older entries are never misread.
MEMO_FORMAT = 2


@functools.lru_cache(maxsize=256)
def _digest_of(path: str, device: int, inode: int, size: int, mtime_ns: int) -> str:
    return sha256_file(Path(path))[0]


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


def memo_key(argv: list[str], reads: Path, writes: Sequence[Path] = ()) -> str | None:
    """The key of ``argv`` run on the bytes of ``reads``; None when the tool cannot be identified.

    The paths of ``writes`` (the files the command writes) are replaced by their position: where a
    rerun writes them does not change what it writes.
    """
    tool = tool_identity(argv[0])
    if tool is None:
        return None
    names = [(str(reads), f"sha256:{file_digest(reads)}"), *((str(w), f"output:{i}") for i, w in enumerate(writes))]
    words = []
    for arg in argv[1:]:
        for where, stands_for in names:
            arg = arg.replace(where, stands_for)
        words.append(arg)
    text = json.dumps([MEMO_FORMAT, tool, words], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _entry(folder: Path, key: str) -> Path:
    return folder / key[:2] / f"{key}.json"


def _packed(data: bytes) -> str:
    return base64.b64encode(zlib.compress(data, 6)).decode("ascii")


def _unpacked(text: str) -> bytes:
    return zlib.decompress(base64.b64decode(text, validate=True))


def _load(path: Path, argv: list[str], writes: Sequence[Path]) -> CompletedRun | None:
    """The kept run, its output files written again where this run wants them; None when there is none."""
    try:
        data = json.loads(path.read_text("utf-8"))
        stdout, stderr = _unpacked(data["stdout"]), _unpacked(data["stderr"])
        elapsed = float(data["elapsed_s"])
        files = [None if f is None else _unpacked(f) for f in data["files"]]
        if len(files) != len(writes):
            raise ValueError(f"{len(files)} output file(s) kept, {len(writes)} asked for")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, zlib.error) as exc:
        log.warning("media memo entry %s cannot be read (%s): running the command again", path.name, exc)
        return None
    for target, content in zip(writes, files, strict=True):
        if content is None:
            target.unlink(missing_ok=True)  # the command wrote nothing there (a window with no frame to keep)
        else:
            target.write_bytes(content)
    return CompletedRun(argv=argv, returncode=0, stdout=stdout, stderr=stderr, elapsed_s=elapsed)


def _written(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _store(path: Path, completed: CompletedRun, writes: Sequence[Path]) -> None:
    _write_entry(
        path,
        {
            "format": MEMO_FORMAT,
            "tool": os.path.basename(completed.argv[0]),
            "elapsed_s": completed.elapsed_s,
            "stdout": _packed(completed.stdout),
            "stderr": _packed(completed.stderr),
            "files": [None if (content := _written(w)) is None else _packed(content) for w in writes],
        },
    )


def _write_entry(path: Path, data: dict[str, Any]) -> None:
    try:
        private_dir(path.parent)  # stills and measurements of submissions: owner only, as under KEPU_HOME
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem[:16]}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        # A full or read-only disk costs the next run time, never this one its result.
        log.warning("media memo: cannot keep %s (%s)", path.name, exc)


def kept_value(kind: str, parts: Sequence[Any], compute: Callable[[], Any], *, folder: Path | None = None) -> Any:
    """``compute()``, or the value it returned before for the same ``kind`` and ``parts``.

    For what is read from a file by something other than a command (the text OCR reads on a crop): ``parts``
    must name everything the value depends on (the SHA-256 of the file's bytes, the reader's version and
    settings) and, like the value, be JSON. An exception of ``compute`` propagates and keeps nothing.
    """
    where = media_memo_dir() if folder is None else folder
    if where is None:
        return compute()
    text = json.dumps([MEMO_FORMAT, kind, list(parts)], ensure_ascii=False, separators=(",", ":"))
    entry = _entry(where, hashlib.sha256(text.encode("utf-8")).hexdigest())
    found, value = _load_value(entry)
    if found:
        return value
    # As for a command: another process reading the same file (a second worker on the same video) waits for
    # the first and takes what it kept.
    with _turn(entry):
        found, value = _load_value(entry)
        if not found:
            value = compute()
            _write_entry(entry, {"format": MEMO_FORMAT, "kind": kind, "value": value})
    return value


def _load_value(entry: Path) -> tuple[bool, Any]:
    """Whether ``entry`` holds a value, and the value."""
    try:
        return True, json.loads(entry.read_text("utf-8"))["value"]
    except FileNotFoundError:
        return False, None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("media memo entry %s cannot be read (%s): reading the file again", entry.name, exc)
        return False, None


def run_memoised(
    argv: list[str],
    *,
    reads: Path,
    timeout: float,
    writes: Sequence[Path] = (),
    runner: Callable[..., CompletedRun] = run,
    folder: Path | None = None,
) -> CompletedRun:
    """``runner(argv, timeout=timeout)``, or its stored output when the same command already ran on the same bytes.

    ``reads`` is the one file the command reads (its path appears in ``argv``); ``writes`` the small files
    it writes (stills: they are kept in the memo, so never a video), a missing one kept as missing; the
    command must write nothing else but its standard output and error. ``folder`` defaults to
    :func:`kepu.config.media_memo_dir`; with no folder the command simply runs. Errors of the runner
    propagate unchanged and store nothing.
    """
    where = media_memo_dir() if folder is None else folder
    key = memo_key(argv, reads, writes) if where is not None else None
    if where is None or key is None:
        return runner(argv, timeout=timeout)
    entry = _entry(where, key)
    kept = _load(entry, argv, writes)
    if kept is None:
        # One process runs a command at a time per key: another that wants the same (a second worker on the
        # same video) waits for it and takes what it kept instead of decoding the video a second time.
        with _turn(entry):
            kept = _load(entry, argv, writes)
            if kept is None:
                completed = runner(argv, timeout=timeout)
                _store(entry, completed, writes)
                return completed
    log.info("made or measured before (media memo %s): %s", key[:12], reads.name)
    return kept


@contextlib.contextmanager
def _turn(entry: Path) -> Iterator[None]:
    """Hold the entry's lock (``<key>.lock`` beside it; released by the kernel if the holder dies).

    Where no lock can be made (a full or read-only folder) the command runs unlocked.
    """
    try:
        private_dir(entry.parent)
        fd = os.open(entry.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        log.warning("media memo: no lock for %s (%s)", entry.name, exc)
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
