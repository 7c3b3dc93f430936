"""The publication copy of an entry: a plan (pure) and its execution (ffmpeg).

:func:`plan_rendition` decides from the probe, the campaign and the measured loudness whether the
source can be **remuxed** (streams copied into a fresh MP4 with the index in front) or must be
**encoded** (H.264 High 8-bit 4:2:0 at constant frame rate, 16:9 with padding, AAC stereo, loudness
normalised when it is outside the campaign's band), and lists every reason in Chinese and English.

:func:`make_rendition` runs the plan through :func:`kepu.media.runner.run` and also writes a poster
frame and thumbnails. Every file is written under a hidden temporary name and renamed only when all
steps have succeeded; a manifest (``rendition.json``) is written last, so a directory without one is
never a finished rendition. A rerun of the same plan on the same source reuses verified outputs
instead of encoding again.

:func:`render_entry` is the one call the pipeline needs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from kepu.campaign import Campaign
from kepu.errors import MaterialError, MediaToolError
from kepu.media.memo import run_memoised
from kepu.media.presets import DEFAULT_PRESETS, RenditionPresets, StillPreset, VideoPreset
from kepu.media.probe import ProbeResult, VideoStream, probe_file
from kepu.media.runner import run
from kepu.storage import sha256_file

log = logging.getLogger(__name__)

FFMPEG = "ffmpeg"

Mode = Literal["remux", "encode"]
OutputRole = Literal["rendition", "poster", "thumbnail"]

#: Bumped whenever the commands change what the outputs must be (sizes, codecs, loudness, the windows the
#: stills are taken from); a manifest of another version is never reused. A cheaper way to the same outputs
#: is no reason: making the stills' pick run on small frames (the same windows, a frame picked by the same
#: tests) left it at 1, so copies made before are reused rather than encoded again.
FORMAT_VERSION = 1
MANIFEST_NAME = "rendition.json"
POSTER_NAME = "poster.jpg"
#: Name of the video output of a remux (the source's own streams).
REMUX_NAME = "copy"

_H264_REMUXABLE = "h264"
_REMUX_PIX_FMT = "yuv420p"
_INTERLACED_ORDERS = frozenset({"tt", "bb", "tb", "bt"})
_ROUND_DIGITS = 2
# loudnorm's accepted ranges (FFmpeg 5.1 af_loudnorm.c).
_MEASURED_I_RANGE = (-99.0, 0.0)
_MEASURED_LRA_RANGE = (0.0, 99.0)
_MEASURED_TP_RANGE = (-99.0, 99.0)
_MEASURED_THRESH_RANGE = (-99.0, 0.0)
_OFFSET_RANGE = (-99.0, 99.0)
_TARGET_LRA_RANGE = (1.0, 50.0)
#: Below this integrated loudness the track is silence for practical purposes: no gain is applied.
_SILENT_LUFS = -70.0


# --------------------------------------------------------------------------------------------------
# The plan


@dataclass(frozen=True)
class PlanReason:
    """Why a source is encoded rather than remuxed, for the operator in Chinese and English."""

    code: str
    detail_zh: str
    detail_en: str


@dataclass(frozen=True)
class LoudnessTarget:
    """Targets of the two-pass loudnorm (LUFS, dBTP, LU)."""

    integrated_lufs: float
    true_peak_dbtp: float
    lra_lu: float
    #: The LRA target may be raised up to this (the campaign's ``lra_max_lu``) to keep linear mode.
    lra_max_lu: float
    #: The loudness the checks measured, which put the source outside the band.
    source_lufs: float


@dataclass(frozen=True)
class VideoOutput:
    """One encoded size: the picture is scaled to ``fit_*`` and padded to the preset's frame."""

    preset: VideoPreset
    fit_width: int
    fit_height: int
    pad_x: int
    pad_y: int

    @property
    def name(self) -> str:
        return self.preset.name

    @property
    def padded(self) -> bool:
        return (self.fit_width, self.fit_height) != (self.preset.width, self.preset.height)


@dataclass(frozen=True)
class SubtitlePlan:
    """A text subtitle stream carried into the copy as ``mov_text``."""

    index: int
    codec: str
    language: str | None

    @property
    def copy(self) -> bool:
        return self.codec == "mov_text"


