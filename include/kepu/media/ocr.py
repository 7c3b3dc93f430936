"""Burned-in subtitles: offline OCR of the lower third of the picture while someone speaks.

* **when** — :func:`speech_spans` takes the stretches of the programme that are not silent (the
  ``silencedetect`` intervals of the analysis pass, i.e. the audio levels) as the moments someone
  speaks; :func:`sample_times` spreads ``language.ocr_sample_frames`` instants over them.
* **what** — one ffmpeg run (:func:`crop_command`) seeks to every instant, crops the bottom third
  of the displayed picture and scales it to :data:`CROP_WIDTH` pixels, one small PNG per instant.
* **reading** — RapidOCR (PP-OCR detection and recognition, ONNX models shipped inside the
  ``rapidocr`` wheel, run by ``onnxruntime``). :func:`ocr_engine` builds it once per process with
  explicit model paths inside the installed package, so it never downloads anything; when the
  package is missing or cannot start the caller says ``ocr-unavailable``.
* **kept** — what the engine read on a crop is kept in the media memo (:func:`kepu.media.memo.kept_value`)
  under the crop's SHA-256 and :func:`engine_identity`, so a package checked again is not read again,
  and a process whose crops were all read before does not even load the models.
* **judging** — a sampled moment is *covered* when a recognised line holds at least
  ``language.ocr_min_chars`` Han characters at a confidence of at least
  ``language.ocr_min_confidence``; the coverage is the share of covered moments.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import json
import logging
import re
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kepu.errors import MediaToolError
from kepu.media.analysis import Interval
from kepu.media.memo import file_digest, kept_value, run_memoised
from kepu.media.probe import ProbeResult
from kepu.media.runner import run

log = logging.getLogger(__name__)

FFMPEG = "ffmpeg"
#: Width the lower-third crops are scaled to: subtitle glyphs stay 20–30 px high at 1080p, which
#: PP-OCR reads reliably, and detection works on a tenth of the pixels of the full frame.
CROP_WIDTH = 960
#: Burned-in subtitles sit in the lower third of the displayed picture.
CROP = "crop=iw:ih/3:0:ih*2/3"
#: The detector's input is limited on its longer side (the crop's width): the default limits the
#: *shorter* side to 736 px, which would blow a 960×180 strip up to 4000 px wide.
DET_LIMIT_SIDE = CROP_WIDTH
#: One inference thread: a media worker runs one process a core.
THREADS = 1
#: The model files inside the rapidocr wheel (rapidocr 3.x).
DET_MODEL = "PP-OCRv6_det_small.onnx"
REC_MODEL = "PP-OCRv6_rec_small.onnx"
CLS_MODEL = "ch_ppocr_mobile_v2.0_cls_mobile.onnx"
#: Samples closer than this to a span's end are moved inside it (a picture needs a frame there).
_EDGE_S = 0.25
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")


@dataclass(frozen=True)
class OcrLine:
    text: str
    score: float


@dataclass(frozen=True)
class BurnedIn:
    """What OCR read on the sampled moments: ``covered`` of ``samples`` had Chinese text.

    ``lines`` are the distinct confident lines read, the ``chinese`` ones (which counted) first.
    """

    samples: int
    covered: int
    lines: tuple[str, ...]
    chinese: tuple[str, ...] = ()

    @property
    def coverage(self) -> float:
        return self.covered / self.samples if self.samples else 0.0


# --- the engine -----------------------------------------------------------------------------------

_engine_lock = threading.Lock()
_engine: Any | None = None
_engine_tried = False


def ocr_engine() -> Any | None:
    """The process's RapidOCR engine, built on first use; None when rapidocr is missing or broken."""
    global _engine, _engine_tried
    with _engine_lock:
        if not _engine_tried:
            _engine_tried = True
            _engine = build_engine()
        return _engine


def reset_engine() -> None:
    """Forget the cached engine and its identity (tests that simulate a missing package)."""
    global _engine, _engine_tried
    with _engine_lock:
        _engine, _engine_tried = None, False
    engine_identity.cache_clear()


def model_dir() -> Path | None:
    """The ``models`` folder inside the installed rapidocr package, or None without the package."""
    try:
        spec = importlib.util.find_spec("rapidocr")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "models"


def engine_params(models: Path) -> dict[str, Any]:
    """RapidOCR settings: the wheel's own model files named explicitly (no download path is taken),
    no angle classifier (subtitles are upright), a detector limit fit for a strip, one thread."""
    return {
        "Global.log_level": "error",  # not a warning per empty frame
        "Global.use_cls": False,
        "Global.model_root_dir": str(models),
        "Det.model_path": str(models / DET_MODEL),
        "Det.limit_type": "max",
        "Det.limit_side_len": DET_LIMIT_SIDE,
        "Rec.model_path": str(models / REC_MODEL),
        "Cls.model_path": str(models / CLS_MODEL),
        "EngineConfig.onnxruntime.intra_op_num_threads": THREADS,
        "EngineConfig.onnxruntime.inter_op_num_threads": THREADS,
    }


