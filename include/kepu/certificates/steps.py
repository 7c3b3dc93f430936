"""Certificate steps, one function per DAG task (the CLI calls the same ones).

1. :func:`plan_certificates` — issue a number for every award of the latest release that has none (and for
   every 创作之星 title recorded), revoke those whose award a re-release withdrew, and list what to render;
2. :func:`render_certificates` — one PDF per certificate into the object store;
3. :func:`write_unit_files` — per unit, one PDF of its valid certificates for printing, and the register.

Everything is idempotent: the same release issues nothing new, an unchanged PDF is not rendered again, and
unchanged files are not uploaded again. :func:`revoke` and :func:`reissue` are the operator's path.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, TypedDict

from kepu.campaign import Campaign, CertificateType
from kepu.certificates import store as keys
from kepu.certificates.holders import Entry, entries, entry
from kepu.certificates.numbers import certificate_number, load_secret
from kepu.certificates.release import Release, current_release
from kepu.certificates.render import CertificatePage, render_pdf
from kepu.certificates.verify import verification_url
from kepu.clock import BEIJING
from kepu.db.award_records import CertificateRecord
from kepu.db.schema import utcnow
from kepu.errors import AwardError

log = logging.getLogger(__name__)

#: Revocations made by the steps themselves (an award withdrawn by a re-release) carry this actor; a
#: certificate revoked by a person is never issued again automatically.
AUTO_REVOKE_PREFIX = "award-withdrawn"


def _texts(c: Campaign, t: CertificateType, e: Entry) -> tuple[str, str]:
    values = {
        "holder": e.holder,
        "title": e.title,
        "unit": e.unit or "",
        "campaign": c.campaign.name_zh,
        "campaign_en": c.campaign.name_en,
        "organiser": c.campaign.organiser_zh,
        "organiser_en": c.campaign.organiser_en,
    }
    return t.body_zh.format(**values), t.body_en.format(**values)


def page_of(ctx: Any, cert: CertificateRecord) -> CertificatePage:
    """What is printed on ``cert``, from its row alone (so the same row gives the same PDF)."""
    c: Campaign = ctx.campaign
    t = c.certificates.type(cert.type)
    e = Entry(cert.submission_id, "", cert.holder, cert.title, cert.unit, cert.province, None, None, False, {})
    body_zh, body_en = _texts(c, t, e)
    return CertificatePage(
        number=cert.number,
        heading_zh=t.heading_zh,
        heading_en=t.heading_en,
        award_zh=t.award_zh,
        award_en=t.award_en,
        holder=cert.holder,
        body_zh=body_zh,
        body_en=body_en,
        issuer_zh=c.certificates.issuer_zh,
        issuer_en=c.certificates.issuer_en,
        issued_on=cert.issued_at.astimezone(BEIJING).date(),
        verify_url=verification_url(ctx.settings.public_base_url, cert.number),
    )


def _new_certificate(
    ctx: Any,
    t: CertificateType,
    e: Entry,
    *,
    generation: int,
    release_id: int | None,
    issued_at: dt.datetime,
    replaces: str | None = None,
) -> CertificateRecord:
    c: Campaign = ctx.campaign
    number = certificate_number(
        load_secret(ctx.settings), c.certificates.number_prefix, c.id, t.key, e.submission_id, generation
    )
    return CertificateRecord(
        number=number,
        campaign_id=c.id,
        type=t.key,
        award=t.award_zh,
        submission_id=e.submission_id,
        generation=generation,
        holder=e.holder,
        title=e.title,
        unit=e.unit,
        province=e.province,
        release_id=release_id,
        issued_at=issued_at,
        replaces=replaces,
    )


def qualifying(ctx: Any, release: Release) -> dict[str, dict[str, dt.datetime]]:
    """For each certificate type, the submissions that should hold one and the date it is issued on."""
    c: Campaign = ctx.campaign
    stars = {sid: row for sid, row in ctx.records.list_attestations(c.id, "creation_star").items() if row["value"]}
    out: dict[str, dict[str, dt.datetime]] = {}
    for t in c.certificates.types:
        holders = {a.submission_id for a in release.awards if a.award == t.award}
        if t.issue_on == "recorded":
            out[t.key] = {sid: stars[sid]["at"] for sid in sorted(holders) if sid in stars}
        else:
            out[t.key] = {sid: release.released_at for sid in sorted(holders)}
    return out


class CertificatePlan(TypedDict):
    """What :func:`plan_certificates` did for the current release, and the numbers whose PDF is to be made."""

    release_id: int
    issued: list[str]
    revoked: list[str]
    valid: int
    to_render: list[str]


class UnitFiles(TypedDict):
    """What :func:`write_unit_files` wrote: one PDF per unit, the register, and the files of units gone."""

    units: int
    certificates: int
    removed: list[str]
    register: str


def plan_certificates(ctx: Any, *, event: Mapping[str, Any] | None = None) -> CertificatePlan:
    """Issue what is missing, revoke what a re-release withdrew; return the numbers whose PDF is to be made."""
    c: Campaign = ctx.campaign
    release = current_release(ctx, event)
    wanted = qualifying(ctx, release)
    existing: dict[tuple[str, str], list[CertificateRecord]] = {}
    for cert in ctx.records.find_certificates(c.id):
        existing.setdefault((cert.type, cert.submission_id), []).append(cert)
    need = sorted({sid for sids in wanted.values() for sid in sids})
    people = entries(ctx.records, c.id, need) if need else {}
    issued: list[str] = []
    revoked: list[str] = []
    for t in c.certificates.types:
        for sid, issued_at in wanted[t.key].items():
            history = existing.get((t.key, sid), [])
            if any(x.valid for x in history):
                continue
            if history and not (history[-1].revoked_by or "").startswith(AUTO_REVOKE_PREFIX):
                # A person revoked it: a new one comes only through an explicit reissue.
                continue
            cert = _new_certificate(
                ctx,
                t,
                people[sid],
                generation=len(history),
                release_id=release.release_id,
                issued_at=issued_at if not history else utcnow(),
                replaces=history[-1].number if history else None,
            )
            if ctx.records.issue_certificate(cert):
                issued.append(cert.number)
        for (tkey, sid), history in sorted(existing.items()):
            if tkey != t.key or sid in wanted[t.key]:
                continue
            for cert in history:
                if cert.valid:
                    ctx.records.revoke_certificate(
                        cert.number,
                        actor=f"{AUTO_REVOKE_PREFIX}:release-{release.release_id}",
                        reason=f"奖项在第 {release.release_id} 次发布中撤销 · award withdrawn in release #{release.release_id}",
                    )
                    revoked.append(cert.number)
    to_render = [cert.number for cert in ctx.records.find_certificates(c.id) if cert.valid and not _rendered(ctx, cert)]
    summary: CertificatePlan = {
        "release_id": release.release_id,
        "issued": issued,
        "revoked": revoked,
        "valid": sum(1 for x in ctx.records.find_certificates(c.id) if x.valid),
        "to_render": to_render,
    }
    log.info("certificates: %d issued, %d revoked, %d to render", len(issued), len(revoked), len(to_render))
    return summary


def _rendered(ctx: Any, cert: CertificateRecord) -> bool:
    if not cert.object_key or not cert.sha256:
        return False
    head = ctx.store.head(cert.object_key)
    return head is not None and head.sha256 == cert.sha256


def render_certificates(ctx: Any, numbers: list[str]) -> list[str]:
    """Render and store each certificate's PDF; one already stored with the same content is left alone."""
    c: Campaign = ctx.campaign
    for number in numbers:
        cert = ctx.records.get_certificate(number)
        if cert is None:
            raise AwardError(f"查无此证书 · no certificate {number}")
        data = render_pdf([page_of(ctx, cert)], title=f"{cert.award} {cert.number}", author=c.certificates.issuer_zh)
        stored = ctx.store.put_bytes(keys.certificate_key(c.id, number), data, content_type=keys.PDF)
        if (cert.object_key, cert.sha256) != (stored.key, stored.sha256):
            ctx.records.set_certificate_file(number, stored.key, stored.sha256)
    return numbers