@dataclass(frozen=True)
class RenditionPlan:
    """What :func:`make_rendition` will do; pure data, decided by :func:`plan_rendition`."""

    mode: Mode
    reasons: tuple[PlanReason, ...]
    #: Encoded sizes, main first; empty for a remux.
    outputs: tuple[VideoOutput, ...]
    #: Constant output frame rate of an encode; ``None`` for a remux.
    frame_rate: Fraction | None
    deinterlace: bool
    #: Two-pass loudness normalisation targets, or ``None`` to keep the levels as they are.
    loudness: LoudnessTarget | None
    has_audio: bool
    subtitle: SubtitlePlan | None
    duration_s: float | None
    #: The source picture as a viewer sees it (after sample aspect ratio and rotation).
    display_width: int
    display_height: int
    presets: RenditionPresets = field(repr=False)

    @property
    def output_names(self) -> tuple[str, ...]:
        if self.mode == "remux":
            return (REMUX_NAME,)
        return tuple(o.name for o in self.outputs)

    def key(self) -> str:
        """A digest of everything that shapes the outputs; equal keys mean outputs of the same specification."""
        text = repr((FORMAT_VERSION, self, self.presets))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def plan_rendition(
    probe: ProbeResult,
    campaign: Campaign,
    *,
    loudness_lufs: float | None,
    presets: RenditionPresets = DEFAULT_PRESETS,
    force_encode: bool = False,
) -> RenditionPlan:
    """Decide between remux and encode.

    A source is remuxed only when its streams are already what the publication copy would be:
    H.264 8-bit ``yuv420p`` progressive video at a constant frame rate, shown 16:9 at no less than
    the campaign's minimum size with square pixels and no rotation, and AAC audio (or none) whose
    integrated loudness ``loudness_lufs`` is inside the campaign's warning band or unknown
    (``None``). Otherwise every deviation becomes a :class:`PlanReason` and the source is encoded.
    The container does not matter: a remux always writes a new MP4.

    Raises :class:`MaterialError` ``V-NO-VIDEO`` when there is no picture to publish.
    """
    video = probe.video
    if video is None:
        raise MaterialError("V-NO-VIDEO", "no video stream: there is nothing to render")
    if video.display_width <= 0 or video.display_height <= 0:
        raise MaterialError("V-RESOLUTION", "the picture size cannot be read: there is nothing to render")

    reasons: list[PlanReason] = []
    reasons += _video_reasons(video, campaign, presets)
    audio_codecs = [c for c in campaign.video.playable_audio_codecs if c == presets.audio.codec]
    if probe.audio is not None and probe.audio.codec not in audio_codecs:
        reasons.append(
            PlanReason(
                "audio-codec",
                f"音频编码为 {probe.audio.codec}，发布版本使用 AAC",
                f"audio codec is {probe.audio.codec}; the publication copy uses AAC",
            )
        )

    loudness: LoudnessTarget | None = None
    band = campaign.audio.loudness_lufs
    if probe.audio is not None and loudness_lufs is not None and not band.warn_min <= loudness_lufs <= band.warn_max:
        loudness = LoudnessTarget(
            integrated_lufs=round((band.warn_min + band.warn_max) / 2, _ROUND_DIGITS),
            true_peak_dbtp=round(campaign.audio.true_peak_max_dbtp - presets.loudness.true_peak_margin_db, 2),
            lra_lu=presets.loudness.lra_target_lu,
            lra_max_lu=max(presets.loudness.lra_target_lu, campaign.audio.lra_max_lu),
            source_lufs=loudness_lufs,
        )
        reasons.append(
            PlanReason(
                "loudness",
                f"综合响度 {loudness_lufs:.1f} LUFS，不在 {band.warn_min:g}…{band.warn_max:g} LUFS 之内，"
                f"两遍响度标准化至 {loudness.integrated_lufs:g} LUFS",
                f"integrated loudness {loudness_lufs:.1f} LUFS is outside {band.warn_min:g}…{band.warn_max:g} LUFS; "
                f"two-pass normalisation to {loudness.integrated_lufs:g} LUFS",
            )
        )
    if force_encode:
        reasons.append(PlanReason("forced", "操作员要求重新编码", "an operator asked for an encode"))

    subtitle = _choose_subtitle(probe, campaign, presets)
    encode = bool(reasons)
    plan = RenditionPlan(
        mode="encode" if encode else "remux",
        reasons=tuple(reasons),
        outputs=tuple(_fit(video.display_width, video.display_height, p) for p in presets.encode_outputs)
        if encode
        else (),
        frame_rate=output_frame_rate(video, presets) if encode else None,
        deinterlace=encode and (video.field_order or "") in _INTERLACED_ORDERS,
        loudness=loudness,
        has_audio=probe.audio is not None,
        subtitle=subtitle,
        duration_s=probe.duration_s,
        display_width=video.display_width,
        display_height=video.display_height,
        presets=presets,
    )
    if encode:
        log.info("rendition plan: encode because %s", ", ".join(r.code for r in reasons))
    else:
        log.info("rendition plan: remux (%dx%d %s)", video.display_width, video.display_height, video.codec)
    return plan


