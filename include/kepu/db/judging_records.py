"""Judging in the app records: gate decisions, judges, rounds, score sheets, rankings, awards, releases.

:class:`JudgingRecords` is a base of :class:`kepu.db.repository.Records`, so every method here is a
``Records`` method. The rules are those of the rest of the records: one transaction per public write,
natural keys, and a rerun that leaves the tables exactly as one run did. What a person decided or
corrected is never lost: a replaced decision, a corrected score sheet and a re-release each leave a row in
the audit log, and the scores of a superseded sheet stay in ``scores``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from kepu.clock import beijing_text
from kepu.db.records_base import RecordsBase
from kepu.db.schema import (
    AWARD_KINDS,
    LINK_MAIL_STATUSES,
    RANKING_STATUSES,
    REVIEW_DECISIONS,
    assignments,
    awards,
    judge_link_mails,
    judge_links,
    judges,
    judging_rounds,
    portal_drafts,
    rankings,
    releases,
    review_decisions,
    score_sheets,
    scores,
    selections,
    submissions,
    utcnow,
)
from kepu.errors import JudgingError

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "kepu"
#: Two times closer than this are taken as the same moment: S3 keeps an object's time to the second only.
SAME_MOMENT = dt.timedelta(seconds=1)
_STAGE_KEY = re.compile(r"[a-z][a-z0-9_]*")

DecisionResult = Literal["new", "changed", "unchanged"]


@dataclass(frozen=True)
class JudgeRecord:
    """A judge of the roster. ``province`` is the full name (广东省), ``unit`` as the roster writes it."""

    id: str
    name: str
    unit: str
    province: str
    expertise: tuple[str, ...] = ()
    email: str | None = None
    active: bool = True


@dataclass(frozen=True)
class AssignmentRow:
    judge_id: str
    submission_id: str
    #: Row of the entry on the judge's sheet (1-based, per judge).
    position: int
    #: Part of the linking set every judge scores.
    linking: bool = False


class AssignmentSummary(TypedDict):
    """An assignment in figures (:meth:`kepu.judging.assign.Plan.summary`)."""

    seed: int
    judges: int
    entries: int
    assignments: int
    load_min: int
    load_max: int
    judges_per_entry_min: int
    judges_per_entry_max: int
    linking: dict[str, list[str]]
    expertise_matches: int
    conflicts_avoided: int
    assignment_sha256: str
    notes: list[str]


class JudgeLoad(TypedDict):
    """One judge's entries in a round: how many, how many of them linking (:func:`kepu.judging.assign.load_table`)."""

    judge_id: str
    name: str
    load: int
    linking: int


class RoundSummary(AssignmentSummary):
    """The summary a round's record keeps: the assignment in figures, the roster it was made from, each judge's
    load and the round's entries by kind."""

    stage: str
    roster_sha256: str
    loads: list[JudgeLoad]
    kinds: dict[str, int]


@dataclass(frozen=True)
class ScoreRow:
    judge_id: str
    submission_id: str
    criteria: Mapping[str, float]
    weighted: float
    comment: str | None = None
    sheet_id: int | None = None


@dataclass(frozen=True)
class SheetRecord:
    id: int
    campaign_id: str
    stage: str
    judge_id: str | None
    object_key: str
    archive_key: str
    sha256: str
    status: str
    problems: list[dict[str, Any]]
    ingested_at: dt.datetime
    superseded_by: int | None = None


@dataclass(frozen=True)
class RankingRow:
    submission_id: str
    kind: str
    status: str
    n_scores: int
    rank: int | None = None
    score: float | None = None
    raw_mean: float | None = None
    median: float | None = None


@dataclass(frozen=True)
class AwardRow:
    award: str
    submission_id: str
    stage: str
    rank: int
    score: float


@dataclass(frozen=True)
class AwardListing:
    """One award as a later step (certificates, publication) needs it."""

    award: str
    submission_id: str
    rank: int
    score: float
    title: str | None
    unit: str | None
    province: str | None
    kind: str
    stage: str
    ranking_sha256: str
    release_id: int | None
    released_at: dt.datetime | None


@dataclass(frozen=True)
class ReleaseOutcome:
    """What :meth:`JudgingRecords.release_results` did: ``released``, ``re-released`` or ``unchanged``."""

    status: Literal["released", "re-released", "unchanged"]
    release_id: int
    ranking_sha256: str
    released_at: dt.datetime
    actor: str
    supersedes: int | None = None
    changes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def released(self) -> bool:
        return self.status != "unchanged"


@dataclass(frozen=True)
class JudgeLink:
    """A judge's link to the portal for one round (only the token's sha256 is kept)."""

    campaign_id: str
    stage: str
    judge_id: str
    generation: int
    token_sha256: str
    created_at: dt.datetime
    expires_at: dt.datetime
    locked: bool
    deadline: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    opened_at: dt.datetime | None = None
    last_seen_at: dt.datetime | None = None
    submitted_at: dt.datetime | None = None
    sheet_id: int | None = None
    reopened_at: dt.datetime | None = None


@dataclass(frozen=True)
class PortalDraft:
    judge_id: str
    submission_id: str
    criteria: Mapping[str, float]
    comment: str | None
    updated_at: dt.datetime


LinkResult = Literal["new", "reissued", "changed", "unchanged"]


class PortalLockedError(JudgingError):
    """The judge's portal is locked (scores submitted, not reopened): drafts cannot change."""


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _link(row: RowMapping | Mapping[str, Any]) -> JudgeLink:
    return JudgeLink(**{f: row[f] for f in JudgeLink.__dataclass_fields__})


def _check(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"invalid {what} {value!r}; expected one of {', '.join(allowed)}")


def _sheet(row: RowMapping | Mapping[str, Any]) -> SheetRecord:
    return SheetRecord(
        id=row["id"],
        campaign_id=row["campaign_id"],
        stage=row["stage"],
        judge_id=row["judge_id"],
        object_key=row["object_key"],
        archive_key=row["archive_key"],
        sha256=row["sha256"],
        status=row["status"],
        problems=list(row["problems"] or []),
        ingested_at=row["ingested_at"],
        superseded_by=row["superseded_by"],
    )


def _judge(row: RowMapping) -> JudgeRecord:
    return JudgeRecord(
        id=row["id"],
        name=row["name"],
        unit=row["unit"],
        province=row["province"],
        expertise=tuple(row["expertise"] or ()),
        email=row["email"],
        active=bool(row["active"]),
    )


