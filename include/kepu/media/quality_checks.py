"""Picture, sound, language and structure rules of RULES.md, from the measurements of a video.

:func:`quality_findings` is pure: campaign, probe and the measurements in, findings out. Every limit
comes from the campaign file. :func:`analyse_entry` is the one call the pipeline makes per video: it
takes the measurements (one decoding pass, one packet listing, the subtitle search) and returns the
findings with a JSON-serialisable record of what was measured.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kepu.campaign import Campaign
from kepu.findings import Finding, make_finding
from kepu.media.analysis import NOISE_RATE, NOISE_WINDOW, Analysis, Interval, NoiseWindow, analyse
from kepu.media.probe import ProbeResult
from kepu.media.subtitles import SubtitleResult, find_subtitles
from kepu.media.timing import Timing, packet_timing
from kepu.rules import Code

log = logging.getLogger(__name__)

STAGE = "media"
_METHOD_ZH = {
    "stream": "字幕流",
    "sidecar": "外挂字幕文件",
    "ocr": "画面文字识别",
    "ocr-unavailable": "画面文字识别（未安装）",
}


class _Out:
    """Collects findings of one video, all at the media stage."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
        self.items: list[Finding] = []

    def add(self, code: Code, **kw: Any) -> None:
        self.items.append(make_finding(self.campaign, code, stage=STAGE, **kw))


def _t(seconds: float) -> str:
    return f"{seconds:.1f}"


def body_overlap(segment: Interval, edge_s: float, duration_s: float | None) -> float:
    """Seconds of ``segment`` inside the body: after the first ``edge_s`` and before the last ``edge_s``."""
    end = duration_s if duration_s is not None else max(segment.end_s, edge_s)
    lo, hi = edge_s, max(edge_s, end - edge_s)
    return max(0.0, min(segment.end_s, hi) - max(segment.start_s, lo))


def subtract(segment: Interval, others: Sequence[Interval]) -> float:
    """Seconds of ``segment`` not covered by any of ``others``."""
    left = segment.duration_s
    for o in others:
        left -= max(0.0, min(segment.end_s, o.end_s) - max(segment.start_s, o.start_s))
    return max(0.0, left)


@dataclass(frozen=True)
class NoiseFloor:
    """The pauses of the body, from the noise branch's windows (see :func:`noise_floor`).

    ``floor_dbfs`` is the level at or below which the quietest ``quiet_share`` of the windows lie;
    ``flatness`` and ``hum_share`` are medians over those windows that are not digital silence.
    """

    floor_dbfs: float
    flatness: float | None
    hum_share: float | None
    windows: int
    quiet_windows: int
    at_s: float


def noise_floor(
    windows: Sequence[NoiseWindow], *, quiet_share: float, edge_s: float, duration: float | None
) -> NoiseFloor | None:
    """The noise floor of the body: the quietest ``quiet_share`` of its windows are taken as the pauses.

    The first and last ``edge_s`` seconds (a silent or musical opening and closing) are left out
    unless that leaves too few windows to judge (a clip shorter than both edges).
    """
    if not windows:
        return None
    end = duration if duration is not None else windows[-1].time_s
    body = [w for w in windows if edge_s <= w.time_s and w.time_s + NOISE_WINDOW / NOISE_RATE <= end - edge_s]
    chosen = body if len(body) >= 10 else list(windows)
    chosen.sort(key=lambda w: w.level_dbfs)
    k = max(1, math.ceil(quiet_share * len(chosen)))
    quiet = chosen[:k]
    audible = [w for w in quiet if math.isfinite(w.level_dbfs)]
    flat = [w.flatness for w in audible if w.flatness is not None and math.isfinite(w.flatness)]
    hum = [h for w in audible if (h := w.hum_share) is not None]
    return NoiseFloor(
        floor_dbfs=quiet[-1].level_dbfs,
        flatness=statistics.median(flat) if flat else None,
        hum_share=statistics.median(hum) if hum else None,
        windows=len(chosen),
        quiet_windows=k,
        at_s=quiet[-1].time_s,
    )


def decoded_end(analysis: Analysis, timing: Timing) -> float | None:
    """Where the decoded programme ends (s): the later of the picture's and the sound's ends.

    The picture's end is its first packet plus the decoded length; the sound's is the last decoded
    window. None when the pass measured neither.
    """
    ends = []
    if analysis.video_decoded_s is not None and analysis.video_decoded_s > 0:
        start = timing.video.start_s if timing.video is not None else 0.0
        ends.append(start + analysis.video_decoded_s)
    if analysis.audio_decoded_end_s is not None:
        ends.append(analysis.audio_decoded_end_s)
    return max(ends) if ends else None


