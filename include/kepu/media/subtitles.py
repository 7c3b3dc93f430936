"""Are there Chinese subtitles? Looked for in the file's subtitle streams, in sidecar files, on the picture.

In that order, stopping at the first Chinese text found:

1. **stream** — each soft subtitle stream in a text format is converted to SRT by ffmpeg (only its
   first :data:`STREAM_CUES` cues) and its text judged; a bitmap stream cannot be read, so its
   language tag decides.
2. **sidecar** — the ``.srt``/``.ass``/``.ssa``/``.vtt`` files submitted with the video (decoded as
   UTF-8, UTF-16 or GB18030, the encodings Chinese editors write).
3. **ocr** — burned-in text: the lower third of the picture at ``language.ocr_sample_frames``
   moments of speech, read offline by ``rapidocr`` (:mod:`kepu.media.ocr`). Subtitles are found when
   at least ``language.ocr_min_coverage`` of those moments show Chinese text. When the package is
   missing or cannot start, the result says ``ocr-unavailable`` and burned-in subtitles go unseen,
   which a reviewer needs to know.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kepu.campaign import Campaign
from kepu.errors import MediaToolError
from kepu.media import ocr
from kepu.media.analysis import Interval
from kepu.media.memo import run_memoised
from kepu.media.probe import ProbeResult, SubtitleStream
from kepu.media.runner import run

log = logging.getLogger(__name__)

Method = Literal["stream", "sidecar", "ocr", "ocr-unavailable"]

FFMPEG = "ffmpeg"
#: Cues read from a subtitle stream: enough to judge the language, without reading a long track.
STREAM_CUES = 40
#: Subtitle codecs FFmpeg can turn into SRT text.
TEXT_CODECS = frozenset({"mov_text", "subrip", "srt", "ass", "ssa", "webvtt", "text"})
# UTF-16 is only recognised by its BOM: without one, any even-length bytes would decode.
_ENCODINGS = ("utf-8-sig", "gb18030")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")
_LATIN = re.compile(r"[A-Za-z]")


@dataclass(frozen=True)
class SubtitleResult:
    """Whether Chinese subtitles were found, where, and every way that was tried.

    ``method`` is the way that found them or, when none did, the last way tried; ``looked`` lists
    all the ways tried in order; ``source`` names the stream or file; ``sample`` is a Chinese cue.
    When OCR ran, ``ocr_samples`` moments of speech were read, ``ocr_coverage`` is the share that
    showed Chinese text and ``ocr_lines`` a few of the lines read.
    """

    found: bool
    method: Method
    looked: tuple[Method, ...]
    source: str | None = None
    sample: str | None = None
    ocr_samples: int = 0
    ocr_coverage: float | None = None
    ocr_lines: tuple[str, ...] = ()


def is_chinese(text: str) -> bool:
    """True when Han characters outnumber Latin letters (and there is at least one)."""
    han = len(_HAN.findall(text))
    return han > 0 and han >= len(_LATIN.findall(text))


def cue_texts(text: str) -> list[str]:
    """The displayed lines of an SRT, WebVTT, ASS or SSA file, without timings, numbers and tags."""
    lines: list[str] = []
    is_ass = "[Events]" in text or re.search(r"^Dialogue:", text, re.MULTILINE) is not None
    for raw in text.splitlines():
        line = raw.strip()
        if is_ass:
            if not line.startswith("Dialogue:"):
                continue
            # Dialogue: Layer,Start,End,Style,Name,MarginL,MarginR,MarginV,Effect,Text — the text may hold commas.
            parts = line.split(",", 9)
            if len(parts) < 10:
                continue
            line = re.sub(r"\{[^}]*\}", "", parts[9]).replace("\\N", " ").replace("\\n", " ")
        elif not line or line.isdigit() or "-->" in line or line in ("WEBVTT",) or line.startswith("NOTE"):
            continue
        line = re.sub(r"<[^>]+>", "", line).strip()
        if line:
            lines.append(line)
    return lines


def decode_text(data: bytes) -> str:
    """Decode a subtitle file as UTF-8 (with or without BOM), UTF-16 (with BOM) or GB18030."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    for encoding in _ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


def _chinese_cue(lines: Sequence[str]) -> str | None:
    if not lines or not is_chinese(" ".join(lines)):
        return None
    return next((line for line in lines if _HAN.search(line)), None)


