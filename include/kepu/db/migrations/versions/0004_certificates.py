"""Certificates, attestations (pledge on paper, 创作之星), the notifications sent-log and the publication push-log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    # Plain types only: a migration is frozen history and must not import application code.
    op.create_table(
        "certificates",
        sa.Column("number", sa.Text(), nullable=False),
        sa.Column("campaign_id", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("award", sa.Text(), nullable=False),
        sa.Column("submission_id", sa.Text(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("unit", sa.Text(), nullable=True),
        sa.Column("province", sa.Text(), nullable=True),
        sa.Column("release_id", sa.Integer(), nullable=True),
        _ts("issued_at", nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        _ts("revoked_at", nullable=True),
        sa.Column("revoked_by", sa.Text(), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.Column("replaces", sa.Text(), nullable=True),
        sa.Column("object_key", sa.Text(), nullable=True),
        sa.Column("sha256", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("number", name="pk_certificates"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_certificates_campaign_id_campaigns"),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submissions.id"], name="fk_certificates_submission_id_submissions"
        ),
        sa.UniqueConstraint(
            "campaign_id", "type", "submission_id", "generation", name="uq_certificates_campaign_id_type_submission_id"
        ),
    )
    op.create_index("ix_certificates_submission_id", "certificates", ["submission_id"])
    op.create_table(
        "attestations",
        sa.Column("submission_id", sa.Text(), nullable=False),
        sa.Column("fact", sa.Text(), nullable=False),
        sa.Column("campaign_id", sa.Text(), nullable=False),
        sa.Column("value", sa.Boolean(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _ts("at", nullable=False),
        sa.PrimaryKeyConstraint("submission_id", "fact", name="pk_attestations"),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submissions.id"], name="fk_attestations_submission_id_submissions"
        ),
    )
    op.create_index("ix_attestations_campaign_id", "attestations", ["campaign_id"])
    op.create_table(
        "notifications",
        sa.Column("submission_id", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Text(), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _ts("updated_at", nullable=False),
        _ts("sent_at", nullable=True),
        sa.PrimaryKeyConstraint("submission_id", "result", "release_id", name="pk_notifications"),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submissions.id"], name="fk_notifications_submission_id_submissions"
        ),
    )
    op.create_index("ix_notifications_campaign_id", "notifications", ["campaign_id"])
    op.create_table(
        "publications",
        sa.Column("campaign_id", sa.Text(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("submission_id", sa.Text(), nullable=False),
        sa.Column("package_sha256", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("remote_id", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("release_id", sa.Integer(), nullable=True),
        _ts("updated_at", nullable=False),
        _ts("accepted_at", nullable=True),
        sa.PrimaryKeyConstraint("campaign_id", "platform", "submission_id", name="pk_publications"),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submissions.id"], name="fk_publications_submission_id_submissions"
        ),
    )


def downgrade() -> None:
    op.drop_table("publications")
    op.drop_index("ix_notifications_campaign_id", table_name="notifications")
    op.drop_table("notifications")
    op.drop_index("ix_attestations_campaign_id", table_name="attestations")
    op.drop_table("attestations")
    op.drop_index("ix_certificates_submission_id", table_name="certificates")
    op.drop_table("certificates")
