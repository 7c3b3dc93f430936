"""Reading and writing the app records.

Every public write runs in one transaction and is idempotent: rows are keyed by natural keys, so
running a DAG task twice leaves the tables exactly as one run did (:meth:`Records.table_counts`
is how the demo proves it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, RowMapping

from kepu.db import WRITE_OPTION, get_engine
from kepu.db.award_records import AwardRecords
from kepu.db.judging_records import JudgingRecords
from kepu.db.schema import (
    OVERRIDE_DECISIONS,
    SEVERITIES,
    STATUSES,
    SUBMISSION_KINDS,
    TABLES,
    VERDICTS,
    audit_log,
    campaigns,
    quota_overrides,
    runs,
    submissions,
    submitters,
    utcnow,
)
from kepu.db.schema import findings as findings_table
from kepu.db.schema import materials as materials_table
from kepu.errors import KepuError

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "kepu"

UpsertResult = Literal["new", "changed", "unchanged"]


class RecordNotFound(KepuError, LookupError):
    """A write referred to a row that does not exist."""


@dataclass(frozen=True)
class SubmissionRecord:
    """One received package (a video entry or an account entry)."""

    id: str
    campaign_id: str
    kind: str
    source_name: str
    source_uri: str
    fingerprint: str
    submitter_id: str | None = None
    title: str | None = None
    province: str | None = None
    unit: str | None = None
    channel: str | None = None
    received_at: dt.datetime | None = None
    verdict: str | None = None
    status: str = "registered"
    last_run_id: str | None = None
    # Filled in by the repository when read back; ignored on write.
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclass(frozen=True)
class MaterialRecord:
    """One stored file of a submission."""

    role: str
    filename: str
    object_key: str
    sha256: str
    size_bytes: int
    content_type: str | None = None


@dataclass(frozen=True)
class FindingRecord:
    """One check result. ``submission_id`` and ``run_id`` are filled in when read back.

    ``stage`` may be left empty when writing: :meth:`Records.replace_findings` is told the stage.
    """

    code: str
    severity: str
    value: str | None = None
    limit_value: str | None = None
    at_seconds: float | None = None
    message_zh: str = ""
    message_en: str = ""
    stage: str = ""
    submission_id: str = ""
    run_id: str | None = None


# Descriptive columns a re-received package may update without counting as a content change.
_DESCRIPTIVE = (
    "submitter_id",
    "kind",
    "source_name",
    "source_uri",
    "title",
    "province",
    "unit",
    "channel",
    "received_at",
)


def _check_choice(what: str, value: str | None, allowed: tuple[str, ...], *, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    if value not in allowed:
        raise ValueError(f"invalid {what} {value!r}; expected one of {', '.join(allowed)}")


def submitter_id(campaign_id: str, name: str) -> str:
    """Stable id of a submitter: a short hash of campaign and normalised name."""
    key = f"{campaign_id}\x1f{_normalise_name(name)}".encode()
    return "p" + hashlib.sha256(key).hexdigest()[:15]


def _normalise_name(name: str) -> str:
    # The same organisation typed twice (stray or full-width spaces, decomposed characters) is one submitter.
    return " ".join(unicodedata.normalize("NFC", name).split())


def _submission_from_row(row: RowMapping) -> SubmissionRecord:
    return SubmissionRecord(
        id=row["id"],
        campaign_id=row["campaign_id"],
        kind=row["kind"],
        source_name=row["source_name"],
        source_uri=row["source_uri"],
        fingerprint=row["fingerprint"],
        submitter_id=row["submitter_id"],
        title=row["title"],
        province=row["province"],
        unit=row["unit"],
        channel=row["channel"],
        received_at=row["received_at"],
        verdict=row["verdict"],
        status=row["status"],
        last_run_id=row["last_run_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _finding_detail(row: RowMapping) -> dict[str, Any]:
    return {
        k: row[k]
        for k in (
            "stage",
            "code",
            "severity",
            "value",
            "limit_value",
            "at_seconds",
            "message_zh",
            "message_en",
            "run_id",
        )
    }


def _finding_from_row(row: RowMapping) -> FindingRecord:
    return FindingRecord(
        code=row["code"],
        severity=row["severity"],
        value=row["value"],
        limit_value=row["limit_value"],
        at_seconds=row["at_seconds"],
        message_zh=row["message_zh"],
        message_en=row["message_en"],
        stage=row["stage"],
        submission_id=row["submission_id"],
        run_id=row["run_id"],
    )


#: Strings longer than this are left out of an audited metrics summary (fingerprints, logs).
_SUMMARY_MAX_STR = 256


def media_summary(metrics: Mapping[str, Any] | None) -> dict[str, Any]:
    """The media metrics in a few figures for the audit log: the probe summary, and every scalar
    at the top level or one level down (event lists and long strings are left out)."""

    def scalar(v: Any) -> bool:
        return v is None or isinstance(v, bool | int | float) or (isinstance(v, str) and len(v) <= _SUMMARY_MAX_STR)

    out: dict[str, Any] = {}
    for key, value in (metrics or {}).items():
        if key == "probe" and isinstance(value, Mapping):
            out[key] = dict(value)
        elif scalar(value):
            out[key] = value
        elif isinstance(value, Mapping):
            inner = {k: v for k, v in value.items() if scalar(v)}
            if inner:
                out[key] = inner
    return out


def rendition_summary(rendition: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What identifies a publication copy: its source, mode, and each output's key and checksum."""
    if not rendition:
        return None
    return {
        "source_sha256": rendition.get("source_sha256"),
        "mode": rendition.get("mode"),
        "plan_key": rendition.get("plan_key"),
        "outputs": {
            name: {"key": o.get("key"), "sha256": o.get("sha256"), "size": o.get("size")}
            for name, o in sorted((rendition.get("outputs") or {}).items())
        },
    }


