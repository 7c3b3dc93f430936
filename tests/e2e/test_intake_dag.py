"""The intake DAG through a real Airflow scheduler: embedded default, then PostgreSQL + S3.

Both runs use the same DAG files and differ only in environment variables, which is the point: the
switch between the embedded default and production is configuration.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import check_outcomes, outcomes
from kepu.config import Settings, load_settings
from kepu.context import open_context
from kepu.localairflow import LocalAirflow
from kepu.storage import ObjectStore, open_store


def _content_keys(store: ObjectStore) -> list[str]:
    """Every object but the per-run audit records (one per run by design)."""
    return sorted(k for k in store.list_keys("campaigns/") if "/audit/" not in k)


pytestmark = pytest.mark.e2e

DAG_ID = "kepu_intake"


def _trigger(airflow: LocalAirflow, run_id: str) -> str:
    """Trigger the intake DAG, wait for the run; its state, once every task succeeded or was skipped."""
    airflow.trigger(DAG_ID, run_id, {})
    state = airflow.wait_for_run(DAG_ID, run_id, timeout=600)
    bad = [t for t in airflow.task_instances(DAG_ID, run_id) if t.get("state") not in ("success", "skipped")]
    assert not bad, bad
    return state


def _run(settings: Settings, home: Path, run_id: str, extra_env: dict[str, str] | None = None) -> str:
    with LocalAirflow(home, extra_env={**settings.as_env(), **(extra_env or {})}) as airflow:
        airflow.wait_for_dag(DAG_ID)
        return _trigger(airflow, run_id)


@pytest.mark.long(150)
def test_embedded_default_through_the_scheduler(
    tmp_path: Path, small_inbox: tuple[Path, dict], small_campaign: Path
) -> None:
    inbox, expected = small_inbox
    settings = load_settings(
        {
            "KEPU_HOME": str(tmp_path / "kepu"),
            "KEPU_INBOX": str(inbox),
            "KEPU_CAMPAIGN_FILE": str(small_campaign),
        }
    )
    with LocalAirflow(tmp_path / "airflow", extra_env=settings.as_env()) as airflow:
        airflow.wait_for_dag(DAG_ID)
        assert _trigger(airflow, "e2e__first") == "success"
        check_outcomes(outcomes(settings), expected)

        ctx = open_context(settings)
        counts = ctx.records.table_counts()
        objects = _content_keys(ctx.store)
        assert any(k.endswith("exports/eligibility.xlsx") for k in objects)

        # A second run through the scheduler adds no row (but its own run and audit rows) and no object.
        assert _trigger(airflow, "e2e__second") == "success"
    again = ctx.records.table_counts()
    for table in ("campaigns", "submitters", "submissions", "materials", "findings"):
        assert again[table] == counts[table], table
    assert _content_keys(ctx.store) == objects


@pytest.mark.long(85)
def test_postgres_and_s3_through_the_scheduler(
    tmp_path: Path, small_inbox: tuple[Path, dict], small_campaign: Path, pg_url: str, s3_settings: Settings
) -> None:
    inbox, expected = small_inbox
    settings = load_settings(
        {
            **s3_settings.as_env(),
            "KEPU_HOME": str(tmp_path / "kepu"),
            "KEPU_INBOX": str(inbox),
            "KEPU_CAMPAIGN_FILE": str(small_campaign),
            "KEPU_DATABASE_URL": pg_url,
        }
    )
    aws = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    assert _run(settings, tmp_path / "airflow", "e2e__pg_s3", aws) == "success"
    check_outcomes(outcomes(settings), expected)
    store = open_store(settings)
    keys = list(store.list_keys("campaigns/"))
    assert any(k.endswith("exports/eligibility.csv") for k in keys)
    assert store.uri(keys[0]).startswith("s3://")
    assert not (tmp_path / "kepu" / "store").exists()