def quality_findings(
    campaign: Campaign,
    probe: ProbeResult,
    analysis: Analysis,
    timing: Timing,
    subtitles: SubtitleResult,
    *,
    duration: float | None,
) -> list[Finding]:
    """Every media-stage finding of one video (see RULES.md, picture quality to structure)."""
    out = _Out(campaign)
    truncated = _truncation(out, probe, analysis, timing)
    if probe.video is not None:
        _frame_timing(out, timing)
        _segments(out, analysis, duration)
        _clarity(out, probe.video.codec, analysis)
        _levels(out, analysis)
        _interlace(out, analysis)
        _structure(out, analysis, duration)
    _codecs(out, probe)
    if probe.audio is not None:
        _loudness(out, analysis)
        _noise(out, analysis, duration)
        _silence(out, analysis, duration)
        # Where a file is cut, its streams end wherever the cut fell: that is no sync fault.
        _sync(out, timing, end=not truncated)
    _subtitle(out, subtitles)
    return out.items


# --- the file as a whole ---------------------------------------------------------------------------


def declared_end(probe: ProbeResult, timing: Timing) -> float | None:
    """Where the header says the programme ends (s): the later of the picture's and the sound's
    declared ends (each stream's first packet plus its declared duration).

    The streams' own durations, not the container's: the container's is the longest of all its
    tracks, and a subtitle track whose last cue outlasts the picture is no missing data. Falls back
    to the container's duration when the streams state none.
    """
    ends = []
    for stream, span in ((probe.video, timing.video), (probe.audio, timing.audio)):
        if stream is not None and stream.duration_s is not None and stream.duration_s > 0:
            ends.append((span.start_s if span is not None else 0.0) + stream.duration_s)
    return max(ends) if ends else probe.duration_s


def _truncation(out: _Out, probe: ProbeResult, analysis: Analysis, timing: Timing) -> bool:
    """V-TRUNCATED: the decoding, or the packets, stop well before the header's duration. True if so."""
    declared = declared_end(probe, timing)
    if declared is None or declared <= 0:
        return False
    tolerance = out.campaign.video.truncation_tolerance_s
    decoded = decoded_end(analysis, timing)
    spans = [s for s in (timing.video, timing.audio) if s is not None]
    packets = max(s.end_s for s in spans) if spans else None
    ends = [e for e in (decoded, packets) if e is not None]
    if not ends or declared - min(ends) <= tolerance:
        return False
    end = min(ends)
    parts_zh, parts_en = [], []
    if analysis.video_decoded_s is not None:
        parts_zh.append(f"画面解码 {analysis.video_decoded_s:.1f} 秒")
        parts_en.append(f"picture decoded for {analysis.video_decoded_s:.1f} s")
    if analysis.audio_decoded_end_s is not None:
        parts_zh.append(f"声音解码至 {analysis.audio_decoded_end_s:.1f} 秒")
        parts_en.append(f"sound decoded to {analysis.audio_decoded_end_s:.1f} s")
    if packets is not None:
        parts_zh.append(f"数据包止于 {packets:.1f} 秒")
        parts_en.append(f"packets end at {packets:.1f} s")
    errors_zh = errors_en = ""
    if analysis.read_error_count:
        # The log's context pointer (" @ 0x55…") changes from run to run and means nothing to a reader.
        last = re.sub(r" @ 0x[0-9a-fA-F]+", "", analysis.read_errors[-1]) if analysis.read_errors else ""
        errors_zh = f"；读取报错 {analysis.read_error_count} 处（最后一处：{last}）"
        errors_en = f"; {analysis.read_error_count} read error(s), the last: {last}"
    out.add(
        "V-TRUNCATED",
        detail_zh=f"文件头声明时长 {declared:.1f} 秒，实际只有约 {end:.1f} 秒（{'，'.join(parts_zh)}），"
        f"多为上传或下载中断，请重新提交完整文件{errors_zh}",
        detail_en=f"the header declares {declared:.1f} s but only about {end:.1f} s is there ({', '.join(parts_en)}), "
        f"likely an interrupted upload or download; send the whole file again{errors_en}",
        value=round(end, 2),
        limit=f">={declared - tolerance:.1f}s (declared {declared:.1f}s)",
        at_seconds=round(end, 2),
    )
    return True


