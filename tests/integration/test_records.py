"""App records on both backends: SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa

from kepu.db import current_revision, get_engine, head_revision, upgrade
from kepu.db.repository import FindingRecord, MaterialRecord, Records, SubmissionRecord
from kepu.db.schema import TABLES

pytestmark = pytest.mark.integration

CAMPAIGN = "c2022"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(fixture)
    return url  # both are new and empty: a fresh file, a fresh database


@pytest.fixture
def records(db_url: str) -> Records:
    upgrade(db_url)
    return Records.from_url(db_url)


def submission(fingerprint: str = "fp-1", **overrides: object) -> SubmissionRecord:
    values: dict[str, object] = {
        "id": "S-001",
        "campaign_id": CAMPAIGN,
        "kind": "video",
        "source_name": "001 北京 科普片",
        "source_uri": "file:///inbox/001",
        "fingerprint": fingerprint,
        "title": "星星为什么会眨眼",
        "province": "北京",
        "received_at": dt.datetime(2022, 6, 1, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=8))),
    }
    values.update(overrides)
    return SubmissionRecord(**values)  # type: ignore[arg-type]


def load_everything(records: Records, run_id: str) -> None:
    """What one intake-and-check run writes."""
    records.start_run(run_id, CAMPAIGN, "kepu_intake", {"ids": ["S-001"], "note": "第一轮"})
    records.upsert_campaign(CAMPAIGN, "2022 全国科普微视频", "sha-campaign")
    submitter = records.upsert_submitter(CAMPAIGN, "北京科技馆", "北京", "省级推荐")
    records.upsert_submission(submission(submitter_id=submitter))
    records.replace_materials(
        "S-001",
        [
            MaterialRecord(
                "video", "科普片.mp4", "campaigns/c2022/submissions/S-001/video/科普片.mp4", "a" * 64, 3 << 30
            ),
            MaterialRecord(
                "cover",
                "封面.jpg",
                "campaigns/c2022/submissions/S-001/cover/封面.jpg",
                "b" * 64,
                1000,
                "image/jpeg",
            ),
        ],
    )
    records.replace_findings(
        "S-001",
        "probe",
        [FindingRecord("V_DURATION_LONG", "error", "361.2", "360", None, "时长超限", "Too long")],
        run_id,
    )
    records.set_status("S-001", "checked", run_id)
    records.set_verdict("S-001", "fail")
    records.finish_run(run_id, "success", {"checked": 1, "说明": "ok"})


def test_upgrade_twice_and_concurrently(db_url: str) -> None:
    assert current_revision(db_url) is None
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            upgrade(db_url)
        except BaseException as exc:  # collected so the main thread can fail the test
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    upgrade(db_url)
    assert current_revision(db_url) == head_revision()
    names = set(sa.inspect(get_engine(db_url)).get_table_names())
    assert {"campaigns", "submitters", "submissions", "materials", "findings", "runs", "audit_log"} <= names


def test_rerun_adds_no_rows(records: Records) -> None:
    load_everything(records, "run-1")
    counts = records.table_counts()
    assert counts == {
        **dict.fromkeys([t.name for t in TABLES], 0),  # later migrations' tables: empty
        "campaigns": 1,
        "submitters": 1,
        "submissions": 1,
        "materials": 2,
        "findings": 1,
        "runs": 1,
        "audit_log": 0,
        "quota_overrides": 0,
    }
    load_everything(records, "run-1")
    assert records.table_counts() == counts

    got = records.get_submission("S-001")
    assert got is not None
    assert (got.status, got.verdict, got.last_run_id) == ("checked", "fail", "run-1")
    assert got.received_at == dt.datetime(2022, 6, 1, 0, 30, tzinfo=dt.UTC)
    assert got.received_at.tzinfo is not None and got.received_at.utcoffset() == dt.timedelta(0)
    assert got.created_at is not None and got.created_at.tzinfo is not None
    assert records.list_materials("S-001")[1].size_bytes == 3 << 30  # needs BIGINT

    run = records.get_run("run-1")
    assert run is not None
    assert run["params"] == {"ids": ["S-001"], "note": "第一轮"}
    assert run["stats"] == {"checked": 1, "说明": "ok"}
    assert run["status"] == "success"


def test_changed_fingerprint_is_audited(records: Records) -> None:
    load_everything(records, "run-1")
    assert records.upsert_submission(submission("fp-1")) == "unchanged"
    assert records.upsert_submission(submission("fp-2")) == "changed"
    assert records.upsert_submission(submission("fp-2")) == "unchanged"

    got = records.get_submission("S-001")
    assert got is not None
    # A re-sent package must be checked again: status back to registered, verdict cleared.
    assert (got.fingerprint, got.status, got.verdict) == ("fp-2", "registered", None)

    audit = records.list_audit("submission", "S-001")
    assert [a["action"] for a in audit] == ["submission.changed"]
    assert audit[0]["detail"]["old_fingerprint"] == "fp-1"
    assert audit[0]["detail"]["new_fingerprint"] == "fp-2"
    assert audit[0]["at"].tzinfo is not None


def test_replaced_findings_keep_history(records: Records) -> None:
    load_everything(records, "run-1")
    new = [
        FindingRecord("V_RESOLUTION_LOW", "warning", "1280x720", "1920x1080", None, "分辨率低", "Low resolution"),
        FindingRecord("V_BLACK_FRAMES", "info", "2.0", "1.0", 12.5, "黑场", "Black frames", stage="probe"),
    ]
    records.replace_findings("S-001", "probe", new, "run-2")
    records.replace_findings("S-001", "probe", new, "run-3")  # same codes: nothing new to record

    current = records.list_findings(submission_id="S-001")
    assert sorted(f.code for f in current) == ["V_BLACK_FRAMES", "V_RESOLUTION_LOW"]
    assert {f.run_id for f in current} == {"run-3"}
    assert {f.stage for f in current} == {"probe"}
    black = next(f for f in current if f.code == "V_BLACK_FRAMES")
    assert black.at_seconds == 12.5 and black.message_zh == "黑场"

    history = [a for a in records.list_audit("submission", "S-001") if a["action"] == "findings.replaced"]
    assert len(history) == 1
    assert history[0]["detail"]["old_codes"] == ["V_DURATION_LONG"]
    assert history[0]["detail"]["new_codes"] == ["V_BLACK_FRAMES", "V_RESOLUTION_LOW"]
    assert history[0]["detail"]["old_run_ids"] == ["run-1"]
    assert records.list_findings(campaign_id=CAMPAIGN) == current
    assert records.list_findings(campaign_id="other") == []


def test_list_submissions_filters(records: Records) -> None:
    records.upsert_campaign(CAMPAIGN, "2022", "sha")
    for sid in ("S-003", "S-001", "S-002"):
        records.upsert_submission(submission(id=sid))
    assert [s.id for s in records.list_submissions(CAMPAIGN)] == ["S-001", "S-002", "S-003"]
    assert [s.id for s in records.list_submissions(CAMPAIGN, ["S-003", "S-009"])] == ["S-003"]
    assert records.list_submissions(CAMPAIGN, []) == []
    assert records.list_submissions("other") == []


def test_foreign_keys_are_enforced(records: Records) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        records.upsert_submission(submission(campaign_id="no-such-campaign"))
    assert records.table_counts()["submissions"] == 0


def test_details_merge_and_campaign_rows(records: Records) -> None:
    records.upsert_campaign(CAMPAIGN, "2022", "sha")
    records.upsert_submission(submission())
    records.replace_materials(
        "S-001",
        [MaterialRecord(role="video", filename="片.mp4", object_key="k/video/片.mp4", sha256="ab" * 32, size_bytes=9)],
    )
    records.set_details(
        "S-001", {"form": {"联系电话": "010-64522026"}, "synopsis": "简介"}, kind="video", entity="北京科技馆"
    )
    records.set_details("S-001", {"synopsis_chars": 2}, channel="provincial")
    assert records.get_details("S-001") == {
        "form": {"联系电话": "010-64522026"},
        "synopsis": "简介",
        "synopsis_chars": 2,
    }
    records.set_media_metrics("S-001", {"loudness_lufs": -19.0})
    (row,) = records.campaign_rows(CAMPAIGN)
    assert (row["entity"], row["channel"], row["video_sha256"]) == ("北京科技馆", "provincial", "ab" * 32)
    assert row["media_metrics"] == {"loudness_lufs": -19.0}
    with pytest.raises(ValueError, match="invalid kind"):
        records.set_details("S-001", {}, kind="podcast")


def test_quota_override_latest_stands_and_is_audited(records: Records) -> None:
    records.upsert_campaign(CAMPAIGN, "2022", "sha")
    records.upsert_submission(submission())
    records.upsert_quota_override(CAMPAIGN, "S-001", "keep", "张老师", "单位来函说明第11部为替换作品")
    records.upsert_quota_override(CAMPAIGN, "S-001", "exclude", "李老师", "复核后撤销")
    (override,) = records.list_quota_overrides(CAMPAIGN)
    assert (override["decision"], override["actor"]) == ("exclude", "李老师")
    assert [a["action"] for a in records.list_audit("submission", "S-001")].count("quota.override") == 2
    with pytest.raises(ValueError, match="who made it and why"):
        records.upsert_quota_override(CAMPAIGN, "S-001", "keep", "", "")
    with pytest.raises(ValueError, match="invalid decision"):
        records.upsert_quota_override(CAMPAIGN, "S-001", "maybe", "x", "y")
