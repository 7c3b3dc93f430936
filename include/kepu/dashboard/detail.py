"""Everything the page of one submission shows, gathered from the records, the store and the campaign."""

from __future__ import annotations

import math
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kepu.campaign import Campaign
from kepu.db.repository import FindingRecord, MaterialRecord, Records, SubmissionRecord
from kepu.findings import SEVERITY_ORDER
from kepu.intake.export import publication_status as publication_text

#: File types a browser may show inline from the dashboard's origin; anything else is a download, so a
#: submitted HTML or SVG file can never run in the dashboard's origin.
INLINE_TYPES = frozenset(
    {"image/jpeg", "image/png", "image/webp", "image/gif", "video/mp4", "audio/mp4", "audio/mpeg", "application/pdf"}
)


@dataclass(frozen=True)
class MediaItem:
    key: str
    role: str
    name: str
    url: str
    size: int | None = None
    width: int | None = None
    height: int | None = None

    @property
    def label(self) -> str:
        size = f"{self.width}×{self.height}" if self.width and self.height else ""
        return f"{self.name} {size}".strip()


@dataclass(frozen=True)
class FindingRow:
    code: str
    severity: str
    title_zh: str
    title_en: str
    message_zh: str
    message_en: str
    value: str | None
    limit_value: str | None
    at_seconds: float | None
    stage: str


@dataclass
class SubmissionPage:
    submission: SubmissionRecord
    materials: list[tuple[MaterialRecord, str]]  # (material, URL)
    findings: list[FindingRow]
    probe: list[tuple[str, str]]
    form: dict[str, Any]
    details: dict[str, Any]
    checklist: list[str]
    renditions: list[MediaItem] = field(default_factory=list)
    posters: list[MediaItem] = field(default_factory=list)
    thumbnails: list[MediaItem] = field(default_factory=list)
    publication: str = ""
    audit: list[dict[str, Any]] = field(default_factory=list)
    override: dict[str, Any] | None = None

    @property
    def player(self) -> MediaItem | None:
        """The rendition to play: the largest one."""
        return max(self.renditions, key=lambda m: m.height or 0, default=None)

    @property
    def poster(self) -> MediaItem | None:
        frames = [p for p in self.posters if not p.name.startswith("cover")]
        return next(iter(frames or self.posters), None)


def content_type(key: str) -> str:
    return mimetypes.guess_type(key, strict=False)[0] or "application/octet-stream"


def allowed_keys(records: Records, submission_id: str) -> dict[str, str]:
    """The object keys the dashboard may serve for one submission, with their role."""
    keys = {m.object_key: m.role for m in records.list_materials(submission_id)}
    rendition = records.get_details(submission_id).get("rendition") or {}
    for out in (rendition.get("outputs") or {}).values():
        if isinstance(out, dict) and out.get("key"):
            keys[str(out["key"])] = str(out.get("role") or "rendition")
    return keys


