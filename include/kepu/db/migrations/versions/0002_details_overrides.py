"""Submission details and media metrics; operators' quota overrides.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER a table with constraints in place.
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("entity", sa.Text(), nullable=True))
        batch.add_column(sa.Column("details", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("media_metrics", sa.JSON(), nullable=True))
    op.create_table(
        "quota_overrides",
        sa.Column("submission_id", sa.Text(), nullable=False),
        sa.Column("campaign_id", sa.Text(), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("submission_id", name="pk_quota_overrides"),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submissions.id"], name="fk_quota_overrides_submission_id_submissions"
        ),
    )
    op.create_index("ix_quota_overrides_campaign_id", "quota_overrides", ["campaign_id"])


def downgrade() -> None:
    op.drop_index("ix_quota_overrides_campaign_id", table_name="quota_overrides")
    op.drop_table("quota_overrides")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("media_metrics")
        batch.drop_column("details")
        batch.drop_column("entity")
