"""Who and what an award is for, read from the records: holder, title, unit, contact (never published).

The holder is the applicant the form names (单位名称（申报人） for a video, 所属单位（团队、个人） for an account),
else the submitting unit; the title is the work's or account's name as registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kepu.db.repository import Records, SubmissionRecord

_HOLDER_FIELDS = {"video": ("单位名称（申报人）",), "account": ("所属单位（团队、个人）", "姓名")}
_TITLE_FIELDS = {"video": ("微视频名称",), "account": ("科普号名称",)}
CATEGORY_FIELDS = ("类别（专业领域）", "专业领域")
CREDITS_FIELD = "主创人员（或单位）"
AIR_DATE_FIELD = "播出时间"


@dataclass(frozen=True)
class Entry:
    submission_id: str
    kind: str
    holder: str
    title: str
    unit: str | None
    province: str | None
    #: Contact data: for the e-mail to the submitter only, never printed or published.
    email: str | None
    phone: str | None
    pledge_signed: bool
    details: dict[str, Any]

    @property
    def form(self) -> dict[str, str]:
        return dict(self.details.get("form") or {})

    def field(self, *names: str) -> str:
        form = self.form
        return next((str(form[n]).strip() for n in names if str(form.get(n) or "").strip()), "")


def _first(*values: Any) -> str:
    return next((str(v).strip() for v in values if v is not None and str(v).strip()), "")


def entry(records: Records, sub: SubmissionRecord) -> Entry:
    details = records.get_details(sub.id)
    form = dict(details.get("form") or {})
    kind = sub.kind
    holder = _first(*(form.get(f) for f in _HOLDER_FIELDS.get(kind, ())), sub.unit, details.get("entity"))
    title = _first(
        sub.title,
        *(form.get(f) for f in _TITLE_FIELDS.get(kind, ())),
        details.get("title_form"),
        details.get("title_folder"),
        sub.source_name,
    )
    return Entry(
        submission_id=sub.id,
        kind=kind,
        holder=holder or title,
        title=title,
        unit=sub.unit or details.get("entity") or None,
        province=sub.province,
        email=_first(details.get("email"), form.get("电子邮箱"), form.get("邮箱")) or None,
        phone=_first(details.get("phone"), form.get("联系电话")) or None,
        pledge_signed=bool(details.get("pledge_signed")),
        details=details,
    )


def entries(records: Records, campaign_id: str, ids: list[str] | None = None) -> dict[str, Entry]:
    return {s.id: entry(records, s) for s in records.list_submissions(campaign_id, ids)}
