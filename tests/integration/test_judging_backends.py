"""Judging on the production backends: the migration on SQLite and PostgreSQL, and score sheets making the
round trip through the S3 store and both kinds of records."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from judging_factory import fill_sheet, make_judges, pass_gates, seed_entries, truthful, write_campaign, write_roster
from kepu.config import Settings, load_settings
from kepu.context import open_context
from kepu.db import current_revision, get_engine, head_revision, upgrade
from kepu.db.schema import JUDGING_TABLES, metadata
from kepu.judging import keys, steps
from kepu.storage import S3Store, export_key

pytestmark = pytest.mark.integration

CID = "2022"
R1, R2 = "first_round", "final_round"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    return url


def test_migration_0003_goes_up_and_down_and_the_head_matches_the_schema(db_url: str) -> None:
    from alembic import command

    from kepu.db import _alembic_config

    def tables() -> set[str]:
        return set(sa.inspect(get_engine(db_url)).get_table_names())

    def alembic(action: str, revision: str) -> None:
        with get_engine(db_url).begin() as conn:
            cfg = _alembic_config(db_url)
            cfg.attributes["connection"] = conn
            getattr(command, action)(cfg, revision)

    judging = {t.name for t in JUDGING_TABLES}
    upgrade(db_url, "0003")
    assert current_revision(db_url) == "0003" and judging <= tables()
    # Down to 0002: the judging tables go, the intake's stay; then up to the head again.
    alembic("downgrade", "0002")
    assert current_revision(db_url) == "0002" and not judging & tables() and "submissions" in tables()
    upgrade(db_url)
    assert current_revision(db_url) == head_revision() and judging <= tables()
    with get_engine(db_url).connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata) == []


def _objects(settings: Settings) -> dict[str, str]:
    store = open_context(settings).store
    return {k: store.head(k).sha256 for k in store.list_keys("campaigns/")}  # type: ignore[union-attr]


def test_sheets_round_trip_through_s3_and_the_records(tmp_path: Path, db_url: str, s3_settings: Settings) -> None:
    campaign = write_campaign(tmp_path / "campaign.yaml")
    settings = load_settings({**s3_settings.as_env(), "KEPU_DATABASE_URL": db_url, "KEPU_CAMPAIGN_FILE": str(campaign)})
    ctx = open_context(settings, migrate=True)
    assert isinstance(ctx.store, S3Store)
    entries = seed_entries(ctx.records, CID, videos=12, accounts=4)
    pass_gates(ctx.records, CID, entries)
    # The roster is read from the bucket, where an operator put it.
    roster = write_roster(tmp_path / "评委名单.csv", make_judges(6))
    ctx.store.put_file("campaigns/2022/inbox-judging/评委名单.csv", roster)
    assert steps.load_roster(ctx, "campaigns/2022/inbox-judging/评委名单.csv")["judges"] == 6

    scorer = truthful({sid: 3.0 + (int(sid[1:]) * 7 % 13) / 2 for sid in entries})
    for stage in (R1, R2):
        steps.prepare_round(ctx, stage)
        sheets = steps.write_sheets(ctx, stage)["sheets"]
        for jid, info in sheets.items():
            with ctx.store.open_local(info["key"]) as path:
                returned = fill_sheet(path.read_bytes(), scorer)
            ctx.store.put_bytes(keys.returned_prefix(CID, stage) + f"{jid}-已评.xlsx", returned)
        ingested = steps.ingest_sheets(ctx, stage)
        assert len(ingested["accepted"]) == len(sheets) and not ingested["rejected"]
        steps.aggregate_round(ctx, stage)
    selection = steps.select_awards(ctx)
    steps.write_report(ctx)
    assert selection["complete"] and selection["export"].startswith("s3://")

    # Every returned sheet is kept in the bucket exactly as received, its checksum in the object's metadata.
    for sheet in ctx.records.list_sheets(CID):
        head = ctx.store.head(sheet.archive_key)
        assert head is not None and head.sha256 == sheet.sha256
    scores = ctx.records.list_scores(CID, R1)
    assert scores and all(
        set(s.criteria) <= {c.key for k in ("video", "account") for c in ctx.campaign.judging.criteria[k]}
        for s in scores
    )  # type: ignore[index]

    release = steps.release_results(ctx, confirm=CID, actor="李主任", reason="评审结束")
    steps.write_report(ctx)  # the report says what was released
    awards = ctx.records.list_awards(CID)
    assert [a.award for a in awards].count("excellent_video") == 6 and len(awards) == 10
    assert {a.release_id for a in awards} == {release["release_id"]} and all(a.released_at for a in awards)

    # Everything once more: no row, no object, no release added; the ranking export is byte-identical.
    counts, objects = ctx.records.table_counts(), _objects(settings)
    for stage in (R1, R2):
        assert steps.prepare_round(ctx, stage)["result"] == "kept"  # scores are in: the sheets stand
        steps.write_sheets(ctx, stage)
        assert steps.ingest_sheets(ctx, stage)["accepted"] == []
        assert steps.aggregate_round(ctx, stage)["changed"] is False
    assert steps.select_awards(ctx)["result"] == "unchanged"
    steps.write_report(ctx)
    assert not steps.release_results(ctx, confirm=CID, actor="李主任")["released"]
    assert ctx.records.table_counts() == counts
    assert _objects(settings) == objects
    head = ctx.store.head(export_key(CID, "judging-ranking.xlsx"))
    assert head is not None and head.sha256 == selection["export_sha256"]