def _video_reasons(video: VideoStream, campaign: Campaign, presets: RenditionPresets) -> list[PlanReason]:
    rules = campaign.video
    out: list[PlanReason] = []
    if video.codec != _H264_REMUXABLE:
        playable = video.codec in rules.playable_video_codecs
        out.append(
            PlanReason(
                "video-codec",
                f"视频编码为 {video.codec}"
                + ("，并非所有平台和浏览器都能播放" if playable else "，不是普遍可播放的编码（V-CODEC）")
                + "，发布版本使用 H.264",
                f"video codec is {video.codec}"
                + (
                    ", which not every platform and browser plays"
                    if playable
                    else ", not playable everywhere (V-CODEC)"
                )
                + "; the publication copy uses H.264",
            )
        )
    if video.bit_depth is not None and video.bit_depth > 8:
        out.append(
            PlanReason(
                "bit-depth",
                f"{video.bit_depth} 位视频（{video.pix_fmt}，可能为 HDR），转换为 8 位 yuv420p",
                f"{video.bit_depth}-bit video ({video.pix_fmt}, possibly HDR) is converted to 8-bit yuv420p",
            )
        )
    elif video.pix_fmt != _REMUX_PIX_FMT:
        out.append(
            PlanReason(
                "pix-fmt",
                f"像素格式为 {video.pix_fmt or '未知'}，转换为 yuv420p",
                f"pixel format is {video.pix_fmt or 'unknown'}; converted to yuv420p",
            )
        )
    if (video.field_order or "") in _INTERLACED_ORDERS:
        out.append(PlanReason("interlaced", "隔行扫描，去隔行", f"interlaced ({video.field_order}); deinterlaced"))
    avg, base = video.avg_frame_rate, video.r_frame_rate
    if avg is None or base is None:
        out.append(
            PlanReason("frame-rate-unknown", "帧率无法读出，按恒定帧率编码", "frame rate unknown; encoded at CFR")
        )
    elif abs(avg / base - 1) > presets.cfr_tolerance:
        out.append(
            PlanReason(
                "vfr",
                f"可变帧率（平均 {avg:.3f}，标称 {base:.3f} 帧/秒），转为恒定帧率",
                f"variable frame rate (average {avg:.3f}, nominal {base:.3f} fps); converted to constant",
            )
        )
    if video.rotation:
        out.append(
            PlanReason(
                "rotation",
                f"画面带 {video.rotation}° 旋转标记，按显示方向重新编码",
                f"picture carries a {video.rotation}° rotation flag; encoded upright",
            )
        )
    if video.sample_aspect_ratio != (1, 1):
        sar = f"{video.sample_aspect_ratio[0]}:{video.sample_aspect_ratio[1]}"
        out.append(
            PlanReason("sar", f"非方形像素（SAR {sar}），转为方形像素", f"non-square pixels (SAR {sar}); made square")
        )
    w, h = video.display_width, video.display_height
    if abs((w / h) / rules.aspect - 1) > rules.aspect_tolerance:
        out.append(
            PlanReason(
                "aspect",
                f"显示尺寸 {w}×{h} 不是 16:9，加黑边适配",
                f"displayed {w}×{h} is not 16:9; fitted with padding",
            )
        )
    if w < rules.min_width or h < rules.min_height:
        out.append(
            PlanReason(
                "resolution",
                f"显示分辨率 {w}×{h} 低于 {rules.min_width}×{rules.min_height}，缩放进发布画幅",
                f"displayed {w}×{h} is below {rules.min_width}×{rules.min_height}; fitted into the publication frame",
            )
        )
    return out


def _choose_subtitle(probe: ProbeResult, campaign: Campaign, presets: RenditionPresets) -> SubtitlePlan | None:
    """The first text subtitle in a campaign language, else the first text subtitle at all."""
    texts = [s for s in probe.subtitles if s.codec in presets.text_subtitle_codecs]
    if not texts:
        if probe.subtitles:
            log.info("subtitle streams %s are not text; not carried over", [s.codec for s in probe.subtitles])
        return None
    wanted = {lang.lower() for lang in campaign.language.subtitle_languages}
    chosen = next((s for s in texts if (s.language or "").lower() in wanted), texts[0])
    return SubtitlePlan(index=chosen.index, codec=chosen.codec, language=chosen.language)


def _even(x: float) -> int:
    return max(2, round(x / 2) * 2)


def _fit(display_w: int, display_h: int, preset: VideoPreset) -> VideoOutput:
    """Scale the displayed picture to fit the preset's frame, keeping its shape; pad the rest."""
    scale = min(preset.width / display_w, preset.height / display_h)
    fit_w = min(preset.width, _even(display_w * scale))
    fit_h = min(preset.height, _even(display_h * scale))
    # Even offsets keep the 4:2:0 chroma sited on the picture's edge.
    pad_x = (preset.width - fit_w) // 4 * 2
    pad_y = (preset.height - fit_h) // 4 * 2
    return VideoOutput(preset=preset, fit_width=fit_w, fit_height=fit_h, pad_x=pad_x, pad_y=pad_y)


def output_frame_rate(video: VideoStream, presets: RenditionPresets = DEFAULT_PRESETS) -> Fraction:
    """The constant rate an encode writes: the source's average rate snapped to a standard one.

    The average is what a viewer sees of a variable-rate source (its nominal rate is often a
    timebase such as 90000). Rates above the highest standard one are halved until they fit, so
    slow-motion 120 fps footage plays at 60.
    """
    rate = video.avg_frame_rate or video.r_frame_rate
    if not rate or not math.isfinite(rate) or rate <= 0:
        return presets.fallback_frame_rate
    highest = float(max(presets.standard_frame_rates))
    while rate > highest * 1.01:
        rate /= 2
    return min(presets.standard_frame_rates, key=lambda std: abs(float(std) / rate - 1))


# --------------------------------------------------------------------------------------------------
# Loudness measurement


@dataclass(frozen=True)
class LoudnormStats:
    """The JSON block loudnorm prints with ``print_format=json``."""

    input_i: float
    input_tp: float
    input_lra: float
    input_thresh: float
    output_i: float
    output_tp: float
    output_lra: float
    output_thresh: float
    normalization_type: str
    target_offset: float


_JSON_BLOCK = re.compile(r"\{[^{}]*\}", re.S)


def parse_loudnorm_stats(stderr: str) -> LoudnormStats:
    """The last loudnorm JSON block in ffmpeg's ``stderr``; ``-inf``/``inf`` are kept as floats.

    Raises :class:`ValueError` when there is no complete block with every field.
    """
    for match in reversed(list(_JSON_BLOCK.finditer(stderr))):
        try:
            data = json.loads(match.group(0))
        except json.JSONDecodeError:
            continue
        if not isinstance(data, dict) or "input_i" not in data:
            continue
        try:
            return LoudnormStats(
                input_i=_lufs(data["input_i"]),
                input_tp=_lufs(data["input_tp"]),
                input_lra=_lufs(data["input_lra"]),
                input_thresh=_lufs(data["input_thresh"]),
                output_i=_lufs(data["output_i"]),
                output_tp=_lufs(data["output_tp"]),
                output_lra=_lufs(data["output_lra"]),
                output_thresh=_lufs(data["output_thresh"]),
                normalization_type=str(data["normalization_type"]),
                target_offset=_lufs(data["target_offset"]),
            )
        except (KeyError, ValueError) as exc:
            raise ValueError(f"loudnorm statistics incomplete: {exc}") from exc
    raise ValueError("no loudnorm JSON block in the output")


