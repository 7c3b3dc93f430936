"""Media tools: running ffmpeg/ffprobe (:mod:`.runner`) and reading what a file is (:mod:`.probe`)."""

from __future__ import annotations

from kepu.media.probe import (
    AudioStream,
    ProbeResult,
    SubtitleStream,
    VideoStream,
    is_mp4_container,
    parse_probe,
    probe_file,
)
from kepu.media.runner import CompletedRun, ToolExitError, media_timeout, run

__all__ = [
    "AudioStream",
    "CompletedRun",
    "ProbeResult",
    "SubtitleStream",
    "ToolExitError",
    "VideoStream",
    "is_mp4_container",
    "media_timeout",
    "parse_probe",
    "probe_file",
    "run",
]
