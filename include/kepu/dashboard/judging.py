"""Judging progress, rankings and certificates as the dashboard shows them.

Judging has its own module and migration; the dashboard only reads, through these optional methods of
:class:`kepu.db.repository.Records` when they exist:

- ``judging_progress(campaign_id)`` → a mapping of figures (e.g. ``{"entries": 180, "scored": 120}``);
- ``list_awards(campaign_id)`` → rows (dataclasses or mappings), one per ranked entry;
- ``list_certificates(campaign_id)`` → rows, one per issued certificate.

Rows are shown column by column in the order of :data:`COLUMN_LABELS`, other keys after them, and
contact data never. While a method is missing, or its tables are not migrated yet, the page says
"尚未开始评审 / judging has not started" (or that no certificate has been issued).

Keys are never shown raw: stage, award and kind keys get the campaign file's Chinese and English names
(stages' ``zh``/``en``, awards' certificate ``award_zh``/``award_en``, kinds' ``label_zh``/``label_en``),
statuses and booleans get the names of :data:`STATUS_LABELS` and :data:`BOOLEAN_LABELS`.

Per scoring round with an assignment, :func:`round_views` lists the judges: entries assigned, whether
and when (Beijing time) their sheet came back, scores recorded of those assigned, and links to the sheet
issued to them, the sheet they returned and the judging report, through :func:`judging_file`. Once portal
links are issued, each judge also shows whether they opened the link, submitted online, their progress
in the portal and until when their link is valid (kepu.judging.portal.portal_status).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response

from kepu.clock import BEIJING

log = logging.getLogger(__name__)


#: Known columns, in display order, with their Chinese and English headers.
COLUMN_LABELS: dict[str, str] = {
    "rank": "名次 rank",
    "award": "奖项 award",
    "stage": "阶段 stage",
    "submission_id": "编号 submission",
    "title": "作品名称 title",
    "kind": "类型 kind",
    "province": "省份 province",
    "unit": "单位 unit",
    "score": "得分 score",
    "median": "中位数 median",
    "scores": "评分数 scores",
    "judges": "评委数 judges",
    "number": "证书编号 number",
    "holder": "获奖者 holder",
    "status": "状态 status",
    "released_at": "公布时间 released",
    "issued_at": "颁发时间 issued",
    "revoked_at": "撤销时间 revoked",
}

#: Never shown, whatever a row carries: contact data, and bookkeeping of no use to a reader.
HIDDEN = frozenset(
    {"phone", "email", "mobile", "联系电话", "电子邮箱", "邮箱", "password", "token", "ranking_sha256", "release_id"}
)

PROGRESS_LABELS: dict[str, str] = {
    "entries": "参评作品 entries",
    "assigned": "已分配 assigned",
    "sheets": "评分表 score sheets",
    "scored": "已评分 scored",
    "complete": "评分完整 complete",
    "judges": "评委 judges",
    "stage": "当前阶段 stage",
}


#: Statuses the judging tables write, in words.
STATUS_LABELS: dict[str, str] = {
    "ranked": "已排名 ranked",
    "insufficient": "评分不足 too few scores",
    "withdrawn": "已退出 withdrawn",
    "accepted": "已接收 accepted",
    "rejected": "被退回 rejected",
    "superseded": "已被更正 superseded",
    "valid": "有效 valid",
    "revoked": "已撤销 revoked",
    "released": "已公布 released",
}
BOOLEAN_LABELS: dict[bool, str] = {True: "是 yes", False: "否 no"}
#: Columns whose values are keys to be named (the others are shown as they are).
KEYED_COLUMNS = frozenset({"stage", "award", "kind", "status"})
#: The judging report written by the judging steps (kepu.judging.steps.REPORT_EXPORT).
REPORT_EXPORT = "judging-report.html"


@dataclass(frozen=True)
class Labels:
    """Names of the campaign's keys: stage, award and kind from the campaign file, statuses from here."""

    keys: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, campaign: Any) -> Labels:
        if campaign is None:
            return cls(dict(STATUS_LABELS))
        keys: dict[str, str] = dict(STATUS_LABELS)
        for kind, info in campaign.kinds.items():
            keys[str(kind)] = f"{info.label_zh} {info.label_en}"
        for t in campaign.certificates.types:
            keys.setdefault(str(t.award), f"{t.award_zh} {t.award_en}")
        for stage in campaign.judging.stages:
            keys[stage.key] = f"{stage.zh} {stage.en}"
        return cls(keys)

    def name(self, value: Any) -> Any:
        if isinstance(value, bool):
            return BOOLEAN_LABELS[value]
        if isinstance(value, str):
            return self.keys.get(value, value)
        return value


@dataclass(frozen=True)
class Table:
    columns: list[tuple[str, str]]  # (key, header)
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class JudgeProgress:
    judge_id: str
    name: str
    assigned: int
    scored: int
    returned: bool
    status: str  # in words
    returned_at: str | None  # Beijing time
    sheet_key: str | None  # the sheet issued to the judge, when it is in the store
    returned_key: str | None  # the sheet as the judge returned it
    portal: PortalView | None = None  # the judge's use of the judging portal, when links were issued


