"""Memory and time of reading each hostile input, each in a child process of its own.

The inputs are the bad-input suite's generators (tests/hostile), at the sizes the issue reported:
a .docx whose ``_rels/.rels`` or whose main part (not named .xml) inflates to 1.5 GiB, a 400 MiB
synopsis, an Excel form formatted down 300,000 rows, a form with 10,000 tables, a 100,000-row and
a 16,384-column summary sheet, a zip of 100,000 members, a 2 GiB zip bomb, a cover claiming
160,000×90,000 pixels, an MP4 of 999 streams (998 sound tracks). Each is read by the function the intake uses; the child's peak resident
memory (``ru_maxrss``, which counts the ffprobe/ffmpeg it ran) and the wall time of the read (after start-up) are printed. Fails when any child goes above 500 MB or past
its time target.

Run: ``.venv/bin/python bench/bench_hostile.py [--only NAME ...]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "include"), str(ROOT / "tests")]

import hostile  # noqa: E402

MEMORY_TARGET_MB = 500.0
GIB = 1024**3


def _form(work: Path) -> Path:
    from kepu.form_templates import write_filled_video_form

    path = work / "申报表.docx"
    write_filled_video_form(path, {"微视频名称": "会飞的种子", "联系电话": "010-64522026", "内容简介": "简介"})
    return path


#: name → (make the input in a folder, what reads it, time target in seconds)
CASES: dict[str, tuple[Callable[[Path], Path], str, float]] = {
    "docx-rels-1.5GiB": (lambda w: hostile.docx_rels_bomb(_form(w), w, size=int(1.5 * GIB)), "form", 10.0),
    "docx-main-part-not-xml-1.5GiB": (
        lambda w: hostile.docx_main_part_not_xml_bomb(_form(w), w, size=int(1.5 * GIB)),
        "form",
        10.0,
    ),
    "docx-10000-tables": (lambda w: hostile.docx_many_tables(_form(w), w), "form", 30.0),
    "xlsx-form-300000-rows": (hostile.xlsx_form_formatted_down, "form", 30.0),
    "synopsis-400MiB": (lambda w: hostile.sparse_file(w / "简介.txt", 400 * 2**20), "synopsis", 5.0),
    "summary-sheet-100000-rows": (hostile.sheet_100000_rows, "sheet", 60.0),
    "summary-sheet-16384-columns": (hostile.sheet_16384_columns, "sheet", 20.0),
    "summary-sheet-random-bytes": (hostile.sheet_random_bytes, "sheet", 5.0),
    "zip-100000-members": (hostile.archive_many_members, "archive", 30.0),
    "zip-bomb-2GiB": (lambda w: hostile.archive_bomb(w, size=2 * GIB), "archive", 10.0),
    "zip-bad-crc": (hostile.archive_bad_crc, "archive", 5.0),
    "cover-160000x90000": (lambda w: hostile.png_decompression_bomb(w / "封面.png"), "cover", 10.0),
    "mp4-999-streams": (hostile.mp4_many_streams, "video", 10.0),
}


def _prepare() -> Any:
    """Imports and the campaign, loaded before the clock starts (interpreter start-up is not the read)."""
    import kepu.forms
    import kepu.intake
    import kepu.media.inspect
    import kepu.pipeline
    import kepu.sources  # noqa: F401
    from kepu.campaign import load_campaign
    from kepu.config import DEFAULT_CAMPAIGN_FILE

    return load_campaign(DEFAULT_CAMPAIGN_FILE)


def read_one(kind: str, path: Path, campaign: Any) -> str:
    """Read ``path`` as the intake does; return what came of it (a finding or a rejection)."""
    from kepu.errors import MaterialError

    if kind == "form":
        from kepu.forms import read_form

        try:
            form = read_form(path, campaign)
        except MaterialError as exc:
            return f"{exc.code}: {str(exc)[-120:]}"
        return f"read ({len(form.fields)} fields)"
    if kind == "sheet":
        from kepu.sources import SheetError, read_summary_sheet

        try:
            result = read_summary_sheet(path, campaign)
        except SheetError as exc:
            return f"rejected: {exc.message_en}"
        return f"{len(result.rows)} rows; " + "; ".join(p.message_en for p in result.problems if p.row_number is None)
    if kind == "synopsis":
        from kepu.intake import read_text

        try:
            return f"read {len(read_text(path))} chars"
        except OSError as exc:
            return f"refused: {exc.strerror}"
    if kind == "archive":
        from kepu.intake import safe_extract

        dest = Path(tempfile.mkdtemp(prefix="kepu-bench-extract-"))
        try:
            _, findings = safe_extract(path, dest / "package", campaign)
        finally:
            shutil.rmtree(dest, ignore_errors=True)
        return ", ".join(sorted({f.code for f in findings})) or "extracted"
    if kind == "cover":
        from kepu.pipeline import _probe_image

        try:
            w, h = _probe_image(path, max_streams=campaign.video.max_streams)
        except MaterialError as exc:
            return f"{exc.code}: refused"
        return f"{w}x{h}"
    if kind == "video":
        from kepu.media.inspect import inspect_video

        findings, _ = inspect_video(path, campaign, name=path.name, sidecars=[], timeout_factor=2.0)
        return "; ".join(f"{f.code}: {f.message_en[-80:]}" for f in findings) or "no finding"
    raise ValueError(kind)


def measure(name: str, kind: str, path: Path) -> tuple[float, float, str]:
    """(peak MB of the child, seconds of the read itself, outcome) of reading ``path`` in a child process."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'include'}{os.pathsep}{ROOT / 'tests'}"}
    out = path.parent / f"{name}.outcome"
    proc = subprocess.Popen([sys.executable, __file__, "--child", kind, str(path), str(out)], env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        return usage.ru_maxrss / 1024, float("inf"), f"child failed ({proc.returncode})"
    seconds, _, outcome = out.read_text(encoding="utf-8").partition("\t")
    return usage.ru_maxrss / 1024, float(seconds), outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--child", nargs=3, metavar=("KIND", "PATH", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, path, out = args.child
        campaign = _prepare()
        started = time.perf_counter()
        outcome = read_one(kind, Path(path), campaign)
        Path(out).write_text(f"{time.perf_counter() - started:.3f}\t{outcome}", encoding="utf-8")
        return 0
    missed = []
    print(f"{'input':34} {'peak MB':>8} {'target':>7} {'s':>7} {'target':>7}  outcome")
    for name, (make, kind, time_target) in CASES.items():
        if args.only and name not in args.only:
            continue
        work = Path(tempfile.mkdtemp(prefix="kepu-bench-hostile-"))
        try:
            path = make(work)
            peak, seconds, outcome = measure(name, kind, path)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        ok = peak <= MEMORY_TARGET_MB and seconds <= time_target and not outcome.startswith("child failed")
        if not ok:
            missed.append(name)
        print(
            f"{name:34} {peak:8.0f} {MEMORY_TARGET_MB:7.0f} {seconds:7.1f} {time_target:7.0f}  "
            f"{'' if ok else 'MISSED '}{outcome[:110]}",
            flush=True,
        )
    if missed:
        print(f"targets missed: {', '.join(missed)}")
        return 1
    print("every hostile input read within its memory and time targets")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
