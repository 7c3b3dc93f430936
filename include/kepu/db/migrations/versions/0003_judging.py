"""Judging: gate decisions, judges, rounds and assignments, score sheets and scores, rankings,
selections with their awards, and releases.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    # Plain types only: a migration is frozen history and must not import application code.
    op.create_table(
        "review_decisions",
        sa.Column("submission_id", sa.Text(), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("campaign_id", sa.Text(), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _ts("at", nullable=False),
        sa.PrimaryKeyConstraint("submission_id", "stage", name="pk_review_decisions"),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submissions.id"], name="fk_review_decisions_submission_id_submissions"
        ),
    )
    op.create_index("ix_review_decisions_campaign_id", "review_decisions", ["campaign_id"])
    op.create_table(
        "judges",
        sa.Column("campaign_id", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column("province", sa.Text(), nullable=False),
        sa.Column("expertise", sa.JSON(), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("roster_sha256", sa.Text(), nullable=False),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "id", name="pk_judges"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_judges_campaign_id_campaigns"),
    )
    op.create_table(
        "judging_rounds",
        sa.Column("campaign_id", sa.Text(), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("roster_sha256", sa.Text(), nullable=False),
        sa.Column("assignment_sha256", sa.Text(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("aggregate", sa.JSON(), nullable=True),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "stage", name="pk_judging_rounds"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_judging_rounds_campaign_id_campaigns"),
    )
    op.create_table(
        "assignments",
        sa.Column("campaign_id", sa.Text(), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("judge_id", sa.Text(), nullable=False),
        sa.Column("submission_id", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("linking", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "stage", "judge_id", "submission_id", name="pk_assignments"),
        sa.ForeignKeyConstraint(["submission_id"], ["submissions.id"], name="fk_assignments_submission_id_submissions"),
    )
    op.create_table(
        "score_sheets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.Text(), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("judge_id", sa.Text(), nullable=True),
        sa.Column("object_key", sa.Text(), nullable=False),
        sa.Column("archive_key", sa.Text(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        _ts("ingested_at", nullable=False),
        sa.Column("superseded_by", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_score_sheets"),
        sa.UniqueConstraint("campaign_id", "stage", "sha256", name="uq_score_sheets_campaign_id_stage_sha256"),
    )
    op.create_table(
        "scores",
        sa.Column("sheet_id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Text(), nullable=False),
        sa.Column("campaign_id", sa.Text(), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("judge_id", sa.Text(), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("weighted", sa.Float(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("sheet_id", "submission_id", name="pk_scores"),
        sa.ForeignKeyConstraint(["sheet_id"], ["score_sheets.id"], name="fk_scores_sheet_id_score_sheets"),
        sa.ForeignKeyConstraint(["submission_id"], ["submissions.id"], name="fk_scores_submission_id_submissions"),
    )
    op.create_index("ix_scores_campaign_id_stage", "scores", ["campaign_id", "stage"])
    op.create_table(
        "rankings",
        sa.Column("campaign_id", sa.Text(), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("submission_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("raw_mean", sa.Float(), nullable=True),
        sa.Column("median", sa.Float(), nullable=True),
        sa.Column("n_scores", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "stage", "submission_id", name="pk_rankings"),
        sa.ForeignKeyConstraint(["submission_id"], ["submissions.id"], name="fk_rankings_submission_id_submissions"),
    )
    op.create_table(
        "selections",
        sa.Column("campaign_id", sa.Text(), nullable=False),
        sa.Column("ranking_sha256", sa.Text(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("export_key", sa.Text(), nullable=True),
        sa.Column("export_sha256", sa.Text(), nullable=True),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "ranking_sha256", name="pk_selections"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_selections_campaign_id_campaigns"),
    )
    op.create_table(
        "awards",
        sa.Column("campaign_id", sa.Text(), nullable=False),
        sa.Column("ranking_sha256", sa.Text(), nullable=False),
        sa.Column("award", sa.Text(), nullable=False),
        sa.Column("submission_id", sa.Text(), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "ranking_sha256", "award", "submission_id", name="pk_awards"),
        sa.ForeignKeyConstraint(["submission_id"], ["submissions.id"], name="fk_awards_submission_id_submissions"),
        sa.ForeignKeyConstraint(
            ["campaign_id", "ranking_sha256"],
            ["selections.campaign_id", "selections.ranking_sha256"],
            name="fk_awards_campaign_id_selections",
        ),
    )
    op.create_table(
        "releases",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.Text(), nullable=False),
        sa.Column("ranking_sha256", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _ts("released_at", nullable=False),
        sa.Column("supersedes", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_releases"),
        sa.ForeignKeyConstraint(
            ["campaign_id", "ranking_sha256"],
            ["selections.campaign_id", "selections.ranking_sha256"],
            name="fk_releases_campaign_id_selections",
        ),
    )
    op.create_index("ix_releases_campaign_id", "releases", ["campaign_id"])


def downgrade() -> None:
    op.drop_index("ix_releases_campaign_id", table_name="releases")
    op.drop_table("releases")
    op.drop_table("awards")
    op.drop_table("selections")
    op.drop_table("rankings")
    op.drop_index("ix_scores_campaign_id_stage", table_name="scores")
    op.drop_table("scores")
    op.drop_table("score_sheets")
    op.drop_table("assignments")
    op.drop_table("judging_rounds")
    op.drop_table("judges")
    op.drop_index("ix_review_decisions_campaign_id", table_name="review_decisions")
    op.drop_table("review_decisions")