@dataclass(frozen=True)
class PortalView:
    """One judge's portal link as the operator reads it: every time in Beijing time, every state in words."""

    opened: str  # 已打开 when, or 未打开
    last_seen: str | None
    submitted: str  # 已在线提交 when, or 未提交
    scored: int
    total: int
    link: str  # 有效至 …, 已过期, 已撤销
    locked: bool


@dataclass(frozen=True)
class RoundView:
    stage: str
    label: str
    judges: list[JudgeProgress]

    @property
    def returned(self) -> int:
        return sum(1 for j in self.judges if j.returned)

    @property
    def scored(self) -> int:
        return sum(j.scored for j in self.judges)

    @property
    def assigned(self) -> int:
        return sum(j.assigned for j in self.judges)


@dataclass(frozen=True)
class JudgingView:
    started: bool
    progress: list[tuple[str, Any]]
    awards: Table | None
    certificates: Table | None
    rounds: list[RoundView] = dataclasses.field(default_factory=list)
    report_key: str | None = None

    @property
    def portal(self) -> bool:
        """Whether any judge of any round has a portal link (the page then shows the portal's columns)."""
        return any(j.portal is not None for r in self.rounds for j in r.judges)


def _as_dict(row: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        return dataclasses.asdict(row)
    if isinstance(row, Mapping):
        return dict(row)
    if hasattr(row, "_asdict"):
        return dict(row._asdict())
    return {k: v for k, v in vars(row).items() if not k.startswith("_")}


def _cell(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


def _named(key: str, value: Any, labels: Labels) -> Any:
    if isinstance(value, bool) or key in KEYED_COLUMNS:
        return labels.name(value)
    return _cell(value)


def to_table(rows: Iterable[Any], labels: Labels | None = None) -> Table:
    """Rows of any shape as a table: known columns first in their order, then the others; contact data left
    out; stage, award, kind and status keys and booleans in words."""
    names = labels or Labels.of(None)
    dicts = [{k: _named(k, v, names) for k, v in _as_dict(r).items() if k not in HIDDEN} for r in rows]
    keys: list[str] = []
    for d in dicts:
        keys.extend(k for k in d if k not in keys)
    ordered = [k for k in COLUMN_LABELS if k in keys] + [k for k in keys if k not in COLUMN_LABELS]
    return Table(columns=[(k, COLUMN_LABELS.get(k, k)) for k in ordered], rows=dicts)


def _call(records: Any, name: str, *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """(available, result) of ``records.name(*args)``; unavailable when missing or not migrated."""
    method: Callable[..., Any] | None = getattr(records, name, None)
    if method is None:
        return False, None
    try:
        return True, method(*args, **kwargs)
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
        # The judging tables come with their own migration; until it ran they are simply absent.
        log.info("%s unavailable: %s", name, exc.__class__.__name__)
        return False, None


def _existing(store: Any, key_of: Callable[..., str], *args: Any) -> str | None:
    """``key_of(*args)`` when that object is in the store; None without a store, or when the key cannot be
    made or the store not reached (no link then, and the rest of the page still shows)."""
    if store is None:
        return None
    try:
        key = key_of(*args)
        return key if store.exists(key) else None
    except Exception:
        log.info("no link to a judging object", exc_info=True)
        return None


#: Per stage key, the portal's status of each judge (kepu.judging.portal.portal_status), or None.
PortalStatus = Callable[[str], Iterable[Any]]


def portal_view(status: Any, now: dt.datetime | None = None) -> PortalView:
    """A judge's portal status (kepu.judging.portal.JudgePortalStatus) in words, times in Beijing time."""
    now = now or dt.datetime.now(dt.UTC)
    opened = getattr(status, "opened_at", None)
    submitted = getattr(status, "submitted_at", None)
    expires = getattr(status, "expires_at", None)
    revoked = getattr(status, "revoked_at", None) or getattr(status, "revoked", None)
    if revoked:
        link = "已撤销 revoked"
    elif expires is not None and expires <= now:
        link = f"已过期 expired {_cell(expires)}"
    elif expires is not None:
        link = f"有效至 valid until {_cell(expires)}"
    else:
        link = "—"
    return PortalView(
        opened=f"已打开 opened {_cell(opened)}" if opened else "未打开 not opened",
        last_seen=_cell(getattr(status, "last_seen_at", None)) if getattr(status, "last_seen_at", None) else None,
        submitted=f"已在线提交 submitted {_cell(submitted)}" if submitted else "未提交 not submitted",
        scored=int(getattr(status, "scored", 0) or 0),
        total=int(getattr(status, "total", 0) or 0),
        link=link,
        locked=bool(getattr(status, "locked", False)),
    )


def _portal_views(portal_status: PortalStatus | None, stage_key: str) -> dict[str, PortalView]:
    """The portal columns of a round; empty when no link was issued or the portal's table is not migrated."""
    if portal_status is None:
        return {}
    try:
        return {str(s.judge_id): portal_view(s) for s in portal_status(stage_key)}
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
        log.info("portal status unavailable: %s", exc.__class__.__name__)
        return {}


def _round_view(
    records: Any, store: Any, campaign: Any, stage: Any, labels: Labels, portal_status: PortalStatus | None = None
) -> RoundView | None:
    from kepu.judging import keys

    cid = campaign.id
    ok, assigned = _call(records, "list_assignments", cid, stage.key)
    if not ok or not assigned:
        return None
    per_judge: dict[str, set[str]] = {}
    for a in assigned:
        per_judge.setdefault(a.judge_id, set()).add(a.submission_id)
    _, judges = _call(records, "list_judges", cid, active_only=False)
    names = {j.id: j.name for j in judges or []}
    _, sheets = _call(records, "list_sheets", cid, stage.key)
    latest: dict[str, Any] = {}
    for sheet in sheets or []:  # by id: the latest sheet of each judge wins, an accepted one over the others
        if sheet.judge_id is None:
            continue
        old = latest.get(sheet.judge_id)
        if old is None or (sheet.status == "accepted") >= (old.status == "accepted"):
            latest[sheet.judge_id] = sheet
    _, scores = _call(records, "list_scores", cid, stage.key)
    scored: dict[str, set[str]] = {}
    for sc in scores or []:
        scored.setdefault(sc.judge_id, set()).add(sc.submission_id)
    portal = _portal_views(portal_status, stage.key)
    rows = []
    for jid in sorted(per_judge):
        sheet = latest.get(jid)
        returned = sheet is not None and sheet.status == "accepted"
        issued = _existing(store, keys.sheet_key, cid, stage.key, jid, names.get(jid, ""))
        rows.append(
            JudgeProgress(
                judge_id=jid,
                name=names.get(jid, ""),
                assigned=len(per_judge[jid]),
                scored=len(scored.get(jid, set()) & per_judge[jid]),
                returned=returned,
                status=("已交回 returned" if returned else labels.name(sheet.status))
                if sheet is not None
                else "未交回 not returned",
                returned_at=_cell(sheet.ingested_at) if sheet is not None else None,
                sheet_key=issued,
                returned_key=_existing(store, str, sheet.archive_key) if sheet is not None else None,
                portal=portal.get(jid),
            )
        )
    return RoundView(stage=stage.key, label=labels.name(stage.key), judges=rows)


def round_views(records: Any, store: Any, campaign: Any, portal_status: PortalStatus | None = None) -> list[RoundView]:
    """One view per scoring stage of the campaign that has an assignment, in the campaign's order."""
    labels = Labels.of(campaign)
    views = [_round_view(records, store, campaign, s, labels, portal_status) for s in campaign.judging.scoring_stages]
    return [v for v in views if v is not None]


def allowed_file(campaign: Any, key: str) -> bool:
    """Only judging objects are served here: sheets issued and received, and the judging report."""
    from kepu.judging import keys
    from kepu.storage import export_key

    if key == export_key(campaign.id, REPORT_EXPORT):
        return True
    if ".." in key.split("/"):
        return False
    for stage in campaign.judging.scoring_stages:
        prefix = keys.round_prefix(campaign.id, stage.key)
        if key.startswith((prefix + "sheets/", prefix + "received/")) and key.endswith(".xlsx"):
            return True
    return False


def judging_file(store: Any, campaign: Any, key: str) -> Response:
    """A judging object: a redirect to a presigned URL of the S3 store, or the file of the local store."""
    if not allowed_file(campaign, key) or not store.exists(key):
        return PlainTextResponse("not found", status_code=404)
    url = store.presigned_url(key)
    if url:
        return RedirectResponse(url, status_code=303)
    path = store.local_path(key)
    if path is None:
        return PlainTextResponse("not in the store", status_code=404)
    html = key.endswith(".html")
    return FileResponse(
        path,
        media_type="text/html; charset=utf-8" if html else "application/octet-stream",
        filename=key.rpartition("/")[2],
        content_disposition_type="inline" if html else "attachment",
        headers={
            "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
            "cache-control": "private, max-age=300",
        },
    )


def judging_view(
    records: Any, campaign_id: str, campaign: Any = None, store: Any = None, portal_status: PortalStatus | None = None
) -> JudgingView:
    labels = Labels.of(campaign)
    _, progress = _call(records, "judging_progress", campaign_id)
    _, awards = _call(records, "list_awards", campaign_id)
    has_certs, certs = _call(records, "list_certificates", campaign_id)
    progress_rows = [
        (PROGRESS_LABELS.get(str(k), str(k)), _named(str(k), v, labels))
        for k, v in dict(progress or {}).items()
        if k not in HIDDEN
    ]
    award_rows = list(awards or [])
    cert_rows = list(certs or [])
    rounds = round_views(records, store, campaign, portal_status) if campaign is not None else []
    report_key = None
    if campaign is not None:
        from kepu.storage import export_key

        report_key = _existing(store, export_key, campaign.id, REPORT_EXPORT)
    return JudgingView(
        started=bool(progress_rows or award_rows or rounds),
        progress=progress_rows,
        awards=to_table(award_rows, labels) if award_rows else None,
        certificates=to_table(cert_rows, labels) if has_certs and cert_rows else None,
        rounds=rounds,
        report_key=report_key,
    )
