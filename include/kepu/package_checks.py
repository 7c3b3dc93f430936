"""Rules on what a package holds: folder name, video, cover, synopsis, form."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

from kepu.campaign import Campaign
from kepu.errors import MaterialError
from kepu.findings import Finding, make_finding
from kepu.forms import read_docx_fields
from kepu.intake import FolderName, PackageContents, read_text

log = logging.getLogger(__name__)

STAGE = "package"
_SYNOPSIS_FIELD = "内容简介"
_PLACEHOLDER = re.compile(r"^[（(]\s*300\s*字以内\s*[）)]")

#: Probes an image and returns (width, height); raises MaterialError when unreadable.
ImageProbe = Callable[[Path], tuple[int, int]]


def synopsis_length(text: str) -> int:
    """Characters of a synopsis, whitespace not counted (内容简介（300字以内）)."""
    return len(re.sub(r"\s", "", _PLACEHOLDER.sub("", text.strip())))


def package_findings(
    campaign: Campaign,
    folder: FolderName,
    contents: PackageContents,
    *,
    probe_image: ImageProbe,
) -> list[Finding]:
    out: list[Finding] = []

    def add(code: str, **kw: object) -> None:
        out.append(make_finding(campaign, code, stage=STAGE, **kw))  # type: ignore[arg-type]

    if not folder.complete:
        add(
            "M-FOLDER-NAME",
            detail_zh=f"“{folder.raw}”无法解析为“{campaign.package.folder_name_pattern}”",
            detail_en=f"{folder.raw!r} does not parse as province + unit + title",
            value=folder.raw,
            limit=campaign.package.folder_name_pattern,
        )

    if contents.kind == "video":
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

    form_fields: dict[str, str] = {}
    if not contents.forms:
        add("M-FORM-MISSING", detail_zh="包内没有申报表", detail_en="the package holds no application form")
    else:
        docx = [f for f in contents.forms if f.suffix.lower() == ".docx"]
        if docx:
            try:
                form_fields = read_docx_fields(docx[0], [_SYNOPSIS_FIELD])
            except MaterialError as exc:
                add(
                    "M-UNREADABLE", detail_zh=f"{docx[0].name}：{exc}", detail_en=str(exc), value=docx[0].name
                )

    if contents.kind == "video":
        synopsis: str | None = None
        if contents.synopsis is not None:
            try:
                synopsis = read_text(contents.synopsis)
            except (UnicodeDecodeError, OSError) as exc:
                add(
                    "M-UNREADABLE",
                    detail_zh=f"简介 {contents.synopsis.name} 无法读取",
                    detail_en=f"synopsis {contents.synopsis.name} cannot be read ({exc})",
                    value=contents.synopsis.name,
                )
        if not (synopsis or "").strip():
            synopsis = form_fields.get(_SYNOPSIS_FIELD) or None
        length = synopsis_length(synopsis or "")
        limit = campaign.package.synopsis_max_chars
        if length == 0:
            add(
                "M-SUMMARY-MISSING",
                detail_zh="没有简介文件，申报表“内容简介”也为空",
                detail_en="no synopsis file and the form's 内容简介 is empty",
            )
        elif length > limit:
            add(
                "M-SUMMARY-LENGTH",
                detail_zh=f"简介 {length} 字，限 {limit} 字（不计空白）",
                detail_en=f"synopsis has {length} characters, at most {limit} (whitespace not counted)",
                value=length,
                limit=limit,
            )
    return out


def _cover_findings(campaign: Campaign, cover: Path, probe_image: ImageProbe) -> list[Finding]:
    rules = campaign.package.cover
    try:
        w, h = probe_image(cover)
    except MaterialError as exc:
        return [
            make_finding(
                campaign, "M-COVER-FORMAT", stage=STAGE,
                detail_zh=f"封面 {cover.name} 无法读取", detail_en=f"cover {cover.name} unreadable: {exc}",
                value=cover.name,
            )
        ]  # fmt: skip
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
            campaign, "M-COVER-FORMAT", stage=STAGE,
            detail_zh=f"封面 {w}×{h}，{'、'.join(problems_zh)}",
            detail_en=f"cover {w}×{h}: {', '.join(problems_en)}",
            value=f"{w}x{h}", limit=f"{rules.min_width}x{rules.min_height} 16:9",
        )
    ]  # fmt: skip