def build_engine() -> Any | None:
    """A new RapidOCR engine with :func:`engine_params`, or None (logged) when it cannot be built."""
    models = model_dir()
    if models is None:
        return None
    missing = [name for name in (DET_MODEL, REC_MODEL) if not (models / name).is_file()]
    if missing:
        # Never let rapidocr fetch a model at run time: a missing file means a broken install.
        log.warning("rapidocr is installed without its models %s; burned-in subtitles are not read", missing)
        return None
    try:
        module = importlib.import_module("rapidocr")
        return module.RapidOCR(params=engine_params(models))
    except Exception as exc:  # a broken install (runtime, model) must not fail the check
        log.warning("rapidocr is installed but cannot start: %s", exc)
        return None


@functools.lru_cache(maxsize=1)
def engine_identity() -> str | None:
    """What reads a crop, for the media memo: rapidocr's and onnxruntime's versions, the model files (name and
    size) and the engine's settings; None when rapidocr or its models are missing."""
    models = model_dir()
    if models is None:
        return None
    try:
        versions = [importlib.metadata.version(name) for name in ("rapidocr", "onnxruntime")]
        files = [(name, (models / name).stat().st_size) for name in (DET_MODEL, REC_MODEL)]
    except (importlib.metadata.PackageNotFoundError, OSError):
        return None
    params = {
        key: Path(value).name if key.endswith(("_path", "_dir")) else value
        for key, value in engine_params(models).items()
    }
    return json.dumps([versions, files, params], sort_keys=True)


class OcrUnavailable(Exception):
    """The process's engine is needed and rapidocr is missing, lacks its models or cannot start."""


def _process_identity() -> str:
    """:func:`engine_identity` of the process's engine; :class:`OcrUnavailable` when rapidocr or its models are
    missing."""
    identity = engine_identity()
    if identity is None:
        raise OcrUnavailable("rapidocr or its models are missing")
    return identity


def read_crop(engine: Any | None, crop: Path) -> list[OcrLine]:
    """The lines ``engine`` reads on ``crop``.

    ``None`` is the process's RapidOCR engine (:func:`ocr_engine`), built only when a crop was not read before.
    What RapidOCR as :func:`build_engine` makes it reads is kept by content; another reader (a test's) is always
    run. Raises :class:`OcrUnavailable` when the process's engine is needed and cannot be built.
    """
    if engine is None:
        identity = _process_identity()

        def read() -> list[OcrLine]:
            built = ocr_engine()
            if built is None:
                raise OcrUnavailable("rapidocr cannot start")
            return ocr_lines(built(str(crop)))

    else:
        rapidocr = engine_identity() if type(engine).__module__.startswith("rapidocr") else None
        if rapidocr is None:
            return ocr_lines(engine(str(crop)))
        identity = rapidocr

        def read() -> list[OcrLine]:
            return ocr_lines(engine(str(crop)))

    value = kept_value("ocr", [identity, file_digest(crop)], lambda: [[line.text, line.score] for line in read()])
    return [OcrLine(str(text), float(score)) for text, score in value]


def ocr_lines(result: Any) -> list[OcrLine]:
    """The recognised lines of a RapidOCR answer with their confidence (rapidocr ≥ 2 output)."""
    txts = getattr(result, "txts", None) or ()
    scores = getattr(result, "scores", None) or ()
    return [OcrLine(str(t), float(s)) for t, s in zip(txts, scores, strict=False)]


# --- when to look ---------------------------------------------------------------------------------


def speech_spans(silences: Sequence[Interval] | None, duration_s: float | None, *, has_audio: bool) -> list[Interval]:
    """The stretches of ``[0, duration_s]`` outside ``silences``: the moments someone may speak.

    Without a sound track, or when the sound is silent throughout, the whole programme.
    """
    if not duration_s or duration_s <= 0:
        return []
    whole = [Interval(0.0, duration_s)]
    if not has_audio or silences is None:
        return whole
    spans: list[Interval] = []
    at = 0.0
    for s in sorted(silences, key=lambda i: i.start_s):
        if s.start_s > at:
            spans.append(Interval(at, min(s.start_s, duration_s)))
        at = max(at, s.end_s)
    if at < duration_s:
        spans.append(Interval(at, duration_s))
    spans = [s for s in spans if s.duration_s > 0]
    return spans or whole