# --- picture --------------------------------------------------------------------------------------


def _frame_timing(out: _Out, timing: Timing) -> None:
    ft = timing.frames
    if ft is None:
        return
    rules = out.campaign.video.frame_timing
    if ft.dropped:
        worst = ft.gaps[0] if ft.gaps else None
        longest = worst.interval_s if worst else ft.max_interval_s
        hard = ft.drop_ratio >= rules.error_drop_ratio or longest >= rules.error_gap_s
        out.add(
            "V-FRAME-DROP",
            soft=not hard,
            detail_zh=f"约缺 {ft.dropped} 帧（{ft.drop_ratio:.2%}），最长间隔 {longest:.3f} 秒，"
            f"正常帧间隔 {ft.nominal_s * 1000:.1f} 毫秒",
            detail_en=f"about {ft.dropped} frame(s) missing ({ft.drop_ratio:.2%}), longest gap {longest:.3f} s, "
            f"frame interval {ft.nominal_s * 1000:.1f} ms",
            value=f"{ft.drop_ratio:.4f}/{longest:.3f}s",
            limit=f"<{rules.error_drop_ratio:g}/<{rules.error_gap_s:g}s",
            at_seconds=worst.at_s if worst else ft.max_interval_at_s,
        )
    elif ft.vfr:
        out.add(
            "V-FRAME-DROP",
            soft=True,
            detail_zh=f"可变帧率：{ft.short_intervals} 个帧间隔明显短于正常的 {ft.nominal_s * 1000:.1f} 毫秒",
            detail_en=f"variable frame rate: {ft.short_intervals} frame interval(s) well below the nominal "
            f"{ft.nominal_s * 1000:.1f} ms",
            value=f"vfr:{ft.short_intervals}",
            limit="constant frame rate",
        )


def _segments(out: _Out, analysis: Analysis, duration: float | None) -> None:
    video = out.campaign.video
    blacks = [(b, body_overlap(b, video.black.edge_s, duration)) for b in analysis.blacks]
    _longest(out, "V-BLACK", [(b, d) for b, d in blacks if d >= video.black.min_s], "黑场", "black picture")
    # A black hold is also a still picture: only what is frozen and not black is a freeze.
    freezes = []
    for f in analysis.freezes:
        inside = body_overlap(f, video.freeze.edge_s, duration)
        not_black = subtract(f, analysis.blacks)
        freezes.append((f, min(inside, not_black)))
    _longest(out, "V-FREEZE", [(f, d) for f, d in freezes if d >= video.freeze.min_s], "画面定格", "frozen picture")


def _longest(out: _Out, code: Code, segments: list[tuple[Interval, float]], zh: str, en: str) -> None:
    """One finding per code: the longest segment, with how many there are and their total length."""
    if not segments:
        return
    seg, length = max(segments, key=lambda s: s[1])
    rule = out.campaign.video.black if code == "V-BLACK" else out.campaign.video.freeze
    total = sum(d for _, d in segments)
    out.add(
        code,
        detail_zh=f"{_t(seg.start_s)}—{_t(seg.end_s)} 秒{zh} {length:.1f} 秒（片头片尾各 {rule.edge_s:g} 秒除外）；"
        f"共 {len(segments)} 处，合计 {total:.1f} 秒",
        detail_en=f"{en} for {length:.1f} s at {_t(seg.start_s)}–{_t(seg.end_s)} s (first and last "
        f"{rule.edge_s:g} s excepted); {len(segments)} such segment(s), {total:.1f} s in all",
        value=round(length, 2),
        limit=f"<{rule.min_s:g}s",
        at_seconds=round(seg.start_s, 2),
    )


