"""Fixtures of the bad-input suite: one conformant package to run beside the hostile ones, and a
way to run a kepu command in a child process while watching its memory."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: No kepu process may go above this, whatever the input.
MEMORY_LIMIT_MB = 500
GOOD_FOLDER = "北京市+北京市青少年科技中心+月亮为什么有阴晴圆缺"


@pytest.fixture(scope="session")
def good_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A conformant sample package (video, cover, form, synopsis) of the small profile."""
    from kepu.devtools.sample import generate_inbox

    where = tmp_path_factory.mktemp("good") / "inbox"
    generate_inbox(where, profile="small", only=[GOOD_FOLDER])
    return where / GOOD_FOLDER


@dataclass
class Bounded:
    returncode: int
    stdout: str
    stderr: str
    peak_mb: float


def run_kepu(args: list[str], env: dict[str, str], *, timeout: float = 900.0) -> Bounded:
    """Run ``python -m kepu.cli ARGS`` and sample its resident memory every 50 ms.

    Only the kepu process is measured: ffmpeg children have their own limits (kepu.media.runner).
    """
    import psutil

    full_env = {**os.environ, **env, "PYTHONPATH": str(REPO / "include")}
    out_path = Path(env["KEPU_HOME"]) / "kepu-stdout.txt"
    err_path = Path(env["KEPU_HOME"]) / "kepu-stderr.txt"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    peak = 0
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "kepu.cli", *args], env=full_env, stdout=out, stderr=err)
        watched = psutil.Process(proc.pid)
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            with contextlib.suppress(psutil.Error):
                peak = max(peak, watched.memory_info().rss)
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise AssertionError(f"kepu {' '.join(args)} did not finish in {timeout} s")
            time.sleep(0.05)
    return Bounded(
        proc.returncode,
        out_path.read_text(encoding="utf-8", errors="replace"),
        err_path.read_text(encoding="utf-8", errors="replace"),
        peak / 2**20,
    )


def tree(root: Path) -> set[str]:
    """Every path under ``root`` (relative), to tell what a run wrote."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def copy_package(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest
