"""Frame timing and audio/video alignment from packet timestamps (no decoding).

ffprobe lists every packet's presentation time and duration; that is enough to see

* frames missing from the video (a timestamp gap longer than ``gap_factor`` frame durations) and
  a variable frame rate (intervals far shorter than the nominal one), and
* where the audio and the video start and end relative to each other (A-SYNC).

Reading packets is a demux only, a small fraction of a decode. :func:`parse_packets` is pure.
"""

from __future__ import annotations

import itertools
import logging
import statistics
from dataclasses import dataclass
from pathlib import Path

from kepu.campaign import Campaign
from kepu.errors import MaterialError
from kepu.media.memo import run_memoised
from kepu.media.probe import FFPROBE, ProbeResult
from kepu.media.runner import ToolExitError, run

log = logging.getLogger(__name__)

#: How many gaps a result keeps for the report (the counts cover all of them).
MAX_REPORTED_GAPS = 20


@dataclass(frozen=True)
class Gap:
    """Frames missing between two consecutive video timestamps: ``at_s`` is the frame before the gap."""

    at_s: float
    interval_s: float
    missing_frames: int


@dataclass(frozen=True)
class FrameTiming:
    """The video's frame intervals against its nominal frame duration (the median interval).

    ``dropped`` counts the frames the gaps stand for; ``drop_ratio`` is their share of the frames
    there should have been. ``short_intervals`` counts intervals below nominal / gap_factor, the
    mark of a variable frame rate (a constant-rate stream has none).
    """

    frames: int
    nominal_s: float
    dropped: int
    drop_ratio: float
    max_interval_s: float
    max_interval_at_s: float
    short_intervals: int
    gaps: tuple[Gap, ...]

    @property
    def vfr(self) -> bool:
        return self.short_intervals > 0


@dataclass(frozen=True)
class Span:
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Timing:
    """Frame timing of the video and the spans of the first video and audio streams.

    Offsets are audio minus video in milliseconds: positive means the sound comes later than the
    picture (audio lag), negative that it comes earlier (audio lead).
    """

    frames: FrameTiming | None
    video: Span | None
    audio: Span | None

    @property
    def start_offset_ms(self) -> float | None:
        if self.video is None or self.audio is None:
            return None
        return (self.audio.start_s - self.video.start_s) * 1000.0

    @property
    def end_offset_ms(self) -> float | None:
        if self.video is None or self.audio is None:
            return None
        return (self.audio.end_s - self.video.end_s) * 1000.0


def packets_command(path: Path) -> list[str]:
    """ffprobe argv listing stream index, pts, duration and flags of every packet, one per line."""
    return [
        FFPROBE,
        "-v",
        "error",
        "-show_entries",
        "packet=stream_index,pts_time,duration_time,flags",
        "-of",
        "csv=p=0",
        str(path),
    ]


def packet_timing(path: Path, probe: ProbeResult, campaign: Campaign, *, timeout: float) -> Timing:
    """Run ffprobe over the packets of ``path`` and analyse them (see :func:`parse_packets`)."""
    path = path.resolve()
    try:
        completed = run_memoised(packets_command(path), reads=path, timeout=timeout, runner=run)
    except ToolExitError as exc:
        raise MaterialError("M-UNREADABLE", f"{path.name}: its packets cannot be read: {exc.stderr_tail}") from exc
    timing = parse_packets(
        completed.stdout.decode("utf-8", errors="replace"),
        video_index=probe.video.index if probe.video else None,
        audio_index=probe.audio.index if probe.audio else None,
        gap_factor=campaign.video.frame_timing.gap_factor,
    )
    log.debug("packet timing of %s: %s", path.name, timing)
    return timing


def parse_packets(text: str, *, video_index: int | None, audio_index: int | None, gap_factor: float) -> Timing:
    """Analyse ffprobe's ``stream_index,pts_time,duration_time,flags`` CSV lines.

    Packets flagged ``D`` (discard: the AAC encoder's priming samples, cut by the edit list) and
    packets without a timestamp are not presented, so they are left out. Blank lines and trailing
    fields (side data) are ignored.
    """
    video: list[tuple[float, float]] = []
    audio: list[tuple[float, float]] = []
    for line in text.splitlines():
        fields = line.strip().split(",")
        if len(fields) < 3 or not fields[0].isdigit():
            continue
        index = int(fields[0])
        if index not in (video_index, audio_index):
            continue
        flags = fields[3] if len(fields) > 3 else ""
        if "D" in flags:
            continue
        try:
            pts = float(fields[1])
        except ValueError:
            continue  # N/A
        try:
            duration = float(fields[2])
        except ValueError:
            duration = 0.0
        (video if index == video_index else audio).append((pts, duration))
    video.sort()
    audio.sort()
    return Timing(
        frames=frame_timing([p for p, _ in video], gap_factor=gap_factor),
        video=_span(video),
        audio=_span(audio),
    )


def _span(packets: list[tuple[float, float]]) -> Span | None:
    if not packets:
        return None
    last_pts, last_duration = packets[-1]
    return Span(start_s=packets[0][0], end_s=last_pts + last_duration)


def frame_timing(pts: list[float], *, gap_factor: float) -> FrameTiming | None:
    """Gaps and irregular intervals of sorted video timestamps; None with fewer than three frames."""
    if len(pts) < 3:
        return None
    intervals = [b - a for a, b in itertools.pairwise(pts)]
    positive = [d for d in intervals if d > 0]
    if not positive:
        return None
    # The median is the frame duration even when many frames are missing or doubled.
    nominal = statistics.median(positive)
    gaps: list[Gap] = []
    dropped = 0
    short = 0
    for at, d in zip(pts, intervals, strict=False):
        if d > gap_factor * nominal:
            missing = max(1, round(d / nominal) - 1)
            dropped += missing
            gaps.append(Gap(at_s=at, interval_s=d, missing_frames=missing))
        elif d < nominal / gap_factor:
            short += 1
    longest = max(range(len(intervals)), key=intervals.__getitem__)
    expected = len(pts) + dropped
    return FrameTiming(
        frames=len(pts),
        nominal_s=nominal,
        dropped=dropped,
        drop_ratio=dropped / expected,
        max_interval_s=intervals[longest],
        max_interval_at_s=pts[longest],
        short_intervals=short,
        gaps=tuple(sorted(gaps, key=lambda g: -g.interval_s)[:MAX_REPORTED_GAPS]),
    )