def _clarity(out: _Out, codec: str, analysis: Analysis) -> None:
    rules = out.campaign.video.clarity
    bpp = analysis.bits_per_pixel
    minimum = rules.min_bits_per_pixel.get(codec)
    if bpp is not None and minimum is not None and bpp < minimum:
        out.add(
            "V-CLARITY",
            detail_zh=f"码率偏低：每像素 {bpp:.3f} 比特，{codec} 至少需要 {minimum:g}",
            detail_en=f"bitrate too low: {bpp:.3f} bits per pixel, {codec} needs at least {minimum:g}",
            value=round(bpp, 4),
            limit=f">={minimum:g} bpp",
        )
    blurs = [(s.blur, s.time_s) for s in analysis.samples if s.blur is not None and math.isfinite(s.blur)]
    if blurs:
        mean = sum(b for b, _ in blurs) / len(blurs)
        if mean > rules.max_blur:
            worst = max(blurs)
            out.add(
                "V-CLARITY",
                detail_zh=f"画面模糊：{len(blurs)} 个抽样帧的平均边缘宽度 {mean:.1f} 像素，"
                f"最模糊处在 {_t(worst[1])} 秒",
                detail_en=f"blurred picture: mean edge width {mean:.1f} px over {len(blurs)} sampled frames, "
                f"blurriest at {_t(worst[1])} s",
                value=round(mean, 2),
                limit=f"<={rules.max_blur:g}",
                at_seconds=round(worst[1], 2),
            )


def _levels(out: _Out, analysis: Analysis) -> None:
    rules = out.campaign.video.levels
    brng = [(s.out_of_range, s.time_s) for s in analysis.samples if s.out_of_range is not None]
    if brng:
        mean = sum(v for v, _ in brng) / len(brng)
        if mean > rules.max_out_of_range_ratio:
            worst = max(brng)
            out.add(
                "V-LEVELS",
                detail_zh=f"抽样帧平均 {mean:.1%} 的像素超出广播安全电平，最多处在 {_t(worst[1])} 秒（{worst[0]:.1%}）",
                detail_en=f"{mean:.1%} of pixels outside the legal range on average over sampled frames, "
                f"most at {_t(worst[1])} s ({worst[0]:.1%})",
                value=round(mean, 4),
                limit=f"<={rules.max_out_of_range_ratio:g}",
                at_seconds=round(worst[1], 2),
            )
    sats = [(s.sat_high, s.time_s) for s in analysis.samples if s.sat_high is not None]
    if sats:
        mean = sum(v for v, _ in sats) / len(sats)
        if mean > rules.max_saturation:
            worst = max(sats)
            out.add(
                "V-LEVELS",
                detail_zh=f"饱和度异常：抽样帧饱和度第90百分位平均 {mean:.0f}，最高处在 {_t(worst[1])} 秒",
                detail_en=f"abnormal saturation: 90th-percentile saturation averages {mean:.0f} over sampled "
                f"frames, highest at {_t(worst[1])} s",
                value=round(mean, 1),
                limit=f"<={rules.max_saturation:g}",
                at_seconds=round(worst[1], 2),
            )


def _interlace(out: _Out, analysis: Analysis) -> None:
    counts = analysis.interlace
    ratio = counts.interlaced_ratio if counts else None
    # Interlaced when most frames idet could decide are: still pictures stay undetermined.
    if counts is None or ratio is None or ratio <= 0.5:
        return
    order = "TFF" if counts.tff >= counts.bff else "BFF"
    out.add(
        "V-INTERLACED",
        detail_zh=f"抽样帧中 {counts.interlaced} 帧为隔行（{order}），{counts.progressive} 帧为逐行",
        detail_en=f"{counts.interlaced} sampled frame(s) interlaced ({order}), {counts.progressive} progressive",
        value=f"{ratio:.2f}",
        limit="progressive",
    )


def _structure(out: _Out, analysis: Analysis, duration: float | None) -> None:
    if duration is None or duration <= 0:
        return
    window = out.campaign.structure.edge_window_s
    # A cut, a black hold or a fade (which passes through black or scores as a scene change)
    # inside the window marks where an opening ends or a closing begins.
    opening = any(0 < c.time_s <= window for c in analysis.cuts) or any(b.start_s < window for b in analysis.blacks)
    closing = any(duration - window <= c.time_s < duration for c in analysis.cuts) or any(
        b.end_s > duration - window for b in analysis.blacks
    )
    if opening and closing:
        return
    missing_zh = "、".join(n for n, ok in (("片头", opening), ("片尾", closing)) if not ok)
    where_en = " and ".join(w for w, ok in (("start", opening), ("end", closing)) if not ok)
    out.add(
        "S-STRUCTURE",
        detail_zh=f"开头和结尾 {window:g} 秒内未发现{missing_zh}的转场、淡入淡出或黑场",
        detail_en=f"no cut, fade or black within {window:g} s of the {where_en}",
        value=f"opening={'yes' if opening else 'no'},closing={'yes' if closing else 'no'}",
        limit=f"{window:g}s",
        at_seconds=0.0 if not opening else round(max(0.0, duration - window), 2),
    )