#: Recognised lines kept in the result (and shown to a reviewer).
OCR_LINES_KEPT = 3


def find_subtitles(
    path: Path,
    probe: ProbeResult,
    campaign: Campaign,
    *,
    sidecars: Sequence[Path],
    timeout: float,
    silences: Sequence[Interval] | None = None,
) -> SubtitleResult:
    """Look for Chinese subtitles in ``path``'s streams, then its ``sidecars``, then on its picture.

    ``silences`` (from the analysis pass) tell when nobody speaks: burned-in text is looked for at
    the other moments. Without them the whole programme counts as speech.
    """
    path = path.resolve()
    looked: list[Method] = []

    if probe.subtitles:
        looked.append("stream")
        for stream in probe.subtitles:
            found = _stream_has_chinese(path, stream, campaign, timeout=timeout)
            if found is not None:
                return SubtitleResult(True, "stream", tuple(looked), f"stream #{stream.index} ({stream.codec})", found)

    allowed = set(campaign.package.subtitle_extensions)
    files = [p for p in sidecars if p.suffix.lower() in allowed]
    if files:
        looked.append("sidecar")
        for side in files:
            try:
                lines = cue_texts(decode_text(side.read_bytes()))
            except OSError as exc:
                log.warning("cannot read subtitle file %s: %s", side, exc)
                continue
            cue = _chinese_cue(lines)
            if cue is not None:
                return SubtitleResult(True, "sidecar", tuple(looked), side.name, cue)

    rules = campaign.language
    if rules.ocr_sample_frames > 0 and probe.video is not None:
        speech = ocr.speech_spans(silences, probe.duration_s, has_audio=probe.audio is not None)
        read = None
        try:
            # The process's engine: its models are loaded only for a crop that was never read before.
            read = ocr.read_burned_in(
                path,
                probe,
                None,
                speech=speech,
                samples=rules.ocr_sample_frames,
                min_chars=rules.ocr_min_chars,
                min_confidence=rules.ocr_min_confidence,
                timeout=timeout,
            )
        except ocr.OcrUnavailable as exc:
            log.warning("burned-in subtitles of %s are not read: %s", path.name, exc)
        if read is None:
            looked.append("ocr-unavailable")
        else:
            looked.append("ocr")
            covered = read.samples > 0 and read.coverage >= rules.ocr_min_coverage
            return SubtitleResult(
                covered,
                "ocr",
                tuple(looked),
                "burned-in" if covered else None,
                read.chinese[0] if covered and read.chinese else None,
                ocr_samples=read.samples,
                ocr_coverage=round(read.coverage, 3),
                ocr_lines=read.lines[:OCR_LINES_KEPT],
            )
    if not looked:
        looked.append("ocr-unavailable")
    return SubtitleResult(False, looked[-1], tuple(looked))


def subtitle_stream_command(path: Path, stream: SubtitleStream) -> list[str]:
    """ffmpeg argv writing the first :data:`STREAM_CUES` cues of ``stream`` as SRT to stdout."""
    return [
        FFMPEG,
        "-nostdin",
        "-hide_banner",
        "-v",
        "error",
        "-i",
        str(path),
        "-map",
        f"0:{stream.index}",
        "-frames:s",
        str(STREAM_CUES),
        "-c:s",
        "srt",
        "-f",
        "srt",
        "pipe:1",
    ]


def _stream_has_chinese(path: Path, stream: SubtitleStream, campaign: Campaign, *, timeout: float) -> str | None:
    """A Chinese cue of ``stream``, or None. A bitmap stream is taken at its language tag's word."""
    if stream.codec not in TEXT_CODECS:
        if stream.language and stream.language.lower() in campaign.language.subtitle_languages:
            return f"({stream.codec}, language {stream.language})"
        return None
    try:
        completed = run_memoised(subtitle_stream_command(path, stream), reads=path, timeout=timeout, runner=run)
    except MediaToolError as exc:
        # One unreadable track must not hide the others or the sidecars.
        log.warning("cannot extract subtitle stream #%d of %s: %s", stream.index, path.name, exc)
        return None
    return _chinese_cue(cue_texts(completed.stdout.decode("utf-8", errors="replace")))
