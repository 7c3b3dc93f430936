"""Everything the intake measures on one video: the probe rules, then the one-pass analysis.

One function serves the pipeline and ``kepu check``, so an entry is judged the same way in both.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kepu.campaign import Campaign
from kepu.errors import MaterialError, MediaToolError
from kepu.findings import Finding, make_finding
from kepu.media.checks import probe_findings
from kepu.media.probe import count_streams, probe_file, probe_summary

log = logging.getLogger(__name__)

#: The probe's timeout with the default floor (see :func:`kepu.media.runner.probe_timeout`).
PROBE_TIMEOUT_S = 120.0


def _unreadable(campaign: Campaign, name: str, stage: str, exc: Exception, what_zh: str, what_en: str) -> Finding:
    from kepu.media.runner import MemoryLimitError

    timed_out = isinstance(exc, MediaToolError) and exc.timed_out
    reason_zh = "超时" if timed_out else str(exc)
    reason_en = "timed out" if timed_out else str(exc)
    memory = exc if isinstance(exc, MemoryLimitError) else exc.__cause__
    if isinstance(memory, MemoryLimitError):
        # Said first and plainly: the file needed more memory than a tool may take, not "cannot be decoded".
        reason_zh = f"所需内存超过上限 {memory.limit_mb} MiB：{exc}"
        reason_en = f"it needed more memory than the limit of {memory.limit_mb} MiB: {exc}"
    return make_finding(
        campaign,
        "M-UNREADABLE",
        stage=stage,
        detail_zh=f"{what_zh} {name} 失败（{reason_zh}）",
        detail_en=f"{what_en} {name} failed ({reason_en})",
        value=name,
    )


def inspect_video(
    path: Path,
    campaign: Campaign,
    *,
    name: str,
    sidecars: list[Path],
    timeout_factor: float,
    timeout_floor_s: float | None = None,
) -> tuple[list[Finding], dict[str, Any]]:
    """Findings (stages ``probe`` and ``media``) and the JSON metrics of one video file.

    An unreadable file, or an ffmpeg that crashes or hangs (stopped by a timeout scaled to the
    file's duration, never below ``timeout_floor_s``), becomes an ``M-UNREADABLE`` finding: the
    run goes on.
    """
    from kepu.media.quality_checks import analyse_entry
    from kepu.media.runner import TIMEOUT_FLOOR_S, media_timeout, probe_timeout

    floor = TIMEOUT_FLOOR_S if timeout_floor_s is None else timeout_floor_s
    limit = campaign.video.max_streams
    try:
        streams = count_streams(path, timeout=probe_timeout(floor))
    except MediaToolError as exc:
        return [_unreadable(campaign, name, "probe", exc, "读取视频", "reading video")], {}
    if streams is not None and streams > limit:
        # Probing or decoding opens every stream: a file declaring hundreds is refused before that.
        log.warning("%s: %d streams, more than the limit of %d; not analysed", name, streams, limit)
        finding = make_finding(
            campaign,
            "M-UNREADABLE",
            stage="probe",
            value=streams,
            limit=limit,
            detail_zh=f"视频 {name} 含 {streams} 路流，超过上限 {limit} 路，未作分析",
            detail_en=f"video {name} has {streams} streams, more than the limit of {limit}; it was not analysed",
        )
        return [finding], {}
    try:
        probe = probe_file(path, timeout=probe_timeout(floor))
    except (MaterialError, MediaToolError) as exc:
        return [_unreadable(campaign, name, "probe", exc, "读取视频", "reading video")], {}
    findings = probe_findings(campaign, probe)
    summary = {"probe": probe_summary(probe)}
    if probe.video is None:
        return findings, summary
    try:
        media, metrics = analyse_entry(
            path,
            probe,
            campaign,
            sidecars=sidecars,
            timeout=media_timeout(probe.duration_s, timeout_factor, floor_s=floor),
        )
    except (MaterialError, MediaToolError) as exc:
        log.warning("%s: analysis failed: %s", name, exc)
        return [*findings, _unreadable(campaign, name, "media", exc, "分析视频", "analysing video")], summary
    return [*findings, *media], {**summary, **metrics}