def _codecs(out: _Out, probe: ProbeResult) -> None:
    rules = out.campaign.video
    odd = []
    if probe.video is not None and probe.video.codec not in rules.playable_video_codecs:
        odd.append(f"video {probe.video.codec}")
    if probe.audio is not None and probe.audio.codec not in rules.playable_audio_codecs:
        odd.append(f"audio {probe.audio.codec}")
    if not odd:
        return
    allowed = "/".join(rules.playable_video_codecs + rules.playable_audio_codecs)
    out.add(
        "V-CODEC",
        detail_zh=f"{'，'.join(odd)}（通用格式为 {allowed}）",
        detail_en=f"{', '.join(odd)} (playable everywhere: {allowed})",
        value=",".join(odd),
        limit=allowed,
    )


# --- sound ----------------------------------------------------------------------------------------


def _loudness(out: _Out, analysis: Analysis) -> None:
    rules = out.campaign.audio
    loud = analysis.loudness
    if loud is not None:
        band = rules.loudness_lufs
        i = loud.integrated_lufs
        hard = i < band.error_min or i > band.error_max
        if hard or i < band.warn_min or i > band.warn_max:
            word_zh, word_en = ("过小", "too quiet") if i < band.warn_min else ("过大", "too loud")
            shown = (band.error_min, band.error_max) if hard else (band.warn_min, band.warn_max)
            out.add(
                "A-LOUDNESS",
                soft=not hard,
                detail_zh=f"整体响度 {i:.1f} LUFS，音量{word_zh}（要求 {shown[0]:g} … {shown[1]:g} LUFS）",
                detail_en=f"integrated loudness {i:.1f} LUFS, {word_en} (required {shown[0]:g} … {shown[1]:g} LUFS)",
                value=i,
                limit=f"{shown[0]:g}..{shown[1]:g} LUFS",
            )
        tp = loud.true_peak_dbtp
        if tp is not None and tp > rules.true_peak_max_dbtp:
            out.add(
                "A-TRUE-PEAK",
                detail_zh=f"真峰值 {tp:.1f} dBTP，超过 {rules.true_peak_max_dbtp:g} dBTP",
                detail_en=f"true peak {tp:.1f} dBTP, above {rules.true_peak_max_dbtp:g} dBTP",
                value=tp,
                limit=f"<={rules.true_peak_max_dbtp:g} dBTP",
            )
        if loud.lra_lu > rules.lra_max_lu:
            out.add(
                "A-LRA",
                detail_zh=f"响度范围 {loud.lra_lu:.1f} LU，超过 {rules.lra_max_lu:g} LU",
                detail_en=f"loudness range {loud.lra_lu:.1f} LU, above {rules.lra_max_lu:g} LU",
                value=loud.lra_lu,
                limit=f"<={rules.lra_max_lu:g} LU",
            )
    stats = analysis.audio_stats
    if stats is not None and stats.clipped_runs > rules.clipping_max_runs:
        out.add(
            "A-CLIPPING",
            detail_zh=f"16 位满幅削波 {stats.clipped_runs} 处，允许 {rules.clipping_max_runs} 处",
            detail_en=f"{stats.clipped_runs} clipped run(s) at 16-bit full scale, {rules.clipping_max_runs} allowed",
            value=stats.clipped_runs,
            limit=f"<={rules.clipping_max_runs}",
        )


