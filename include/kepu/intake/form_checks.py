"""The checks of an application form: its findings (stage ``form``) and what a person must check by eye.

Signatures and seals are on paper: a scanned signed page in the package (:func:`signed_scans`) is their evidence.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kepu.campaign import Campaign, Kind
from kepu.findings import Finding, make_finding
from kepu.intake.form_fields import label_key
from kepu.intake.form_signoff import OWNER, is_signature_block
from kepu.intake.form_values import CN_NUM_CHARS, is_valid_email, is_valid_phone, parse_count
from kepu.intake.forms import FORM_TITLES, FormData, form_field_names
from kepu.rules import Code

#: The stage whose records hold these findings.
STAGE = "form"
#: The fields' English names, for the findings' English details.

_FIELD_EN: dict[str, str] = {
    "单位名称": "applicant unit",
    "是否为会员": "membership",
    "微视频名称": "video title",
    "类别": "category (field)",
    "播出时间": "air date",
    "主创人员": "creators",
    "报送材料网盘链接地址": "cloud-drive link",
    "联系电话": "phone",
    "电子邮箱": "e-mail",
    "内容简介": "synopsis",
    "作者承诺": "author's pledge",
    "推荐单位": "recommending unit",
    "科普号名称": "account name",
    "所属单位": "owner (unit, team or person)",
    "负责人签名": "signature of the person in charge",
    "姓名": "name",
    "工作单位": "employer",
    "职务": "position",
    "职称": "professional title",
    "专业领域": "field",
    "粉丝量": "followers",
    "邮箱": "e-mail",
    "主要从事科普创作经历主要成绩": "science-communication experience and achievements",
    "推荐单位意见": "recommending unit's opinion",
}


# --- the account's numbers ----------------------------------------------------------------------------

_NUM = rf"(\d[\d,]*(?:\.\d+)?\s*(?:万|千|k|w)?|[{CN_NUM_CHARS}万]+)"
_PIECES = r"(?:部|条|个|篇|集|期|支|件|则)"
_WORKS_PATTERNS = (
    re.compile(
        r"(?:发布|发表|上传|创作|制作|推出|更新|原创|出品|产出)(?:了|过)?\s*(?:原创)?\s*(?:科普)?\s*"
        r"(?:作品|视频|短视频|微视频|文章|图文|内容)?\s*(?:共计|共|累计|总计|达到|达|超过|逾|近|约|合计)?\s*"
        rf"{_NUM}\s*(?:余|多)?\s*{_PIECES}"
    ),
    re.compile(rf"(?:作品|视频)\s*(?:总数|总量|数量|数)\s*(?:共|为|达|[:：])?\s*{_NUM}"),
    # 作品70部, but not 获奖作品3部: awards are not the published works.
    re.compile(rf"(?<!获奖)(?<!优秀)(?<!入选)(?:作品|视频)\s*(?:共|达|为|[:：])?\s*{_NUM}\s*(?:余|多)?\s*{_PIECES}"),
    re.compile(
        rf"(?:累计|共计|共|总计|已有|拥有|现有)\s*{_NUM}\s*(?:余|多)?\s*(?:部|条|篇|集|期|支)\s*"
        r"(?:原创)?\s*(?:科普)?\s*(?:作品|视频|短视频|微视频)"
    ),
)
_FANS_PATTERN = re.compile(
    rf"粉丝\s*(?:量|数量|数|总数|总量)?\s*(?:共计|共|累计|达到|达|超过|逾|近|约|为|[:：])?\s*{_NUM}"
)


def _works_in(text: str) -> list[tuple[int, int, int]]:
    """(count, start, end) of every 'published N works' statement in ``text``."""
    t = unicodedata.normalize("NFKC", text).lower()
    hits = []
    for rx in _WORKS_PATTERNS:
        for m in rx.finditer(t):
            n = parse_count(m.group(1))
            if n is not None:
                hits.append((n, m.start(), m.end()))
    return hits


def _field(form: FormData, key: str) -> str:
    for name, value in form.fields.items():
        if label_key(name) == key:
            return value
    return ""


def account_numbers(form: FormData) -> tuple[int | None, int | None]:
    """(published works, followers) as the account form states them; None where it does not.

    Followers come from 粉丝量; works from a 作品数 column when the form has one, else from sentences
    such as 发布作品120部 / 累计发布 86 条视频 in 主要从事科普创作经历、主要成绩 or 粉丝量.
    """
    fans_text = _field(form, "粉丝量")
    experience = _field(form, label_key("主要从事科普创作经历、主要成绩"))
    works: int | None = parse_count(form.extra.get("作品数")) if form.extra.get("作品数") else None
    if works is None:
        counts = [n for text in (experience, fans_text) for n, _, _ in _works_in(text)]
        works = max(counts) if counts else None
    # A works statement inside 粉丝量 (粉丝1.2万，作品120部) is not a follower count.
    fans_clean = unicodedata.normalize("NFKC", fans_text).lower()
    for _, start, end in sorted(_works_in(fans_text), key=lambda h: -h[1]):
        fans_clean = fans_clean[:start] + " " + fans_clean[end:]
    followers = parse_count(fans_clean)
    if followers is None:
        m = _FANS_PATTERN.search(unicodedata.normalize("NFKC", experience).lower())
        followers = parse_count(m.group(1)) if m else None
    return works, followers


# --- findings ------------------------------------------------------------------------------------------

_SCAN_WORDS = ("承诺", "签字", "签名", "扫描", "盖章", "公章", "scan")
_SCAN_SUFFIXES = {".pdf", ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".heic", ".gif", ".ofd"}
_NEIGHBOUR_SUFFIXES = {".pdf", ".jpg", ".jpeg", ".tif", ".tiff"}
_NOT_SCAN_WORDS = ("封面", "cover", "海报", "poster", "截图")


def signed_scans(scans: Iterable[Path], form: FormData | None = None) -> list[Path]:
    """The files among ``scans`` that may be a scanned signed page.

    A file counts when its name mentions 承诺/签字/签名/扫描/盖章, or when it is a PDF/JPG lying next
    to the form (same folder) and is not named as a cover. The form itself never counts.
    """
    folder = form.path.parent if form is not None and form.path is not None else None
    out = []
    for f in scans:
        if form is not None and form.path is not None and f == form.path:
            continue
        name, ext = f.name.lower(), f.suffix.lower()
        named = ext in _SCAN_SUFFIXES and any(w in name for w in _SCAN_WORDS)
        beside = (
            ext in _NEIGHBOUR_SUFFIXES
            and (folder is None or f.parent == folder)
            and not any(w in name for w in _NOT_SCAN_WORDS)
        )
        if named or beside:
            out.append(f)
    return out


_INDIVIDUAL = re.compile(r"个人|团队|本人|小组|工作室|自媒体")


def registered_by_unit(form: FormData) -> bool:
    """Whether 所属单位 names a unit (not 个人/团队), which then must seal the form."""
    owner = _field(form, OWNER)
    return bool(owner.strip()) and not _INDIVIDUAL.search(owner)


def needs_recommender_seal(campaign: Campaign, channel: str | None) -> bool:
    """Whether entries of ``channel`` are sent by a recommending unit that seals the form (省级推荐,
    单位会员); self-nominated ones (个人会员, 其他机构和个人) have none. False for an unknown channel
    (Q-CHANNEL says so)."""
    ch = campaign.channels.get(channel) if channel else None
    return ch is not None and ch.recommender_seal


def form_findings(
    campaign: Campaign, form: FormData | None, *, kind: Kind, scans: list[Path], channel: str | None = None
) -> list[Finding]:
    """Field, contact, pledge and seal findings of an application form (stage ``form``).

    ``form`` is None when the package has no readable form: M-FORM-MISSING / M-UNREADABLE are the
    caller's, so nothing is added here. ``scans`` are the package's other files (not the video, not
    the cover); among them a scanned signed page counts as the signature and seal. Signature and
    seal blocks are never field findings (:func:`is_signature_block`): M-FORM-PLEDGE when neither the
    form nor a scanned page shows a signature, M-FORM-SEAL when the entry's ``channel`` is sent by a
    recommending unit and neither its block nor a scanned page shows it, K-SEAL for an account
    registered by a unit.
    """
    if form is None:
        return []
    out: list[Finding] = []

    def add(code: Code, **kw: Any) -> None:
        out.append(make_finding(campaign, code, stage=STAGE, **kw))

    if form.kind != kind:
        want, got = FORM_TITLES[kind], FORM_TITLES[form.kind]
        add(
            "M-FORM-MISSING",
            detail_zh=f"{form.source} 是{got}，本项需要{want}",
            detail_en=f"{form.source} is the {form.kind} form; this entry needs the {kind} form",
            value=form.source,
        )
        return out

    evidence = signed_scans(scans, form)
    field_code: Code = "M-FORM-FIELD" if kind == "video" else "K-FORM-FIELD"
    for name in form_field_names(campaign, kind):
        if is_signature_block(name):
            continue
        k = label_key(name)
        value = form.fields.get(name, "")
        if not value.strip():
            en = _FIELD_EN.get(k, name)
            add(
                field_code,
                detail_zh=f"“{name}”未填写",
                detail_en=f"{name} ({en}) is empty",
                value=name,
            )

    for name in form_field_names(campaign, kind):
        value = form.fields.get(name, "").strip()
        if not value:
            continue
        k = label_key(name)
        if "电话" in k and not is_valid_phone(value):
            add(
                "M-FORM-CONTACT",
                detail_zh=f"“{name}”格式有误：{value}（应为手机号或带区号的固定电话）",
                detail_en=f"{name} is malformed: {value!r} (a mobile number or a landline with area code)",
                value=value,
            )
        elif ("邮箱" in k or "邮件" in k) and not is_valid_email(value):
            add(
                "M-FORM-CONTACT",
                detail_zh=f"“{name}”格式有误：{value}",
                detail_en=f"{name} is not a valid e-mail address: {value!r}",
                value=value,
            )

    if kind == "video" and not form.pledge_signed and not evidence:
        missing_zh = "签字姓名和日期" if not form.has_signature_text else "日期"
        missing_en = "the signer's name and the date" if not form.has_signature_text else "the date"
        add(
            "M-FORM-PLEDGE",
            detail_zh=f"申报表作者承诺未填写{missing_zh}，且包内没有签字扫描页",
            detail_en=f"the pledge in {form.source} lacks {missing_en} and the package holds no scanned signed page",
            value=form.source,
        )

    if kind == "account" and not (form.signature_name or form.pledge_images or evidence):
        add(
            "M-FORM-PLEDGE",
            detail_zh="申报表“负责人（签名）”未签字，且包内没有签字扫描页",
            detail_en=f"the signature of the person in charge in {form.source} is blank and the package holds "
            "no scanned signed page",
            value=form.source,
        )

    if needs_recommender_seal(campaign, channel) and not form.recommender_filled and not evidence:
        label = campaign.channels[str(channel)].label_zh
        add(
            "M-FORM-SEAL",
            detail_zh=f"以“{label}”报送，申报表“推荐单位”栏只有模板文字（未填写单位），包内也没有签字盖章扫描页",
            detail_en=f"sent as {channel}: the recommending unit's block of {form.source} shows only its template "
            "and the package holds no scanned signed and sealed page",
            value=form.source,
            limit="推荐单位盖章 recommending unit's seal",
        )

    if kind == "account" and registered_by_unit(form) and form.images_count == 0 and not evidence:
        owner = _field(form, OWNER)
        add(
            "K-SEAL",
            detail_zh=f"所属单位为“{owner}”，申报表中没有盖章图片，包内也没有盖章扫描件",
            detail_en=f"owned by the unit {owner!r}: no seal picture in the form and no scanned page in the package",
            value=owner,
        )
    return out


def checklist_items(form: FormData, *, needs_seal: bool | None = None) -> list[str]:
    """What a person must check on this form, beyond the automated findings (Chinese / English).

    Signatures and seals are on paper: the items name the scanned signed page a person checks.
    ``needs_seal`` is :func:`needs_recommender_seal` of the entry's channel (None: channel unknown);
    a self-nominated entry has no recommending unit to check.
    """
    items: list[str] = []
    signer = form.signature_name or ("图片" if form.pledge_images else "")
    signer_en = form.signature_name or ("picture" if form.pledge_images else "")
    when = form.pledge_date.isoformat() if form.pledge_date else "未填"
    when_en = form.pledge_date.isoformat() if form.pledge_date else "no date"
    if form.kind == "video":
        if form.pledge_signed:
            items.append(
                f"核对作者承诺为手写签字（申报表：{signer}，{when}）/ "
                f"verify the pledge is signed by hand (form: {signer_en}, {when_en})"
            )
        else:
            items.append(
                "申报表中作者承诺未签字，核对签字扫描页上的手写签字和日期 / "
                "the pledge in the form is unsigned: check the handwritten signature and date on the scanned page"
            )
        member = _field(form, "是否为会员")
        if member.startswith(("是", "Y", "y")):
            items.append(f"核对会员身份（申报表填写“{member}”）/ confirm membership (the form says {member!r})")
    else:
        items.append(
            f"核对负责人手写签名（申报表：{signer or '未签'}，{when}）/ "
            f"verify the handwritten signature of the person in charge (form: {signer_en or 'unsigned'}, {when_en})"
        )
        if registered_by_unit(form):
            owner = _field(form, OWNER)
            items.append(f"以单位“{owner}”为主体注册，核对单位盖章 / registered by a unit: verify its seal")
        works, followers = account_numbers(form)
        if works is None:
            items.append(
                "申报表未写明发布作品数量，须在平台上核对 / "
                "the form does not state the number of works: check the platform"
            )
        if followers is None:
            items.append(
                "申报表未写明粉丝量，须在平台上核对 / the form does not state the followers: check the platform"
            )
        if works is not None or followers is not None:
            items.append(
                f"在平台上核对作品数（申报表：{works if works is not None else '未写明'}）与粉丝量"
                f"（申报表：{followers if followers is not None else '未写明'}）/ "
                "check the works and followers against the platform"
            )
    if needs_seal is not False:
        if form.recommender:
            items.append(
                f"在签字盖章扫描页上核对推荐单位盖章：{form.recommender} / "
                f"verify the recommending unit's seal on the scanned signed page: {form.recommender}"
            )
        else:
            items.append(
                "推荐单位栏只有模板文字：省级推荐、单位会员报送的须在签字盖章扫描页上核对推荐单位盖章"
                "（个人会员、其他机构和个人自荐无推荐单位）/ the recommending unit's block shows only its template: "
                "for provincial and member entries check its seal on the scanned signed page (self-nominated "
                "entries have none)"
            )
    if form.images_count:
        items.append(
            f"申报表内嵌图片 {form.images_count} 张（可能为签字或印章），须人工核对 / "
            f"{form.images_count} picture(s) in the form (a signature or seal?): check by eye"
        )
    items.extend(form.notes)
    return items