def sample_times(spans: Sequence[Interval], count: int) -> list[float]:
    """``count`` instants spread evenly over the total length of ``spans`` (centres of equal shares)."""
    total = sum(s.duration_s for s in spans)
    if total <= 0 or count <= 0:
        return []
    times: list[float] = []
    for i in range(count):
        offset = total * (i + 0.5) / count
        for s in spans:
            if offset <= s.duration_s:
                edge = min(_EDGE_S, s.duration_s / 2)
                times.append(round(min(max(s.start_s + offset, s.start_s + edge), s.end_s - edge), 3))
                break
            offset -= s.duration_s
    return times


# --- grabbing the crops ---------------------------------------------------------------------------


def crop_command(path: Path, stream_index: int, times: Sequence[float], out_dir: Path) -> list[str]:
    """One ffmpeg run writing the lower-third crop at each of ``times`` as ``out_dir/crop<i>.png``.

    Each instant is an input of its own opened with ``-ss`` before ``-i`` (a seek to the keyframe
    before it, then decoding up to it) and ``-t`` to stop reading soon after: only the frames between
    the keyframe and the instant are decoded, never the whole file.
    """
    argv = [FFMPEG, "-nostdin", "-hide_banner", "-v", "error"]
    for at in times:
        # Frames no other frame refers to (most B-frames) are not decoded on the way: the frame
        # taken is then the first reference frame at or after the instant, a few frames later at most.
        argv += ["-skip_frame", "noref", "-ss", f"{at:.3f}", "-t", "1", "-i", str(path)]
    graph = [
        f"[{i}:{stream_index}]trim=end_frame=1,{CROP},scale={CROP_WIDTH}:-2:flags=area,format=bgr24[c{i}]"
        for i in range(len(times))
    ]
    argv += ["-filter_complex", ";".join(graph)]
    for i in range(len(times)):
        argv += ["-map", f"[c{i}]", "-frames:v", "1", "-update", "1", "-y", str(out_dir / f"crop{i}.png")]
    return argv


def grab_crops(path: Path, probe: ProbeResult, times: Sequence[float], out_dir: Path, *, timeout: float) -> list[Path]:
    """The crops at ``times`` (one ffmpeg run); an instant with no frame has no file in the list."""
    if probe.video is None or not times:
        return []
    crops = [out_dir / f"crop{i}.png" for i in range(len(times))]
    # Kept by content (kepu.media.memo): a rerun reads the same crops without seeking into the video again.
    run_memoised(
        crop_command(path, probe.video.index, times, out_dir), reads=path, writes=crops, timeout=timeout, runner=run
    )
    return [p for p in crops if p.is_file() and p.stat().st_size > 0]


# --- reading them ---------------------------------------------------------------------------------


def chinese_line(lines: Sequence[OcrLine], *, min_chars: int, min_confidence: float) -> str | None:
    """The first line with at least ``min_chars`` Han characters read at ``min_confidence`` or more."""
    for line in lines:
        if line.score >= min_confidence and len(_HAN.findall(line.text)) >= min_chars:
            return line.text
    return None


def read_burned_in(
    path: Path,
    probe: ProbeResult,
    engine: Any | None,
    *,
    speech: Sequence[Interval],
    samples: int,
    min_chars: int,
    min_confidence: float,
    timeout: float,
) -> BurnedIn:
    """OCR the lower third at ``samples`` moments of ``speech``; how many show Chinese text.

    ``engine`` None: the process's engine, as :func:`read_crop` says (:class:`OcrUnavailable` propagates; a missing
    rapidocr is known before any frame is grabbed)."""
    if engine is None:
        _process_identity()
    times = sample_times(speech, samples)
    covered = 0
    chinese: list[str] = []
    other: list[str] = []
    with tempfile.TemporaryDirectory(prefix="kepu-ocr-") as tmp:
        try:
            crops = grab_crops(path, probe, times, Path(tmp), timeout=timeout)
        except MediaToolError as exc:
            log.warning("cannot grab the frames to read subtitles from %s: %s", path.name, exc)
            crops = []
        for crop in crops:
            try:
                lines = read_crop(engine, crop)
            except OcrUnavailable:
                raise
            except Exception as exc:  # OCR is best effort: one failing frame must not fail the check
                log.warning("OCR failed on %s of %s: %s", crop.name, path.name, exc)
                continue
            line = chinese_line(lines, min_chars=min_chars, min_confidence=min_confidence)
            if line is not None:
                covered += 1
                if line not in chinese:
                    chinese.append(line)
            other += [x.text for x in lines if x.score >= min_confidence and x.text not in other]
    # A moment past the last picture (the sound may run longer) has no frame: it is not counted.
    log.info("burned-in subtitles of %s: %d of %d moment(s) of speech", path.name, covered, len(crops))
    # Chinese lines first: the reviewer sees what counted, then what else was legible.
    rest = [t for t in other if t not in chinese]
    return BurnedIn(samples=len(crops), covered=covered, lines=tuple(chinese + rest), chinese=tuple(chinese))
