"""One decoding pass over a submitted video, measuring everything the picture and sound rules need.

:func:`analysis_command` builds a single ffmpeg run whose filter graph splits the decoded streams
into branches, so the file is read and decoded exactly once however many measurements are taken:

* **low-rate branch** — every video frame is cut to :data:`ANALYSIS_FPS` per second and scaled to
  :data:`ANALYSIS_WIDTH` pixels of luma before anything looks at it; ``blackdetect``,
  ``freezedetect`` and ``scdet`` run on those small frames, and a further 32×32 copy goes to stdout
  as raw grey bytes for the perceptual fingerprint.
* **sampled branch** — about :data:`SAMPLE_FRAMES` frames spread over the video, scaled to at most
  :data:`BLUR_HEIGHT` lines, get ``signalstats`` (legal range, saturation) and ``blurdetect``;
  ``metadata=print`` writes their values to the log.
* **interlace branch** — short bursts of consecutive frames (idet needs neighbours) go to ``idet``.
* **audio** — ``ebur128`` (integrated loudness, LRA, true peak), then the samples converted to
  16 bit for ``astats`` (clipping, quietest window) and ``silencedetect``.
* **noise branch** — the sound in mono at :data:`NOISE_RATE` Hz, cut into windows of
  :data:`NOISE_WINDOW` samples; for each window its RMS level, its spectral flatness
  (``aspectralstats``: broadband noise is flat, a tone or music is not) and its level once the mains
  harmonics (50/60 Hz and multiples, from the campaign) are notched out, which tells hum apart.
  The quality rules take the quietest windows of the body as the pauses (A-NOISE). The last window
  also says where the decoded sound ends.

How far the decode got is measured in the same pass: the low-rate branch's frame count and the
noise branch's last window give the decoded end of the picture and of the sound, and the demuxer's and
decoders' complaints (``partial file``, corrupt packets) are kept: a file cut in transfer decodes
without failing and just stops early (V-TRUNCATED).

Only the cheap branches see every frame, which keeps the run close to a bare decode (see
``bench/bench_analysis.py``). Every parser below is a pure function over the captured text, tested
on canned ffmpeg output in ``tests/unit/test_analysis_parse.py``.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kepu.campaign import Campaign
from kepu.errors import MaterialError
from kepu.media.fingerprint import THUMB_SIZE, VideoHash, thumbnails_from_raw, video_hash
from kepu.media.memo import run_memoised
from kepu.media.probe import ProbeResult
from kepu.media.runner import ToolExitError, run

log = logging.getLogger(__name__)

FFMPEG = "ffmpeg"

#: Frame rate of the low-rate branch. Five pictures a second resolve black and frozen segments and
#: cuts to 0.2 s, far finer than the 2 s the rules care about, at a fifth of the scaling work.
ANALYSIS_FPS = 5
#: Width of the low-rate branch. Black, freeze and cut detection judge whole-picture changes, which
#: survive this reduction; converting straight to grey skips the chroma planes as well.
ANALYSIS_WIDTH = 320
#: Sampled frames for the expensive per-picture statistics, spread evenly over the video.
SAMPLE_FRAMES = 48
#: Sampled frames never closer than this, so a short clip is not sampled at every frame.
MIN_SAMPLE_INTERVAL_S = 1.0
#: blurdetect measures edge widths in pixels, so frames are brought to a common height first: the
#: score then means the same thing for 720p, 1080p and 4K uploads (and 4K costs no more). signalstats
#: runs on the same reduced frame, a quarter of the work at 1080p: an out-of-range area survives the
#: reduction, isolated overshoot pixels of the compression (not what the rule is about) do not.
BLUR_HEIGHT = 540
#: idet sees bursts of IDET_BURST consecutive frames out of every IDET_PERIOD (4 % of the video).
IDET_PERIOD = 250
IDET_BURST = 10
#: scdet score (0–100) above which a frame is reported as a cut; fades through black score above it.
SCENE_THRESHOLD = 10.0
#: freezedetect noise tolerance (-60 dB): compression noise on a still picture stays below it.
FREEZE_NOISE = 0.001
#: blackdetect: share of pixels that must be black, and the luma threshold of a black pixel
#: (FFmpeg's defaults, the usual broadcast QC setting).
BLACK_PICTURE_RATIO = 0.98
BLACK_PIXEL_THRESHOLD = 0.10
#: Full scale of a 16-bit sample: astats runs on s16 so a clip is a sample at either bound.
S16_MAX = 32767
S16_MIN = -32768
#: The noise branch: mono at 16 kHz (0–8 kHz holds speech, hum and any bed, and stays inside the
#: pass band of every AAC encoder, whose empty high bands would make any noise look tonal), in
#: windows of 2048 samples (128 ms: several windows fit into a pause between sentences).
NOISE_RATE = 16000
NOISE_WINDOW = 2048
#: Mains harmonics are notched up to this frequency; hum lives there, speech and music hardly.
HUM_TOP_HZ = 400.0
#: Width of each notch (Hz): mains frequency drifts less than ±0.5 Hz.
HUM_NOTCH_WIDTH_HZ = 4.0
#: Demuxer and decoder complaints that mean the data is damaged or missing.
_READ_ERROR = re.compile(
    r"partial file|corrupt|error while decoding|invalid data found|invalid nal unit|error splitting"
    r"|concealing|missing picture|decode_slice_header error|no frame!",
    re.IGNORECASE,
)
#: How many such messages an analysis keeps (the count covers all of them).
MAX_READ_ERRORS = 5
#: A picture decoded this much shorter than the header's duration ended early: segments still open
#: then close where the decoding stopped (whether that is V-TRUNCATED is the campaign's call).
EARLY_END_S = 1.0


@dataclass(frozen=True)
class Interval:
    """A stretch of the programme, in seconds from the start of the decoded stream."""

    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_s - self.start_s)


@dataclass(frozen=True)
class Loudness:
    """The EBU R128 summary of ``ebur128``. ``integrated_lufs`` is -70 for digital silence."""

    integrated_lufs: float
    lra_lu: float
    true_peak_dbtp: float | None


@dataclass(frozen=True)
class AudioStats:
    """astats' overall figures on the 16-bit samples.

    ``peak_count`` counts occasions (runs), not samples, at the minimum or maximum level reached;
    they are clipped runs only when that level is full scale, which ``clipped_runs`` accounts for.
    ``rms_trough_dbfs`` is the RMS of the quietest 50 ms window: in speech that is a pause, so it is
    the noise floor (``-inf`` for digital silence).
    """

    min_level: float
    max_level: float
    peak_count: int
    peak_level_dbfs: float
    rms_trough_dbfs: float
    samples: int

    @property
    def at_full_scale(self) -> bool:
        return self.max_level >= S16_MAX or self.min_level <= S16_MIN

    @property
    def clipped_runs(self) -> int:
        return self.peak_count if self.at_full_scale else 0


@dataclass(frozen=True)
class SceneCut:
    time_s: float
    score: float


@dataclass(frozen=True)
class FrameSample:
    """signalstats and blurdetect on one sampled frame.

    ``out_of_range`` is signalstats' BRNG, the share of pixels outside the legal (broadcast) range;
    ``sat_high`` the 90th percentile of saturation (0–181 at 8 bit); ``blur`` the mean edge width in
    pixels at :data:`BLUR_HEIGHT` lines (larger is softer). A key the filter did not print is None.
    """

    time_s: float
    out_of_range: float | None
    sat_avg: float | None
    sat_high: float | None
    luma_avg: float | None
    blur: float | None


@dataclass(frozen=True)
class InterlaceCounts:
    """idet's multi-frame classification of the sampled frames."""

    tff: int
    bff: int
    progressive: int
    undetermined: int

    @property
    def interlaced(self) -> int:
        return self.tff + self.bff

    @property
    def interlaced_ratio(self) -> float | None:
        decided = self.interlaced + self.progressive
        return self.interlaced / decided if decided else None