def _noise(out: _Out, analysis: Analysis, duration: float | None) -> None:
    """A-NOISE: the pauses stay above the floor and what fills them is noise (broadband or hum).

    A tone or music under the narration also fills the pauses, but is neither flat nor at the
    mains harmonics, so it is not background noise.
    """
    rules = out.campaign.audio
    nf = noise_floor(
        analysis.noise_windows,
        quiet_share=rules.noise.quiet_share,
        edge_s=out.campaign.structure.edge_window_s,
        duration=duration,
    )
    if nf is None or not math.isfinite(nf.floor_dbfs) or nf.floor_dbfs <= rules.noise_floor_max_dbfs:
        return
    broadband = nf.flatness is not None and nf.flatness >= rules.noise.min_flatness
    hum = nf.hum_share is not None and nf.hum_share >= rules.noise.min_hum_share
    if not (broadband or hum):
        return
    mains = "/".join(f"{f:g}" for f in rules.noise.mains_hz)
    if hum:
        kind_zh = f"交流哼声（{mains} Hz 及其谐波占 {nf.hum_share:.0%} 的能量）"
        kind_en = f"mains hum ({mains} Hz and harmonics carry {nf.hum_share:.0%} of the power)"
    else:
        kind_zh = f"宽带噪声（频谱平坦度 {nf.flatness:.2f}）"
        kind_en = f"broadband noise (spectral flatness {nf.flatness:.2f})"
    share = f"{rules.noise.quiet_share:.0%}"
    out.add(
        "A-NOISE",
        detail_zh=f"停顿处（正片最安静的 {share}）本底电平 {nf.floor_dbfs:.1f} dBFS，高于 "
        f"{rules.noise_floor_max_dbfs:g} dBFS，为{kind_zh}",
        detail_en=f"noise floor {nf.floor_dbfs:.1f} dBFS in the pauses (the quietest {share} of the body), above "
        f"{rules.noise_floor_max_dbfs:g} dBFS: {kind_en}",
        value=round(nf.floor_dbfs, 1),
        limit=f"<={rules.noise_floor_max_dbfs:g} dBFS",
        at_seconds=round(nf.at_s, 2),
    )


def _silence(out: _Out, analysis: Analysis, duration: float | None) -> None:
    rules = out.campaign.audio
    # The opening and closing may be silent by design; the body is what the structure rule calls it.
    edge = out.campaign.structure.edge_window_s
    long = [(s, d) for s in analysis.silences if (d := body_overlap(s, edge, duration)) >= rules.silence_min_s]
    if not long:
        return
    seg, length = max(long, key=lambda s: s[1])
    out.add(
        "A-SILENCE",
        detail_zh=f"{_t(seg.start_s)}—{_t(seg.end_s)} 秒无声 {length:.1f} 秒（低于 {rules.noise_floor_max_dbfs:g} dBFS）；"
        f"正片中共 {len(long)} 处",
        detail_en=f"silent for {length:.1f} s at {_t(seg.start_s)}–{_t(seg.end_s)} s (below "
        f"{rules.noise_floor_max_dbfs:g} dBFS); {len(long)} such gap(s) in the body",
        value=round(length, 2),
        limit=f"<{rules.silence_min_s:g}s",
        at_seconds=round(seg.start_s, 2),
    )


def _sync(out: _Out, timing: Timing, *, end: bool = True) -> None:
    limits = out.campaign.audio.sync_ms
    checks = [("开头", "start", timing.start_offset_ms, timing.video.start_s if timing.video else None)]
    if end:
        checks.append(("结尾", "end", timing.end_offset_ms, timing.video.end_s if timing.video else None))
    for where_zh, where_en, offset, at in checks:
        if offset is None:
            continue
        lag = offset > 0
        warn = limits.warn_audio_lag if lag else limits.warn_audio_lead
        if abs(offset) <= warn:
            continue
        hard = abs(offset) > limits.error
        zh = "声音晚于画面" if lag else "声音早于画面"
        en = "sound after picture (audio lag)" if lag else "sound before picture (audio lead)"
        out.add(
            "A-SYNC",
            soft=not hard,
            detail_zh=f"{where_zh}{zh} {abs(offset):.0f} 毫秒（允许 {warn:g} 毫秒）",
            detail_en=f"{en} by {abs(offset):.0f} ms at the {where_en} ({warn:g} ms allowed)",
            value=round(offset, 1),
            limit=f"{limits.error:g}ms" if hard else f"-{limits.warn_audio_lead:g}..+{limits.warn_audio_lag:g}ms",
            at_seconds=round(at, 2) if at is not None else None,
        )


# --- language -------------------------------------------------------------------------------------


