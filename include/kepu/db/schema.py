"""Tables of the app records (SQLAlchemy Core).

The alembic migrations under ``migrations/versions`` create exactly these tables; a unit test
compares the two so they cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

# Deterministic constraint names make later migrations (and SQLite batch mode) reliable.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Allowed values of the enumerated text columns. They are checked by the repository rather than
#: by CHECK constraints so a new value needs a code change, not a table rebuild on SQLite.
SUBMISSION_KINDS: tuple[str, ...] = ("video", "account")
VERDICTS: tuple[str, ...] = ("pass", "review", "fail")
STATUSES: tuple[str, ...] = ("registered", "awaiting_download", "fetched", "checked", "error")
OVERRIDE_DECISIONS: tuple[str, ...] = ("keep", "exclude")
SEVERITIES: tuple[str, ...] = ("error", "warning", "info")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on every backend.

    SQLite keeps no zone, so values are converted to UTC before writing and marked UTC when read;
    PostgreSQL's ``timestamptz`` round-trips them unchanged.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given; timestamps must be timezone-aware")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise TypeError(f"unexpected timestamp value {value!r}")
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("file_sha256", sa.Text, nullable=False),
    sa.Column("loaded_at", UTCDateTime, nullable=False),
)

submitters = sa.Table(
    "submitters",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("campaign_id", sa.Text, sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("province", sa.Text, nullable=True),
    sa.Column("channel", sa.Text, nullable=True),
    sa.UniqueConstraint("campaign_id", "name", name="uq_submitters_campaign_id_name"),
)

submissions = sa.Table(
    "submissions",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("campaign_id", sa.Text, sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column("submitter_id", sa.Text, sa.ForeignKey("submitters.id"), nullable=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("source_name", sa.Text, nullable=False),
    sa.Column("source_uri", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=True),
    sa.Column("province", sa.Text, nullable=True),
    sa.Column("unit", sa.Text, nullable=True),
    sa.Column("channel", sa.Text, nullable=True),
    sa.Column("received_at", UTCDateTime, nullable=True),
    sa.Column("verdict", sa.Text, nullable=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("last_run_id", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # The submitting unit or person, normalised: what quotas count by.
    sa.Column("entity", sa.Text, nullable=True),
    # What the package says of itself (form fields, synopsis, contacts, titles, sheet row): JSON,
    # because each kind and each campaign's forms carry other fields.
    sa.Column("details", sa.JSON, nullable=True),
    sa.Column("media_metrics", sa.JSON, nullable=True),
    sa.Index("ix_submissions_campaign_id", "campaign_id"),
)

materials = sa.Table(
    "materials",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("submission_id", sa.Text, sa.ForeignKey("submissions.id"), nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("object_key", sa.Text, nullable=False),
    sa.Column("sha256", sa.Text, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("content_type", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("submission_id", "object_key", name="uq_materials_submission_id_object_key"),
)

findings = sa.Table(
    "findings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("submission_id", sa.Text, sa.ForeignKey("submissions.id"), nullable=False),
    sa.Column("stage", sa.Text, nullable=False),
    sa.Column("code", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("value", sa.Text, nullable=True),
    sa.Column("limit_value", sa.Text, nullable=True),
    sa.Column("at_seconds", sa.Float, nullable=True),
    sa.Column("message_zh", sa.Text, nullable=False),
    sa.Column("message_en", sa.Text, nullable=False),
    sa.Column("run_id", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_findings_submission_id", "submission_id"),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("campaign_id", sa.Text, nullable=False),
    sa.Column("dag_id", sa.Text, nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("stats", sa.JSON, nullable=True),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("entity", sa.Text, nullable=False),
    sa.Column("entity_id", sa.Text, nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Index("ix_audit_log_entity_entity_id", "entity", "entity_id"),
)

quota_overrides = sa.Table(
    "quota_overrides",
    metadata,
    sa.Column("submission_id", sa.Text, sa.ForeignKey("submissions.id"), primary_key=True),
    sa.Column("campaign_id", sa.Text, nullable=False),
    sa.Column("decision", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_quota_overrides_campaign_id", "campaign_id"),
)

#: Application tables in dependency order (parents first).
TABLES: tuple[sa.Table, ...] = (
    campaigns, submitters, submissions, materials, findings, runs, audit_log, quota_overrides,
)  # fmt: skip
