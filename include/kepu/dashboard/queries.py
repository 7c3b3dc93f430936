"""Read-only queries behind the dashboard's overview and submissions list.

Counts are aggregated by the database (``GROUP BY``), never by loading every row into Python, so the
overview of a 5,000-entry campaign stays well under a second (``bench/bench_dashboard.py``). The list
pages ``LIMIT``/``OFFSET`` in SQL and fetch finding codes for the shown page only.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from kepu.db.schema import VERDICTS, runs, submissions
from kepu.db.schema import findings as findings_table
from kepu.findings import SEVERITY_ORDER

#: The filter value that selects submissions without a verdict yet.
PENDING = "pending"
MAX_PER_PAGE = 200


@dataclass(frozen=True)
class CodeCount:
    code: str
    severity: str
    findings: int
    submissions: int


@dataclass(frozen=True)
class Overview:
    total: int
    by_verdict: list[tuple[str, int]]  # verdict or PENDING
    by_kind: list[tuple[str, int]]
    by_kind_verdict: dict[str, dict[str, int]]
    by_province: list[tuple[str, int]]  # "" when unknown
    by_channel: list[tuple[str, int]]
    by_status: list[tuple[str, int]]
    top_codes: list[CodeCount]


@dataclass(frozen=True)
class Filters:
    """What the submissions list is narrowed to; empty strings mean no filter."""

    verdict: str = ""
    code: str = ""
    province: str = ""
    unit: str = ""
    kind: str = ""
    channel: str = ""
    q: str = ""

    def active(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}


@dataclass(frozen=True)
class ListRow:
    id: str
    source_name: str
    title: str | None
    province: str | None
    unit: str | None
    channel: str | None
    kind: str
    verdict: str | None
    status: str
    received_at: dt.datetime | None
    codes: list[tuple[str, str]] = field(default_factory=list)  # (code, severity), most severe first


@dataclass(frozen=True)
class Page:
    rows: list[ListRow]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _counts(conn: Connection, column: sa.ColumnElement[Any], campaign_id: str) -> list[tuple[str, int]]:
    n = sa.func.count().label("n")
    stmt = (
        sa.select(column, n).where(submissions.c.campaign_id == campaign_id).group_by(column).order_by(n.desc(), column)
    )
    return [(row[0] or "", int(row[1])) for row in conn.execute(stmt)]


def overview(engine: Engine, campaign_id: str, *, top_codes: int = 15) -> Overview:
    """Counts by verdict, kind, province, channel and status, and the most frequent finding codes."""
    with engine.connect() as conn:
        n = sa.func.count().label("n")
        kind_verdict: dict[str, dict[str, int]] = defaultdict(dict)
        verdicts: dict[str, int] = defaultdict(int)
        kinds: dict[str, int] = defaultdict(int)
        stmt = (
            sa.select(submissions.c.kind, submissions.c.verdict, n)
            .where(submissions.c.campaign_id == campaign_id)
            .group_by(submissions.c.kind, submissions.c.verdict)
        )
        for kind, verdict, count in conn.execute(stmt):
            v = verdict or PENDING
            kind_verdict[kind][v] = int(count)
            verdicts[v] += int(count)
            kinds[kind] += int(count)
        f = findings_table
        nf = sa.func.count().label("nf")
        codes_stmt = (
            sa.select(f.c.code, f.c.severity, nf, sa.func.count(sa.distinct(f.c.submission_id)))
            .select_from(f.join(submissions, submissions.c.id == f.c.submission_id))
            .where(submissions.c.campaign_id == campaign_id)
            .group_by(f.c.code, f.c.severity)
            .order_by(nf.desc(), f.c.code)
            .limit(top_codes)
        )
        codes = [CodeCount(code, severity, int(a), int(b)) for code, severity, a, b in conn.execute(codes_stmt)]
        order = {v: i for i, v in enumerate((*VERDICTS, PENDING))}
        return Overview(
            total=sum(verdicts.values()),
            by_verdict=sorted(verdicts.items(), key=lambda kv: order.get(kv[0], 99)),
            by_kind=sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])),
            by_kind_verdict=dict(kind_verdict),
            by_province=_counts(conn, submissions.c.province, campaign_id),
            by_channel=_counts(conn, submissions.c.channel, campaign_id),
            by_status=_counts(conn, submissions.c.status, campaign_id),
            top_codes=codes,
        )


@dataclass(frozen=True)
class RunFindings:
    """The run-level findings (a damaged summary sheet) recorded by the latest intake run."""

    run_id: str
    dag_id: str
    started_at: dt.datetime
    findings: list[dict[str, Any]]


def latest_run_findings(engine: Engine, campaign_id: str, *, scan: int = 50) -> RunFindings | None:
    """The latest run that recorded run-level findings in its params, if it has any.

    Only runs that register packages store ``run_findings``; the newest of them speaks for the inbox
    as it stands, so an older run's findings are not shown once a later run read the sheet cleanly.
    """
    stmt = (
        sa.select(runs.c.id, runs.c.dag_id, runs.c.started_at, runs.c.params)
        .where(runs.c.campaign_id == campaign_id)
        .order_by(runs.c.started_at.desc(), runs.c.id.desc())
        .limit(scan)
    )
    with engine.connect() as conn:
        for run_id, dag_id, started_at, params in conn.execute(stmt):
            if isinstance(params, dict) and "run_findings" in params:
                found = [f for f in params.get("run_findings") or [] if isinstance(f, dict)]
                return RunFindings(str(run_id), str(dag_id), started_at, found) if found else None
    return None


def present_codes(engine: Engine, campaign_id: str) -> list[tuple[str, int]]:
    """Finding codes present in the campaign with the number of submissions having each."""
    f = findings_table
    n = sa.func.count(sa.distinct(f.c.submission_id)).label("n")
    stmt = (
        sa.select(f.c.code, n)
        .select_from(f.join(submissions, submissions.c.id == f.c.submission_id))
        .where(submissions.c.campaign_id == campaign_id)
        .group_by(f.c.code)
        .order_by(f.c.code)
    )
    with engine.connect() as conn:
        return [(code, int(count)) for code, count in conn.execute(stmt)]


def _where(campaign_id: str, flt: Filters) -> list[sa.ColumnElement[bool]]:
    s = submissions.c
    clauses: list[sa.ColumnElement[bool]] = [s.campaign_id == campaign_id]
    if flt.verdict == PENDING:
        clauses.append(s.verdict.is_(None))
    elif flt.verdict:
        clauses.append(s.verdict == flt.verdict)
    if flt.kind:
        clauses.append(s.kind == flt.kind)
    if flt.channel:
        clauses.append(s.channel == flt.channel)
    if flt.province:
        clauses.append(s.province == flt.province)
    if flt.unit:
        clauses.append(s.unit.contains(flt.unit, autoescape=True))
    if flt.code:
        f = findings_table
        clauses.append(sa.exists().where(f.c.submission_id == s.id, f.c.code == flt.code))
    if flt.q:
        q = flt.q
        clauses.append(
            sa.or_(
                s.id == q,
                s.title.contains(q, autoescape=True),
                s.source_name.contains(q, autoescape=True),
                s.unit.contains(q, autoescape=True),
                s.entity.contains(q, autoescape=True),
            )
        )
    return clauses


def list_submissions(engine: Engine, campaign_id: str, flt: Filters, *, page: int = 1, per_page: int = 50) -> Page:
    """One page of the campaign's submissions matching ``flt``, ordered like the eligibility export."""
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    s = submissions.c
    where = _where(campaign_id, flt)
    with engine.connect() as conn:
        total = int(conn.execute(sa.select(sa.func.count()).select_from(submissions).where(*where)).scalar_one())
        stmt = (
            sa.select(
                s.id, s.source_name, s.title, s.province, s.unit, s.channel, s.kind, s.verdict, s.status, s.received_at
            )
            .where(*where)
            .order_by(s.source_name, s.id)
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
        rows = conn.execute(stmt).mappings().all()
        codes = _codes_for(conn, [r["id"] for r in rows])
    return Page(
        rows=[ListRow(**dict(r), codes=codes.get(r["id"], [])) for r in rows], total=total, page=page, per_page=per_page
    )


def _codes_for(conn: Connection, ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    if not ids:
        return {}
    f = findings_table
    stmt = (
        sa.select(f.c.submission_id, f.c.code, f.c.severity)
        .where(f.c.submission_id.in_(list(ids)))
        .group_by(f.c.submission_id, f.c.code, f.c.severity)
    )
    out: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for sid, code, severity in conn.execute(stmt):
        out[sid].add((code, severity))
    return {sid: sorted(pairs, key=lambda p: (SEVERITY_ORDER.get(p[1], 9), p[0])) for sid, pairs in out.items()}


def provinces(engine: Engine, campaign_id: str) -> list[str]:
    """Provinces present in the campaign, for the list's filter."""
    s = submissions.c
    stmt = (
        sa.select(s.province)
        .where(s.campaign_id == campaign_id, s.province.is_not(None))
        .group_by(s.province)
        .order_by(s.province)
    )
    with engine.connect() as conn:
        return [str(p) for (p,) in conn.execute(stmt)]
