"""Rules on what a package holds: folder name, video, cover, synopsis and application form."""

from __future__ import annotations

import errno
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kepu.campaign import Campaign, Kind
from kepu.errors import MaterialError
from kepu.findings import Finding, make_finding
from kepu.intake.form_checks import form_findings, needs_recommender_seal
from kepu.intake.forms import FormData, read_form
from kepu.intake.packages import FolderName, PackageContents, read_text
from kepu.rules import Code, stage_codes

log = logging.getLogger(__name__)

STAGE = "package"
_SYNOPSIS_FIELD = "内容简介"
_PLACEHOLDER = re.compile(r"^[（(]\s*300\s*字以内\s*[）)]")
#: Forms units fill in (read first); scans (PDF, pictures) only count as evidence.
_EDITABLE_FORMS = (".docx", ".xlsx")

#: Codes the campaign-wide expectations report from what this module reads (see kepu.intake.quality).
_CAMPAIGN_DECIDED = stage_codes("campaign")

#: Probes an image and returns (width, height); raises MaterialError when unreadable.
ImageProbe = Callable[[Path], tuple[int, int]]


def synopsis_length(text: str) -> int:
    """Characters of a synopsis, whitespace not counted (内容简介（300字以内）)."""
    return len(re.sub(r"\s", "", _PLACEHOLDER.sub("", text.strip())))


@dataclass
class PackageReading:
    """What a package says of itself, and the findings of reading it."""

    kind: Kind
    findings: list[Finding] = field(default_factory=list)
    form: FormData | None = None
    synopsis: str | None = None
    #: Whether the entry's channel has a recommending unit that seals the form (None: channel unknown).
    needs_seal: bool | None = None


def read_package(
    campaign: Campaign,
    folder: FolderName,
    contents: PackageContents,
    *,
    probe_image: ImageProbe,
    channel: str | None = None,
) -> PackageReading:
    """Check a package's folder name, video, cover, form and synopsis.

    ``channel`` (from the summary sheet) says whether the form needs the recommending unit's seal.
    """
    reading = PackageReading(kind=contents.kind)
    if channel is not None:
        reading.needs_seal = needs_recommender_seal(campaign, channel)
    out = reading.findings

    def add(code: Code, **kw: object) -> None:
        out.append(make_finding(campaign, code, stage=STAGE, **kw))  # type: ignore[arg-type]

    if not folder.complete:
        add(
            "M-FOLDER-NAME",
            detail_zh=f"“{folder.raw}”无法解析为“{campaign.package.folder_name_pattern}”",
            detail_en=f"{folder.raw!r} does not parse as province + unit + title",
            value=folder.raw,
            limit=campaign.package.folder_name_pattern,
        )

    form, form_problems = _read_form(campaign, contents)
    reading.form = form
    if form is not None and form.kind != contents.kind and not contents.video_candidates:
        reading.kind = form.kind  # an account package is recognised by its form
    kind = reading.kind
    out.extend(form_problems)
    used = {form.path} if form and form.path else set()
    scans = [p for p in [*contents.forms, *contents.attachments] if p not in used]
    # Field and contact checks of the form are campaign-wide expectations (kepu.intake.quality): one place.
    out.extend(
        f
        for f in form_findings(campaign, form, kind=kind, scans=scans, channel=channel)
        if f.code not in _CAMPAIGN_DECIDED
    )

    if kind == "video":
        if not contents.video_candidates:
            add("M-VIDEO-MISSING", detail_zh="包内没有视频文件", detail_en="the package holds no video file")
        elif contents.video is None:
            names = ", ".join(p.name for p in contents.video_candidates)
            add(
                "M-VIDEO-AMBIGUOUS",
                detail_zh=f"候选视频：{names}",
                detail_en=f"candidates: {names}",
                value=len(contents.video_candidates),
            )
        if contents.cover is None:
            add("M-COVER-MISSING", detail_zh="包内没有封面图", detail_en="the package holds no cover image")
        else:
            out.extend(_cover_findings(campaign, contents.cover, probe_image))
        reading.synopsis = _synopsis(campaign, contents, form, out)
    return reading