class Records(JudgingRecords, AwardRecords):
    """The app records behind one engine (judging methods: :class:`~kepu.db.judging_records.JudgingRecords`;
    certificates, publication and notifications: :class:`~kepu.db.award_records.AwardRecords`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # The connection of the transaction open in this thread, if any (see :meth:`transaction`).
        self._local = threading.local()

    @classmethod
    def from_url(cls, url: str) -> Records:
        """Records for ``url``, sharing the cached engine (run :func:`kepu.db.upgrade` first)."""
        return cls(get_engine(url))

    # -- transactions ------------------------------------------------------------------------------

    def _current(self) -> Connection | None:
        return getattr(self._local, "conn", None)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Make every read and write inside the block one transaction: all of it commits, or none.

        A step wraps the records it writes for one submission in it, the status change last, so a
        process killed half-way leaves the previous state and the rerun redoes the step. Nested
        blocks join the outer one. Bound to the calling thread.
        """
        if self._current() is not None:
            yield
            return
        with self.engine.connect() as conn:
            # On SQLite this begins with BEGIN IMMEDIATE: the block writes, so it takes the lock up front.
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                self._local.conn = conn
                try:
                    yield
                finally:
                    self._local.conn = None

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        current = self._current()
        if current is not None:
            yield current
            return
        with self.engine.connect() as conn:
            # On SQLite this begins with BEGIN IMMEDIATE, serialising read-then-write upserts.
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        current = self._current()
        if current is not None:
            # Inside a transaction a read sees what the transaction wrote so far.
            yield current
            return
        with self.engine.connect() as conn:
            yield conn

    def _lock_clause(self, stmt: sa.Select[Any]) -> sa.Select[Any]:
        # PostgreSQL needs an explicit row lock; SQLite already holds the database write lock.
        return stmt.with_for_update() if self.engine.dialect.name == "postgresql" else stmt

    def _upsert(
        self,
        conn: Connection,
        table: sa.Table,
        keys: Mapping[str, Any],
        insert_values: Mapping[str, Any],
        update_values: Mapping[str, Any],
    ) -> None:
        """Insert a row or update the one with the same ``keys``, atomically.

        A new row gets ``keys``, ``insert_values`` and ``update_values``; an existing one only
        ``update_values``.
        """
        values = {**keys, **insert_values, **update_values}
        dialect = self.engine.dialect.name
        stmt: SqliteInsert | PgInsert
        if dialect == "sqlite":
            stmt = sqlite_insert(table).values(**values)
        elif dialect == "postgresql":
            stmt = pg_insert(table).values(**values)
        else:
            self._upsert_generic(conn, table, keys, values, update_values)
            return
        if update_values:
            conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=dict(update_values)))
        else:
            conn.execute(stmt.on_conflict_do_nothing(index_elements=list(keys)))

    @staticmethod
    def _upsert_generic(
        conn: Connection,
        table: sa.Table,
        keys: Mapping[str, Any],
        values: Mapping[str, Any],
        update_values: Mapping[str, Any],
    ) -> None:
        # Other databases: the surrounding transaction makes select-then-write safe enough for
        # kepu's single-writer-per-submission tasks.
        where = sa.and_(*(table.c[k] == v for k, v in keys.items()))
        if conn.execute(sa.select(sa.literal(1)).select_from(table).where(where)).first() is None:
            conn.execute(table.insert().values(**values))
        elif update_values:
            conn.execute(table.update().where(where).values(**update_values))

    def _audit(
        self,
        conn: Connection,
        actor: str,
        action: str,
        entity: str,
        entity_id: str,
        detail: Mapping[str, Any],
    ) -> None:
        conn.execute(
            audit_log.insert().values(
                at=utcnow(),
                actor=actor,
                action=action,
                entity=entity,
                entity_id=entity_id,
                detail=dict(detail),
            )
        )

    def _results(self, conn: Connection, submission_id: str, row: RowMapping) -> dict[str, Any]:
        """The results a submission holds now (``row`` is its submissions row), as audit detail."""
        mats = conn.execute(
            sa.select(
                materials_table.c.role,
                materials_table.c.filename,
                materials_table.c.object_key,
                materials_table.c.sha256,
                materials_table.c.size_bytes,
            )
            .where(materials_table.c.submission_id == submission_id)
            .order_by(materials_table.c.role, materials_table.c.object_key)
        ).mappings()
        found = conn.execute(
            sa.select(findings_table)
            .where(findings_table.c.submission_id == submission_id)
            .order_by(findings_table.c.stage, findings_table.c.id)
        ).mappings()
        details = row.get("details") or {}
        return {
            "status": row.get("status"),
            "verdict": row.get("verdict"),
            "last_run_id": row.get("last_run_id"),
            "materials": [dict(m) for m in mats],
            "findings": [_finding_detail(f) for f in found],
            "media_metrics": media_summary(row.get("media_metrics")),
            "rendition": rendition_summary(details.get("rendition")),
        }

    # -- campaigns and submitters ----------------------------------------------------------------

    def upsert_campaign(self, campaign_id: str, name: str, file_sha256: str) -> None:
        """Record a loaded campaign file; ``loaded_at`` moves only when the file itself changed."""
        now = utcnow()
        with self._write() as conn:
            row = conn.execute(
                self._lock_clause(sa.select(campaigns.c.file_sha256).where(campaigns.c.id == campaign_id))
            ).first()
            if row is None:
                conn.execute(
                    campaigns.insert().values(id=campaign_id, name=name, file_sha256=file_sha256, loaded_at=now)
                )
                return
            values: dict[str, Any] = {"name": name}
            if row.file_sha256 != file_sha256:
                values.update(file_sha256=file_sha256, loaded_at=now)
                self._audit(
                    conn,
                    SYSTEM_ACTOR,
                    "campaign.changed",
                    "campaign",
                    campaign_id,
                    {"old_sha256": row.file_sha256, "new_sha256": file_sha256},
                )
            conn.execute(campaigns.update().where(campaigns.c.id == campaign_id).values(**values))

    def upsert_submitter(self, campaign_id: str, name: str, province: str | None, channel: str | None) -> str:
        """Record a submitter and return its stable id.

        ``province`` and ``channel`` are updated when given; ``None`` keeps what is known.
        """
        clean = _normalise_name(name)
        if not clean:
            raise ValueError("submitter name is empty")
        sid = submitter_id(campaign_id, clean)
        update = {k: v for k, v in (("province", province), ("channel", channel)) if v is not None}
        with self._write() as conn:
            self._upsert(
                conn,
                submitters,
                {"id": sid},
                {"campaign_id": campaign_id, "name": clean, "province": province, "channel": channel},
                update,
            )
        return sid

    # -- submissions ---------------------------------------------------------------------------------

    def upsert_submission(self, rec: SubmissionRecord) -> UpsertResult:
        """Record a received package and say whether it is new, changed or unchanged.

        The fingerprint decides: an unchanged package keeps its status and verdict (a rerun must not
        undo checking), only descriptive fields are refreshed. A changed package is reset to
        ``rec.status`` with no verdict, and the change is written to the audit log.
        """
        _check_choice("submission kind", rec.kind, SUBMISSION_KINDS)
        _check_choice("status", rec.status, STATUSES)
        _check_choice("verdict", rec.verdict, VERDICTS, nullable=True)
        now = utcnow()
        with self._write() as conn:
            row = (
                conn.execute(self._lock_clause(sa.select(submissions).where(submissions.c.id == rec.id)))
                .mappings()
                .first()
            )
            if row is None:
                conn.execute(
                    submissions.insert().values(
                        id=rec.id,
                        campaign_id=rec.campaign_id,
                        fingerprint=rec.fingerprint,
                        verdict=rec.verdict,
                        status=rec.status,
                        last_run_id=rec.last_run_id,
                        created_at=now,
                        updated_at=now,
                        **{k: getattr(rec, k) for k in _DESCRIPTIVE},
                    )
                )
                return "new"
            if row["campaign_id"] != rec.campaign_id:
                raise ValueError(f"submission {rec.id} belongs to campaign {row['campaign_id']}, not {rec.campaign_id}")
            changed_fields = {k: getattr(rec, k) for k in _DESCRIPTIVE if getattr(rec, k) != row[k]}
            if row["fingerprint"] == rec.fingerprint:
                if changed_fields:
                    conn.execute(
                        submissions.update().where(submissions.c.id == rec.id).values(updated_at=now, **changed_fields)
                    )
                return "unchanged"
            conn.execute(
                submissions.update()
                .where(submissions.c.id == rec.id)
                .values(
                    fingerprint=rec.fingerprint,
                    status=rec.status,
                    verdict=None,
                    last_run_id=rec.last_run_id,
                    updated_at=now,
                    **changed_fields,
                )
            )
            self._audit(
                conn,
                SYSTEM_ACTOR,
                "submission.changed",
                "submission",
                rec.id,
                {
                    "old_fingerprint": row["fingerprint"],
                    "new_fingerprint": rec.fingerprint,
                    "old_status": row["status"],
                    "old_verdict": row["verdict"],
                    # Everything the old package gave, before the steps replace it.
                    "previous": self._results(conn, rec.id, row),
                },
            )
            log.info("submission %s changed (fingerprint %s -> %s)", rec.id, row["fingerprint"], rec.fingerprint)
            return "changed"

    def get_submission(self, submission_id: str) -> SubmissionRecord | None:
        with self._read() as conn:
            row = conn.execute(sa.select(submissions).where(submissions.c.id == submission_id)).mappings().first()
        return None if row is None else _submission_from_row(row)

    def list_submissions(self, campaign_id: str, ids: Sequence[str] | None = None) -> list[SubmissionRecord]:
        """Submissions of a campaign ordered by id, optionally only those in ``ids``."""
        stmt = sa.select(submissions).where(submissions.c.campaign_id == campaign_id)
        if ids is not None:
            if not ids:
                return []
            stmt = stmt.where(submissions.c.id.in_(list(ids)))
        with self._read() as conn:
            rows = conn.execute(stmt.order_by(submissions.c.id)).mappings().all()
        return [_submission_from_row(r) for r in rows]

    def _update_submission(self, conn: Connection, submission_id: str, values: dict[str, Any]) -> None:
        result = conn.execute(
            submissions.update().where(submissions.c.id == submission_id).values(updated_at=utcnow(), **values)
        )
        if result.rowcount == 0:
            raise RecordNotFound(f"no submission {submission_id!r}")

    def set_status(self, submission_id: str, status: str, run_id: str | None = None) -> None:
        """Set the processing status; ``run_id`` (when given) records which run set it."""
        _check_choice("status", status, STATUSES)
        values: dict[str, Any] = {"status": status}
        if run_id is not None:
            values["last_run_id"] = run_id
        with self._write() as conn:
            self._update_submission(conn, submission_id, values)

    def set_verdict(self, submission_id: str, verdict: str | None) -> None:
        _check_choice("verdict", verdict, VERDICTS, nullable=True)
        with self._write() as conn:
            self._update_submission(conn, submission_id, {"verdict": verdict})

    # -- materials -----------------------------------------------------------------------------------

    def replace_materials(self, submission_id: str, materials: Sequence[MaterialRecord]) -> None:
        """Make ``materials`` the complete list of the submission's stored files."""
        keys = [m.object_key for m in materials]
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate object keys for submission {submission_id}")
        now = utcnow()
        fields = ("role", "filename", "object_key", "sha256", "size_bytes")
        with self._write() as conn:
            old = [
                dict(r)
                for r in conn.execute(
                    sa.select(*(materials_table.c[f] for f in fields))
                    .where(materials_table.c.submission_id == submission_id)
                    .order_by(materials_table.c.role, materials_table.c.object_key)
                ).mappings()
            ]
            new = sorted(
                ({f: getattr(m, f) for f in fields} for m in materials), key=lambda m: (m["role"], m["object_key"])
            )
            if old and old != new:
                self._audit(
                    conn, SYSTEM_ACTOR, "materials.replaced", "submission", submission_id, {"old": old, "new": new}
                )
            conn.execute(materials_table.delete().where(materials_table.c.submission_id == submission_id))
            if materials:
                conn.execute(
                    materials_table.insert(),
                    [
                        {
                            "submission_id": submission_id,
                            "role": m.role,
                            "filename": m.filename,
                            "object_key": m.object_key,
                            "sha256": m.sha256,
                            "size_bytes": m.size_bytes,
                            "content_type": m.content_type,
                            "created_at": now,
                        }
                        for m in materials
                    ],
                )

    def list_materials(self, submission_id: str) -> list[MaterialRecord]:
        stmt = (
            sa.select(materials_table)
            .where(materials_table.c.submission_id == submission_id)
            .order_by(materials_table.c.role, materials_table.c.object_key)
        )
        with self._read() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [
            MaterialRecord(
                role=r["role"],
                filename=r["filename"],
                object_key=r["object_key"],
                sha256=r["sha256"],
                size_bytes=r["size_bytes"],
                content_type=r["content_type"],
            )
            for r in rows
        ]

    # -- findings ------------------------------------------------------------------------------------

    def replace_findings(
        self, submission_id: str, stage: str, findings: Sequence[FindingRecord], run_id: str | None
    ) -> None:
        """Make ``findings`` the complete findings of one ``stage`` of a submission.

        When the set of codes changes, the old codes go to the audit log first, so a verdict that
        changed between runs can still be explained later.
        """
        if not stage:
            raise ValueError("stage is empty")
        for f in findings:
            _check_choice("severity", f.severity, SEVERITIES)
            if f.stage and f.stage != stage:
                raise ValueError(f"finding {f.code} is for stage {f.stage!r}, not {stage!r}")
        now = utcnow()
        stage_rows = sa.and_(findings_table.c.submission_id == submission_id, findings_table.c.stage == stage)
        with self._write() as conn:
            old = (
                conn.execute(sa.select(findings_table).where(stage_rows).order_by(findings_table.c.id)).mappings().all()
            )
            old_codes = sorted(r["code"] for r in old)
            new_codes = sorted(f.code for f in findings)
            if old and old_codes != new_codes:
                self._audit(
                    conn,
                    SYSTEM_ACTOR,
                    "findings.replaced",
                    "submission",
                    submission_id,
                    {
                        "stage": stage,
                        "old_codes": old_codes,
                        "new_codes": new_codes,
                        "old_run_ids": sorted({r["run_id"] for r in old if r["run_id"]}),
                        "old_findings": [_finding_detail(r) for r in old],
                        "run_id": run_id,
                    },
                )
            conn.execute(findings_table.delete().where(stage_rows))
            if findings:
                conn.execute(
                    findings_table.insert(),
                    [
                        {
                            "submission_id": submission_id,
                            "stage": stage,
                            "code": f.code,
                            "severity": f.severity,
                            "value": f.value,
                            "limit_value": f.limit_value,
                            "at_seconds": f.at_seconds,
                            "message_zh": f.message_zh,
                            "message_en": f.message_en,
                            "run_id": run_id,
                            "created_at": now,
                        }
                        for f in findings
                    ],
                )

    def list_findings(self, campaign_id: str | None = None, submission_id: str | None = None) -> list[FindingRecord]:
        """Findings filtered by campaign and/or submission, in a stable order."""
        stmt = sa.select(findings_table)
        if campaign_id is not None:
            stmt = stmt.join(submissions, submissions.c.id == findings_table.c.submission_id).where(
                submissions.c.campaign_id == campaign_id
            )
        if submission_id is not None:
            stmt = stmt.where(findings_table.c.submission_id == submission_id)
        stmt = stmt.order_by(findings_table.c.submission_id, findings_table.c.stage, findings_table.c.id)
        with self._read() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [_finding_from_row(r) for r in rows]

    # -- runs and audit ------------------------------------------------------------------------------

    def start_run(self, run_id: str, campaign_id: str, dag_id: str, params: Mapping[str, Any]) -> None:
        """Record that a DAG run started; a retried task re-marks the same run as running."""
        with self._write() as conn:
            self._upsert(
                conn,
                runs,
                {"id": run_id},
                {"campaign_id": campaign_id, "dag_id": dag_id, "started_at": utcnow()},
                {"params": dict(params), "status": "running", "finished_at": None},
            )

    def finish_run(self, run_id: str, status: str, stats: Mapping[str, Any]) -> None:
        with self._write() as conn:
            result = conn.execute(
                runs.update().where(runs.c.id == run_id).values(status=status, stats=dict(stats), finished_at=utcnow())
            )
            if result.rowcount == 0:
                raise RecordNotFound(f"no run {run_id!r}; call start_run first")

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        with self._read() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
        return None if row is None else dict(row)

    def audit(self, actor: str, action: str, entity: str, entity_id: str, detail: Mapping[str, Any]) -> None:
        with self._write() as conn:
            self._audit(conn, actor, action, entity, entity_id, detail)

    def list_audit(self, entity: str | None = None, entity_id: str | None = None) -> list[dict[str, Any]]:
        """Audit rows, oldest first, optionally for one entity."""
        stmt = sa.select(audit_log)
        if entity is not None:
            stmt = stmt.where(audit_log.c.entity == entity)
        if entity_id is not None:
            stmt = stmt.where(audit_log.c.entity_id == entity_id)
        with self._read() as conn:
            return [dict(r) for r in conn.execute(stmt.order_by(audit_log.c.id)).mappings().all()]

    # --- details, media metrics and quota overrides ----------------------------------------------

    def set_details(
        self,
        submission_id: str,
        details: Mapping[str, Any],
        *,
        kind: str | None = None,
        entity: str | None = None,
        channel: str | None = None,
        received_at: dt.datetime | None = None,
    ) -> None:
        """Merge ``details`` into the submission's details; set the given columns when not None."""
        if kind is not None:
            _check_choice("kind", kind, SUBMISSION_KINDS)
        with self._write() as conn:
            row = conn.execute(
                self._lock_clause(sa.select(submissions.c.details).where(submissions.c.id == submission_id))
            ).first()
            if row is None:
                raise RecordNotFound(f"no submission {submission_id!r}")
            merged = {**(row[0] or {}), **details}
            values: dict[str, Any] = {"details": merged}
            for column, value in (
                ("kind", kind),
                ("entity", entity),
                ("channel", channel),
                ("received_at", received_at),
            ):
                if value is not None:
                    values[column] = value
            self._update_submission(conn, submission_id, values)

    def get_details(self, submission_id: str) -> dict[str, Any]:
        with self._read() as conn:
            row = conn.execute(sa.select(submissions.c.details).where(submissions.c.id == submission_id)).first()
        if row is None:
            raise RecordNotFound(f"no submission {submission_id!r}")
        return dict(row[0] or {})

    def get_media_metrics(self, submission_id: str) -> dict[str, Any]:
        with self._read() as conn:
            row = conn.execute(sa.select(submissions.c.media_metrics).where(submissions.c.id == submission_id)).first()
        if row is None:
            raise RecordNotFound(f"no submission {submission_id!r}")
        return dict(row[0] or {})

    def set_media_metrics(self, submission_id: str, metrics: Mapping[str, Any]) -> None:
        """Replace the media metrics; a summary of different old ones goes to the audit log first."""
        with self._write() as conn:
            row = conn.execute(
                self._lock_clause(sa.select(submissions.c.media_metrics).where(submissions.c.id == submission_id))
            ).first()
            if row is None:
                raise RecordNotFound(f"no submission {submission_id!r}")
            old, new = media_summary(row[0]), media_summary(metrics)
            if old and old != new:
                self._audit(conn, SYSTEM_ACTOR, "media_metrics.replaced", "submission", submission_id, {"old": old})
            self._update_submission(conn, submission_id, {"media_metrics": dict(metrics)})

    def set_rendition(self, submission_id: str, rendition: Mapping[str, Any] | None, run_id: str | None) -> None:
        """Record the submission's publication copy (``None``: it has none); a different earlier one
        (other outputs or checksums) goes to the audit log first."""
        with self._write() as conn:
            row = conn.execute(
                self._lock_clause(sa.select(submissions.c.details).where(submissions.c.id == submission_id))
            ).first()
            if row is None:
                raise RecordNotFound(f"no submission {submission_id!r}")
            details = dict(row[0] or {})
            old = rendition_summary(details.get("rendition"))
            new = rendition_summary(rendition)
            if old and (new is None or old["outputs"] != new["outputs"]):
                action = "rendition.replaced" if new else "rendition.removed"
                self._audit(conn, SYSTEM_ACTOR, action, "submission", submission_id, {"old": old, "run_id": run_id})
            details["rendition"] = dict(rendition) if rendition else None
            self._update_submission(conn, submission_id, {"details": details})

    def campaign_rows(self, campaign_id: str) -> list[dict[str, Any]]:
        """Every submission of a campaign with its details, media metrics, entity and video checksum.

        One row per submission, for the campaign-wide checks (quotas, deadlines, duplicates).
        """
        video_sha = (
            sa.select(materials_table.c.sha256)
            .where(materials_table.c.submission_id == submissions.c.id, materials_table.c.role == "video")
            .limit(1)
            .scalar_subquery()
        )
        stmt = (
            sa.select(submissions, video_sha.label("video_sha256"))
            .where(submissions.c.campaign_id == campaign_id)
            .order_by(submissions.c.id)
        )
        with self._read() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings().all()]

    def upsert_quota_override(
        self, campaign_id: str, submission_id: str, decision: str, actor: str, reason: str
    ) -> None:
        """Record an operator's quota decision (who, when, why); the latest decision stands."""
        _check_choice("decision", decision, OVERRIDE_DECISIONS)
        if not actor.strip() or not reason.strip():
            raise ValueError("a quota override needs who made it and why")
        values = {"campaign_id": campaign_id, "decision": decision, "actor": actor, "reason": reason, "at": utcnow()}
        with self._write() as conn:
            self._upsert(conn, quota_overrides, {"submission_id": submission_id}, {}, values)
            self._audit(
                conn, actor, "quota.override", "submission", submission_id, {"decision": decision, "reason": reason}
            )

    def list_quota_overrides(self, campaign_id: str) -> list[dict[str, Any]]:
        with self._read() as conn:
            stmt = sa.select(quota_overrides).where(quota_overrides.c.campaign_id == campaign_id)
            return [dict(r) for r in conn.execute(stmt.order_by(quota_overrides.c.submission_id)).mappings().all()]

    def table_counts(self) -> dict[str, int]:
        """Rows per table."""
        with self._read() as conn:
            return {t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()) for t in TABLES}