def _type_order(c: Campaign) -> dict[str, int]:
    return {t.key: i for i, t in enumerate(c.certificates.types)}


def write_unit_files(ctx: Any) -> UnitFiles:
    """Per unit, one PDF of its valid certificates for printing; the register workbook (证书清单)."""
    c: Campaign = ctx.campaign
    order = _type_order(c)
    certs = ctx.records.find_certificates(c.id)
    groups: dict[str, list[CertificateRecord]] = {}
    for cert in certs:
        if cert.valid:
            groups.setdefault(keys.unit_file_key(c.id, cert.province, cert.unit), []).append(cert)
    written: dict[str, int] = {}
    for key, group in sorted(groups.items()):
        group.sort(key=lambda x: (order.get(x.type, 99), x.title, x.number))
        data = render_pdf(
            [page_of(ctx, x) for x in group],
            title=f"{group[0].province or ''}{group[0].unit or ''} 证书",
            author=c.certificates.issuer_zh,
        )
        ctx.store.put_bytes(key, data, content_type=keys.PDF)
        written[key] = len(group)
    stale = ctx.store.delete_prefix_except(keys.units_prefix(c.id), set(written))
    register = ctx.store.put_bytes(
        keys.register_key(c.id),
        register_workbook(ctx, certs),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    return {"units": len(written), "certificates": sum(written.values()), "removed": stale, "register": register.uri}


def register_workbook(ctx: Any, certs: list[CertificateRecord]) -> bytes:
    """证书清单: every certificate ever issued, valid or revoked, with its verification URL (no contact data)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    from kepu.cells import neutralise_workbook, safe_row

    c: Campaign = ctx.campaign
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "证书清单 Certificates"
    headers = [
        "证书编号 number",
        "证书 award",
        "获奖者 holder",
        "作品/科普号 title",
        "单位 unit",
        "省份 province",
        "状态 status",
        "颁发日期 issued",
        "撤销日期 revoked",
        "撤销理由 reason",
        "补发自 replaces",
        "查验网址 verify",
    ]
    ws.append(headers)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    order = _type_order(c)
    for x in sorted(
        certs, key=lambda x: (x.province or "", x.unit or "", order.get(x.type, 99), x.title, x.generation)
    ):
        ws.append(
            safe_row(
                [
                    x.number,
                    x.award,
                    x.holder,
                    x.title,
                    x.unit or "",
                    x.province or "",
                    "有效 valid" if x.valid else "已撤销 revoked",
                    x.issued_at.astimezone(BEIJING).date().isoformat(),
                    x.revoked_at.astimezone(BEIJING).date().isoformat() if x.revoked_at else "",
                    x.revoke_reason or "",
                    x.replaces or "",
                    verification_url(ctx.settings.public_base_url, x.number),
                ]
            )
        )
    for col, width in zip("ABCDEFGHIJKL", (26, 28, 24, 30, 24, 10, 12, 12, 12, 30, 26, 60), strict=True):
        ws.column_dimensions[col].width = width
    ws.freeze_panes = "A2"
    neutralise_workbook(wb)
    buf = io.BytesIO()
    wb.save(buf)
    return _fixed_zip_dates(buf.getvalue())


def _fixed_zip_dates(data: bytes) -> bytes:
    """The workbook with fixed member dates, so the same certificates give the same bytes."""
    import zipfile

    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(2000, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = _strip_core_dates(body)
            dst.writestr(fixed, body)
    return out.getvalue()


def _strip_core_dates(body: bytes) -> bytes:
    import re

    return re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)", rb"\g<1>2000-01-01T00:00:00Z\g<2>", body)


# --- the operator's path: 创作之星, revoke, reissue -------------------------------------------------------------


def record_star(ctx: Any, submission_id: str, *, actor: str, reason: str, value: bool = True) -> str:
    """Record that 科普中国 gave (or withdrew) the 创作之星 title to one of the best works."""
    c: Campaign = ctx.campaign
    release = current_release(ctx)
    star_types = [t for t in c.certificates.types if t.record == "creation_star"]
    eligible = {a.submission_id for a in release.awards for t in star_types if a.award == t.award}
    if value and submission_id not in eligible:
        raise AwardError(
            f"作品 {submission_id} 不在最新发布的最佳作品中，不能记录创作之星 · {submission_id} is not among the best works "
            "of the latest release"
        )
    result: str = ctx.records.record_attestation(
        c.id, submission_id, "creation_star", value=value, actor=actor, reason=reason
    )
    return result


def revoke(ctx: Any, number: str, *, actor: str, reason: str) -> CertificateRecord:
    """Revoke a certificate; the verification page then says 已撤销 revoked. The unit's print file is rewritten."""
    cert: CertificateRecord = ctx.records.revoke_certificate(number, actor=actor, reason=reason)
    write_unit_files(ctx)
    return cert


def reissue(ctx: Any, number: str, *, actor: str, reason: str) -> CertificateRecord:
    """Revoke ``number`` (when still valid) and issue its successor under a new number, from the records as they
    are now (a corrected holder name or title comes through); the award must still stand."""
    c: Campaign = ctx.campaign
    old = ctx.records.get_certificate(number)
    if old is None:
        raise AwardError(f"查无此证书 · no certificate {number}")
    release = current_release(ctx)
    if old.submission_id not in qualifying(ctx, release).get(old.type, {}):
        raise AwardError(
            f"证书 {number} 对应的奖项在最新发布中已不存在，不能补发 · the award of {number} no longer stands in the latest release"
        )
    history = ctx.records.find_certificates(c.id, submission_id=old.submission_id, type=old.type)
    current = next((x for x in history if x.valid), None)
    if current is not None and current.number != number:
        raise AwardError(
            f"证书 {number} 已由 {current.number} 替代 · {number} was already replaced by {current.number}"
        )
    if old.valid:
        ctx.records.revoke_certificate(number, actor=actor, reason=reason)
    sub = ctx.records.get_submission(old.submission_id)
    assert sub is not None
    t = c.certificates.type(old.type)
    new = _new_certificate(
        ctx,
        t,
        entry(ctx.records, sub),
        generation=max(x.generation for x in history) + 1,
        release_id=release.release_id,
        issued_at=utcnow(),
        replaces=number,
    )
    ctx.records.issue_certificate(new, actor=actor)
    render_certificates(ctx, [new.number])
    write_unit_files(ctx)
    done: CertificateRecord = ctx.records.get_certificate(new.number)
    return done


def certificate_pdf(ctx: Any, cert: CertificateRecord) -> bytes:
    """A certificate's PDF as stored (rendered again from its row when missing)."""
    if not _rendered(ctx, cert):
        render_certificates(ctx, [cert.number])
        cert = replace(cert, object_key=keys.certificate_key(ctx.campaign.id, cert.number))
    assert cert.object_key is not None
    with ctx.store.open_local(cert.object_key) as path:
        return bytes(path.read_bytes())
