"""Judging progress, rankings and certificates as the dashboard shows them.

Judging has its own module and migration; the dashboard only reads, through these optional methods of
:class:`kepu.db.repository.Records` when they exist:

- ``judging_progress(campaign_id)`` → a mapping of figures (e.g. ``{"entries": 180, "scored": 120}``);
- ``list_awards(campaign_id)`` → rows (dataclasses or mappings), one per ranked entry;
- ``list_certificates(campaign_id)`` → rows, one per issued certificate.

Rows are shown column by column in the order of :data:`COLUMN_LABELS`, other keys after them, and
contact data never. While a method is missing, or its tables are not migrated yet, the page says
"尚未开始评审 / judging has not started" (or that no certificate has been issued).
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

log = logging.getLogger(__name__)

BEIJING = dt.timezone(dt.timedelta(hours=8))

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


@dataclass(frozen=True)
class Table:
    columns: list[tuple[str, str]]  # (key, header)
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class JudgingView:
    started: bool
    progress: list[tuple[str, Any]]
    awards: Table | None
    certificates: Table | None


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


def to_table(rows: Iterable[Any]) -> Table:
    """Rows of any shape as a table: known columns first in their order, then the others; contact data left out."""
    dicts = [{k: _cell(v) for k, v in _as_dict(r).items() if k not in HIDDEN} for r in rows]
    keys: list[str] = []
    for d in dicts:
        keys.extend(k for k in d if k not in keys)
    ordered = [k for k in COLUMN_LABELS if k in keys] + [k for k in keys if k not in COLUMN_LABELS]
    return Table(columns=[(k, COLUMN_LABELS.get(k, k)) for k in ordered], rows=dicts)


def _call(records: Any, name: str, campaign_id: str) -> tuple[bool, Any]:
    """(available, result) of ``records.name(campaign_id)``; unavailable when missing or not migrated."""
    method: Callable[[str], Any] | None = getattr(records, name, None)
    if method is None:
        return False, None
    try:
        return True, method(campaign_id)
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
        # The judging tables come with their own migration; until it ran they are simply absent.
        log.info("%s unavailable: %s", name, exc.__class__.__name__)
        return False, None


def judging_view(records: Any, campaign_id: str) -> JudgingView:
    _, progress = _call(records, "judging_progress", campaign_id)
    _, awards = _call(records, "list_awards", campaign_id)
    has_certs, certs = _call(records, "list_certificates", campaign_id)
    progress_rows = [
        (PROGRESS_LABELS.get(str(k), str(k)), _cell(v)) for k, v in dict(progress or {}).items() if k not in HIDDEN
    ]
    award_rows = list(awards or [])
    cert_rows = list(certs or [])
    return JudgingView(
        started=bool(progress_rows or award_rows),
        progress=progress_rows,
        awards=to_table(award_rows) if award_rows else None,
        certificates=to_table(cert_rows) if has_certs and cert_rows else None,
    )
