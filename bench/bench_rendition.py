"""Time a remux against a full encode of the same conformant 1080p25 H.264+AAC file.

Generates the source once (lavfi ``testsrc2`` at 1920x1080, 25 fps, with a voiced tone; ``--grain``
adds temporal noise, which makes the picture as hard to compress as camera footage), then runs
:func:`kepu.media.rendition.make_rendition` twice on it: with the plan :func:`plan_rendition` chooses
(remux) and with ``force_encode=True`` (1080p + 720p with the x264 settings of
:mod:`kepu.media.presets`). Both runs include the poster and thumbnails; the figures are given for
the whole run and for the remux/encode step alone, with the load average before and after.

Run: ``.venv/bin/python bench/bench_rendition.py [--seconds 60] [--grain] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from kepu.campaign import load_campaign
from kepu.config import DEFAULT_CAMPAIGN_FILE
from kepu.media.presets import DEFAULT_PRESETS
from kepu.media.probe import probe_file
from kepu.media.rendition import RenditionResult, make_rendition, plan_rendition
from kepu.media.runner import media_timeout, run

log = logging.getLogger("bench_rendition")

#: Generous: a full encode on a loaded 2-core machine runs at a fraction of real time.
TIMEOUT_FACTOR = 20.0


def make_source(dest: Path, seconds: float, *, grain: bool) -> None:
    picture = f"testsrc2=size=1920x1080:rate=25:duration={seconds}"
    if grain:
        picture += ",noise=alls=10:allf=t"
    tone = f"sine=frequency=220:sample_rate=48000:duration={seconds},tremolo=f=3.7:d=0.6,volume=2"
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-v", "error", "-y"]
    argv += ["-f", "lavfi", "-i", picture, "-f", "lavfi", "-i", tone]
    argv += ["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p", "-g", "50"]
    argv += ["-b:v", "8M", "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-movflags", "+faststart", str(dest)]
    run(argv, timeout=media_timeout(seconds, TIMEOUT_FACTOR))


def core_step(result: RenditionResult) -> float:
    return next(s.elapsed_s for s in result.steps if s.name in ("remux", "encode"))


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min) / {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the source (default 60)")
    parser.add_argument("--grain", action="store_true", help="add temporal noise, like camera footage")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stdout)
    log.setLevel(logging.INFO)

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-rendition-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        campaign = load_campaign(DEFAULT_CAMPAIGN_FILE)
        src = work / "source.mp4"
        if not src.exists():
            make_source(src, args.seconds, grain=args.grain)
        probe = probe_file(src)
        timeout = media_timeout(probe.duration_s, TIMEOUT_FACTOR)
        main_preset = DEFAULT_PRESETS.main
        log.info(
            "source: %s, %.1f s, %.1f MB, grain=%s", src.name, probe.duration_s or 0, probe.size_bytes / 1e6, args.grain
        )
        log.info("load before: %s", load())

        remux_plan = plan_rendition(probe, campaign, loudness_lufs=None)
        assert remux_plan.mode == "remux", remux_plan.reasons
        shutil.rmtree(work / "remux", ignore_errors=True)
        remux = make_rendition(src, work / "remux", remux_plan, timeout=timeout)

        encode_plan = plan_rendition(probe, campaign, loudness_lufs=None, force_encode=True)
        shutil.rmtree(work / "encode", ignore_errors=True)
        encode = make_rendition(src, work / "encode", encode_plan, timeout=timeout)
        log.info("load after:  %s", load())

        sizes = ", ".join(f"{o.name} {o.size / 1e6:.1f} MB" for o in encode.renditions)
        log.info(
            "remux : %7.2f s total, %7.2f s for the copy  (%s %.1f MB)",
            remux.elapsed_s,
            core_step(remux),
            remux.main.path.name,
            remux.main.size / 1e6,
        )
        log.info(
            "encode: %7.2f s total, %7.2f s for x264 %s CRF %g, 1080p+720p (%s)",
            encode.elapsed_s,
            core_step(encode),
            main_preset.x264_preset,
            main_preset.crf,
            sizes,
        )
        log.info(
            "ratio encode/remux: %.0fx for the whole run, %.0fx for the remux/encode step alone; "
            "encode speed %.2fx real time",
            encode.elapsed_s / remux.elapsed_s,
            core_step(encode) / core_step(remux),
            (probe.duration_s or 0) / core_step(encode),
        )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