def _lufs(value: Any) -> float:
    # float() accepts "-inf", "inf" and "nan", which loudnorm prints for silence.
    return float(str(value).strip())


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return min(bounds[1], max(bounds[0], value))


def loudnorm_filter(target: LoudnessTarget, measured: LoudnormStats | None) -> str:
    """The loudnorm filter of the measuring pass (``measured=None``) or of the applying pass.

    The applying pass gets the first pass's measurements and ``linear=true``: one gain for the whole
    programme. The LRA target is raised to the measured range (up to ``lra_max_lu``) because
    loudnorm leaves linear mode for dynamic compression whenever the source's range is wider.
    """
    lra = target.lra_lu
    if measured is not None and math.isfinite(measured.input_lra):
        lra = _clamp(max(lra, min(measured.input_lra, target.lra_max_lu)), _TARGET_LRA_RANGE)
    parts = [f"I={target.integrated_lufs:.2f}", f"TP={target.true_peak_dbtp:.2f}", f"LRA={lra:.2f}"]
    if measured is not None:
        parts += [
            f"measured_I={_clamp(measured.input_i, _MEASURED_I_RANGE):.2f}",
            f"measured_TP={_clamp(measured.input_tp, _MEASURED_TP_RANGE):.2f}",
            f"measured_LRA={_clamp(measured.input_lra, _MEASURED_LRA_RANGE):.2f}",
            f"measured_thresh={_clamp(measured.input_thresh, _MEASURED_THRESH_RANGE):.2f}",
            f"offset={_clamp(measured.target_offset, _OFFSET_RANGE):.2f}",
            "linear=true",
        ]
    parts.append("print_format=json")
    return "loudnorm=" + ":".join(parts)


def _stereo(presets: RenditionPresets) -> str:
    # Down- or up-mix first, so loudness is measured on what is published.
    layout = "stereo" if presets.audio.channels == 2 else f"{presets.audio.channels}c"
    return f"aformat=channel_layouts={layout}"


def loudness_measure_command(src: Path, target: LoudnessTarget, presets: RenditionPresets) -> list[str]:
    """First pass: decode the first audio stream only and print loudnorm's measurements."""
    graph = f"[0:a:0]{_stereo(presets)},{loudnorm_filter(target, None)}[a]"
    return [
        *_base("info"),
        "-i",
        str(src),
        "-filter_complex",
        graph,
        "-map",
        "[a]",
        "-f",
        "null",
        "-",
    ]


# --------------------------------------------------------------------------------------------------
# Commands (pure)


def _base(level: str = "error") -> list[str]:
    return [FFMPEG, "-nostdin", "-hide_banner", "-nostats", "-v", level, "-y"]


def _subtitle_args(plan: RenditionPlan) -> list[str]:
    if plan.subtitle is None:
        return []
    return ["-map", f"0:{plan.subtitle.index}", "-c:s", "copy" if plan.subtitle.copy else "mov_text"]


def remux_command(src: Path, dest: Path, plan: RenditionPlan) -> list[str]:
    """Copy the first video and audio streams (and a text subtitle) into an MP4 with faststart."""
    argv = [*_base(), "-i", str(src), "-map", "0:v:0"]
    if plan.has_audio:
        argv += ["-map", "0:a:0"]
    argv += ["-c", "copy"]
    argv += _subtitle_args(plan)
    argv += ["-map_metadata", "0", "-movflags", "+faststart", "-f", "mp4", str(dest)]
    return argv


