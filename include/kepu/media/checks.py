"""Rules on a probed video: container, duration, size, aspect, resolution, streams.

Pure functions from a :class:`~kepu.media.probe.ProbeResult` and the campaign to findings.
"""

from __future__ import annotations

from kepu.campaign import Campaign
from kepu.findings import Finding, make_finding
from kepu.media.probe import ProbeResult
from kepu.rules import Code

STAGE = "probe"


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


def probe_findings(campaign: Campaign, probe: ProbeResult) -> list[Finding]:
    """Findings of RULES.md that ffprobe's answer alone decides."""
    rules = campaign.video
    out: list[Finding] = []

    def add(code: Code, **kw: object) -> None:
        out.append(make_finding(campaign, code, stage=STAGE, **kw))  # type: ignore[arg-type]

    if not probe.is_mp4:
        brand = probe.major_brand or "-"
        add(
            "V-CONTAINER",
            detail_zh=f"探测到的格式为 {probe.format_name}（品牌 {brand}），要求 MP4",
            detail_en=f"probed as {probe.format_name} (brand {brand}), MP4 required",
            value=f"{probe.format_name}/{brand}",
            limit=rules.container,
        )

    size = probe.size_bytes
    band = rules.size_bytes
    if size < band.error_min or size > band.error_max:
        add(
            "V-SIZE",
            detail_zh=f"{_mb(size)}，要求 100—300兆",
            detail_en=f"{_mb(size)}, required 100–300 MB",
            value=size,
            limit=f"{band.error_min}-{band.error_max}",
        )
    elif size < band.warn_min or size > band.warn_max:
        add(
            "V-SIZE",
            soft=True,
            detail_zh=f"{_mb(size)}，“兆”的两种理解下结论不同，请人工确认",
            detail_en=f"{_mb(size)}: inside 100–300 MB only under one reading of 兆; a person must look",
            value=size,
            limit=f"{band.warn_min}-{band.warn_max}",
        )

    video = probe.video
    if video is None:
        add("V-NO-VIDEO", detail_zh="文件中没有视频流", detail_en="the file holds no video stream")
    else:
        if probe.duration_s is not None:
            d = probe.duration_s
            if d < rules.duration_s.min or d > rules.duration_s.max:
                add(
                    "V-DURATION",
                    detail_zh=f"时长 {d:.1f} 秒，要求 {rules.duration_s.min:g}—{rules.duration_s.max:g} 秒",
                    detail_en=f"{d:.1f} s, required {rules.duration_s.min:g}–{rules.duration_s.max:g} s",
                    value=round(d, 3),
                    limit=f"{rules.duration_s.min:g}-{rules.duration_s.max:g}",
                )
        else:
            add(
                "V-DURATION",
                detail_zh="无法读出时长",
                detail_en="the duration cannot be read",
                limit=f"{rules.duration_s.min:g}-{rules.duration_s.max:g}",
            )
        w, h = video.display_width, video.display_height
        if w and h:
            aspect = w / h
            if abs(aspect / rules.aspect - 1) > rules.aspect_tolerance:
                add(
                    "V-ASPECT",
                    detail_zh=f"显示尺寸 {w}×{h}（{aspect:.3f}），要求 16:9",
                    detail_en=f"displayed {w}×{h} ({aspect:.3f}), 16:9 required",
                    value=f"{aspect:.4f}",
                    limit=f"{rules.aspect_ratio[0]}:{rules.aspect_ratio[1]}±{rules.aspect_tolerance:.0%}",
                )
            if w < rules.min_width or h < rules.min_height:
                add(
                    "V-RESOLUTION",
                    detail_zh=f"显示分辨率 {w}×{h}，要求不低于 {rules.min_width}×{rules.min_height}",
                    detail_en=f"displayed {w}×{h}, at least {rules.min_width}×{rules.min_height} required",
                    value=f"{w}x{h}",
                    limit=f"{rules.min_width}x{rules.min_height}",
                )
        else:
            add(
                "V-RESOLUTION",
                detail_zh="无法读出画面尺寸",
                detail_en="the picture size cannot be read",
                limit=f"{rules.min_width}x{rules.min_height}",
            )
    if probe.audio is None:
        add("V-NO-AUDIO", detail_zh="文件中没有音频流", detail_en="the file holds no audio stream")
    return out
