"""Certificates, attestations, the notifications sent-log and the publication push-log in the app records.

:class:`AwardRecords` is a base of :class:`kepu.db.repository.Records`, so every method here is a ``Records``
method. The rules are those of the rest of the records: one transaction per public write, natural keys, and a
rerun that changes nothing. A certificate is never deleted: a revoked one stays, with who revoked it, when
and why, and the public verification page says so.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from kepu.db.records_base import RecordsBase
from kepu.db.schema import (
    ATTESTATION_FACTS,
    NOTIFICATION_STATUSES,
    PUSH_STATUSES,
    attestations,
    certificates,
    notifications,
    publications,
    submissions,
    utcnow,
)
from kepu.errors import AwardError

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "kepu"

RecordResult = Literal["new", "changed", "unchanged"]


class CertificateNotFound(AwardError, LookupError):
    """No certificate has this number."""


@dataclass(frozen=True)
class CertificateRecord:
    """One issued certificate, with what is printed on it."""

    number: str
    campaign_id: str
    type: str
    award: str
    submission_id: str
    generation: int
    holder: str
    title: str
    issued_at: dt.datetime
    unit: str | None = None
    province: str | None = None
    release_id: int | None = None
    status: str = "valid"
    revoked_at: dt.datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None
    replaces: str | None = None
    object_key: str | None = None
    sha256: str | None = None

    @property
    def valid(self) -> bool:
        return self.status == "valid"


def _certificate(row: RowMapping) -> CertificateRecord:
    return CertificateRecord(**{k: row[k] for k in CertificateRecord.__dataclass_fields__})


def _check(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"invalid {what} {value!r}; expected one of {', '.join(allowed)}")


class AwardRecords(RecordsBase):
    """Certificate, attestation, notification and publication methods of :class:`~kepu.db.repository.Records`."""

    # -- certificates -------------------------------------------------------------------------------------

    def issue_certificate(self, cert: CertificateRecord, actor: str = SYSTEM_ACTOR) -> bool:
        """Record ``cert`` unless its (campaign, type, submission, generation) is already issued; say whether it was.

        A reissue names the certificate it ``replaces``, which must be revoked already.
        """
        key = sa.and_(
            certificates.c.campaign_id == cert.campaign_id,
            certificates.c.type == cert.type,
            certificates.c.submission_id == cert.submission_id,
            certificates.c.generation == cert.generation,
        )
        with self._write() as conn:
            if conn.execute(self._lock_clause(sa.select(certificates.c.number).where(key))).first() is not None:
                return False
            if cert.replaces is not None:
                old = conn.execute(
                    sa.select(certificates.c.status).where(certificates.c.number == cert.replaces)
                ).scalar_one_or_none()
                if old != "revoked":
                    raise AwardError(
                        f"证书 {cert.replaces} 未撤销，不能补发 · certificate {cert.replaces} is not revoked"
                    )
            values = {k: getattr(cert, k) for k in CertificateRecord.__dataclass_fields__}
            values.update(status="valid", revoked_at=None, revoked_by=None, revoke_reason=None)
            conn.execute(certificates.insert().values(**values))
            self._audit(
                conn,
                actor,
                "certificate.reissued" if cert.replaces else "certificate.issued",
                "certificate",
                cert.number,
                {
                    "type": cert.type,
                    "submission_id": cert.submission_id,
                    "generation": cert.generation,
                    "replaces": cert.replaces,
                    "release_id": cert.release_id,
                },
            )
        return True

    def revoke_certificate(self, number: str, *, actor: str, reason: str) -> CertificateRecord:
        """Revoke a valid certificate (who, when, why); revoking a revoked one changes nothing."""
        actor, reason = actor.strip(), reason.strip()
        if not actor or not reason:
            raise AwardError("撤销证书须填写撤销人和理由 · a revocation needs who revokes it and why")
        with self._write() as conn:
            row = (
                conn.execute(self._lock_clause(sa.select(certificates).where(certificates.c.number == number)))
                .mappings()
                .first()
            )
            if row is None:
                raise CertificateNotFound(f"查无此证书 · no certificate {number}")
            if row["status"] == "revoked":
                return _certificate(row)
            now = utcnow()
            conn.execute(
                certificates.update()
                .where(certificates.c.number == number)
                .values(status="revoked", revoked_at=now, revoked_by=actor, revoke_reason=reason)
            )
            self._audit(
                conn,
                actor,
                "certificate.revoked",
                "certificate",
                number,
                {"reason": reason, "submission_id": row["submission_id"], "type": row["type"]},
            )
            row = conn.execute(sa.select(certificates).where(certificates.c.number == number)).mappings().one()
        return _certificate(row)

    def set_certificate_file(self, number: str, object_key: str, sha256: str) -> None:
        with self._write() as conn:
            done = conn.execute(
                certificates.update()
                .where(certificates.c.number == number)
                .values(object_key=object_key, sha256=sha256)
            )
            if done.rowcount == 0:
                raise CertificateNotFound(f"查无此证书 · no certificate {number}")

    def get_certificate(self, number: str) -> CertificateRecord | None:
        with self._read() as conn:
            row = conn.execute(sa.select(certificates).where(certificates.c.number == number)).mappings().first()
        return None if row is None else _certificate(row)

    def find_certificates(
        self, campaign_id: str, *, submission_id: str | None = None, type: str | None = None
    ) -> list[CertificateRecord]:
        """Certificates of a campaign (every generation), by submission, type and generation."""
        stmt = sa.select(certificates).where(certificates.c.campaign_id == campaign_id)
        if submission_id is not None:
            stmt = stmt.where(certificates.c.submission_id == submission_id)
        if type is not None:
            stmt = stmt.where(certificates.c.type == type)
        stmt = stmt.order_by(certificates.c.submission_id, certificates.c.type, certificates.c.generation)
        with self._read() as conn:
            return [_certificate(r) for r in conn.execute(stmt).mappings().all()]

    def list_certificates(self, campaign_id: str) -> list[dict[str, Any]]:
        """The certificates as the dashboard lists them: no contact data, newest state first by unit."""
        stmt = (
            sa.select(
                certificates.c.number,
                certificates.c.award,
                certificates.c.title,
                certificates.c.holder,
                certificates.c.unit,
                certificates.c.province,
                certificates.c.status,
                certificates.c.issued_at,
                certificates.c.revoked_at,
                certificates.c.replaces,
            )
            .where(certificates.c.campaign_id == campaign_id)
            .order_by(
                certificates.c.province,
                certificates.c.unit,
                certificates.c.submission_id,
                certificates.c.type,
                certificates.c.generation,
            )
        )
        with self._read() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings().all()]

    # -- attestations ---------------------------------------------------------------------------------------

    def record_attestation(
        self, campaign_id: str, submission_id: str, fact: str, *, value: bool, actor: str, reason: str
    ) -> RecordResult:
        """Record what a person attests (the pledge seen signed on paper, the 创作之星 title); the latest stands."""
        _check("fact", fact, ATTESTATION_FACTS)
        actor, reason = actor.strip(), reason.strip()
        if not actor or not reason:
            raise AwardError("须填写记录人和理由 · a record needs who makes it and why")
        with self._write() as conn:
            owner = conn.execute(
                sa.select(submissions.c.campaign_id).where(submissions.c.id == submission_id)
            ).scalar_one_or_none()
            if owner != campaign_id:
                raise AwardError(
                    f"作品 {submission_id} 不属于活动 {campaign_id} · no submission {submission_id} in {campaign_id}"
                )
            key = sa.and_(attestations.c.submission_id == submission_id, attestations.c.fact == fact)
            old = conn.execute(self._lock_clause(sa.select(attestations).where(key))).mappings().first()
            if old is not None and (bool(old["value"]), old["actor"], old["reason"]) == (value, actor, reason):
                return "unchanged"
            values = {"value": value, "actor": actor, "reason": reason, "at": utcnow()}
            if old is None:
                conn.execute(
                    attestations.insert().values(
                        submission_id=submission_id, fact=fact, campaign_id=campaign_id, **values
                    )
                )
            else:
                conn.execute(attestations.update().where(key).values(**values))
            previous = None if old is None else {k: old[k] for k in ("value", "actor", "reason")}
            self._audit(
                conn,
                actor,
                f"{fact}.recorded",
                "submission",
                submission_id,
                {"fact": fact, "value": value, "reason": reason, "previous": previous},
            )
        return "new" if old is None else "changed"

    def list_attestations(self, campaign_id: str, fact: str) -> dict[str, dict[str, Any]]:
        """The latest record of ``fact`` per submission."""
        _check("fact", fact, ATTESTATION_FACTS)
        stmt = sa.select(attestations).where(attestations.c.campaign_id == campaign_id, attestations.c.fact == fact)
        with self._read() as conn:
            return {r["submission_id"]: dict(r) for r in conn.execute(stmt).mappings().all()}

    # -- notifications (sent-log) -----------------------------------------------------------------------------

    def claim_notification(
        self, campaign_id: str, submission_id: str, result: str, release_id: int, recipient: str | None
    ) -> bool:
        """Claim the right to send ``result`` to a submitter, once.

        False when a message for the same submission and result was sent, or is being sent, in any release:
        nobody is mailed twice for the same result. A message that failed or had no address may be claimed
        again. A claim left in ``sending`` (the worker died mid-send) is never taken again: the message may
        have gone, and a person decides.
        """
        now = utcnow()
        key = sa.and_(
            notifications.c.submission_id == submission_id,
            notifications.c.result == result,
            notifications.c.release_id == release_id,
        )
        with self._write() as conn:
            done = conn.execute(
                sa.select(sa.func.count())
                .select_from(notifications)
                .where(
                    notifications.c.submission_id == submission_id,
                    notifications.c.result == result,
                    notifications.c.status.in_(("sending", "sent")),
                )
            ).scalar_one()
            if done:
                return False
            old = conn.execute(self._lock_clause(sa.select(notifications).where(key))).mappings().first()
            status = "sending" if recipient else "no_address"
            if old is None:
                conn.execute(
                    notifications.insert().values(
                        submission_id=submission_id,
                        result=result,
                        release_id=release_id,
                        campaign_id=campaign_id,
                        recipient=recipient,
                        status=status,
                        attempts=1 if recipient else 0,
                        updated_at=now,
                    )
                )
            else:
                conn.execute(
                    notifications.update()
                    .where(key)
                    .values(
                        recipient=recipient,
                        status=status,
                        error=None,
                        updated_at=now,
                        attempts=old["attempts"] + (1 if recipient else 0),
                    )
                )
        return recipient is not None

    def finish_notification(
        self,
        submission_id: str,
        result: str,
        release_id: int,
        *,
        status: str,
        message_id: str | None = None,
        error: str | None = None,
    ) -> None:
        _check("notification status", status, NOTIFICATION_STATUSES)
        now = utcnow()
        with self._write() as conn:
            conn.execute(
                notifications.update()
                .where(
                    notifications.c.submission_id == submission_id,
                    notifications.c.result == result,
                    notifications.c.release_id == release_id,
                )
                .values(
                    status=status,
                    message_id=message_id,
                    error=error,
                    updated_at=now,
                    sent_at=now if status == "sent" else None,
                )
            )

    def list_notifications(self, campaign_id: str) -> list[dict[str, Any]]:
        stmt = (
            sa.select(notifications)
            .where(notifications.c.campaign_id == campaign_id)
            .order_by(notifications.c.submission_id, notifications.c.release_id, notifications.c.result)
        )
        with self._read() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings().all()]

    # -- publication (push-log) ---------------------------------------------------------------------------------

    def get_push(self, campaign_id: str, platform: str, submission_id: str) -> dict[str, Any] | None:
        stmt = sa.select(publications).where(
            publications.c.campaign_id == campaign_id,
            publications.c.platform == platform,
            publications.c.submission_id == submission_id,
        )
        with self._read() as conn:
            row = conn.execute(stmt).mappings().first()
        return None if row is None else dict(row)

    def record_push(
        self,
        campaign_id: str,
        platform: str,
        submission_id: str,
        *,
        package_sha256: str,
        idempotency_key: str,
        status: str,
        attempts: int,
        release_id: int | None,
        http_status: int | None = None,
        remote_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Record a push's state (``pending`` before the first try, then what the platform answered)."""
        _check("push status", status, PUSH_STATUSES)
        now = utcnow()
        key = sa.and_(
            publications.c.campaign_id == campaign_id,
            publications.c.platform == platform,
            publications.c.submission_id == submission_id,
        )
        values = {
            "package_sha256": package_sha256,
            "idempotency_key": idempotency_key,
            "status": status,
            "attempts": attempts,
            "release_id": release_id,
            "http_status": http_status,
            "remote_id": remote_id,
            "detail": detail,
            "updated_at": now,
            "accepted_at": now if status == "accepted" else None,
        }
        with self._write() as conn:
            old = conn.execute(self._lock_clause(sa.select(publications.c.status).where(key))).first()
            if old is None:
                conn.execute(
                    publications.insert().values(
                        campaign_id=campaign_id, platform=platform, submission_id=submission_id, **values
                    )
                )
            else:
                conn.execute(publications.update().where(key).values(**values))
            if status in ("accepted", "rejected"):
                self._audit(
                    conn,
                    SYSTEM_ACTOR,
                    f"publication.{status}",
                    "submission",
                    submission_id,
                    {
                        "platform": platform,
                        "http_status": http_status,
                        "remote_id": remote_id,
                        "package_sha256": package_sha256,
                    },
                )

    def list_pushes(self, campaign_id: str, platform: str | None = None) -> list[dict[str, Any]]:
        stmt = sa.select(publications).where(publications.c.campaign_id == campaign_id)
        if platform is not None:
            stmt = stmt.where(publications.c.platform == platform)
        with self._read() as conn:
            rows = conn.execute(stmt.order_by(publications.c.platform, publications.c.submission_id)).mappings()
            return [dict(r) for r in rows.all()]