class JudgingRecords(RecordsBase):
    """Judging methods of :class:`~kepu.db.repository.Records` (a base class, not used alone)."""

    # -- gate decisions (formal review, content compliance) -------------------------------------------

    def record_review_decision(
        self, campaign_id: str, submission_id: str, stage: str, decision: str, actor: str, reason: str
    ) -> DecisionResult:
        """Record a person's decision at a gate (who, when, why); the latest decision stands.

        The same decision by the same person for the same reason again changes nothing (an imported
        sheet can be imported twice); any other change is written to the audit log with the old one.
        """
        if not _STAGE_KEY.fullmatch(stage):
            raise ValueError(f"invalid stage key {stage!r}")
        _check("decision", decision, REVIEW_DECISIONS)
        actor, reason = actor.strip(), reason.strip()
        if not actor or not reason:
            raise ValueError("a decision needs who made it and why · 须填写复核人和理由")
        with self._write() as conn:
            owner = conn.execute(
                sa.select(submissions.c.campaign_id).where(submissions.c.id == submission_id)
            ).scalar_one_or_none()
            if owner != campaign_id:
                raise JudgingError(
                    f"作品 {submission_id} 不属于活动 {campaign_id} · no submission {submission_id} in {campaign_id}"
                )
            key = sa.and_(review_decisions.c.submission_id == submission_id, review_decisions.c.stage == stage)
            old = conn.execute(self._lock_clause(sa.select(review_decisions).where(key))).mappings().first()
            if old is not None and (old["decision"], old["actor"], old["reason"]) == (decision, actor, reason):
                return "unchanged"
            values = {"decision": decision, "actor": actor, "reason": reason, "at": utcnow()}
            if old is None:
                conn.execute(
                    review_decisions.insert().values(
                        submission_id=submission_id, stage=stage, campaign_id=campaign_id, **values
                    )
                )
            else:
                conn.execute(review_decisions.update().where(key).values(**values))
            previous = None if old is None else {k: old[k] for k in ("decision", "actor", "reason")}
            self._audit(
                conn,
                actor,
                f"{stage}.decided",
                "submission",
                submission_id,
                {"stage": stage, "decision": decision, "reason": reason, "previous": previous},
            )
        return "new" if old is None else "changed"

    def list_review_decisions(self, campaign_id: str, stage: str | None = None) -> list[dict[str, Any]]:
        stmt = sa.select(review_decisions).where(review_decisions.c.campaign_id == campaign_id)
        if stage is not None:
            stmt = stmt.where(review_decisions.c.stage == stage)
        with self._read() as conn:
            rows = conn.execute(stmt.order_by(review_decisions.c.submission_id, review_decisions.c.stage)).mappings()
            return [dict(r) for r in rows.all()]

    # -- judges ------------------------------------------------------------------------------------------

    def replace_judges(
        self, campaign_id: str, roster: Sequence[JudgeRecord], roster_sha256: str, actor: str = SYSTEM_ACTOR
    ) -> dict[str, list[str]]:
        """Make ``roster`` the campaign's active judges; say who was added, changed or removed.

        A judge no longer listed is kept inactive (their past scores still name them).
        """
        ids = [j.id for j in roster]
        if len(set(ids)) != len(ids):
            raise ValueError("judge ids repeat in the roster")
        now = utcnow()
        out: dict[str, list[str]] = {"added": [], "changed": [], "removed": [], "unchanged": []}
        with self._write() as conn:
            existing = {
                r["id"]: r
                for r in conn.execute(sa.select(judges).where(judges.c.campaign_id == campaign_id)).mappings()
            }
            for j in roster:
                values = {
                    "name": j.name,
                    "unit": j.unit,
                    "province": j.province,
                    "expertise": list(j.expertise),
                    "email": j.email,
                    "active": True,
                }
                old = existing.get(j.id)
                if old is None:
                    conn.execute(
                        judges.insert().values(
                            campaign_id=campaign_id, id=j.id, roster_sha256=roster_sha256, updated_at=now, **values
                        )
                    )
                    out["added"].append(j.id)
                    continue
                same = all(old[k] == v for k, v in values.items())
                if same and old["roster_sha256"] == roster_sha256:
                    out["unchanged"].append(j.id)
                    continue
                conn.execute(
                    judges.update()
                    .where(judges.c.campaign_id == campaign_id, judges.c.id == j.id)
                    .values(roster_sha256=roster_sha256, updated_at=now if not same else old["updated_at"], **values)
                )
                out["unchanged" if same else "changed"].append(j.id)
            for jid, old in existing.items():
                if jid not in set(ids) and old["active"]:
                    conn.execute(
                        judges.update()
                        .where(judges.c.campaign_id == campaign_id, judges.c.id == jid)
                        .values(active=False, updated_at=now)
                    )
                    out["removed"].append(jid)
            if out["added"] or out["changed"] or out["removed"]:
                detail = {k: v for k, v in out.items() if k != "unchanged"}
                self._audit(
                    conn, actor, "roster.loaded", "campaign", campaign_id, {"roster_sha256": roster_sha256, **detail}
                )
        return out

    def list_judges(self, campaign_id: str, *, active_only: bool = True) -> list[JudgeRecord]:
        stmt = sa.select(judges).where(judges.c.campaign_id == campaign_id)
        if active_only:
            stmt = stmt.where(judges.c.active.is_(True))
        with self._read() as conn:
            return [_judge(r) for r in conn.execute(stmt.order_by(judges.c.id)).mappings().all()]

    def roster_sha256(self, campaign_id: str) -> str | None:
        """Checksum of the roster the active judges came from (None before a roster is loaded)."""
        with self._read() as conn:
            found = conn.execute(
                sa.select(judges.c.roster_sha256)
                .where(judges.c.campaign_id == campaign_id, judges.c.active.is_(True))
                .distinct()
            ).all()
        shas = sorted(r[0] for r in found)
        return shas[0] if len(shas) == 1 else None

    # -- rounds and assignments -----------------------------------------------------------------------------

    def get_round(self, campaign_id: str, stage: str) -> dict[str, Any] | None:
        with self._read() as conn:
            row = (
                conn.execute(
                    sa.select(judging_rounds).where(
                        judging_rounds.c.campaign_id == campaign_id, judging_rounds.c.stage == stage
                    )
                )
                .mappings()
                .first()
            )
        return None if row is None else dict(row)

    def save_round(
        self,
        campaign_id: str,
        stage: str,
        *,
        seed: int,
        roster_sha256: str,
        assignment_sha256: str,
        summary: Mapping[str, Any],
        rows: Sequence[AssignmentRow],
        replace: bool = False,
        actor: str = SYSTEM_ACTOR,
    ) -> DecisionResult:
        """Record a round's assignment. The same assignment again changes nothing.

        A different one replaces the old only when ``replace`` is set and no score of the round has been
        accepted yet: sheets already in the judges' hands would otherwise no longer match.
        """
        now = utcnow()
        key = sa.and_(judging_rounds.c.campaign_id == campaign_id, judging_rounds.c.stage == stage)
        with self._write() as conn:
            old = conn.execute(self._lock_clause(sa.select(judging_rounds).where(key))).mappings().first()
            if old is not None and old["assignment_sha256"] == assignment_sha256:
                return "unchanged"
            if old is not None:
                accepted = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(score_sheets)
                    .where(
                        score_sheets.c.campaign_id == campaign_id,
                        score_sheets.c.stage == stage,
                        score_sheets.c.status.in_(("accepted", "superseded")),
                    )
                ).scalar_one()
                if accepted:
                    raise JudgingError(
                        f"{stage} 已收到 {accepted} 份有效评分表，不能重新分配 · {accepted} score sheet(s) of {stage} "
                        "are already accepted: the assignment cannot change (same seed, roster and entries keep it)"
                    )
                if not replace:
                    raise JudgingError(
                        f"{stage} 已有不同的分配（种子 {old['seed']}）；确需重新分配请设置 reassign · {stage} already has "
                        f"another assignment (seed {old['seed']}); set reassign to replace it"
                    )
                conn.execute(
                    assignments.delete().where(assignments.c.campaign_id == campaign_id, assignments.c.stage == stage)
                )
                conn.execute(
                    judging_rounds.update()
                    .where(key)
                    .values(
                        seed=seed,
                        roster_sha256=roster_sha256,
                        assignment_sha256=assignment_sha256,
                        summary=dict(summary),
                        aggregate=None,
                        updated_at=now,
                    )
                )
                self._audit(
                    conn,
                    actor,
                    "round.reassigned",
                    "round",
                    f"{campaign_id}/{stage}",
                    {
                        "old_seed": old["seed"],
                        "new_seed": seed,
                        "old_sha256": old["assignment_sha256"],
                        "new_sha256": assignment_sha256,
                    },
                )
            else:
                conn.execute(
                    judging_rounds.insert().values(
                        campaign_id=campaign_id,
                        stage=stage,
                        seed=seed,
                        roster_sha256=roster_sha256,
                        assignment_sha256=assignment_sha256,
                        summary=dict(summary),
                        aggregate=None,
                        created_at=now,
                        updated_at=now,
                    )
                )
            if rows:
                conn.execute(
                    assignments.insert(),
                    [
                        {
                            "campaign_id": campaign_id,
                            "stage": stage,
                            "judge_id": r.judge_id,
                            "submission_id": r.submission_id,
                            "position": r.position,
                            "linking": r.linking,
                        }
                        for r in rows
                    ],
                )
        return "new" if old is None else "changed"

    def list_assignments(self, campaign_id: str, stage: str) -> list[AssignmentRow]:
        stmt = (
            sa.select(assignments)
            .where(assignments.c.campaign_id == campaign_id, assignments.c.stage == stage)
            .order_by(assignments.c.judge_id, assignments.c.position)
        )
        with self._read() as conn:
            return [
                AssignmentRow(r["judge_id"], r["submission_id"], r["position"], bool(r["linking"]))
                for r in conn.execute(stmt).mappings().all()
            ]

    def set_round_aggregate(self, campaign_id: str, stage: str, aggregate: Mapping[str, Any]) -> None:
        with self._write() as conn:
            result = conn.execute(
                judging_rounds.update()
                .where(judging_rounds.c.campaign_id == campaign_id, judging_rounds.c.stage == stage)
                .values(aggregate=dict(aggregate))
            )
            if result.rowcount == 0:
                raise JudgingError(f"{stage} 尚未分配评委 · {stage} has no assignment yet")

    # -- score sheets and scores ---------------------------------------------------------------------------

    def get_sheet(self, campaign_id: str, stage: str, sha256: str) -> SheetRecord | None:
        stmt = sa.select(score_sheets).where(
            score_sheets.c.campaign_id == campaign_id, score_sheets.c.stage == stage, score_sheets.c.sha256 == sha256
        )
        with self._read() as conn:
            row = conn.execute(stmt).mappings().first()
        return None if row is None else _sheet(row)

    def list_sheets(self, campaign_id: str, stage: str | None = None) -> list[SheetRecord]:
        stmt = sa.select(score_sheets).where(score_sheets.c.campaign_id == campaign_id)
        if stage is not None:
            stmt = stmt.where(score_sheets.c.stage == stage)
        with self._read() as conn:
            return [_sheet(r) for r in conn.execute(stmt.order_by(score_sheets.c.id)).mappings().all()]

    def record_sheet(
        self,
        campaign_id: str,
        stage: str,
        *,
        judge_id: str | None,
        object_key: str,
        archive_key: str,
        sha256: str,
        problems: Sequence[Mapping[str, Any]] = (),
        rows: Sequence[ScoreRow] | None = None,
        actor: str = SYSTEM_ACTOR,
        stored_at: dt.datetime | None = None,
    ) -> tuple[SheetRecord, SheetRecord | None]:
        """Record a received sheet: accepted with its ``rows``, or rejected with its ``problems``.

        Returns the sheet and, for an accepted sheet that corrects an earlier one of the same judge, the
        sheet it supersedes; those older scores stay in ``scores`` and the change goes to the audit log.
        A sheet already recorded (same checksum) is returned as it is: nothing changes.

        ``stored_at`` is when the sheet was handed in (the object's time in the store). The later action
        counts: a sheet handed in before the judge's current sheet was recorded (a returned workbook
        uploaded before a portal submit, taken in after it) is recorded with its scores as already
        ``superseded`` by the current one, and audited; the current scores stay.
        """
        accepted = rows is not None
        if accepted and problems:
            raise ValueError("an accepted sheet has no problems")
        if accepted and not judge_id:
            raise ValueError("an accepted sheet names its judge")
        now = utcnow()
        with self._write() as conn:
            known = (
                conn.execute(
                    sa.select(score_sheets).where(
                        score_sheets.c.campaign_id == campaign_id,
                        score_sheets.c.stage == stage,
                        score_sheets.c.sha256 == sha256,
                    )
                )
                .mappings()
                .first()
            )
            if known is not None:
                return _sheet(known), None
            newer = None
            if accepted and stored_at is not None:
                newer = self._accepted_sheets(
                    conn, campaign_id, stage, judge_id, score_sheets.c.ingested_at >= stored_at + SAME_MOMENT
                ).first()
            status = "rejected" if not accepted else "superseded" if newer is not None else "accepted"
            inserted = conn.execute(
                score_sheets.insert().values(
                    campaign_id=campaign_id,
                    stage=stage,
                    judge_id=judge_id,
                    object_key=object_key,
                    archive_key=archive_key,
                    sha256=sha256,
                    status=status,
                    problems=[dict(p) for p in problems],
                    ingested_at=now,
                    superseded_by=None if newer is None else newer["id"],
                )
            ).inserted_primary_key
            assert inserted is not None
            sheet_id = int(inserted[0])
            previous = None
            if newer is not None:
                assert rows is not None and judge_id is not None
                self._insert_scores(conn, campaign_id, stage, judge_id, sheet_id, rows)
                self._audit(
                    conn,
                    actor,
                    "scores.superseded_on_arrival",
                    "judge",
                    f"{campaign_id}/{stage}/{judge_id}",
                    {
                        "sheet": sheet_id,
                        "sha256": sha256,
                        "object_key": object_key,
                        "stored_at": stored_at.isoformat() if stored_at else None,
                        "current_sheet": newer["id"],
                        "current_sha256": newer["sha256"],
                        "current_since": newer["ingested_at"].isoformat(),
                    },
                )
            elif accepted:
                assert rows is not None and judge_id is not None
                old = self._accepted_sheets(conn, campaign_id, stage, judge_id, score_sheets.c.id != sheet_id).all()
                self._insert_scores(conn, campaign_id, stage, judge_id, sheet_id, rows)
                for o in old:
                    conn.execute(
                        score_sheets.update()
                        .where(score_sheets.c.id == o["id"])
                        .values(status="superseded", superseded_by=sheet_id)
                    )
                    changed = self._changed_scores(conn, o["id"], rows)
                    self._audit(
                        conn,
                        actor,
                        "scores.replaced",
                        "judge",
                        f"{campaign_id}/{stage}/{judge_id}",
                        {
                            "old_sheet": o["id"],
                            "old_sha256": o["sha256"],
                            "new_sheet": sheet_id,
                            "new_sha256": sha256,
                            "changed": changed,
                        },
                    )
                    previous = _sheet({**o, "status": "superseded", "superseded_by": sheet_id})
            row = conn.execute(sa.select(score_sheets).where(score_sheets.c.id == sheet_id)).mappings().one()
        return _sheet(row), previous

    def _accepted_sheets(
        self, conn: Connection, campaign_id: str, stage: str, judge_id: str | None, *more: Any
    ) -> sa.MappingResult:
        """The judge's accepted sheets of the round that also meet ``more``, locked for this transaction."""
        query = sa.select(score_sheets).where(
            score_sheets.c.campaign_id == campaign_id,
            score_sheets.c.stage == stage,
            score_sheets.c.judge_id == judge_id,
            score_sheets.c.status == "accepted",
            *more,
        )
        return conn.execute(self._lock_clause(query)).mappings()

    @staticmethod
    def _insert_scores(
        conn: Connection, campaign_id: str, stage: str, judge_id: str, sheet_id: int, rows: Sequence[ScoreRow]
    ) -> None:
        if rows:
            conn.execute(
                scores.insert(),
                [
                    {
                        "sheet_id": sheet_id,
                        "submission_id": r.submission_id,
                        "campaign_id": campaign_id,
                        "stage": stage,
                        "judge_id": judge_id,
                        "criteria": dict(r.criteria),
                        "weighted": r.weighted,
                        "comment": r.comment,
                    }
                    for r in rows
                ],
            )

    @staticmethod
    def _changed_scores(conn: Connection, old_sheet: int, rows: Sequence[ScoreRow]) -> dict[str, Any]:
        old = {
            r["submission_id"]: r["criteria"]
            for r in conn.execute(sa.select(scores).where(scores.c.sheet_id == old_sheet)).mappings()
        }
        new = {r.submission_id: dict(r.criteria) for r in rows}
        return {
            sid: {"old": old.get(sid), "new": new.get(sid)}
            for sid in sorted(set(old) | set(new))
            if old.get(sid) != new.get(sid)
        }

    def list_scores(self, campaign_id: str, stage: str, *, current_only: bool = True) -> list[ScoreRow]:
        """Scores of a round; only those of each judge's accepted (latest) sheet unless ``current_only`` is off."""
        stmt = (
            sa.select(scores, score_sheets.c.status)
            .join(score_sheets, score_sheets.c.id == scores.c.sheet_id)
            .where(scores.c.campaign_id == campaign_id, scores.c.stage == stage)
        )
        if current_only:
            stmt = stmt.where(score_sheets.c.status == "accepted")
        stmt = stmt.order_by(scores.c.judge_id, scores.c.submission_id, scores.c.sheet_id)
        with self._read() as conn:
            return [
                ScoreRow(
                    judge_id=r["judge_id"],
                    submission_id=r["submission_id"],
                    criteria=dict(r["criteria"]),
                    weighted=float(r["weighted"]),
                    comment=r["comment"],
                    sheet_id=r["sheet_id"],
                )
                for r in conn.execute(stmt).mappings().all()
            ]

    # -- rankings -------------------------------------------------------------------------------------------

    def replace_ranking(self, campaign_id: str, stage: str, rows: Sequence[RankingRow]) -> bool:
        """Make ``rows`` the round's ranking; return whether anything changed."""
        for r in rows:
            _check("ranking status", r.status, RANKING_STATUSES)
        new = sorted((self._ranking_tuple(r) for r in rows), key=lambda t: t[0])
        where = sa.and_(rankings.c.campaign_id == campaign_id, rankings.c.stage == stage)
        with self._write() as conn:
            old = sorted(
                (
                    self._ranking_tuple(self._ranking_row(r))
                    for r in conn.execute(sa.select(rankings).where(where)).mappings()
                ),
                key=lambda t: t[0],
            )
            if old == new:
                return False
            conn.execute(rankings.delete().where(where))
            if rows:
                conn.execute(
                    rankings.insert(),
                    [
                        {
                            "campaign_id": campaign_id,
                            "stage": stage,
                            "submission_id": r.submission_id,
                            "kind": r.kind,
                            "status": r.status,
                            "rank": r.rank,
                            "score": r.score,
                            "raw_mean": r.raw_mean,
                            "median": r.median,
                            "n_scores": r.n_scores,
                        }
                        for r in rows
                    ],
                )
        return True

    @staticmethod
    def _ranking_row(r: RowMapping) -> RankingRow:
        return RankingRow(
            submission_id=r["submission_id"],
            kind=r["kind"],
            status=r["status"],
            n_scores=r["n_scores"],
            rank=r["rank"],
            score=r["score"],
            raw_mean=r["raw_mean"],
            median=r["median"],
        )

    @staticmethod
    def _ranking_tuple(r: RankingRow) -> tuple[Any, ...]:
        def q(x: float | None) -> float | None:
            return None if x is None else round(float(x), 9)

        return (r.submission_id, r.kind, r.status, r.n_scores, r.rank, q(r.score), q(r.raw_mean), q(r.median))

    def list_ranking(self, campaign_id: str, stage: str) -> list[RankingRow]:
        """The round's ranking: ranked entries by kind and rank, then the unranked ones."""
        stmt = sa.select(rankings).where(rankings.c.campaign_id == campaign_id, rankings.c.stage == stage)
        with self._read() as conn:
            rows = [self._ranking_row(r) for r in conn.execute(stmt).mappings().all()]
        return sorted(rows, key=lambda r: (r.kind, r.rank is None, r.rank or 0, r.submission_id))

    # -- selections and awards --------------------------------------------------------------------------------

    def save_selection(
        self,
        campaign_id: str,
        ranking_sha256: str,
        *,
        inputs: Mapping[str, Any],
        notes: Sequence[str],
        complete: bool,
        award_rows: Sequence[AwardRow],
        export_key: str | None,
        export_sha256: str | None,
    ) -> DecisionResult:
        """Record the awards a ranking gives and make it the current selection.

        The same ranking again changes nothing (``unchanged``); a ranking seen before becomes current
        again (``changed``); a new one is added (``new``). Earlier selections stay: a release names one.
        """
        for a in award_rows:
            _check("award", a.award, AWARD_KINDS)
        key = sa.and_(selections.c.campaign_id == campaign_id, selections.c.ranking_sha256 == ranking_sha256)
        with self._write() as conn:
            found = conn.execute(self._lock_clause(sa.select(selections).where(key))).mappings().first()
            current = conn.execute(
                sa.select(selections.c.ranking_sha256).where(
                    selections.c.campaign_id == campaign_id, selections.c.current.is_(True)
                )
            ).scalar_one_or_none()
            if found is not None and current == ranking_sha256:
                if (found["export_key"], found["export_sha256"]) != (export_key, export_sha256):
                    conn.execute(
                        selections.update().where(key).values(export_key=export_key, export_sha256=export_sha256)
                    )
                return "unchanged"
            conn.execute(
                selections.update()
                .where(selections.c.campaign_id == campaign_id, selections.c.current.is_(True))
                .values(current=False)
            )
            if found is None:
                conn.execute(
                    selections.insert().values(
                        campaign_id=campaign_id,
                        ranking_sha256=ranking_sha256,
                        inputs=dict(inputs),
                        notes=list(notes),
                        complete=complete,
                        current=True,
                        export_key=export_key,
                        export_sha256=export_sha256,
                        created_at=utcnow(),
                    )
                )
                if award_rows:
                    conn.execute(
                        awards.insert(),
                        [
                            {
                                "campaign_id": campaign_id,
                                "ranking_sha256": ranking_sha256,
                                "award": a.award,
                                "submission_id": a.submission_id,
                                "stage": a.stage,
                                "rank": a.rank,
                                "score": a.score,
                            }
                            for a in award_rows
                        ],
                    )
            else:
                conn.execute(
                    selections.update()
                    .where(key)
                    .values(current=True, export_key=export_key, export_sha256=export_sha256)
                )
            self._audit(
                conn,
                SYSTEM_ACTOR,
                "selection.current",
                "campaign",
                campaign_id,
                {
                    "ranking_sha256": ranking_sha256,
                    "previous": current,
                    "complete": complete,
                    "awards": len(award_rows),
                },
            )
        return "new" if found is None else "changed"

    def current_selection(self, campaign_id: str) -> dict[str, Any] | None:
        stmt = sa.select(selections).where(selections.c.campaign_id == campaign_id, selections.c.current.is_(True))
        with self._read() as conn:
            row = conn.execute(stmt).mappings().first()
        return None if row is None else dict(row)

    def selection_awards(self, campaign_id: str, ranking_sha256: str) -> list[AwardRow]:
        stmt = sa.select(awards).where(awards.c.campaign_id == campaign_id, awards.c.ranking_sha256 == ranking_sha256)
        with self._read() as conn:
            rows = conn.execute(stmt).mappings().all()
        order = {a: i for i, a in enumerate(AWARD_KINDS)}
        return sorted(
            (AwardRow(r["award"], r["submission_id"], r["stage"], r["rank"], float(r["score"])) for r in rows),
            key=lambda a: (order[a.award], a.rank, a.submission_id),
        )

    # -- releases ---------------------------------------------------------------------------------------------

    def release_results(
        self, campaign_id: str, *, actor: str, reason: str, allow_change: bool = False
    ) -> ReleaseOutcome:
        """Release the current selection, once.

        Releasing the ranking that is already released is a no-op that says so. A ranking that changed
        after a release is released only with ``allow_change`` (an explicit re-release), and the change
        (awards added and withdrawn) goes to the audit log.
        """
        actor, reason = actor.strip(), reason.strip()
        if not actor:
            raise JudgingError("须填写发布人 · the release needs the name of who releases it")
        with self._write() as conn:
            current = (
                conn.execute(
                    self._lock_clause(
                        sa.select(selections).where(
                            selections.c.campaign_id == campaign_id, selections.c.current.is_(True)
                        )
                    )
                )
                .mappings()
                .first()
            )
            if current is None:
                raise JudgingError(
                    f"活动 {campaign_id} 尚无评审结果 · campaign {campaign_id} has no results to release yet"
                )
            if not current["complete"]:
                raise JudgingError(
                    "评审结果不完整，不能发布 · the results are incomplete and cannot be released",
                    list(current["notes"] or []),
                )
            last = (
                conn.execute(
                    sa.select(releases)
                    .where(releases.c.campaign_id == campaign_id)
                    .order_by(releases.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
            sha = current["ranking_sha256"]
            if last is not None and last["ranking_sha256"] == sha:
                return ReleaseOutcome(
                    "unchanged", last["id"], sha, last["released_at"], last["actor"], last["supersedes"]
                )
            changes: dict[str, list[str]] = {}
            if last is not None:
                if not allow_change:
                    raise JudgingError(
                        f"结果已于北京时间 {beijing_text(last['released_at'])} 发布（第 {last['id']} 次发布），此后排名有变化；"
                        "如需重新发布，请勾选 re_release 并说明理由 · the results were released (release "
                        f"#{last['id']}, {beijing_text(last['released_at'])} Beijing time) and the ranking has changed since: set re_release and give a reason to "
                        "release the new ranking"
                    )
                if not reason:
                    raise JudgingError("重新发布须说明理由 · a re-release needs a reason")
                changes = self._award_changes(conn, campaign_id, last["ranking_sha256"], sha)
            now = utcnow()
            inserted = conn.execute(
                releases.insert().values(
                    campaign_id=campaign_id,
                    ranking_sha256=sha,
                    actor=actor,
                    reason=reason,
                    released_at=now,
                    supersedes=None if last is None else last["id"],
                )
            ).inserted_primary_key
            assert inserted is not None
            release_id = int(inserted[0])
            action = "results.released" if last is None else "results.re_released"
            self._audit(
                conn,
                actor,
                action,
                "campaign",
                campaign_id,
                {
                    "release_id": release_id,
                    "ranking_sha256": sha,
                    "reason": reason,
                    "supersedes": None if last is None else last["id"],
                    "previous_sha256": None if last is None else last["ranking_sha256"],
                    "changes": changes,
                },
            )
        status: Literal["released", "re-released"] = "released" if last is None else "re-released"
        return ReleaseOutcome(status, release_id, sha, now, actor, None if last is None else last["id"], changes)

    @staticmethod
    def _award_changes(conn: Connection, campaign_id: str, old_sha: str, new_sha: str) -> dict[str, list[str]]:
        def pairs(sha: str) -> set[str]:
            rows = conn.execute(
                sa.select(awards.c.award, awards.c.submission_id).where(
                    awards.c.campaign_id == campaign_id, awards.c.ranking_sha256 == sha
                )
            ).all()
            return {f"{a}:{s}" for a, s in rows}

        old, new = pairs(old_sha), pairs(new_sha)
        return {"added": sorted(new - old), "withdrawn": sorted(old - new)}

    def list_releases(self, campaign_id: str) -> list[dict[str, Any]]:
        with self._read() as conn:
            stmt = sa.select(releases).where(releases.c.campaign_id == campaign_id).order_by(releases.c.id)
            return [dict(r) for r in conn.execute(stmt).mappings().all()]

    def judging_progress(self, campaign_id: str) -> dict[str, Any]:
        """Figures of the latest judging round (for the dashboard): stage, judges, entries, assignments,
        accepted sheets, entries with a score, and whether the current results are complete."""
        with self._read() as conn:
            latest = conn.execute(
                sa.select(judging_rounds.c.stage)
                .where(judging_rounds.c.campaign_id == campaign_id)
                .order_by(judging_rounds.c.created_at.desc())
                .limit(1)
            ).scalar_one_or_none()
            if latest is None:
                return {}
            in_round = sa.and_(assignments.c.campaign_id == campaign_id, assignments.c.stage == latest)
            counted = conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.count(sa.distinct(assignments.c.submission_id)),
                    sa.func.count(sa.distinct(assignments.c.judge_id)),
                ).where(in_round)
            ).one()
            sheets = conn.execute(
                sa.select(sa.func.count()).where(
                    score_sheets.c.campaign_id == campaign_id,
                    score_sheets.c.stage == latest,
                    score_sheets.c.status == "accepted",
                )
            ).scalar_one()
            scored = conn.execute(
                sa.select(sa.func.count(sa.distinct(scores.c.submission_id)))
                .join(score_sheets, score_sheets.c.id == scores.c.sheet_id)
                .where(
                    scores.c.campaign_id == campaign_id, scores.c.stage == latest, score_sheets.c.status == "accepted"
                )
            ).scalar_one()
            complete = conn.execute(
                sa.select(selections.c.complete).where(
                    selections.c.campaign_id == campaign_id, selections.c.current.is_(True)
                )
            ).scalar_one_or_none()
        return {
            "stage": latest,
            "judges": int(counted[2]),
            "entries": int(counted[1]),
            "assigned": int(counted[0]),
            "sheets": int(sheets),
            "scored": int(scored),
            "complete": bool(complete),
        }

    def list_awards(self, campaign_id: str, *, released: bool = True) -> list[AwardListing]:
        """The awards, for certificates and publication: award kind, submission, rank, score, title, unit,
        province, kind, and the release they were published in.

        ``released`` (the default) gives the awards of the latest release only, and nothing before a
        release; otherwise the current selection's awards, with the release when it is the released one.
        """
        with self._read() as conn:
            last = (
                conn.execute(
                    sa.select(releases)
                    .where(releases.c.campaign_id == campaign_id)
                    .order_by(releases.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
            if released:
                if last is None:
                    return []
                sha = last["ranking_sha256"]
            else:
                sha = conn.execute(
                    sa.select(selections.c.ranking_sha256).where(
                        selections.c.campaign_id == campaign_id, selections.c.current.is_(True)
                    )
                ).scalar_one_or_none()
                if sha is None:
                    return []
            stmt = (
                sa.select(
                    awards,
                    submissions.c.title,
                    submissions.c.unit,
                    submissions.c.province,
                    submissions.c.kind,
                )
                .join(submissions, submissions.c.id == awards.c.submission_id)
                .where(awards.c.campaign_id == campaign_id, awards.c.ranking_sha256 == sha)
            )
            rows = conn.execute(stmt).mappings().all()
        is_released = last is not None and last["ranking_sha256"] == sha
        order = {a: i for i, a in enumerate(AWARD_KINDS)}
        out = [
            AwardListing(
                award=r["award"],
                submission_id=r["submission_id"],
                rank=r["rank"],
                score=float(r["score"]),
                title=r["title"],
                unit=r["unit"],
                province=r["province"],
                kind=r["kind"],
                stage=r["stage"],
                ranking_sha256=sha,
                release_id=last["id"] if is_released and last is not None else None,
                released_at=last["released_at"] if is_released and last is not None else None,
            )
            for r in rows
        ]
        return sorted(out, key=lambda a: (order[a.award], a.rank, a.submission_id))

    # -- the judges' portal: links, drafts, the link e-mails -------------------------------------------------

    @staticmethod
    def _link_key(campaign_id: str, stage: str, judge_id: str) -> sa.ColumnElement[bool]:
        return sa.and_(
            judge_links.c.campaign_id == campaign_id, judge_links.c.stage == stage, judge_links.c.judge_id == judge_id
        )

    def issue_judge_link(
        self,
        campaign_id: str,
        stage: str,
        judge_id: str,
        *,
        token_for: Callable[[int], str],
        expiry: Callable[[dt.datetime, dt.datetime | None], dt.datetime],
        deadline: dt.datetime | None = None,
        set_deadline: bool = False,
        actor: str = SYSTEM_ACTOR,
    ) -> tuple[JudgeLink, LinkResult]:
        """Make sure the judge has a live link for the round; say whether it is new, reissued, changed or not.

        ``token_for(generation)`` gives the token (only its sha256 is stored); ``expiry(created_at, deadline)``
        the expiry. A revoked link is reissued under its next generation (a new token). ``set_deadline``
        records ``deadline`` as the round's and recomputes the expiry when it differs; otherwise the recorded
        deadline stands. An unchanged link is left exactly as it was.
        """
        now = utcnow()
        key = self._link_key(campaign_id, stage, judge_id)
        with self._write() as conn:
            old = conn.execute(self._lock_clause(sa.select(judge_links).where(key))).mappings().first()
            if old is None:
                when = deadline if set_deadline else None
                expires = expiry(now, when)
                values: dict[str, Any] = {
                    "campaign_id": campaign_id,
                    "stage": stage,
                    "judge_id": judge_id,
                    "generation": 0,
                    "token_sha256": token_sha256(token_for(0)),
                    "created_at": now,
                    "deadline": when,
                    "expires_at": expires,
                    "locked": False,
                }
                conn.execute(judge_links.insert().values(**values))
                self._audit(
                    conn,
                    actor,
                    "portal.link_issued",
                    "portal",
                    f"{campaign_id}/{stage}/{judge_id}",
                    {"generation": 0, "expires_at": expires.isoformat()},
                )
                result: LinkResult = "new"
            else:
                when = deadline if set_deadline else old["deadline"]
                changes: dict[str, Any] = {}
                if old["revoked_at"] is not None:
                    gen = int(old["generation"])
                    changes = {
                        "token_sha256": token_sha256(token_for(gen)),
                        "revoked_at": None,
                        "created_at": now,
                        "deadline": when,
                        "expires_at": expiry(now, when),
                    }
                    result = "reissued"
                elif when != old["deadline"]:
                    changes = {"deadline": when, "expires_at": expiry(old["created_at"], when)}
                    result = "changed"
                else:
                    result = "unchanged"
                if changes:
                    conn.execute(judge_links.update().where(key).values(**changes))
                    self._audit(
                        conn,
                        actor,
                        f"portal.link_{'reissued' if result == 'reissued' else 'extended'}",
                        "portal",
                        f"{campaign_id}/{stage}/{judge_id}",
                        {
                            "generation": old["generation"],
                            "expires_at": changes["expires_at"].isoformat(),
                            "deadline": when.isoformat() if when else None,
                        },
                    )
            row = conn.execute(sa.select(judge_links).where(key)).mappings().one()
        return _link(row), result

    def get_judge_link(self, campaign_id: str, stage: str, judge_id: str) -> JudgeLink | None:
        with self._read() as conn:
            row = conn.execute(sa.select(judge_links).where(self._link_key(campaign_id, stage, judge_id))).mappings()
            found = row.first()
        return None if found is None else _link(found)

    def find_judge_link(self, token_sha: str) -> JudgeLink | None:
        """The link whose current token has this sha256."""
        with self._read() as conn:
            row = conn.execute(sa.select(judge_links).where(judge_links.c.token_sha256 == token_sha)).mappings().first()
        return None if row is None else _link(row)

    def list_judge_links(self, campaign_id: str, stage: str | None = None) -> list[JudgeLink]:
        stmt = sa.select(judge_links).where(judge_links.c.campaign_id == campaign_id)
        if stage is not None:
            stmt = stmt.where(judge_links.c.stage == stage)
        with self._read() as conn:
            rows = conn.execute(stmt.order_by(judge_links.c.stage, judge_links.c.judge_id)).mappings().all()
        return [_link(r) for r in rows]

    def touch_judge_link(self, campaign_id: str, stage: str, judge_id: str, at: dt.datetime) -> JudgeLink:
        """A judge's visit: the first one sets ``opened_at`` (and is audited), every one ``last_seen_at``."""
        key = self._link_key(campaign_id, stage, judge_id)
        with self._write() as conn:
            old = conn.execute(self._lock_clause(sa.select(judge_links).where(key))).mappings().first()
            if old is None:
                raise JudgingError(f"评委 {judge_id} 没有{stage}的评审链接 · judge {judge_id} has no link for {stage}")
            values: dict[str, Any] = {"last_seen_at": at}
            if old["opened_at"] is None:
                values["opened_at"] = at
                self._audit(
                    conn,
                    f"judge:{judge_id}",
                    "portal.opened",
                    "portal",
                    f"{campaign_id}/{stage}/{judge_id}",
                    {"generation": old["generation"]},
                )
            conn.execute(judge_links.update().where(key).values(**values))
            row = conn.execute(sa.select(judge_links).where(key)).mappings().one()
        return _link(row)

    def revoke_judge_link(self, campaign_id: str, stage: str, judge_id: str, *, actor: str) -> JudgeLink:
        """The judge's link stops working at once; the next issue makes a new token (the next generation)."""
        actor = actor.strip()
        if not actor:
            raise JudgingError("须填写操作人 · say who revokes the link")
        key = self._link_key(campaign_id, stage, judge_id)
        with self._write() as conn:
            old = conn.execute(self._lock_clause(sa.select(judge_links).where(key))).mappings().first()
            if old is None:
                raise JudgingError(f"评委 {judge_id} 没有{stage}的评审链接 · judge {judge_id} has no link for {stage}")
            if old["revoked_at"] is not None:
                return _link(old)
            conn.execute(judge_links.update().where(key).values(revoked_at=utcnow(), generation=old["generation"] + 1))
            self._audit(
                conn,
                actor,
                "portal.link_revoked",
                "portal",
                f"{campaign_id}/{stage}/{judge_id}",
                {"generation": old["generation"]},
            )
            row = conn.execute(sa.select(judge_links).where(key)).mappings().one()
        return _link(row)

    def lock_judge_link(self, campaign_id: str, stage: str, judge_id: str, sheet_id: int) -> JudgeLink:
        """A submit was accepted as ``sheet_id``: the judge's portal is locked until an operator reopens it."""
        key = self._link_key(campaign_id, stage, judge_id)
        now = utcnow()
        with self._write() as conn:
            old = conn.execute(self._lock_clause(sa.select(judge_links).where(key))).mappings().first()
            if old is None:
                raise JudgingError(f"评委 {judge_id} 没有{stage}的评审链接 · judge {judge_id} has no link for {stage}")
            conn.execute(judge_links.update().where(key).values(locked=True, submitted_at=now, sheet_id=sheet_id))
            self._audit(
                conn,
                f"judge:{judge_id}",
                "portal.submitted",
                "portal",
                f"{campaign_id}/{stage}/{judge_id}",
                {
                    "sheet": sheet_id,
                    "previous_submit": old["submitted_at"].isoformat() if old["submitted_at"] else None,
                },
            )
            row = conn.execute(sa.select(judge_links).where(key)).mappings().one()
        return _link(row)

    def reopen_judge_link(self, campaign_id: str, stage: str, judge_id: str, *, actor: str, reason: str = "") -> bool:
        """An operator lets a judge change submitted scores again; False when the portal was not locked."""
        actor = actor.strip()
        if not actor:
            raise JudgingError("须填写操作人 · say who reopens the judge's scores")
        key = self._link_key(campaign_id, stage, judge_id)
        with self._write() as conn:
            old = conn.execute(self._lock_clause(sa.select(judge_links).where(key))).mappings().first()
            if old is None:
                raise JudgingError(f"评委 {judge_id} 没有{stage}的评审链接 · judge {judge_id} has no link for {stage}")
            if not old["locked"]:
                return False
            conn.execute(judge_links.update().where(key).values(locked=False, reopened_at=utcnow()))
            self._audit(
                conn,
                actor,
                "portal.reopened",
                "portal",
                f"{campaign_id}/{stage}/{judge_id}",
                {"sheet": old["sheet_id"], "reason": reason.strip()},
            )
        return True

    def save_portal_draft(
        self,
        campaign_id: str,
        stage: str,
        judge_id: str,
        submission_id: str,
        *,
        criteria: Mapping[str, float | None],
        comment: str | None,
        set_comment: bool = True,
    ) -> tuple[PortalDraft, bool]:
        """Merge ``criteria`` into the judge's draft of one entry (None removes a value); say whether it changed.

        Refused while the judge's portal is locked (submitted and not reopened); checked in the same
        transaction, so a save racing a submit never lands after the lock. Changes are audited.
        """
        link_key = self._link_key(campaign_id, stage, judge_id)
        key = sa.and_(
            portal_drafts.c.campaign_id == campaign_id,
            portal_drafts.c.stage == stage,
            portal_drafts.c.judge_id == judge_id,
            portal_drafts.c.submission_id == submission_id,
        )
        now = utcnow()
        with self._write() as conn:
            link = conn.execute(self._lock_clause(sa.select(judge_links).where(link_key))).mappings().first()
            if link is None or link["locked"]:
                raise PortalLockedError(
                    "评分已提交，如需修改请联系组织方重新开放 · the scores are submitted; ask the organisers to reopen "
                    "them to change anything"
                )
            old = conn.execute(sa.select(portal_drafts).where(key)).mappings().first()
            merged: dict[str, float] = dict(old["criteria"]) if old is not None else {}
            for k, v in criteria.items():
                if v is None:
                    merged.pop(k, None)
                else:
                    merged[k] = float(v)
            new_comment = comment if set_comment else (old["comment"] if old is not None else None)
            if old is not None and dict(old["criteria"]) == merged and old["comment"] == new_comment:
                return PortalDraft(judge_id, submission_id, merged, new_comment, old["updated_at"]), False
            values = {"criteria": dict(sorted(merged.items())), "comment": new_comment, "updated_at": now}
            if old is None:
                conn.execute(
                    portal_drafts.insert().values(
                        campaign_id=campaign_id, stage=stage, judge_id=judge_id, submission_id=submission_id, **values
                    )
                )
            else:
                conn.execute(portal_drafts.update().where(key).values(**values))
            self._audit(
                conn,
                f"judge:{judge_id}",
                "portal.draft_saved",
                "portal",
                f"{campaign_id}/{stage}/{judge_id}",
                {
                    "submission_id": submission_id,
                    "criteria": values["criteria"],
                    "comment": new_comment,
                    "previous": None if old is None else {"criteria": old["criteria"], "comment": old["comment"]},
                },
            )
        return PortalDraft(judge_id, submission_id, merged, new_comment, now), True

    def list_portal_drafts(self, campaign_id: str, stage: str, judge_id: str | None = None) -> list[PortalDraft]:
        stmt = sa.select(portal_drafts).where(
            portal_drafts.c.campaign_id == campaign_id, portal_drafts.c.stage == stage
        )
        if judge_id is not None:
            stmt = stmt.where(portal_drafts.c.judge_id == judge_id)
        with self._read() as conn:
            rows = conn.execute(stmt.order_by(portal_drafts.c.judge_id, portal_drafts.c.submission_id)).mappings()
            return [
                PortalDraft(r["judge_id"], r["submission_id"], dict(r["criteria"]), r["comment"], r["updated_at"])
                for r in rows.all()
            ]

    def claim_link_mail(
        self, campaign_id: str, stage: str, judge_id: str, generation: int, recipient: str | None
    ) -> bool:
        """Claim the right to mail this generation of the judge's link, once (as the result e-mails do).

        False when it was sent or is being sent; a failed message, or one without an address, may be
        claimed again. A claim left in ``sending`` is never taken again: the message may have gone.
        """
        now = utcnow()
        key = sa.and_(
            judge_link_mails.c.campaign_id == campaign_id,
            judge_link_mails.c.stage == stage,
            judge_link_mails.c.judge_id == judge_id,
            judge_link_mails.c.generation == generation,
        )
        status = "sending" if recipient else "no_address"
        with self._write() as conn:
            old = conn.execute(self._lock_clause(sa.select(judge_link_mails).where(key))).mappings().first()
            if old is not None and old["status"] in ("sending", "sent"):
                return False
            if old is None:
                conn.execute(
                    judge_link_mails.insert().values(
                        campaign_id=campaign_id,
                        stage=stage,
                        judge_id=judge_id,
                        generation=generation,
                        recipient=recipient,
                        status=status,
                        attempts=1 if recipient else 0,
                        updated_at=now,
                    )
                )
            else:
                conn.execute(
                    judge_link_mails.update()
                    .where(key)
                    .values(
                        recipient=recipient,
                        status=status,
                        error=None,
                        updated_at=now,
                        attempts=old["attempts"] + (1 if recipient else 0),
                    )
                )
        return recipient is not None

    def finish_link_mail(
        self,
        campaign_id: str,
        stage: str,
        judge_id: str,
        generation: int,
        *,
        status: str,
        message_id: str | None = None,
        error: str | None = None,
    ) -> None:
        _check("link mail status", status, LINK_MAIL_STATUSES)
        now = utcnow()
        key = sa.and_(
            judge_link_mails.c.campaign_id == campaign_id,
            judge_link_mails.c.stage == stage,
            judge_link_mails.c.judge_id == judge_id,
            judge_link_mails.c.generation == generation,
        )
        with self._write() as conn:
            conn.execute(
                judge_link_mails.update()
                .where(key)
                .values(
                    status=status,
                    message_id=message_id,
                    error=error,
                    updated_at=now,
                    sent_at=now if status == "sent" else None,
                )
            )
            if status == "sent":
                self._audit(
                    conn,
                    SYSTEM_ACTOR,
                    "portal.link_mailed",
                    "portal",
                    f"{campaign_id}/{stage}/{judge_id}",
                    {"generation": generation, "message_id": message_id},
                )

    def list_link_mails(self, campaign_id: str, stage: str | None = None) -> list[dict[str, Any]]:
        stmt = sa.select(judge_link_mails).where(judge_link_mails.c.campaign_id == campaign_id)
        if stage is not None:
            stmt = stmt.where(judge_link_mails.c.stage == stage)
        with self._read() as conn:
            order = (judge_link_mails.c.stage, judge_link_mails.c.judge_id, judge_link_mails.c.generation)
            return [dict(r) for r in conn.execute(stmt.order_by(*order)).mappings().all()]
