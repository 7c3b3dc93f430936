"""Repository rules on the embedded SQLite backend (no services needed)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from kepu.db import current_revision, get_engine, head_revision, upgrade
from kepu.db.repository import (
    FindingRecord,
    MaterialRecord,
    RecordNotFound,
    Records,
    SubmissionRecord,
    submitter_id,
)
from kepu.db.schema import metadata

pytestmark = pytest.mark.unit

CAMPAIGN = "c2022"


@pytest.fixture
def records(sqlite_url: str) -> Records:
    upgrade(sqlite_url)
    rec = Records.from_url(sqlite_url)
    rec.upsert_campaign(CAMPAIGN, "2022 全国科普微视频", "sha-1")
    return rec


def submission(fingerprint: str = "fp-1", **overrides: object) -> SubmissionRecord:
    values: dict[str, object] = {
        "id": "S-001",
        "campaign_id": CAMPAIGN,
        "kind": "video",
        "source_name": "001.zip",
        "source_uri": "file:///inbox/001.zip",
        "fingerprint": fingerprint,
    }
    values.update(overrides)
    return SubmissionRecord(**values)  # type: ignore[arg-type]


def material(name: str, role: str = "attachment") -> MaterialRecord:
    return MaterialRecord(role, name, f"campaigns/{CAMPAIGN}/submissions/S-001/{role}/{name}", "0" * 64, 10)


def test_importing_kepu_db_connects_to_nothing() -> None:
    code = (
        "import sys, kepu.db\n"
        "print(sorted(m for m in ('alembic', 'sqlalchemy', 'psycopg2') if m in sys.modules))\n"
        "import kepu.db.repository\n"
        "print(sorted(m for m in ('alembic', 'psycopg2') if m in sys.modules), len(kepu.db._engines))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["[]", "[] 0"]


def test_migration_matches_schema(sqlite_url: str) -> None:
    assert current_revision(sqlite_url) is None
    upgrade(sqlite_url)
    upgrade(sqlite_url)
    assert current_revision(sqlite_url) == head_revision()
    with get_engine(sqlite_url).connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, metadata) == []


def test_engine_settings(sqlite_url: str) -> None:
    engine = get_engine(sqlite_url)
    assert get_engine(sqlite_url) is engine
    assert engine.url.database is not None and Path(engine.url.database).parent.is_dir()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_submitter_ids_are_stable_and_names_normalised(records: Records) -> None:
    first = records.upsert_submitter(CAMPAIGN, "中国 科技馆", "北京", None)
    # Full-width and doubled spaces are the same submitter typed differently.
    again = records.upsert_submitter(CAMPAIGN, " 中国\u3000\u3000科技馆 ", None, "省级推荐")
    assert first == again == submitter_id(CAMPAIGN, "中国 科技馆")
    assert submitter_id("c2023", "中国 科技馆") != first
    with records.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, province, channel FROM submitters")).all()
    # A later call without a province keeps the one already known.
    assert [tuple(r) for r in rows] == [("中国 科技馆", "北京", "省级推荐")]
    with pytest.raises(ValueError, match="empty"):
        records.upsert_submitter(CAMPAIGN, "  ", None, None)


def test_unchanged_package_keeps_progress_but_refreshes_description(records: Records) -> None:
    assert records.upsert_submission(submission()) == "new"
    records.set_status("S-001", "checked", "run-1")
    records.set_verdict("S-001", "pass")
    assert records.upsert_submission(submission(title="新标题", status="registered")) == "unchanged"
    got = records.get_submission("S-001")
    assert got is not None
    assert (got.title, got.status, got.verdict, got.last_run_id) == ("新标题", "checked", "pass", "run-1")
    assert records.list_audit() == []


def test_submission_cannot_move_campaign(records: Records) -> None:
    records.upsert_campaign("c2023", "2023", "sha")
    records.upsert_submission(submission())
    with pytest.raises(ValueError, match="belongs to campaign"):
        records.upsert_submission(submission(campaign_id="c2023"))


@pytest.mark.parametrize(
    "bad",
    [{"kind": "film"}, {"status": "done"}, {"verdict": "maybe"}],
)
def test_enumerated_values_are_checked(records: Records, bad: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="invalid"):
        records.upsert_submission(submission(**bad))
    assert records.table_counts()["submissions"] == 0


def test_updates_of_unknown_rows_fail(records: Records) -> None:
    with pytest.raises(RecordNotFound, match="S-404"):
        records.set_status("S-404", "fetched")
    with pytest.raises(RecordNotFound, match="S-404"):
        records.set_verdict("S-404", "pass")
    with pytest.raises(RecordNotFound, match="run-404"):
        records.finish_run("run-404", "success", {})
    records.upsert_submission(submission())
    with pytest.raises(ValueError, match="status"):
        records.set_status("S-001", "published")


def test_naive_timestamps_are_refused(records: Records) -> None:
    with pytest.raises(sa.exc.StatementError, match="timezone-aware"):
        records.upsert_submission(submission(received_at=dt.datetime(2022, 6, 1, 8, 30)))


def test_replace_materials_is_the_complete_list(records: Records) -> None:
    records.upsert_submission(submission())
    records.replace_materials("S-001", [material("a.pdf"), material("b.pdf")])
    records.replace_materials("S-001", [material("b.pdf"), material("v.mp4", "video")])
    assert [m.filename for m in records.list_materials("S-001")] == ["b.pdf", "v.mp4"]
    with pytest.raises(ValueError, match="duplicate"):
        records.replace_materials("S-001", [material("x.pdf"), material("x.pdf")])
    assert len(records.list_materials("S-001")) == 2
    records.replace_materials("S-001", [])
    assert records.list_materials("S-001") == []


def test_findings_history_only_when_something_is_replaced(records: Records) -> None:
    records.upsert_submission(submission())
    probe = [FindingRecord("V_CODEC", "error", "mpeg4", "h264", message_zh="编码", message_en="Codec")]
    records.replace_findings("S-001", "probe", probe, "run-1")
    assert records.list_audit() == []  # nothing existed before, so nothing was lost

    package = [FindingRecord("P_NO_FORM", "error", stage="package")]
    records.replace_findings("S-001", "package", package, "run-1")
    records.replace_findings("S-001", "probe", [], "run-2")
    assert [f.code for f in records.list_findings(submission_id="S-001")] == ["P_NO_FORM"]

    history = records.list_audit("submission", "S-001")
    assert [(h["action"], h["detail"]["stage"], h["detail"]["old_codes"]) for h in history] == [
        ("findings.replaced", "probe", ["V_CODEC"])
    ]
    with pytest.raises(ValueError, match="stage"):
        records.replace_findings("S-001", "probe", package, "run-3")
    with pytest.raises(ValueError, match="severity"):
        records.replace_findings("S-001", "probe", [FindingRecord("X", "fatal")], "run-3")


def test_run_retry_marks_it_running_again(records: Records) -> None:
    records.start_run("run-1", CAMPAIGN, "kepu_check", {"ids": None})
    records.finish_run("run-1", "failed", {"errors": 1})
    records.start_run("run-1", CAMPAIGN, "kepu_check", {"ids": ["S-001"]})
    run = records.get_run("run-1")
    assert run is not None
    assert (run["status"], run["finished_at"], run["params"]) == ("running", None, {"ids": ["S-001"]})
    assert run["stats"] == {"errors": 1}
    assert records.table_counts()["runs"] == 1


def test_campaign_file_change_is_audited(records: Records) -> None:
    records.upsert_campaign(CAMPAIGN, "2022 全国科普微视频", "sha-1")
    assert records.list_audit() == []
    records.upsert_campaign(CAMPAIGN, "2022 全国科普微视频", "sha-2")
    audit = records.list_audit("campaign", CAMPAIGN)
    assert [(a["action"], a["detail"]) for a in audit] == [
        ("campaign.changed", {"old_sha256": "sha-1", "new_sha256": "sha-2"})
    ]


def test_manual_audit_row(records: Records) -> None:
    records.audit("张老师", "verdict.override", "submission", "S-001", {"from": "fail", "to": "pass"})
    (row,) = records.list_audit()
    assert (row["actor"], row["detail"]) == ("张老师", {"from": "fail", "to": "pass"})
    assert row["at"].tzinfo is not None


def test_concurrent_writers_wait_instead_of_failing(records: Records) -> None:
    errors: list[BaseException] = []
    names = [f"单位{i}" for i in range(5)]

    def work() -> None:
        try:
            for name in names:
                records.upsert_submitter(CAMPAIGN, name, None, None)
                records.upsert_submission(submission(id=f"S-{name.encode().hex()}"))
        except BaseException as exc:  # collected so the main thread can fail the test
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    counts = records.table_counts()
    assert (counts["submitters"], counts["submissions"]) == (5, 5)