def _subtitle(out: _Out, subtitles: SubtitleResult) -> None:
    if subtitles.found:
        return
    looked_zh = "、".join(_METHOD_ZH[m] for m in subtitles.looked)
    looked_en = ", ".join(subtitles.looked)
    note_zh = "；未检查画面内嵌字幕" if "ocr-unavailable" in subtitles.looked else ""
    note_en = "; burned-in subtitles were not checked" if "ocr-unavailable" in subtitles.looked else ""
    value: str | float = subtitles.method
    limit = "Chinese subtitles"
    if subtitles.ocr_coverage is not None:
        # Burned-in text was read: say how much of the speech it covered and what it said.
        need = out.campaign.language.ocr_min_coverage
        read_zh = "、".join(f"「{line}」" for line in subtitles.ocr_lines) or "无"
        read_en = " / ".join(subtitles.ocr_lines) or "none"
        note_zh = (
            f"；画面内嵌中文字幕覆盖 {subtitles.ocr_coverage:.0%} 的讲话时刻"
            f"（抽查 {subtitles.ocr_samples} 处，需 {need:.0%}），识别到：{read_zh}"
        )
        note_en = (
            f"; burned-in Chinese text on {subtitles.ocr_coverage:.0%} of {subtitles.ocr_samples} sampled moments "
            f"of speech ({need:.0%} needed), read: {read_en}"
        )
        value, limit = subtitles.ocr_coverage, f">={need:g}"
    out.add(
        "L-SUBTITLE",
        detail_zh=f"已检查：{looked_zh}{note_zh}",
        detail_en=f"looked at: {looked_en}{note_en}",
        value=value,
        limit=limit,
    )


# --- the pipeline's entry point -------------------------------------------------------------------


def analyse_entry(
    path: Path, probe: ProbeResult, campaign: Campaign, *, sidecars: list[Path], timeout: float
) -> tuple[list[Finding], dict[str, Any]]:
    """Measure one video and judge it: the media-stage findings and a JSON-serialisable metrics dict.

    ``timeout`` bounds each media command (the decoding pass, the packet listing, each subtitle
    extraction); :func:`kepu.media.runner.media_timeout` gives one proportional to the duration.
    The metrics hold the fingerprint in its stored form (:meth:`kepu.media.fingerprint.VideoHash.to_text`)
    under ``"fingerprint"`` for the duplicate search.
    """
    analysis = analyse(path, probe, campaign, timeout=timeout)
    timing = packet_timing(path, probe, campaign, timeout=timeout)
    subs = find_subtitles(path, probe, campaign, sidecars=sidecars, timeout=timeout, silences=analysis.silences)
    # The rules that look at the end of the programme look where it really ends when the file is cut.
    duration = probe.duration_s
    declared, end = declared_end(probe, timing), decoded_end(analysis, timing)
    if declared is not None and end is not None and end < declared - campaign.video.truncation_tolerance_s:
        duration = end
    findings = quality_findings(campaign, probe, analysis, timing, subs, duration=duration)
    return findings, metrics(analysis, timing, subs, campaign=campaign, duration=duration)


def metrics(
    analysis: Analysis,
    timing: Timing,
    subtitles: SubtitleResult,
    *,
    campaign: Campaign | None = None,
    duration: float | None = None,
) -> dict[str, Any]:
    """What was measured, as plain JSON values (non-finite numbers as the strings ``"inf"``/``"-inf"``).

    The noise branch's windows are summed up (the floor of the pauses, under ``campaign``'s rules)
    rather than kept one by one.
    """
    data = dataclasses.asdict(analysis)
    data.pop("noise_windows", None)
    data["noise_windows"] = len(analysis.noise_windows)
    if campaign is not None:
        nf = noise_floor(
            analysis.noise_windows,
            quiet_share=campaign.audio.noise.quiet_share,
            edge_s=campaign.structure.edge_window_s,
            duration=duration,
        )
        data["noise"] = dataclasses.asdict(nf) if nf is not None else None
    data["decoded_end_s"] = decoded_end(analysis, timing)
    data["fingerprint"] = analysis.fingerprint.to_text() if analysis.fingerprint else None
    data["fingerprint_frames"] = analysis.fingerprint.frames if analysis.fingerprint else 0
    # Derived figures the rules use, so a reviewer reads them without recomputing.
    if analysis.audio_stats is not None:
        data["audio_stats"]["clipped_runs"] = analysis.audio_stats.clipped_runs
    if analysis.interlace is not None:
        data["interlace"]["interlaced_ratio"] = analysis.interlace.interlaced_ratio
    data["timing"] = dataclasses.asdict(timing)
    if timing.frames is not None:
        data["timing"]["frames"]["vfr"] = timing.frames.vfr
    data["timing"]["start_offset_ms"] = timing.start_offset_ms
    data["timing"]["end_offset_ms"] = timing.end_offset_ms
    data["subtitles"] = dataclasses.asdict(subtitles)
    result: dict[str, Any] = _jsonable(data)
    return result


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
