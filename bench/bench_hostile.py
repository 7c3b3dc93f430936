"""Memory and time of reading each hostile input, each in a child process of its own.

The inputs are the bad-input suite's generators (tests/hostile), at the sizes the issue reported:
a .docx whose ``_rels/.rels`` or whose main part (not named .xml) inflates to 1.5 GiB, a 400 MiB
synopsis, an Excel form formatted down 300,000 rows, a form with 10,000 tables, a 100,000-row and
a 16,384-column summary sheet, a zip of 100,000 members, a 2 GiB zip bomb, a cover claiming
160,000×90,000 pixels, an MP4 of 999 streams (998 sound tracks); the same MP4 and PNG sent as the cover (the
16:9 cover of the publication copy, the publication package's cover). Each is read by the function the intake uses; the child's peak resident
memory (``ru_maxrss``, which counts the ffprobe/ffmpeg it ran) and the wall time of the read (after start-up) are printed. Fails when any child goes above 500 MB or past
its time target.

``--memory`` instead measures what the address-space limit of the ffmpeg/ffprobe children
(``KEPU_FFMPEG_MEMORY_LIMIT_MB``, :func:`kepu.config.default_memory_limit_mb`) must allow: every tool run of a real
analysis and publication copy of a 1080p25 H.264 clip and of a 10,000×10,000 PNG cover, with FFmpeg told it has
``--cpus`` CPUs (``-cpucount``: its thread count follows it). Printed per command: the peak virtual size
(``VmPeak``, what RLIMIT_AS counts) and the peak resident size (``VmHWM``), and whether the default limit for that
many CPUs leaves room. On this 2-core machine, load about 5–30 (heaviest command, the subtitle frames: a dozen
1080p decoders): 2 CPUs 2.5 GiB virtual / 0.6 GiB resident (the smallest limit it ran under, by bisection: 2.4 GiB);
16 CPUs 8.5 / 1.6 GiB; 64 CPUs 22 / 1.6 GiB. Default limit: 5, 12 and 36 GiB.

Run: ``.venv/bin/python bench/bench_hostile.py [--only NAME ...]`` or ``… --memory [--cpus 2 16 64]``
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
    from kepu.intake.form_templates import write_filled_video_form

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
    "cover-mp4-999-streams": (hostile.mp4_many_streams, "cover-16x9", 10.0),
    "package-cover-160000x90000": (lambda w: hostile.png_decompression_bomb(w / "封面.png"), "package-cover", 5.0),
}


def _prepare() -> Any:
    """Imports and the campaign, loaded before the clock starts (interpreter start-up is not the read)."""
    import kepu.intake.forms
    import kepu.intake.packages
    import kepu.intake.sources
    import kepu.intake.steps
    import kepu.media.inspect  # noqa: F401
    from kepu.campaign import load_campaign
    from kepu.config import DEFAULT_CAMPAIGN_FILE

    return load_campaign(DEFAULT_CAMPAIGN_FILE)


def read_one(kind: str, path: Path, campaign: Any) -> str:
    """Read ``path`` as the intake does; return what came of it (a finding or a rejection)."""
    from kepu.errors import MaterialError

    if kind == "form":
        from kepu.intake.forms import read_form

        try:
            form = read_form(path, campaign)
        except MaterialError as exc:
            return f"{exc.code}: {str(exc)[-120:]}"
        return f"read ({len(form.fields)} fields)"
    if kind == "sheet":
        from kepu.intake.sources import SheetError, read_summary_sheet

        try:
            result = read_summary_sheet(path, campaign)
        except SheetError as exc:
            return f"rejected: {exc.message_en}"
        return f"{len(result.rows)} rows; " + "; ".join(p.message_en for p in result.problems if p.row_number is None)
    if kind == "synopsis":
        from kepu.intake.packages import read_text

        try:
            return f"read {len(read_text(path))} chars"
        except OSError as exc:
            return f"refused: {exc.strerror}"
    if kind == "archive":
        from kepu.intake.packages import safe_extract

        dest = Path(tempfile.mkdtemp(prefix="kepu-bench-extract-"))
        try:
            _, findings = safe_extract(path, dest / "package", campaign)
        finally:
            shutil.rmtree(dest, ignore_errors=True)
        return ", ".join(sorted({f.code for f in findings})) or "extracted"
    if kind == "cover":
        from kepu.intake.steps import cover_size

        try:
            w, h = cover_size(path, max_streams=campaign.video.max_streams)
        except MaterialError as exc:
            return f"{exc.code}: refused"
        return f"{w}x{h}"
    if kind == "cover-16x9":
        from kepu.intake.images import normalise_cover

        try:
            normalise_cover(path, path.with_name("cover-16x9.jpg"), max_streams=campaign.video.max_streams)
        except MaterialError as exc:
            return f"{exc.code}: {str(exc)[-100:]}"
        return "normalised"
    if kind == "package-cover":
        from kepu.publication.package import CoverUnreadable, clean_cover

        try:
            clean_cover(path)
        except CoverUnreadable as exc:
            return f"{exc.code}: {str(exc)[-100:]}"
        return "re-encoded"
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


def _watched_runs(cpus: int) -> list[tuple[str, int, int]]:
    """Patch the runner so that each tool gets ``-cpucount cpus`` and its peak sizes are sampled; return the list
    the samples go to: (what ran, VmPeak MiB, VmHWM MiB)."""
    import threading

    from kepu.media import runner

    seen: list[tuple[str, int, int]] = []

    class Watched(subprocess.Popen[bytes]):
        def __init__(self, argv: list[str], *a: Any, **k: Any) -> None:
            super().__init__([argv[0], "-cpucount", str(cpus), *argv[1:]], *a, **k)
            self.what = " ".join(os.path.basename(str(x)) for x in argv[:12])[:90]
            self.watcher = threading.Thread(target=self._watch, daemon=True)
            self.watcher.start()

        def _watch(self) -> None:
            peak = hwm = 0
            while self.poll() is None:
                try:
                    with open(f"/proc/{self.pid}/status") as fh:
                        for line in fh:
                            if line.startswith("VmPeak:"):
                                peak = max(peak, int(line.split()[1]) // 1024)
                            elif line.startswith("VmHWM:"):
                                hwm = max(hwm, int(line.split()[1]) // 1024)
                except OSError:
                    pass
                time.sleep(0.01)
            seen.append((self.what, peak, hwm))

        def communicate(self, *a: Any, **k: Any) -> Any:
            out = super().communicate(*a, **k)
            self.watcher.join(5)
            return out

    runner.subprocess.Popen = Watched  # type: ignore[misc]
    return seen


def memory_child(cpus: int, work: Path) -> None:
    """Analyse and render a 1080p clip and make a cover with every tool watched; print one line per tool run."""
    from kepu.config import MEMORY_LIMIT_BASE_MB, MEMORY_LIMIT_PER_CPU_MB
    from kepu.intake.images import normalise_cover
    from kepu.media.inspect import inspect_video
    from kepu.media.probe import probe_file
    from kepu.media.rendition import render_entry

    campaign = _prepare()
    clip = hostile.clip_1080p(work / "1080p.mp4", seconds=30.0)
    reencode = work / "1080p-mpeg4.mp4"  # a codec the platforms do not play: the copy is encoded, not remuxed
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-i",
            str(clip),
            "-c:v",
            "mpeg4",
            "-q:v",
            "3",
            "-c:a",
            "copy",
            str(reencode),
        ],
        check=True,
    )
    cover = work / "cover-10000x10000.png"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=10000x10000:d=1",
            "-frames:v",
            "1",
            str(cover),
        ],
        check=True,
    )
    seen = _watched_runs(cpus)
    os.environ["KEPU_FFMPEG_MEMORY_LIMIT_MB"] = "0"  # measured without a limit
    inspect_video(reencode, campaign, name=reencode.name, sidecars=[], timeout_factor=8.0)
    render_entry(reencode, probe_file(reencode), campaign, -20.0, work / "out", timeout=3600)
    normalise_cover(cover, work / "cover-16x9.jpg", max_streams=campaign.video.max_streams, timeout=600)
    limit = MEMORY_LIMIT_BASE_MB + MEMORY_LIMIT_PER_CPU_MB * cpus
    for what, peak, hwm in seen:
        room = "ok" if peak < limit else "OVER"
        print(f"{cpus:4d} {peak:8d} {hwm:8d} {limit:8d} {room:>4}  {what}", flush=True)


def memory_main(cpus_list: list[int]) -> int:
    print(f"load average {os.getloadavg()[0]:.1f}; MiB; the limit is the default for that many CPUs")
    print(f"{'cpus':>4} {'VmPeak':>8} {'VmHWM':>8} {'limit':>8} room  command")
    over = False
    for cpus in cpus_list:
        work = Path(tempfile.mkdtemp(prefix="kepu-bench-memory-"))
        try:
            env = {**os.environ, "PYTHONPATH": f"{ROOT / 'include'}{os.pathsep}{ROOT / 'tests'}"}
            done = subprocess.run(
                [sys.executable, __file__, "--memory-child", str(cpus), str(work)],
                env=env,
                capture_output=True,
                text=True,
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(done.stdout, end="", flush=True)
        over = over or done.returncode != 0 or " OVER " in done.stdout
        if done.returncode != 0:
            print(done.stderr[-2000:])
    return 1 if over else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--memory", action="store_true", help="measure the ffmpeg children's address space instead")
    parser.add_argument("--cpus", nargs="*", type=int, default=[2, 16, 64], help="CPU counts FFmpeg is told (--memory)")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "PATH", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--memory-child", nargs=2, metavar=("CPUS", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(int(args.memory_child[0]), Path(args.memory_child[1]))
        return 0
    if args.memory:
        return memory_main(args.cpus)
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