def encode_command(src: Path, dests: Sequence[Path], plan: RenditionPlan, measured: LoudnormStats | None) -> list[str]:
    """One ffmpeg run that decodes once and writes every planned size.

    FFmpeg applies the display rotation itself before the filter graph (autorotate), so the graph
    sees the upright picture; each size is scaled to its precomputed fit, converted to BT.709
    limited-range 4:2:0 and padded to the full frame.
    """
    if plan.mode != "encode" or plan.frame_rate is None:
        raise ValueError("encode_command needs an encode plan")
    if len(dests) != len(plan.outputs):
        raise ValueError(f"{len(plan.outputs)} outputs planned, {len(dests)} paths given")
    presets = plan.presets
    n = len(plan.outputs)
    fps = plan.frame_rate
    chain = ["bwdif=mode=send_frame:parity=auto:deint=interlaced"] if plan.deinterlace else []
    chain.append(f"fps={fps.numerator}/{fps.denominator}")
    graph = ["[0:v:0]" + ",".join(chain) + (f",split={n}" + "".join(f"[s{i}]" for i in range(n)) if n > 1 else "[s0]")]
    for i, out in enumerate(plan.outputs):
        p = out.preset
        graph.append(
            f"[s{i}]scale={out.fit_width}:{out.fit_height}:flags=bicubic:out_color_matrix=bt709:out_range=tv,"
            f"format=yuv420p,pad={p.width}:{p.height}:{out.pad_x}:{out.pad_y}:color=black,setsar=1[v{i}]"
        )
    if plan.has_audio:
        audio = [_stereo(presets)]
        if plan.loudness is not None and measured is not None:
            audio.append(loudnorm_filter(plan.loudness, measured))
        audio.append(f"aresample={presets.audio.sample_rate}")
        labels = "".join(f"[a{i}]" for i in range(n))
        graph.append("[0:a:0]" + ",".join(audio) + (f",asplit={n}{labels}" if n > 1 else "[a0]"))

    level = "info" if plan.loudness is not None and measured is not None else "error"
    argv = [*_base(level), "-i", str(src), "-filter_complex", ";".join(graph)]
    for i, (out, dest) in enumerate(zip(plan.outputs, dests, strict=True)):
        p = out.preset
        gop = max(1, round(float(fps) * p.gop_seconds))
        argv += ["-map", f"[v{i}]"]
        if plan.has_audio:
            argv += ["-map", f"[a{i}]"]
        argv += _subtitle_args(plan)
        argv += [
            "-c:v",
            "libx264",
            "-preset",
            p.x264_preset,
            "-profile:v",
            p.profile,
            "-level:v",
            p.level_for(fps),
            "-crf",
            f"{p.crf:g}",
            "-maxrate",
            f"{p.maxrate_kbps}k",
            "-bufsize",
            f"{p.bufsize_kbps}k",
            "-g",
            str(gop),
            "-keyint_min",
            str(max(1, gop // 2)),
            "-pix_fmt",
            "yuv420p",
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
            "-colorspace",
            "bt709",
            "-fps_mode",
            "cfr",
        ]
        if plan.has_audio:
            a = presets.audio
            argv += ["-c:a", a.codec, "-b:a", f"{a.bitrate_kbps}k", "-ar", str(a.sample_rate), "-ac", str(a.channels)]
        argv += [
            "-map_metadata",
            "0",
            "-max_muxing_queue_size",
            "4096",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
            str(dest),
        ]
    return argv


def _shrink(width: int, height: int) -> str:
    return f"scale={width}:{height}:force_original_aspect_ratio=decrease:force_divisible_by=2"


def _letterbox(width: int, height: int) -> str:
    return f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,format=yuvj420p"


def _fit_and_pad(width: int, height: int) -> str:
    return f"{_shrink(width, height)},{_letterbox(width, height)}"


def _poster_window(duration_s: float, presets: RenditionPresets) -> list[str]:
    """The input options that seek to the poster's window: ~10 % of the duration, or the start of a short clip."""
    s = presets.stills
    start = max(0.0, min(duration_s * s.poster_at, duration_s - s.poster_window_s))
    return ["-ss", f"{start:.3f}", "-t", f"{s.poster_window_s:.3f}"]


#: Below this normalised luma entropy a frame is taken as a plain field of one colour (a black or grey card).
THUMBNAIL_MIN_ENTROPY = 0.1


def _pick(s: StillPreset, window_s: float, *, plain_fields: bool) -> str:
    """The still's pick over a window of ``window_s``: each frame brought to the thumbnail's size, the dark ones
    (and with ``plain_fields`` the fields of one colour) dropped, then the frame closest to the window's average
    histogram kept. ``thumbnail`` holds the window's frames: at most 60 a second, at the thumbnail's size."""
    plain = (
        "entropy,metadata=mode=select:key=lavfi.entropy.normalized_entropy.normal.Y:"
        f"value={THUMBNAIL_MIN_ENTROPY:g}:function=greater,"
        if plain_fields
        else ""
    )
    return (
        f"{_shrink(s.thumbnail_width, s.thumbnail_height)},{plain}signalstats,"
        f"metadata=mode=select:key=lavfi.signalstats.YAVG:value={s.poster_min_luma:g}:function=greater,"
        f"thumbnail=n={max(2, math.ceil(window_s * 60))}"
    )


def poster_pick_command(video: Path, duration_s: float, presets: RenditionPresets) -> list[str]:
    """The first of the poster's two passes: which frame of its window is the most representative non-black one.

    Each frame is brought to the thumbnail's size; ``signalstats`` measures its average luma and
    ``metadata`` drops the dark ones, so a fade or a black opening is skipped; ``thumbnail`` then picks
    the frame closest to the window's average histogram (no flash frame, no half-dissolve), and
    ``showinfo`` logs its timestamp (:func:`picked_pts`). Measured on small frames, the window's frames
    are held at a thirty-sixth of a 1080p frame's size (up to 180 of them: about 560 MB at full size).
    A window with no frame bright enough logs nothing.
    """
    chain = f"{_pick(presets.stills, presets.stills.poster_window_s, plain_fields=False)},showinfo"
    window = _poster_window(duration_s, presets)
    return [*_base("info"), *window, "-i", str(video), "-vf", chain, "-frames:v", "1", "-f", "null", "-"]


_SHOWINFO_PTS = re.compile(r"\[Parsed_showinfo_\d+ @ [^\]]*\] n:\s*\d+ pts:\s*(-?\d+)")


def picked_pts(stderr: str) -> int | None:
    """The timestamp (in the stream's time base, from the window's start) of the frame the pick pass kept."""
    found = _SHOWINFO_PTS.search(stderr)
    return int(found.group(1)) if found else None


def poster_command(video: Path, dest: Path, duration_s: float, presets: RenditionPresets, pts: int) -> list[str]:
    """The second pass: the frame :func:`poster_pick_command` picked (timestamp ``pts``), at the poster's size.

    The window is sought exactly as in the first pass, so the frame has the same timestamp here.
    """
    s = presets.stills
    return [
        *_base(),
        *_poster_window(duration_s, presets),
        "-i",
        str(video),
        "-vf",
        f"select='gte(pts\\,{pts})',{_fit_and_pad(s.poster_width, s.poster_height)}",
        "-frames:v",
        "1",
        "-q:v",
        str(s.poster_quality),
        "-update",
        "1",
        "-f",
        "image2",
        str(dest),
    ]


def poster_fallback_command(video: Path, dest: Path, duration_s: float, presets: RenditionPresets) -> list[str]:
    """The plain frame at ~10 % of the duration, for a window with no frame bright enough."""
    s = presets.stills
    at = max(0.0, min(duration_s * s.poster_at, duration_s - 0.1))
    return [
        *_base(),
        "-ss",
        f"{at:.3f}",
        "-i",
        str(video),
        "-vf",
        _fit_and_pad(s.poster_width, s.poster_height),
        "-frames:v",
        "1",
        "-q:v",
        str(s.poster_quality),
        "-update",
        "1",
        "-f",
        "image2",
        str(dest),
    ]


def thumbnail_times(duration_s: float, count: int) -> list[float]:
    """``count`` evenly spaced times strictly inside the programme (never the first or last frame)."""
    return [round(duration_s * (k + 1) / (count + 1), 3) for k in range(count)]


def thumbnails_command(video: Path, dests: Sequence[Path], duration_s: float, presets: RenditionPresets) -> list[str]:
    """One ffmpeg run seeking once per thumbnail, each written as a small JPEG.

    Each thumbnail is the most representative frame of a short window from its time on, among the frames
    that are neither dark (a fade, a black join between looped clips) nor a plain field of one colour
    (``entropy``), the poster's test. A window with no such frame writes nothing: see
    :func:`plain_thumbnails_command`.

    Each frame is brought to the thumbnail's size before it is measured and kept: the tests read the
    same picture at a thirty-sixth of the pixels of 1080p, and ``thumbnail`` holds its window's frames
    at that size (a 3 s window of 1080p60 would otherwise hold about 560 MB per thumbnail). The
    letterbox comes last, so a pillarboxed source is not darkened by bars of the thumbnail's own.
    """
    s = presets.stills
    times = thumbnail_times(duration_s, len(dests))
    window = max(0.5, min(s.poster_window_s, duration_s / (len(dests) + 1)))
    argv = [*_base()]
    for t in times:
        argv += ["-ss", f"{t:.3f}", "-t", f"{window:.3f}", "-i", str(video)]
    chain = f"{_pick(s, window, plain_fields=True)},{_letterbox(s.thumbnail_width, s.thumbnail_height)}"
    graph = ";".join(f"[{i}:v:0]{chain}[t{i}]" for i in range(len(dests)))
    argv += ["-filter_complex", graph]
    for i, dest in enumerate(dests):
        argv += ["-map", f"[t{i}]", "-frames:v", "1", "-q:v", str(s.thumbnail_quality)]
        argv += ["-update", "1", "-f", "image2", str(dest)]
    return argv


def plain_thumbnails_command(video: Path, dests: Sequence[tuple[Path, float]], presets: RenditionPresets) -> list[str]:
    """The plain frame at each (thumbnail, time): for the windows with no bright, detailed frame."""
    s = presets.stills
    argv = [*_base()]
    for _, t in dests:
        argv += ["-ss", f"{t:.3f}", "-i", str(video)]
    graph = ";".join(f"[{i}:v:0]{_fit_and_pad(s.thumbnail_width, s.thumbnail_height)}[t{i}]" for i in range(len(dests)))
    argv += ["-filter_complex", graph]
    for i, (dest, _) in enumerate(dests):
        argv += ["-map", f"[t{i}]", "-frames:v", "1", "-q:v", str(s.thumbnail_quality)]
        argv += ["-update", "1", "-f", "image2", str(dest)]
    return argv


# --------------------------------------------------------------------------------------------------
# Execution


@dataclass(frozen=True)
class RenditionOutput:
    """One finished file. ``role`` is the object-store role (:data:`kepu.storage.ROLES`)."""

    role: OutputRole
    name: str
    path: Path
    size: int
    sha256: str
    width: int
    height: int


@dataclass(frozen=True)
class StepRun:
    """One ffmpeg command that ran, with its exact argv."""

    name: str
    argv: tuple[str, ...]
    elapsed_s: float


@dataclass(frozen=True)
class RenditionResult:
    mode: Mode
    plan: RenditionPlan
    outputs: tuple[RenditionOutput, ...]
    steps: tuple[StepRun, ...]
    elapsed_s: float
    #: True when a previous run's verified outputs were returned instead of running ffmpeg again.
    reused: bool
    #: loudnorm's first-pass measurement, when the plan normalises loudness.
    loudness_measured: LoudnormStats | None
    #: loudnorm's report of the applying pass (``normalization_type`` says linear or dynamic).
    loudness_applied: LoudnormStats | None

    @property
    def renditions(self) -> tuple[RenditionOutput, ...]:
        return tuple(o for o in self.outputs if o.role == "rendition")

    @property
    def main(self) -> RenditionOutput:
        return self.renditions[0]

    @property
    def poster(self) -> RenditionOutput:
        return next(o for o in self.outputs if o.role == "poster")

    @property
    def thumbnails(self) -> tuple[RenditionOutput, ...]:
        return tuple(o for o in self.outputs if o.role == "thumbnail")

    @property
    def argvs(self) -> list[list[str]]:
        return [list(s.argv) for s in self.steps]


def rendition_filename(name: str) -> str:
    return f"rendition-{name}.mp4"


def thumbnail_filename(k: int) -> str:
    return f"thumb-{k}.jpg"


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.part")


def _owned(name: str) -> bool:
    """File names this module writes in an output folder (finished or temporary)."""
    bare = name[1:-5] if name.startswith(".") and name.endswith(".part") else name
    return bare in (MANIFEST_NAME, POSTER_NAME) or bool(re.fullmatch(r"rendition-[\w-]+\.mp4|thumb-\d+\.jpg", bare))


def make_rendition(src: Path, out_dir: Path, plan: RenditionPlan, *, timeout: float) -> RenditionResult:
    """Carry out ``plan`` on ``src`` into ``out_dir``; ``timeout`` bounds each ffmpeg command.

    Raises :class:`MediaToolError` when ffmpeg fails or times out; nothing that looks finished is
    left behind (temporary files are removed, the previous manifest is untouched until the end).
    """
    started = time.monotonic()
    src = src.resolve()  # an absolute path is never read as an option or a protocol
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    st = src.stat()
    source_id = {"name": src.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    plan_key = plan.key()

    reused = _reuse(out_dir, plan, plan_key, source_id, started)
    if reused is not None:
        return reused

    for stale in out_dir.iterdir():
        if stale.name.startswith(".") and stale.name.endswith(".part") and _owned(stale.name):
            stale.unlink()  # left by a killed run; never complete

    s = plan.presets.stills
    videos = [out_dir / rendition_filename(n) for n in plan.output_names]
    poster = out_dir / POSTER_NAME
    thumbs = [out_dir / thumbnail_filename(k + 1) for k in range(s.thumbnail_count)]
    finals = [*videos, poster, *thumbs]
    steps: list[StepRun] = []
    measured: LoudnormStats | None = None
    applied: LoudnormStats | None = None

    def step(name: str, argv: list[str], *, reads: Path | None = None, writes: Sequence[Path] = ()) -> str:
        # A step that only measures ``reads`` or makes stills of it is kept by content (kepu.media.memo): a
        # forced rerun of an unchanged copy writes the same stills without decoding it again.
        if reads is None:
            done = run(argv, timeout=timeout)
        else:
            done = run_memoised(argv, reads=reads, writes=writes, timeout=timeout, runner=run)
        steps.append(StepRun(name=name, argv=tuple(argv), elapsed_s=round(done.elapsed_s, 3)))
        return done.stderr.decode("utf-8", errors="replace")

    try:
        if plan.mode == "remux":
            step("remux", remux_command(src, _tmp(videos[0]), plan))
        else:
            if plan.loudness is not None:
                argv = loudness_measure_command(src, plan.loudness, plan.presets)
                measured = _parse_or_fail(argv, step("loudness-measure", argv, reads=src))
                if not math.isfinite(measured.input_i) or measured.input_i < _SILENT_LUFS:
                    log.warning("audio of %s is silent (%s LUFS); no gain applied", src.name, measured.input_i)
                    measured = None
            argv = encode_command(src, [_tmp(v) for v in videos], plan, measured)
            stderr = step("encode", argv)
            if measured is not None:
                applied = _parse_or_fail(argv, stderr)
                log.info(
                    "loudness %.1f → %.1f LUFS (%s)", measured.input_i, applied.output_i, applied.normalization_type
                )

        main_tmp = _tmp(videos[0])
        duration = probe_file(main_tmp, timeout=timeout).duration_s or plan.duration_s or 0.0
        pts = picked_pts(step("poster-pick", poster_pick_command(main_tmp, duration, plan.presets), reads=main_tmp))
        if pts is not None:
            argv = poster_command(main_tmp, _tmp(poster), duration, plan.presets, pts)
            step("poster", argv, reads=main_tmp, writes=[_tmp(poster)])
        if not _nonempty(_tmp(poster)):
            log.info("no frame brighter than luma %g near %.1f s; taking the plain frame", s.poster_min_luma, duration)
            step("poster-fallback", poster_fallback_command(main_tmp, _tmp(poster), duration, plan.presets))
        argv = thumbnails_command(main_tmp, [_tmp(t) for t in thumbs], duration, plan.presets)
        step("thumbnails", argv, reads=main_tmp, writes=[_tmp(t) for t in thumbs])
        times = thumbnail_times(duration, len(thumbs))
        dark = [(_tmp(t), at) for t, at in zip(thumbs, times, strict=True) if not _nonempty(_tmp(t))]
        if dark:
            log.info("%d thumbnail window(s) with no bright, detailed frame; taking the plain frames", len(dark))
            step("thumbnails-fallback", plain_thumbnails_command(main_tmp, dark, plan.presets))
        missing = [p.name for p in finals if not _nonempty(_tmp(p))]
        if missing:
            raise MediaToolError(list(steps[-1].argv), f"ffmpeg wrote no {', '.join(missing)}")

        outputs = _describe(plan, videos, poster, thumbs, use_tmp=True)
        (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
        for path in finals:
            os.replace(_tmp(path), path)
        keep = {p.name for p in finals}
        for other in out_dir.iterdir():
            if other.is_file() and _owned(other.name) and other.name not in keep and other.name != MANIFEST_NAME:
                other.unlink()  # an output of an earlier, different plan (e.g. a 720p before a remux)
    except BaseException:
        for path in finals:
            _tmp(path).unlink(missing_ok=True)
        raise

    elapsed = round(time.monotonic() - started, 3)
    result = RenditionResult(
        mode=plan.mode,
        plan=plan,
        outputs=outputs,
        steps=tuple(steps),
        elapsed_s=elapsed,
        reused=False,
        loudness_measured=measured,
        loudness_applied=applied,
    )
    _write_manifest(out_dir, result, plan_key, source_id)
    log.info("rendition of %s (%s) done in %.1f s: %s", src.name, plan.mode, elapsed, [o.path.name for o in outputs])
    return result


def _parse_or_fail(argv: list[str], stderr: str) -> LoudnormStats:
    try:
        return parse_loudnorm_stats(stderr)
    except ValueError as exc:
        raise MediaToolError(argv, f"cannot read loudnorm statistics: {exc}") from exc


def _nonempty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def _describe(
    plan: RenditionPlan, videos: list[Path], poster: Path, thumbs: list[Path], *, use_tmp: bool
) -> tuple[RenditionOutput, ...]:
    s = plan.presets.stills
    sizes: list[tuple[OutputRole, str, Path, int, int]] = []
    if plan.mode == "remux":
        sizes.append(("rendition", REMUX_NAME, videos[0], plan.display_width, plan.display_height))
    else:
        for out, path in zip(plan.outputs, videos, strict=True):
            sizes.append(("rendition", out.name, path, out.preset.width, out.preset.height))
    sizes.append(("poster", "poster", poster, s.poster_width, s.poster_height))
    for k, path in enumerate(thumbs, start=1):
        sizes.append(("thumbnail", f"thumb-{k}", path, s.thumbnail_width, s.thumbnail_height))
    described = []
    for role, name, path, w, h in sizes:
        sha, size = sha256_file(_tmp(path) if use_tmp else path)
        described.append(RenditionOutput(role=role, name=name, path=path, size=size, sha256=sha, width=w, height=h))
    return tuple(described)


def _write_manifest(out_dir: Path, result: RenditionResult, plan_key: str, source: dict[str, Any]) -> None:
    data = {
        "format_version": FORMAT_VERSION,
        "plan_key": plan_key,
        "source": source,
        "mode": result.mode,
        "reasons": [r.code for r in result.plan.reasons],
        "outputs": [
            {
                "role": o.role,
                "name": o.name,
                "file": o.path.name,
                "size": o.size,
                "sha256": o.sha256,
                "width": o.width,
                "height": o.height,
            }
            for o in result.outputs
        ],
        "steps": [{"name": s.name, "argv": list(s.argv), "elapsed_s": s.elapsed_s} for s in result.steps],
        "elapsed_s": result.elapsed_s,
        "loudness_measured": _stats_dict(result.loudness_measured),
        "loudness_applied": _stats_dict(result.loudness_applied),
    }
    path = out_dir / MANIFEST_NAME
    tmp = _tmp(path)
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def _stats_dict(stats: LoudnormStats | None) -> dict[str, Any] | None:
    if stats is None:
        return None
    # JSON has no infinity; loudnorm's own strings round-trip through float() in _stats_from.
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in vars(stats).items()}


def _stats_from(data: Any) -> LoudnormStats | None:
    if not isinstance(data, dict):
        return None
    return LoudnormStats(
        input_i=float(data["input_i"]),
        input_tp=float(data["input_tp"]),
        input_lra=float(data["input_lra"]),
        input_thresh=float(data["input_thresh"]),
        output_i=float(data["output_i"]),
        output_tp=float(data["output_tp"]),
        output_lra=float(data["output_lra"]),
        output_thresh=float(data["output_thresh"]),
        normalization_type=str(data["normalization_type"]),
        target_offset=float(data["target_offset"]),
    )


def _reuse(
    out_dir: Path, plan: RenditionPlan, plan_key: str, source: dict[str, Any], started: float
) -> RenditionResult | None:
    """The previous run's result when its manifest matches this plan and source and its files verify."""
    path = out_dir / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("plan_key") != plan_key or data.get("source") != source:
        return None
    outputs = []
    try:
        for o in data["outputs"]:
            file = out_dir / o["file"]
            sha, size = sha256_file(file)
            if (sha, size) != (o["sha256"], o["size"]):
                log.info("%s changed since the last rendition; rendering again", file.name)
                return None
            outputs.append(
                RenditionOutput(
                    role=o["role"],
                    name=o["name"],
                    path=file,
                    size=size,
                    sha256=sha,
                    width=int(o["width"]),
                    height=int(o["height"]),
                )
            )
        steps = tuple(StepRun(s["name"], tuple(s["argv"]), float(s["elapsed_s"])) for s in data["steps"])
        measured = _stats_from(data.get("loudness_measured"))
        applied = _stats_from(data.get("loudness_applied"))
    except (OSError, KeyError, TypeError, ValueError):
        return None
    log.info("rendition in %s is up to date; reused", out_dir)
    return RenditionResult(
        mode=plan.mode,
        plan=plan,
        outputs=tuple(outputs),
        steps=steps,
        elapsed_s=round(time.monotonic() - started, 3),
        reused=True,
        loudness_measured=measured,
        loudness_applied=applied,
    )


def render_entry(
    src: Path,
    probe: ProbeResult,
    campaign: Campaign,
    loudness_lufs: float | None,
    out_dir: Path,
    *,
    timeout: float,
) -> RenditionResult:
    """Plan and make the publication copy, poster and thumbnails of one entry.

    ``probe`` is :func:`kepu.media.probe.probe_file` of ``src``; ``loudness_lufs`` is the integrated
    loudness the audio checks measured (``None`` when unknown). ``timeout`` bounds each ffmpeg
    command (see :func:`kepu.media.runner.media_timeout`).
    """
    plan = plan_rendition(probe, campaign, loudness_lufs=loudness_lufs)
    return make_rendition(src, out_dir, plan, timeout=timeout)