def _num(value: Any) -> float | None:
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _get(data: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(data, dict):
            return None
        data = data.get(name)
    return data


def _probe_rows(probe: dict[str, Any]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    container = " · ".join(str(x) for x in (probe.get("container"), probe.get("brand")) if x)
    if container:
        rows.append(("封装 container", container))
    v = probe.get("video")
    if isinstance(v, dict):
        coded, shown = v.get("coded") or [], v.get("display") or []
        size = "×".join(str(x) for x in shown)
        if coded and coded != shown:
            size += f"（编码 coded {'×'.join(str(x) for x in coded)}，旋转 rotation {v.get('rotation') or 0}°）"
        codec = " ".join(str(x) for x in (v.get("codec"), v.get("profile"), v.get("pix_fmt")) if x)
        rows.append(("视频流 video", f"{codec} · {size}" if size else codec))
    a = probe.get("audio")
    if isinstance(a, dict):
        parts = [str(a.get("codec") or "?")]
        if a.get("sample_rate"):
            parts.append(f"{a['sample_rate']} Hz")
        if a.get("layout") or a.get("channels"):
            parts.append(str(a.get("layout") or f"{a['channels']} ch"))
        rows.append(("音频流 audio", " · ".join(parts)))
    else:
        rows.append(("音频流 audio", "无 none"))
    bit_rate = _num(probe.get("bit_rate"))
    if bit_rate:
        rows.append(("总码率 bit rate", f"{bit_rate / 1e6:.2f} Mb/s"))
    return rows


def probe_summary(metrics: dict[str, Any], video: MaterialRecord | None) -> list[tuple[str, str]]:
    """The measured figures an operator reads first, as (label, value); missing ones are left out."""
    rows: list[tuple[str, str]] = []
    if video is not None:
        rows.append(("视频文件 video file", f"{video.filename} · {video.size_bytes / 1e6:.1f} MB"))
    probe = metrics.get("probe")
    if isinstance(probe, dict):
        rows.extend(_probe_rows(probe))
    start, end = _num(_get(metrics, "timing", "video", "start_s")), _num(_get(metrics, "timing", "video", "end_s"))
    if start is not None and end is not None:
        rows.append(("时长 duration", f"{end - start:.1f} s"))
    nominal = _num(_get(metrics, "timing", "frames", "nominal_s"))
    frames = _get(metrics, "timing", "frames", "frames")
    if nominal:
        rows.append(("帧率 frame rate", f"{1 / nominal:.3f} fps · {frames} 帧 frames"))
    dropped, ratio = _get(metrics, "timing", "frames", "dropped"), _num(_get(metrics, "timing", "frames", "drop_ratio"))
    if dropped is not None and ratio is not None:
        rows.append(("丢帧 dropped frames", f"{dropped} ({ratio * 100:.2f} %)"))
    bpp = _num(metrics.get("bits_per_pixel"))
    if bpp is not None:
        rows.append(("每像素比特 bits per pixel", f"{bpp:.3f}"))
    lufs = _num(_get(metrics, "loudness", "integrated_lufs"))
    if lufs is not None:
        lra, peak = _num(_get(metrics, "loudness", "lra_lu")), _num(_get(metrics, "loudness", "true_peak_dbtp"))
        parts = [f"{lufs:.1f} LUFS"]
        if lra is not None:
            parts.append(f"LRA {lra:.1f} LU")
        if peak is not None:
            parts.append(f"true peak {peak:.1f} dBTP")
        rows.append(("响度 loudness", " · ".join(parts)))
    floor = _get(metrics, "audio_stats", "rms_trough_dbfs")
    if floor is not None:
        rows.append(("底噪 noise floor", f"{floor} dBFS" if isinstance(floor, str) else f"{floor:.1f} dBFS"))
    clipped = _get(metrics, "audio_stats", "clipped_runs")
    if clipped is not None:
        rows.append(("削波 clipped runs", str(clipped)))
    offsets = [_num(_get(metrics, "timing", k)) for k in ("start_offset_ms", "end_offset_ms")]
    if offsets[0] is not None and offsets[1] is not None:
        rows.append(("音画偏移 A/V offset", f"开头 start {offsets[0]:+.0f} ms · 结尾 end {offsets[1]:+.0f} ms"))
    ratio_i = _num(_get(metrics, "interlace", "interlaced_ratio"))
    if ratio_i is not None:
        rows.append(("隔行 interlaced", f"{ratio_i * 100:.1f} %"))
    for key, label in (
        ("blacks", "黑场 black"),
        ("freezes", "静帧 frozen"),
        ("silences", "静音 silence"),
        ("cuts", "镜头切换 cuts"),
    ):
        spans = metrics.get(key)
        if isinstance(spans, list):
            rows.append((label, str(len(spans))))
    subs = metrics.get("subtitles")
    if isinstance(subs, dict) and "found" in subs:
        found = "有 found" if subs.get("found") else "未发现 none"
        how = f"（{subs.get('method')}）" if subs.get("method") else ""
        sample = f"：{subs['sample']}" if subs.get("sample") else ""
        rows.append(("中文字幕 Chinese subtitles", f"{found}{how}{sample}"))
        coverage = _num(subs.get("ocr_coverage"))
        if coverage is not None:
            read = " / ".join(f"「{line}」" for line in subs.get("ocr_lines") or []) or "无 none"
            rows.append(
                (
                    "画面内嵌字幕 burned-in subtitles",
                    f"覆盖 {coverage * 100:.0f} % 讲话时刻 of speech（抽查 {subs.get('ocr_samples')} 处 samples）"
                    f" · 识别 read: {read}",
                )
            )
    return rows


def _finding_rows(campaign: Campaign, findings: list[FindingRecord]) -> list[FindingRow]:
    rows = []
    for f in sorted(findings, key=lambda f: (SEVERITY_ORDER.get(f.severity, 9), f.code, f.at_seconds or 0.0)):
        spec = campaign.findings.get(f.code)
        rows.append(
            FindingRow(
                code=f.code,
                severity=f.severity,
                title_zh=spec.title_zh if spec else "",
                title_en=spec.title_en if spec else "",
                message_zh=f.message_zh,
                message_en=f.message_en,
                value=f.value,
                limit_value=f.limit_value,
                at_seconds=f.at_seconds,
                stage=f.stage,
            )
        )
    return rows


def checklist(campaign: Campaign, findings: list[FindingRow], details: dict[str, Any]) -> list[str]:
    """What a person must check: the warnings, the form's own items and the campaign's human checklist."""
    items = [f"{f.code}：{f.message_zh} / {f.message_en}" for f in findings if f.severity == "warning"]
    items += [str(i) for i in details.get("checklist") or []]
    items += [f"{i.zh} / {i.en}" for i in campaign.human_checklist]
    return items


def submission_page(
    records: Records,
    campaign: Campaign,
    submission_id: str,
    url_for: Callable[[str, str], str],
) -> SubmissionPage | None:
    """The page of ``submission_id``; ``url_for(submission_id, key)`` gives a browser URL for an object."""
    sub = records.get_submission(submission_id)
    if sub is None:
        return None
    materials = records.list_materials(sub.id)
    details = records.get_details(sub.id)
    metrics = records.get_media_metrics(sub.id)
    findings = _finding_rows(campaign, records.list_findings(submission_id=sub.id))
    rendition = details.get("rendition") or None
    page = SubmissionPage(
        submission=sub,
        materials=[(m, url_for(sub.id, m.object_key)) for m in materials],
        findings=findings,
        probe=probe_summary(metrics, next((m for m in materials if m.role == "video"), None)),
        form=dict(details.get("form") or {}),
        details=details,
        checklist=checklist(campaign, findings, details),
        publication=publication_text(sub.kind, sub.verdict, rendition),
        audit=list(reversed(records.list_audit(entity="submission", entity_id=sub.id)))[:20],
        override=next((o for o in records.list_quota_overrides(sub.campaign_id) if o["submission_id"] == sub.id), None),
    )
    outputs = (rendition or {}).get("outputs") or {}
    for name, out in sorted(outputs.items()):
        if not isinstance(out, dict) or not out.get("key"):
            continue
        item = MediaItem(
            key=str(out["key"]),
            role=str(out.get("role") or ""),
            name=str(name),
            url=url_for(sub.id, str(out["key"])),
            size=out.get("size"),
            width=out.get("width"),
            height=out.get("height"),
        )
        {"rendition": page.renditions, "poster": page.posters, "thumbnail": page.thumbnails}.get(
            item.role, page.posters
        ).append(item)
    return page


def seconds_label(value: float | None) -> str:
    """``75.25`` → ``1:15.3``."""
    if value is None or not math.isfinite(value):
        return ""
    minutes, seconds = divmod(max(0.0, value), 60)
    return f"{int(minutes)}:{seconds:04.1f}"