@dataclass(frozen=True)
class NoiseWindow:
    """One window of the noise branch: its start, RMS level (dBFS, ``-inf`` for digital silence),
    spectral flatness (0 for a pure tone, about 0.7 for pink noise) and RMS level with the mains
    harmonics notched out."""

    time_s: float
    level_dbfs: float
    flatness: float | None
    residual_dbfs: float | None

    @property
    def hum_share(self) -> float | None:
        """The share of the window's power at the mains harmonics (0–1)."""
        if self.residual_dbfs is None or not math.isfinite(self.level_dbfs):
            return None
        return max(0.0, 1.0 - 10 ** ((min(self.residual_dbfs, self.level_dbfs) - self.level_dbfs) / 10))


@dataclass(frozen=True)
class Analysis:
    """Everything measured in the decoding pass. A part whose stream is absent is None or empty.

    ``video_decoded_s`` is how much picture was decoded (low-rate frames / :data:`ANALYSIS_FPS`),
    ``audio_decoded_end_s`` the timestamp where the decoded sound ends; ``read_errors`` the last
    demuxer/decoder complaints and ``read_error_count`` how many there were.
    """

    loudness: Loudness | None
    audio_stats: AudioStats | None
    silences: tuple[Interval, ...]
    blacks: tuple[Interval, ...]
    freezes: tuple[Interval, ...]
    cuts: tuple[SceneCut, ...]
    samples: tuple[FrameSample, ...]
    interlace: InterlaceCounts | None
    bits_per_pixel: float | None
    fingerprint: VideoHash | None
    elapsed_s: float
    noise_windows: tuple[NoiseWindow, ...] = ()
    video_decoded_s: float | None = None
    audio_decoded_end_s: float | None = None
    read_errors: tuple[str, ...] = ()
    read_error_count: int = 0


