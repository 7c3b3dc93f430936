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
REVIEW_DECISIONS: tuple[str, ...] = ("pass", "fail")
SHEET_STATUSES: tuple[str, ...] = ("accepted", "rejected", "superseded")
RANKING_STATUSES: tuple[str, ...] = ("ranked", "insufficient", "withdrawn")
AWARD_KINDS: tuple[str, ...] = ("excellent_video", "excellent_account", "best_video")


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

# --- judging (migration 0003) ----------------------------------------------------------------------

review_decisions = sa.Table(
    "review_decisions",
    metadata,
    # A person's decision at a gate: the formal review of a `review` entry, or content compliance.
    # The latest decision stands; earlier ones are in the audit log.
    sa.Column("submission_id", sa.Text, sa.ForeignKey("submissions.id"), primary_key=True),
    sa.Column("stage", sa.Text, primary_key=True),
    sa.Column("campaign_id", sa.Text, nullable=False),
    sa.Column("decision", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_review_decisions_campaign_id", "campaign_id"),
)

judges = sa.Table(
    "judges",
    metadata,
    sa.Column("campaign_id", sa.Text, sa.ForeignKey("campaigns.id"), primary_key=True),
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("unit", sa.Text, nullable=False),
    sa.Column("province", sa.Text, nullable=False),
    sa.Column("expertise", sa.JSON, nullable=False),
    sa.Column("email", sa.Text, nullable=True),
    # False once a later roster no longer lists the judge: past scores keep their judge.
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("roster_sha256", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

judging_rounds = sa.Table(
    "judging_rounds",
    metadata,
    sa.Column("campaign_id", sa.Text, sa.ForeignKey("campaigns.id"), primary_key=True),
    sa.Column("stage", sa.Text, primary_key=True),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("roster_sha256", sa.Text, nullable=False),
    sa.Column("assignment_sha256", sa.Text, nullable=False),
    sa.Column("summary", sa.JSON, nullable=False),
    # Agreement, judges' severity and the like of the last aggregation.
    sa.Column("aggregate", sa.JSON, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

assignments = sa.Table(
    "assignments",
    metadata,
    sa.Column("campaign_id", sa.Text, primary_key=True),
    sa.Column("stage", sa.Text, primary_key=True),
    sa.Column("judge_id", sa.Text, primary_key=True),
    sa.Column("submission_id", sa.Text, sa.ForeignKey("submissions.id"), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("linking", sa.Boolean, nullable=False),
)

score_sheets = sa.Table(
    "score_sheets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("campaign_id", sa.Text, nullable=False),
    sa.Column("stage", sa.Text, nullable=False),
    # Who the sheet says it is from; None when it names no judge of the round.
    sa.Column("judge_id", sa.Text, nullable=True),
    sa.Column("object_key", sa.Text, nullable=False),
    # The sheet exactly as received, kept under its checksum.
    sa.Column("archive_key", sa.Text, nullable=False),
    sa.Column("sha256", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("problems", sa.JSON, nullable=False),
    sa.Column("ingested_at", UTCDateTime, nullable=False),
    sa.Column("superseded_by", sa.Integer, nullable=True),
    sa.UniqueConstraint("campaign_id", "stage", "sha256", name="uq_score_sheets_campaign_id_stage_sha256"),
)

scores = sa.Table(
    "scores",
    metadata,
    # Rows of superseded sheets stay: they are the audit trail of corrected scores.
    sa.Column("sheet_id", sa.Integer, sa.ForeignKey("score_sheets.id"), primary_key=True),
    sa.Column("submission_id", sa.Text, sa.ForeignKey("submissions.id"), primary_key=True),
    sa.Column("campaign_id", sa.Text, nullable=False),
    sa.Column("stage", sa.Text, nullable=False),
    sa.Column("judge_id", sa.Text, nullable=False),
    sa.Column("criteria", sa.JSON, nullable=False),
    sa.Column("weighted", sa.Float, nullable=False),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Index("ix_scores_campaign_id_stage", "campaign_id", "stage"),
)

rankings = sa.Table(
    "rankings",
    metadata,
    sa.Column("campaign_id", sa.Text, primary_key=True),
    sa.Column("stage", sa.Text, primary_key=True),
    sa.Column("submission_id", sa.Text, sa.ForeignKey("submissions.id"), primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("rank", sa.Integer, nullable=True),
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("raw_mean", sa.Float, nullable=True),
    sa.Column("median", sa.Float, nullable=True),
    sa.Column("n_scores", sa.Integer, nullable=False),
)

selections = sa.Table(
    "selections",
    metadata,
    sa.Column("campaign_id", sa.Text, sa.ForeignKey("campaigns.id"), primary_key=True),
    # Checksum of the canonical ranking and awards: the same sheets always give the same one.
    sa.Column("ranking_sha256", sa.Text, primary_key=True),
    sa.Column("inputs", sa.JSON, nullable=False),
    sa.Column("notes", sa.JSON, nullable=False),
    sa.Column("complete", sa.Boolean, nullable=False),
    sa.Column("current", sa.Boolean, nullable=False),
    sa.Column("export_key", sa.Text, nullable=True),
    sa.Column("export_sha256", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

awards = sa.Table(
    "awards",
    metadata,
    sa.Column("campaign_id", sa.Text, primary_key=True),
    sa.Column("ranking_sha256", sa.Text, primary_key=True),
    sa.Column("award", sa.Text, primary_key=True),
    sa.Column("submission_id", sa.Text, sa.ForeignKey("submissions.id"), primary_key=True),
    sa.Column("stage", sa.Text, nullable=False),
    sa.Column("rank", sa.Integer, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.ForeignKeyConstraint(
        ["campaign_id", "ranking_sha256"],
        ["selections.campaign_id", "selections.ranking_sha256"],
        name="fk_awards_campaign_id_selections",
    ),
)

releases = sa.Table(
    "releases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("campaign_id", sa.Text, nullable=False),
    sa.Column("ranking_sha256", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("released_at", UTCDateTime, nullable=False),
    # The release this one replaces (an explicit re-release of a changed ranking).
    sa.Column("supersedes", sa.Integer, nullable=True),
    sa.ForeignKeyConstraint(
        ["campaign_id", "ranking_sha256"],
        ["selections.campaign_id", "selections.ranking_sha256"],
        name="fk_releases_campaign_id_selections",
    ),
    sa.Index("ix_releases_campaign_id", "campaign_id"),
)

JUDGING_TABLES: tuple[sa.Table, ...] = (
    review_decisions,
    judges,
    judging_rounds,
    assignments,
    score_sheets,
    scores,
    rankings,
    selections,
    awards,
    releases,
)

#: Application tables in dependency order (parents first).
TABLES: tuple[sa.Table, ...] = (
    campaigns,
    submitters,
    submissions,
    materials,
    findings,
    runs,
    audit_log,
    quota_overrides,
    *JUDGING_TABLES,
)

# --- certificates, publication and notifications (migration 0004) ---------------------------------------

CERTIFICATE_STATUSES: tuple[str, ...] = ("valid", "revoked")
ATTESTATION_FACTS: tuple[str, ...] = ("pledge", "creation_star")
NOTIFICATION_STATUSES: tuple[str, ...] = ("sending", "sent", "failed", "no_address")
PUSH_STATUSES: tuple[str, ...] = ("pending", "accepted", "rejected", "failed")

certificates = sa.Table(
    "certificates",
    metadata,
    # The printed number (KP2022-XXXX-XXXX-XXXX): an HMAC, never a sequence. The public verification page
    # reads only number, status, award, title, holder, issued_at and revoked_at.
    sa.Column("number", sa.Text, primary_key=True),
    sa.Column("campaign_id", sa.Text, sa.ForeignKey("campaigns.id"), nullable=False),
    # The kind of certificate (campaign file, certificates.types[].key) and its public name.
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("award", sa.Text, nullable=False),
    sa.Column("submission_id", sa.Text, sa.ForeignKey("submissions.id"), nullable=False),
    # 0 for the first certificate of (campaign, type, submission), +1 for each reissue.
    sa.Column("generation", sa.Integer, nullable=False),
    # What is printed, fixed when issued: re-rendering the same row gives the same bytes.
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("unit", sa.Text, nullable=True),
    sa.Column("province", sa.Text, nullable=True),
    sa.Column("release_id", sa.Integer, nullable=True),
    sa.Column("issued_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Column("revoked_by", sa.Text, nullable=True),
    sa.Column("revoke_reason", sa.Text, nullable=True),
    # The certificate this one replaces (a reissue).
    sa.Column("replaces", sa.Text, nullable=True),
    sa.Column("object_key", sa.Text, nullable=True),
    sa.Column("sha256", sa.Text, nullable=True),
    sa.UniqueConstraint(
        "campaign_id", "type", "submission_id", "generation", name="uq_certificates_campaign_id_type_submission_id"
    ),
    sa.Index("ix_certificates_submission_id", "submission_id"),
)

attestations = sa.Table(
    "attestations",
    metadata,
    # What a person records that no check can read: the author's pledge seen signed on paper, the
    # 创作之星 title given by 科普中国. The latest record stands; earlier ones are in the audit log.
    sa.Column("submission_id", sa.Text, sa.ForeignKey("submissions.id"), primary_key=True),
    sa.Column("fact", sa.Text, primary_key=True),
    sa.Column("campaign_id", sa.Text, nullable=False),
    sa.Column("value", sa.Boolean, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_attestations_campaign_id", "campaign_id"),
)

notifications = sa.Table(
    "notifications",
    metadata,
    # The sent-log: one row per submission, result and release. A row in `sending` or `sent` is never sent again.
    sa.Column("submission_id", sa.Text, sa.ForeignKey("submissions.id"), primary_key=True),
    sa.Column("result", sa.Text, primary_key=True),
    sa.Column("release_id", sa.Integer, primary_key=True),
    sa.Column("campaign_id", sa.Text, nullable=False),
    sa.Column("recipient", sa.Text, nullable=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("message_id", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=True),
    sa.Index("ix_notifications_campaign_id", "campaign_id"),
)

publications = sa.Table(
    "publications",
    metadata,
    # The push-log: what each partner platform was sent and what it answered, per work.
    sa.Column("campaign_id", sa.Text, primary_key=True),
    sa.Column("platform", sa.Text, primary_key=True),
    sa.Column("submission_id", sa.Text, sa.ForeignKey("submissions.id"), primary_key=True),
    sa.Column("package_sha256", sa.Text, nullable=False),
    sa.Column("idempotency_key", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("http_status", sa.Integer, nullable=True),
    sa.Column("remote_id", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("release_id", sa.Integer, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("accepted_at", UTCDateTime, nullable=True),
)

AWARD_TABLES: tuple[sa.Table, ...] = (certificates, attestations, notifications, publications)
TABLES = (*TABLES, *AWARD_TABLES)

# --- the judges' portal (migration 0005) -------------------------------------------------------------------

LINK_MAIL_STATUSES: tuple[str, ...] = ("sending", "sent", "failed", "no_address")

judge_links = sa.Table(
    "judge_links",
    metadata,
    # A judge's personal link to the portal for one round. The token is an HMAC of campaign, round, judge and
    # generation; only its sha256 is kept, so the table alone opens nothing. A revoke bumps the generation:
    # the next issue makes a new token.
    sa.Column("campaign_id", sa.Text, primary_key=True),
    sa.Column("stage", sa.Text, primary_key=True),
    sa.Column("judge_id", sa.Text, primary_key=True),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("token_sha256", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # The round's return deadline the expiry was computed from (None: the round has none).
    sa.Column("deadline", UTCDateTime, nullable=True),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Column("opened_at", UTCDateTime, nullable=True),
    sa.Column("last_seen_at", UTCDateTime, nullable=True),
    sa.Column("submitted_at", UTCDateTime, nullable=True),
    # The accepted sheet of the last submit (score_sheets.id).
    sa.Column("sheet_id", sa.Integer, nullable=True),
    sa.Column("locked", sa.Boolean, nullable=False),
    sa.Column("reopened_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("token_sha256", name="uq_judge_links_token_sha256"),
)

portal_drafts = sa.Table(
    "portal_drafts",
    metadata,
    # What a judge has typed in the portal, saved as they go; it becomes scores only through a submit, which
    # turns it into a sheet checked like a returned one.
    sa.Column("campaign_id", sa.Text, primary_key=True),
    sa.Column("stage", sa.Text, primary_key=True),
    sa.Column("judge_id", sa.Text, primary_key=True),
    sa.Column("submission_id", sa.Text, sa.ForeignKey("submissions.id"), primary_key=True),
    sa.Column("criteria", sa.JSON, nullable=False),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

judge_link_mails = sa.Table(
    "judge_link_mails",
    metadata,
    # The sent-log of the link e-mails: one row per judge, round and link generation. A row in `sending` or
    # `sent` is never sent again; a new link (after a revoke) is a new generation, hence a new message.
    sa.Column("campaign_id", sa.Text, primary_key=True),
    sa.Column("stage", sa.Text, primary_key=True),
    sa.Column("judge_id", sa.Text, primary_key=True),
    sa.Column("generation", sa.Integer, primary_key=True),
    sa.Column("recipient", sa.Text, nullable=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("message_id", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=True),
)

PORTAL_TABLES: tuple[sa.Table, ...] = (judge_links, portal_drafts, judge_link_mails)
TABLES = (*TABLES, *PORTAL_TABLES)
