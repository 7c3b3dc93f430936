"""Migration 0004 and the certificate, sent-log and push-log records on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from award_factory import CID, seed_release
from kepu.certificates.verify import public_status
from kepu.db import current_revision, get_engine, head_revision, upgrade
from kepu.db.award_records import CertificateRecord
from kepu.db.repository import Records
from kepu.db.schema import metadata
from kepu.errors import AwardError

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    return url


def test_migration_0004_matches_the_schema_and_downgrades(db_url: str) -> None:
    from alembic import command

    from kepu.db import _alembic_config

    upgrade(db_url)
    assert current_revision(db_url) == head_revision()
    with get_engine(db_url).connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata) == []
    with get_engine(db_url).begin() as conn:
        cfg = _alembic_config(db_url)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0003")
    assert current_revision(db_url) == "0003"
    upgrade(db_url)
    with get_engine(db_url).connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata) == []


def test_certificates_sent_log_and_push_log(db_url: str) -> None:
    upgrade(db_url)
    records = Records.from_url(db_url)
    seeded = seed_release(records, videos=2, accounts=0, best=0, extra=0)
    at = dt.datetime(2022, 12, 20, 2, 0, tzinfo=dt.UTC)
    cert = CertificateRecord(
        "KP2022-AAAA-BBBB-CCCC",
        CID,
        "excellent_video",
        "优秀科普微视频",
        "s0000",
        0,
        "广东少年宫0",
        "会飞的种子0",
        at,
        unit="广东少年宫0",
        release_id=seeded.release_id,
    )
    assert records.issue_certificate(cert) is True
    assert records.issue_certificate(cert) is False
    assert public_status(records.engine, cert.number).state == "valid"
    records.revoke_certificate(cert.number, actor="王老师", reason="名称有误")
    status = public_status(records.engine, cert.number)
    assert status.state == "revoked" and status.holder == "广东少年宫0" and status.issued_at is not None
    with pytest.raises(AwardError, match=r"未撤销|not revoked"):
        records.issue_certificate(
            CertificateRecord(
                "KP2022-DDDD-EEEE-FFFF",
                CID,
                "excellent_video",
                "x",
                "s0001",
                1,
                "h",
                "t",
                at,
                replaces="KP2022-AAAA-AAAA-AAAA",
            )
        )

    # The sent-log: one claim per submission and result, whichever release asks.
    assert records.claim_notification(CID, "s0000", "excellent_video", seeded.release_id, "a@example.cn")
    assert not records.claim_notification(CID, "s0000", "excellent_video", seeded.release_id, "a@example.cn")
    records.finish_notification("s0000", "excellent_video", seeded.release_id, status="sent", message_id="<m>")
    assert not records.claim_notification(CID, "s0000", "excellent_video", seeded.release_id + 1, "a@example.cn")
    assert not records.claim_notification(CID, "s0001", "excellent_video", seeded.release_id, None)
    assert records.claim_notification(CID, "s0001", "excellent_video", seeded.release_id, "b@example.cn")

    records.record_push(
        CID,
        "douyin",
        "s0000",
        package_sha256="p" * 64,
        idempotency_key="k",
        status="pending",
        attempts=0,
        release_id=seeded.release_id,
    )
    records.record_push(
        CID,
        "douyin",
        "s0000",
        package_sha256="p" * 64,
        idempotency_key="k",
        status="accepted",
        attempts=1,
        release_id=seeded.release_id,
        http_status=201,
        remote_id="dy-1",
    )
    push = records.get_push(CID, "douyin", "s0000")
    assert push is not None and (push["status"], push["remote_id"], push["attempts"]) == ("accepted", "dy-1", 1)
    assert push["accepted_at"] is not None