def _read_form(campaign: Campaign, contents: PackageContents) -> tuple[FormData | None, list[Finding]]:
    """The package's application form: the first editable one that reads; problems otherwise."""
    if not contents.forms:
        return None, [
            make_finding(
                campaign,
                "M-FORM-MISSING",
                stage=STAGE,
                detail_zh="包内没有申报表",
                detail_en="the package holds no application form",
            )
        ]
    ordered = sorted(contents.forms, key=lambda p: (p.suffix.lower() not in _EDITABLE_FORMS, p.name))
    errors: list[tuple[Path, MaterialError]] = []
    for path in ordered:
        try:
            return read_form(path, campaign), []
        except MaterialError as exc:
            errors.append((path, exc))
    editable_failures = [(p, e) for p, e in errors if p.suffix.lower() not in (".pdf",)]
    findings = []
    for path, err in editable_failures:
        findings.append(
            make_finding(
                campaign,
                err.code,
                stage=STAGE,
                detail_zh=f"申报表 {path.name} 无法读取：{err}",
                detail_en=f"form {path.name} cannot be read: {err}",
                value=path.name,
            )
        )
    if not editable_failures:
        names = ", ".join(p.name for p, _ in errors)
        findings.append(
            make_finding(
                campaign,
                "M-FORM-MISSING",
                stage=STAGE,
                detail_zh=f"只有扫描件（{names}），缺少可编辑的申报表（.docx/.xlsx）；扫描件已作为签字证明保存",
                detail_en=f"only scans ({names}); an editable form (.docx/.xlsx) is needed. The scans are kept "
                "as evidence of the signature",
                value=names,
            )
        )
    return None, findings


def _synopsis(campaign: Campaign, contents: PackageContents, form: FormData | None, out: list[Finding]) -> str | None:
    text: str | None = None
    if contents.synopsis is not None:
        try:
            text = read_text(contents.synopsis)
        except (UnicodeDecodeError, OSError) as exc:
            out.append(
                make_finding(
                    campaign,
                    "M-UNREADABLE",
                    stage=STAGE,
                    detail_zh=f"简介 {contents.synopsis.name} 无法读取"
                    + ("（文件过大）" if isinstance(exc, OSError) and exc.errno == errno.EFBIG else ""),
                    detail_en=f"synopsis {contents.synopsis.name} cannot be read ({exc})",
                    value=contents.synopsis.name,
                )
            )
    if not (text or "").strip() and form is not None:
        text = form.fields.get(_SYNOPSIS_FIELD) or None
    # Over-long synopses are reported by the campaign-wide expectations (M-SUMMARY-LENGTH).
    if synopsis_length(text or "") == 0:
        out.append(
            make_finding(
                campaign,
                "M-SUMMARY-MISSING",
                stage=STAGE,
                detail_zh="没有简介文件，申报表“内容简介”也为空",
                detail_en="no synopsis file and the form's 内容简介 is empty",
            )
        )
    return text.strip() if text else None


def _cover_findings(campaign: Campaign, cover: Path, probe_image: ImageProbe) -> list[Finding]:
    rules = campaign.package.cover
    try:
        w, h = probe_image(cover)
    except MaterialError as exc:
        return [
            make_finding(
                campaign,
                "M-COVER-FORMAT",
                stage=STAGE,
                detail_zh=f"封面 {cover.name} 无法读取",
                detail_en=f"cover {cover.name} unreadable: {exc}",
                value=cover.name,
            )
        ]
    problems_zh, problems_en = [], []
    want = rules.aspect_ratio[0] / rules.aspect_ratio[1]
    if h == 0 or abs((w / h) / want - 1) > rules.aspect_tolerance:
        problems_zh.append("不是16:9")
        problems_en.append("not 16:9")
    if w < rules.min_width or h < rules.min_height:
        problems_zh.append(f"小于{rules.min_width}×{rules.min_height}")
        problems_en.append(f"smaller than {rules.min_width}×{rules.min_height}")
    if not problems_zh:
        return []
    return [
        make_finding(
            campaign,
            "M-COVER-FORMAT",
            stage=STAGE,
            detail_zh=f"封面 {w}×{h}，{'、'.join(problems_zh)}",
            detail_en=f"cover {w}×{h}: {', '.join(problems_en)}",
            value=f"{w}x{h}",
            limit=f"{rules.min_width}x{rules.min_height} 16:9",
        )
    ]
