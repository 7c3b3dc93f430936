"""Are there Chinese subtitles? Looked for in the file's subtitle streams, in sidecar files, on the picture.

In that order, stopping at the first Chinese text found:

1. **stream** — each soft subtitle stream in a text format is converted to SRT by ffmpeg (only its
   first :data:`STREAM_CUES` cues) and its text judged; a bitmap stream cannot be read, so its
   language tag decides.
2. **sidecar** — the ``.srt``/``.ass``/``.ssa``/``.vtt`` files submitted with the video (decoded as
   UTF-8, UTF-16 or GB18030, the encodings Chinese editors write).
3. **ocr** — the lower third of ``language.ocr_sample_frames`` frames read by ``rapidocr`` when that
   package is installed; otherwise the result says ``ocr-unavailable`` and burned-in subtitles go
   unseen, which a reviewer needs to know.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kepu.campaign import Campaign
from kepu.errors import MediaToolError
from kepu.media.probe import ProbeResult, SubtitleStream
from kepu.media.runner import run

log = logging.getLogger(__name__)

Method = Literal["stream", "sidecar", "ocr", "ocr-unavailable"]

FFMPEG = "ffmpeg"
#: Cues read from a subtitle stream: enough to judge the language, without reading a long track.
STREAM_CUES = 40
#: Subtitle codecs FFmpeg can turn into SRT text.
TEXT_CODECS = frozenset({"mov_text", "subrip", "srt", "ass", "ssa", "webvtt", "text"})
#: Burned-in subtitles sit in the lower third of the picture.
OCR_CROP = "crop=iw:ih/3:0:ih*2/3"
# UTF-16 is only recognised by its BOM: without one, any even-length bytes would decode.
_ENCODINGS = ("utf-8-sig", "gb18030")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")
_LATIN = re.compile(r"[A-Za-z]")


@dataclass(frozen=True)
class SubtitleResult:
    """Whether Chinese subtitles were found, where, and every way that was tried.

    ``method`` is the way that found them or, when none did, the last way tried; ``looked`` lists
    all the ways tried in order; ``source`` names the stream or file; ``sample`` is a Chinese cue.
    """

    found: bool
    method: Method
    looked: tuple[Method, ...]
    source: str | None = None
    sample: str | None = None


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


def find_subtitles(
    path: Path, probe: ProbeResult, campaign: Campaign, *, sidecars: Sequence[Path], timeout: float
) -> SubtitleResult:
    """Look for Chinese subtitles in ``path``'s streams, then its ``sidecars``, then on its picture."""
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

    if campaign.language.ocr_sample_frames > 0 and probe.video is not None:
        engine = _ocr_engine()
        if engine is None:
            looked.append("ocr-unavailable")
        else:
            looked.append("ocr")
            cue = _ocr_chinese(path, probe, campaign.language.ocr_sample_frames, engine, timeout=timeout)
            if cue is not None:
                return SubtitleResult(True, "ocr", tuple(looked), "burned-in", cue)
    if not looked:
        looked.append("ocr-unavailable")
    return SubtitleResult(False, looked[-1], tuple(looked))


def subtitle_stream_command(path: Path, stream: SubtitleStream) -> list[str]:
    """ffmpeg argv writing the first :data:`STREAM_CUES` cues of ``stream`` as SRT to stdout."""
    return [
        FFMPEG, "-nostdin", "-hide_banner", "-v", "error", "-i", str(path),
        "-map", f"0:{stream.index}", "-frames:s", str(STREAM_CUES), "-c:s", "srt", "-f", "srt", "pipe:1",
    ]  # fmt: skip


def _stream_has_chinese(path: Path, stream: SubtitleStream, campaign: Campaign, *, timeout: float) -> str | None:
    """A Chinese cue of ``stream``, or None. A bitmap stream is taken at its language tag's word."""
    if stream.codec not in TEXT_CODECS:
        if stream.language and stream.language.lower() in campaign.language.subtitle_languages:
            return f"({stream.codec}, language {stream.language})"
        return None
    try:
        completed = run(subtitle_stream_command(path, stream), timeout=timeout)
    except MediaToolError as exc:
        # One unreadable track must not hide the others or the sidecars.
        log.warning("cannot extract subtitle stream #%d of %s: %s", stream.index, path.name, exc)
        return None
    return _chinese_cue(cue_texts(completed.stdout.decode("utf-8", errors="replace")))


# --- OCR (optional) -------------------------------------------------------------------------------


def _ocr_engine() -> Any | None:
    """A RapidOCR engine when the package is installed (either of its two distribution names)."""
    for module in ("rapidocr", "rapidocr_onnxruntime"):
        if importlib.util.find_spec(module) is None:
            continue
        try:
            return importlib.import_module(module).RapidOCR()
        except Exception as exc:  # a broken install (missing model, runtime) must not fail the check
            log.warning("%s is installed but cannot start: %s", module, exc)
    return None


def ocr_frame_times(duration_s: float | None, count: int) -> list[float]:
    """``count`` instants spread over the programme, avoiding its first and last tenth (titles, credits)."""
    if not duration_s or duration_s <= 0 or count <= 0:
        return []
    lo, hi = 0.1 * duration_s, 0.9 * duration_s
    if count == 1:
        return [(lo + hi) / 2]
    return [lo + (hi - lo) * i / (count - 1) for i in range(count)]


def ocr_texts(result: Any) -> list[str]:
    """The recognised strings of a RapidOCR answer, whichever version produced it.

    rapidocr ≥ 2 returns an object with ``txts``; rapidocr_onnxruntime returns ``(result, elapse)``
    where ``result`` is a list of ``[box, text, score]`` (or None when nothing was read).
    """
    txts = getattr(result, "txts", None)
    if txts is not None:
        return [str(t) for t in txts]
    if isinstance(result, tuple) and result:
        result = result[0]
    if not result:
        return []
    return [str(item[1]) for item in result if isinstance(item, list | tuple) and len(item) >= 2]


def _ocr_chinese(path: Path, probe: ProbeResult, count: int, engine: Any, *, timeout: float) -> str | None:
    with tempfile.TemporaryDirectory(prefix="kepu-ocr-") as tmp:
        for i, at in enumerate(ocr_frame_times(probe.duration_s, count)):
            image = Path(tmp) / f"frame{i}.png"
            # -ss before -i seeks to the nearest keyframe first: one frame costs a GOP at most.
            argv = [
                FFMPEG, "-nostdin", "-hide_banner", "-v", "error", "-ss", f"{at:.3f}", "-i", str(path),
                "-frames:v", "1", "-vf", OCR_CROP, "-y", str(image),
            ]  # fmt: skip
            try:
                run(argv, timeout=timeout)
                texts = ocr_texts(engine(str(image)))
            except MediaToolError as exc:
                log.warning("cannot grab frame at %.1f s of %s: %s", at, path.name, exc)
                continue
            except Exception as exc:  # OCR is best effort: a failing model must not fail the check
                log.warning("OCR failed on frame at %.1f s of %s: %s", at, path.name, exc)
                continue
            cue = _chinese_cue(texts)
            if cue is not None:
                return cue
    return None