# --- the command ----------------------------------------------------------------------------------


def sample_interval(duration_s: float | None) -> float:
    """Seconds between sampled frames: :data:`SAMPLE_FRAMES` over the duration, never below a second."""
    if duration_s is None or not math.isfinite(duration_s) or duration_s <= 0:
        return MIN_SAMPLE_INTERVAL_S * 5
    return max(MIN_SAMPLE_INTERVAL_S, duration_s / SAMPLE_FRAMES)


def analysis_command(path: Path, probe: ProbeResult, campaign: Campaign) -> list[str]:
    """The ffmpeg argv of the single analysis pass over ``path`` (video and/or audio branches).

    Outputs: one ``null`` muxer per analysis branch (separate outputs, so no muxer waits to
    interleave a sparse branch with a dense one and buffers decoded frames meanwhile) and the
    32×32 grey thumbnails as raw video on stdout.
    """
    graph: list[str] = []
    outputs: list[str] = []
    if probe.video is not None:
        v = probe.video.index
        interval = sample_interval(probe.duration_s)
        black_min = 1.0 / ANALYSIS_FPS  # one analysis frame: short holds still mark a fade
        freeze_min = min(campaign.video.freeze.min_s, campaign.video.black.min_s)
        graph += [
            f"[0:{v}]split=3[vlow][vsam][vint]",
            (
                f"[vlow]fps={ANALYSIS_FPS},scale={ANALYSIS_WIDTH}:-2:flags=bilinear,format=gray,"
                f"blackdetect=d={black_min:g}:pic_th={BLACK_PICTURE_RATIO:g}:pix_th={BLACK_PIXEL_THRESHOLD:g},"
                f"freezedetect=n={FREEZE_NOISE:g}:d={freeze_min:g},"
                f"scdet=t={SCENE_THRESHOLD:g},split=2[vlowout][vthumb]"
            ),
            f"[vthumb]scale={THUMB_SIZE}:{THUMB_SIZE}:flags=area,format=gray[thumbs]",
            (
                # The first frame, then the first frame at least `interval` after the last one taken.
                f"[vsam]select='isnan(prev_selected_t)+gte(t-prev_selected_t\\,{interval:.3f})',"
                f"scale=-2:'min({BLUR_HEIGHT}\\,ih)':flags=bilinear,"
                "signalstats=stat=brng,blurdetect,"
                "metadata=mode=print[vsamout]"
            ),
            f"[vint]select='lt(mod(n\\,{IDET_PERIOD})\\,{IDET_BURST})',idet[vintout]",
        ]
        outputs += ["vlowout", "vsamout", "vintout"]
    if probe.audio is not None:
        a = probe.audio.index
        rules = campaign.audio
        graph.append(f"[0:{a}]ebur128=peak=true:framelog=verbose,asplit=2[alevel][anoise]")
        graph.append(
            "[alevel]"
            # Clipping is judged at 16 bit: the conversion saturates anything beyond full scale.
            "aformat=sample_fmts=s16,"
            "astats=measure_perchannel=none:"
            "measure_overall=Min_level+Max_level+Peak_level+Peak_count+RMS_trough+Number_of_samples,"
            # Quieter than the allowed noise floor counts as silence.
            f"silencedetect=n={rules.noise_floor_max_dbfs:g}dB:d={rules.silence_min_s:g}[aout]"
        )
        graph.append(noise_chain(campaign, "anoise", "anoiseout"))
        outputs += ["aout", "anoiseout"]
    if not graph:
        raise ValueError(f"{path.name}: no video and no audio stream to analyse")

    argv = [FFMPEG, "-nostdin", "-hide_banner", "-nostats", "-v", "info", "-i", str(path)]
    argv += ["-filter_complex", ";".join(graph)]
    for label in outputs:
        argv += ["-map", f"[{label}]", "-f", "null", "-"]
    if probe.video is not None:
        argv += ["-map", "[thumbs]", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"]
    return argv


def hum_frequencies(mains_hz: list[float]) -> list[float]:
    """Every harmonic of the mains frequencies up to :data:`HUM_TOP_HZ`, once each, in order."""
    found = {round(f * k, 3) for f in mains_hz if f > 0 for k in range(1, int(HUM_TOP_HZ // f) + 1)}
    return sorted(found)


def noise_chain(campaign: Campaign, label_in: str, label_out: str) -> str:
    """The noise branch: per window, level and flatness, then the level with mains harmonics notched.

    The filters that print are named (``ametadata@kepu_…``) so the parser finds them whatever the
    rest of the graph; the two astats instances are named too, so their end-of-stream summaries are
    not taken for the main astats' one.
    """
    notches = ",".join(
        f"bandreject=f={f:g}:width_type=h:width={HUM_NOTCH_WIDTH_HZ:g}"
        for f in hum_frequencies(campaign.audio.noise.mains_hz)
    )
    level = "metadata=1:reset=1:measure_perchannel=none:measure_overall=RMS_level"
    return (
        f"[{label_in}]aformat=sample_fmts=fltp:channel_layouts=mono,aresample={NOISE_RATE},"
        f"aspectralstats=win_size={NOISE_WINDOW}:overlap=0,"
        f"astats@kepu_level={level},"
        "ametadata@kepu_flatness=mode=print:key=lavfi.aspectralstats.1.flatness,"
        "ametadata@kepu_level=mode=print:key=lavfi.astats.Overall.RMS_level,"
        f"{notches + ',' if notches else ''}"
        f"astats@kepu_residual={level},"
        f"ametadata@kepu_residual=mode=print:key=lavfi.astats.Overall.RMS_level[{label_out}]"
    )


# --- running it -----------------------------------------------------------------------------------


def analyse(path: Path, probe: ProbeResult, campaign: Campaign, *, timeout: float) -> Analysis:
    """Decode ``path`` once and measure it; see the module docstring for what is measured.

    Raises :class:`MaterialError` ``M-UNREADABLE`` when ffmpeg cannot decode the file to the end;
    :class:`~kepu.errors.MediaToolError` (tool missing, timeout) propagates.
    """
    path = path.resolve()  # an absolute path is never read by ffmpeg as an option or a protocol
    argv = analysis_command(path, probe, campaign)
    try:
        completed = run_memoised(argv, reads=path, timeout=timeout, runner=run)
    except ToolExitError as exc:
        raise MaterialError(
            "M-UNREADABLE", f"{path.name}: ffmpeg cannot decode it; ffmpeg says: {exc.stderr_tail}"
        ) from exc
    stderr = completed.stderr.decode("utf-8", errors="replace")
    result = parse_analysis(stderr, completed.stdout, probe, elapsed_s=completed.elapsed_s)
    log.info(
        "analysed %s in %.1f s: %d sample(s), %d cut(s), %d black, %d frozen, %d silent segment(s)",
        path.name,
        completed.elapsed_s,
        len(result.samples),
        len(result.cuts),
        len(result.blacks),
        len(result.freezes),
        len(result.silences),
    )
    return result


def parse_analysis(stderr: str, stdout: bytes, probe: ProbeResult, *, elapsed_s: float = 0.0) -> Analysis:
    """Assemble an :class:`Analysis` from the captured log and the raw thumbnail bytes."""
    thumbs = thumbnails_from_raw(stdout) if probe.video is not None else np.zeros((0, THUMB_SIZE, THUMB_SIZE))
    video_decoded_s = len(thumbs) / ANALYSIS_FPS if probe.video is not None else None
    # Where a segment is still open at the end of the stream, it ends with the programme, or where
    # the decoding stopped when that is earlier (a truncated file).
    end_s = probe.duration_s if probe.duration_s is not None else (video_decoded_s or 0.0)
    if video_decoded_s and video_decoded_s < end_s - EARLY_END_S:
        end_s = video_decoded_s
    has_audio = probe.audio is not None
    windows = parse_noise_windows(stderr) if has_audio else ()
    errors = parse_read_errors(stderr)
    return Analysis(
        loudness=parse_ebur128(stderr) if has_audio else None,
        audio_stats=parse_astats(stderr) if has_audio else None,
        silences=parse_silencedetect(stderr, end_s=end_s) if has_audio else (),
        blacks=parse_blackdetect(stderr),
        freezes=parse_freezedetect(stderr, end_s=end_s),
        cuts=parse_scdet(stderr),
        samples=parse_frame_samples(stderr),
        interlace=parse_idet(stderr) if probe.video is not None else None,
        bits_per_pixel=bits_per_pixel(probe),
        fingerprint=video_hash(thumbs) if len(thumbs) else None,
        elapsed_s=elapsed_s,
        noise_windows=windows,
        video_decoded_s=video_decoded_s,
        audio_decoded_end_s=windows[-1].time_s + NOISE_WINDOW / NOISE_RATE if windows else None,
        read_errors=tuple(errors[-MAX_READ_ERRORS:]),
        read_error_count=len(errors),
    )


def bits_per_pixel(probe: ProbeResult) -> float | None:
    """Average video bits per pixel per frame: bitrate / (width × height × frame rate).

    The stream's own bitrate when the container states it; otherwise the file's, less the audio's.
    """
    video = probe.video
    if video is None or not video.width or not video.height:
        return None
    fps = video.avg_frame_rate or video.r_frame_rate
    rate = video.bit_rate
    if rate is None and probe.bit_rate is not None:
        audio_rate = probe.audio.bit_rate if probe.audio is not None and probe.audio.bit_rate else 0
        rate = probe.bit_rate - audio_rate
    if not fps or not rate or rate <= 0:
        return None
    return rate / (video.width * video.height * fps)


# --- parsers (pure) -------------------------------------------------------------------------------

_NUMBER = r"(-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|-?inf|nan)"
# A filter named in the graph (``ametadata@kepu_level``) logs under that name, "@" included.
_LOG_PREFIX = re.compile(r"^\[(?P<ctx>[^\]]+?) @ [^\]]+\] ?(?P<msg>.*)$")


def _num(text: str) -> float:
    return float(text)  # float() reads "inf", "-inf" and "nan" as well


def _logged(stderr: str, context_prefix: str) -> list[str]:
    """Messages logged by the filter instances whose context name starts with ``context_prefix``."""
    out = []
    for line in stderr.splitlines():
        m = _LOG_PREFIX.match(line)
        if m and m.group("ctx").startswith(context_prefix):
            out.append(m.group("msg"))
    return out


def parse_ebur128(stderr: str) -> Loudness | None:
    """The ebur128 summary.

    FFmpeg 5.1 prints a ``Summary:`` for the instance it configures while probing the graph (empty)
    and one for the instance that saw the audio; the last one with an ``I:`` line is the measure.
    """
    blocks = re.split(r"\] Summary:\s*\n", stderr)
    for block in reversed(blocks[1:]):
        integrated = re.search(r"^\s*I:\s+" + _NUMBER + r" LUFS", block, re.MULTILINE)
        lra = re.search(r"^\s*LRA:\s+" + _NUMBER + r" LU\b", block, re.MULTILINE)
        if integrated is None or lra is None:
            continue
        peak = re.search(r"True peak:\s*\n\s*Peak:\s+" + _NUMBER + r" dBFS", block)
        return Loudness(
            integrated_lufs=_num(integrated.group(1)),
            lra_lu=_num(lra.group(1)),
            true_peak_dbtp=_num(peak.group(1)) if peak else None,
        )
    return None


_ASTATS_KEYS = {
    "Min level": "min_level",
    "Max level": "max_level",
    "Peak level dB": "peak_level_dbfs",
    "Peak count": "peak_count",
    "RMS trough dB": "rms_trough_dbfs",
    "Number of samples": "samples",
}


def parse_astats(stderr: str) -> AudioStats | None:
    """The ``Overall`` section astats prints when the stream ends (the last one, if several)."""
    messages = _logged(stderr, "Parsed_astats")
    starts = [i for i, msg in enumerate(messages) if msg.strip() == "Overall"]
    if not starts:
        return None
    values: dict[str, float] = {}
    for msg in messages[starts[-1] + 1 :]:
        key, sep, raw = msg.partition(":")
        field = _ASTATS_KEYS.get(key.strip())
        if sep and field is not None:
            try:
                values[field] = _num(raw.strip())
            except ValueError:
                continue
    if not all(f in values for f in _ASTATS_KEYS.values()):
        return None
    return AudioStats(
        min_level=values["min_level"],
        max_level=values["max_level"],
        peak_count=int(values["peak_count"]),
        peak_level_dbfs=values["peak_level_dbfs"],
        rms_trough_dbfs=values["rms_trough_dbfs"],
        samples=int(values["samples"]),
    )


def parse_silencedetect(stderr: str, *, end_s: float) -> tuple[Interval, ...]:
    """Silent intervals; one still open when the stream ended closes at ``end_s``."""
    out: list[Interval] = []
    start: float | None = None
    for msg in _logged(stderr, "silencedetect"):
        if m := re.match(r"silence_start: " + _NUMBER, msg):
            start = _num(m.group(1))
        elif (m := re.match(r"silence_end: " + _NUMBER, msg)) and start is not None:
            out.append(Interval(max(0.0, start), _num(m.group(1))))
            start = None
    if start is not None:
        out.append(Interval(max(0.0, start), max(end_s, start)))
    return tuple(out)


def parse_blackdetect(stderr: str) -> tuple[Interval, ...]:
    pattern = re.compile(r"black_start:" + _NUMBER + r" black_end:" + _NUMBER)
    return tuple(
        Interval(_num(m.group(1)), _num(m.group(2)))
        for msg in _logged(stderr, "blackdetect")
        if (m := pattern.search(msg))
    )


def parse_freezedetect(stderr: str, *, end_s: float) -> tuple[Interval, ...]:
    """Frozen intervals; a freeze lasting to the end of the stream has no ``freeze_end`` line."""
    out: list[Interval] = []
    start: float | None = None
    for msg in _logged(stderr, "freezedetect"):
        if m := re.search(r"freeze_start: " + _NUMBER, msg):
            start = _num(m.group(1))
        elif (m := re.search(r"freeze_end: " + _NUMBER, msg)) and start is not None:
            out.append(Interval(start, _num(m.group(1))))
            start = None
    if start is not None:
        out.append(Interval(start, max(end_s, start)))
    return tuple(out)


def parse_scdet(stderr: str) -> tuple[SceneCut, ...]:
    pattern = re.compile(r"lavfi\.scd\.score: " + _NUMBER + r", lavfi\.scd\.time: " + _NUMBER)
    return tuple(
        SceneCut(time_s=_num(m.group(2)), score=_num(m.group(1)))
        for msg in _logged(stderr, "scdet")
        if (m := pattern.search(msg))
    )


_SAMPLE_KEYS = {
    "lavfi.signalstats.BRNG": "out_of_range",
    "lavfi.signalstats.SATAVG": "sat_avg",
    "lavfi.signalstats.SATHIGH": "sat_high",
    "lavfi.signalstats.YAVG": "luma_avg",
    "lavfi.blur": "blur",
}


def parse_frame_samples(stderr: str) -> tuple[FrameSample, ...]:
    """The sampled frames printed by ``metadata=mode=print``: a ``frame:`` line, then ``key=value`` lines."""
    samples: list[FrameSample] = []
    time_s: float | None = None
    values: dict[str, float] = {}

    def flush() -> None:
        if time_s is not None:
            samples.append(FrameSample(time_s=time_s, **{f: values.get(f) for f in _SAMPLE_KEYS.values()}))

    for msg in _logged(stderr, "Parsed_metadata"):
        if m := re.match(r"frame:\s*\d+\s+pts:\s*\S+\s+pts_time:\s*" + _NUMBER, msg):
            flush()
            time_s, values = _num(m.group(1)), {}
            continue
        key, sep, raw = msg.partition("=")
        field = _SAMPLE_KEYS.get(key.strip())
        if sep and field is not None:
            try:
                values[field] = _num(raw.strip())
            except ValueError:
                continue
    flush()
    return tuple(samples)


def parse_idet(stderr: str) -> InterlaceCounts | None:
    """idet's last ``Multi frame detection`` line (the graph-probing instance prints zeros first)."""
    pattern = re.compile(r"Multi frame detection: TFF:\s*(\d+) BFF:\s*(\d+) Progressive:\s*(\d+) Undetermined:\s*(\d+)")
    found = [m for msg in _logged(stderr, "Parsed_idet") if (m := pattern.search(msg))]
    if not found:
        return None
    m = found[-1]
    return InterlaceCounts(int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4)))


def parse_noise_windows(stderr: str) -> tuple[NoiseWindow, ...]:
    """The noise branch's windows: flatness, level and residual printed by the three named filters."""
    columns: dict[str, dict[float, float]] = {}
    for name in ("kepu_flatness", "kepu_level", "kepu_residual"):
        values: dict[float, float] = {}
        time_s: float | None = None
        for msg in _logged(stderr, f"ametadata@{name}"):
            if m := re.match(r"frame:\s*\d+\s+pts:\s*\S+\s+pts_time:\s*" + _NUMBER, msg):
                time_s = _num(m.group(1))
                continue
            key, sep, raw = msg.partition("=")
            if sep and time_s is not None and key.startswith("lavfi."):
                try:
                    values[time_s] = _num(raw.strip())
                except ValueError:
                    continue
        columns[name] = values
    levels = columns["kepu_level"]
    return tuple(
        NoiseWindow(
            time_s=t,
            level_dbfs=level,
            flatness=columns["kepu_flatness"].get(t),
            residual_dbfs=columns["kepu_residual"].get(t),
        )
        for t, level in sorted(levels.items())
    )


def parse_read_errors(stderr: str) -> list[str]:
    """Every demuxer or decoder complaint about damaged or missing data, in order."""
    out = []
    for line in stderr.splitlines():
        text = line.strip()
        if text and _READ_ERROR.search(text) and "Parsed_" not in text and "@kepu_" not in text:
            out.append(text[:300])
    return out
