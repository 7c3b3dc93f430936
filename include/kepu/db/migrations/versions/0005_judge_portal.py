"""The judges' portal: personal links, draft scores, the sent-log of the link e-mails.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    # Plain types only: a migration is frozen history and must not import application code.
    op.create_table(
        "judge_links",
        sa.Column("campaign_id", sa.Text(), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("judge_id", sa.Text(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.Text(), nullable=False),
        _ts("created_at", nullable=False),
        _ts("deadline", nullable=True),
        _ts("expires_at", nullable=False),
        _ts("revoked_at", nullable=True),
        _ts("opened_at", nullable=True),
        _ts("last_seen_at", nullable=True),
        _ts("submitted_at", nullable=True),
        sa.Column("sheet_id", sa.Integer(), nullable=True),
        sa.Column("locked", sa.Boolean(), nullable=False),
        _ts("reopened_at", nullable=True),
        sa.PrimaryKeyConstraint("campaign_id", "stage", "judge_id", name="pk_judge_links"),
        sa.UniqueConstraint("token_sha256", name="uq_judge_links_token_sha256"),
    )
    op.create_table(
        "portal_drafts",
        sa.Column("campaign_id", sa.Text(), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("judge_id", sa.Text(), nullable=False),
        sa.Column("submission_id", sa.Text(), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "stage", "judge_id", "submission_id", name="pk_portal_drafts"),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submissions.id"], name="fk_portal_drafts_submission_id_submissions"
        ),
    )
    op.create_table(
        "judge_link_mails",
        sa.Column("campaign_id", sa.Text(), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("judge_id", sa.Text(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _ts("updated_at", nullable=False),
        _ts("sent_at", nullable=True),
        sa.PrimaryKeyConstraint("campaign_id", "stage", "judge_id", "generation", name="pk_judge_link_mails"),
    )


def downgrade() -> None:
    op.drop_table("judge_link_mails")
    op.drop_table("portal_drafts")
    op.drop_table("judge_links")
