"""Publication steps, one function per DAG task (the CLI calls the same ones).

1. :func:`plan_publication` — the works to publish (awarded, pledge on record), in batches;
2. :func:`build_packages` — each work's package under the public prefix;
3. :func:`write_catalog` — ``catalog.json`` and the static gallery; packages of works no longer published go;
4. :func:`plan_pushes` / :func:`push_works` — each configured platform gets each work once (per package);
5. :func:`write_reports` — one report per platform (XLSX and JSON, in Chinese).

A dry run writes packages, catalog, gallery and reports, and pushes nothing. A rerun pushes nothing new.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Required, TypedDict, cast

from kepu.campaign import Campaign, Platform
from kepu.certificates.holders import entries
from kepu.certificates.release import Release, current_release
from kepu.errors import AwardError
from kepu.publication import catalog as cat
from kepu.publication import gallery, report
from kepu.publication.package import (
    CoverUnreadable,
    Withheld,
    Work,
    build_package,
    public_prefix,
    select_works,
    work_prefix,
)
from kepu.publication.platforms import (
    HttpHookTransport,
    PushResult,
    Transport,
    conn_id,
    connection_defined,
    idempotency_key,
    push,
)
from kepu.publication.privacy import ContactDataFound, check_text_clean

log = logging.getLogger(__name__)

#: Lifetime of the media links sent to platforms (the store's maximum): long enough to fetch the files.
MEDIA_URL_EXPIRY_S = 7 * 24 * 3600


def _selection(ctx: Any, release: Release) -> tuple[list[Work], list[Withheld]]:
    ids = sorted(release.by_submission())
    return select_works(ctx, release, entries(ctx.records, ctx.campaign.id, ids) if ids else {})


class PublicationPlan(TypedDict):
    """What :func:`plan_publication` found for the current release: the works in batches, those withheld and why."""

    release_id: int
    works: int
    withheld: dict[str, str]
    batches: list[list[str]]


class CatalogWritten(TypedDict):
    """What :func:`write_catalog` published: how many works, those withheld, the pages removed, the URIs."""

    published: int
    withheld: dict[str, str]
    removed: list[str]
    catalog: str
    gallery: str


class PushBatch(TypedDict):
    """One push task's share (:func:`plan_pushes`): a platform and works it has still to get."""

    platform: str
    batch: list[str]


class PushesDone(TypedDict):
    """What :func:`push_works` did with one batch for one platform: how many works in each outcome."""

    platform: str
    accepted: int
    rejected: int
    failed: int
    skipped: int


class PlatformReported(TypedDict, total=False):
    """One platform's line of :func:`write_reports`: whether its connection is defined, and how many works are
    in each state of :data:`kepu.publication.report.STATES` (a state no work is in is left out)."""

    connected: Required[bool]
    accepted: int
    rejected: int
    failed: int
    pending: int
    to_push: int
    dry_run: int
    no_connection: int
    no_pledge: int
    no_rendition: int
    contact_data: int
    unreadable_cover: int


def plan_publication(ctx: Any, *, event: Mapping[str, Any] | None = None, max_tasks: int = 32) -> PublicationPlan:
    from kepu.batches import plan_batches

    release = current_release(ctx, event)
    works, withheld = _selection(ctx, release)
    log.info("publication: %d work(s) to publish, %d withheld", len(works), len(withheld))
    return {
        "release_id": release.release_id,
        "works": len(works),
        "withheld": {w.submission_id: w.reason_code for w in withheld},
        "batches": plan_batches([w.submission_id for w in works], max_tasks),
    }


def build_packages(ctx: Any, batch: list[str]) -> list[str]:
    """Make each work's package; a work whose files hold contact data, or whose cover cannot be read (a
    decompression bomb, not a picture), is withheld and reported, not failed."""
    release = current_release(ctx)
    works, _ = _selection(ctx, release)
    chosen = {w.submission_id: w for w in works}
    people = entries(ctx.records, ctx.campaign.id, batch)
    for sid in batch:
        if sid not in chosen:
            log.info("%s is no longer to be published", sid)
            continue
        try:
            build_package(ctx, chosen[sid], people[sid])
        except (ContactDataFound, CoverUnreadable) as exc:
            reason = "contact_data" if isinstance(exc, ContactDataFound) else "unreadable_cover"
            log.warning("%s withheld: %s", sid, exc)
            ctx.store.delete_prefix_except(work_prefix(ctx.campaign.id, sid), set())
            ctx.records.set_details(sid, {"publication": {"withheld": reason, "detail": str(exc)}})
    return batch


def published(ctx: Any, release: Release) -> tuple[list[tuple[Work, dict[str, Any]]], list[Withheld]]:
    """The works whose package is made, with its manifest, and the ones withheld (with the packaging's reasons)."""
    works, withheld = _selection(ctx, release)
    people = entries(ctx.records, ctx.campaign.id, [w.submission_id for w in works]) if works else {}
    out = []
    for w in works:
        e = people[w.submission_id]
        manifest = e.details.get("publication") or {}
        if manifest.get("withheld"):
            withheld.append(
                Withheld(
                    w.submission_id,
                    e.title,
                    e.unit,
                    e.province,
                    str(manifest["withheld"]),
                    str(manifest.get("detail") or ""),
                )
            )
        elif manifest.get("package_sha256"):
            out.append((w, manifest))
    return out, withheld


def _metadata(ctx: Any, sid: str) -> dict[str, Any]:
    with ctx.store.open_local(work_prefix(ctx.campaign.id, sid) + "metadata.json") as path:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def write_catalog(ctx: Any) -> CatalogWritten:
    """``catalog.json``, the gallery's pages and style; the packages of works no longer published are removed."""
    c: Campaign = ctx.campaign
    release = current_release(ctx)
    done, withheld = published(ctx, release)
    metas = [_metadata(ctx, w.submission_id) for w, _ in done]
    root = public_prefix(c.id)
    keep = {w.submission_id for w, _ in done}
    pages = {meta["id"]: gallery.work_page(c, meta) for meta in metas}
    catalog_data = cat.catalog_bytes(cat.catalog(c, release.release_id, metas))
    index_data = gallery.index_page(c, metas)
    # The last look before anything public goes: no contact data of any shape, anyone's.
    for what, data in [
        *((f"{sid} 的作品页 page", page) for sid, page in pages.items()),
        ("catalog.json", catalog_data),
        ("index.html", index_data),
    ]:
        check_text_clean(data, what)
    for sid, page in pages.items():
        ctx.store.put_bytes(f"{root}works/{sid}/index.html", page, content_type="text/html; charset=utf-8")
    stale = [
        k for k in ctx.store.list_keys(root + "works/") if k[len(root) + len("works/") :].split("/")[0] not in keep
    ]
    for key in stale:
        ctx.store.delete(key)
    stored = ctx.store.put_bytes(root + cat.CATALOG, catalog_data, content_type="application/json")
    index = ctx.store.put_bytes(root + "index.html", index_data, content_type="text/html; charset=utf-8")
    ctx.store.put_bytes(root + gallery.STYLE, gallery.style_sheet(), content_type="text/css")
    return {
        "published": len(metas),
        "withheld": {w.submission_id: w.reason_code for w in withheld},
        "removed": stale,
        "catalog": stored.uri,
        "gallery": index.uri,
    }


def _platforms(c: Campaign, only: list[str] | None) -> list[Platform]:
    known = {p.key: p for p in c.publication.platforms}
    unknown = sorted(set(only or []) - set(known))
    if unknown:
        raise AwardError(f"未知的平台 {unknown} · unknown platform(s); the campaign has {sorted(known)}")
    return [p for p in c.publication.platforms if not only or p.key in only]


def _settled(state: dict[str, Any] | None, package_sha256: str) -> bool:
    """Pushed already: accepted, or refused (4xx) — for this very package."""
    return (
        state is not None and state["package_sha256"] == package_sha256 and state["status"] in ("accepted", "rejected")
    )


def plan_pushes(
    ctx: Any,
    *,
    dry_run: bool,
    platforms: list[str] | None = None,
    max_tasks: int = 32,
    has_connection: Callable[[str], bool] = connection_defined,
) -> list[PushBatch]:
    """``[{"platform": key, "batch": [ids]}]``: what each configured platform still has to get (nothing in a dry run)."""
    from kepu.batches import plan_batches

    if dry_run:
        return []
    c: Campaign = ctx.campaign
    done, _ = published(ctx, current_release(ctx))
    out: list[PushBatch] = []
    chosen = [p for p in _platforms(c, platforms) if has_connection(conn_id(p.key))]
    skipped = [p.key for p in _platforms(c, platforms) if p not in chosen]
    if skipped:
        log.info("no connection for platform(s) %s: not pushed to", ", ".join(skipped))
    per_platform = max(1, max_tasks // max(1, len(chosen)))
    for p in chosen:
        todo = [
            w.submission_id
            for w, m in done
            if not _settled(ctx.records.get_push(c.id, p.key, w.submission_id), m["package_sha256"])
        ]
        out.extend({"platform": p.key, "batch": b} for b in plan_batches(todo, per_platform))
    return out


def payload(ctx: Any, sid: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """What a platform receives: the work's public metadata, its files' digests and links to fetch them."""
    meta = _metadata(ctx, sid)
    prefix = work_prefix(ctx.campaign.id, sid)
    urls = {}
    for name in sorted(meta.get("files") or {}):
        url = ctx.store.presigned_url(prefix + name, MEDIA_URL_EXPIRY_S)
        if url:
            urls[name] = url
    return {
        "work": meta,
        "package_sha256": manifest["package_sha256"],
        "urls": urls,
        "paths": sorted(meta.get("files") or {}),
    }


def push_works(
    ctx: Any,
    platform_key: str,
    batch: list[str],
    *,
    transport: Transport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PushesDone:
    """Push each work of ``batch`` not yet settled with the platform; record every answer.

    Raises :class:`AwardError` at the end when a push failed for good (5xx or unreachable after every try), so
    the task is retried: works already accepted are not sent again.
    """
    c: Campaign = ctx.campaign
    (platform,) = _platforms(c, [platform_key])
    release = current_release(ctx)
    done = {w.submission_id: m for w, m in published(ctx, release)[0]}
    transport = transport or HttpHookTransport(conn_id(platform_key))
    counts: dict[str, list[str]] = {"accepted": [], "rejected": [], "failed": [], "skipped": []}
    for sid in batch:
        manifest = done.get(sid)
        if manifest is None:
            counts["skipped"].append(sid)
            continue
        sha = manifest["package_sha256"]
        state = ctx.records.get_push(c.id, platform_key, sid)
        if _settled(state, sha):
            counts["skipped"].append(sid)
            continue
        key = idempotency_key(c.id, platform_key, sid, sha)
        tries = int(state["attempts"]) if state and state["package_sha256"] == sha else 0
        ctx.records.record_push(
            c.id,
            platform_key,
            sid,
            package_sha256=sha,
            idempotency_key=key,
            status="pending",
            attempts=tries,
            release_id=release.release_id,
        )
        result: PushResult = push(
            transport, platform.endpoint, payload(ctx, sid, manifest), key, c.publication.push, sleep=sleep
        )
        ctx.records.record_push(
            c.id,
            platform_key,
            sid,
            package_sha256=sha,
            idempotency_key=key,
            status=result.status,
            attempts=tries + result.attempts,
            release_id=release.release_id,
            http_status=result.http_status,
            remote_id=result.remote_id,
            detail=result.detail,
        )
        counts[result.status].append(sid)
    summary = {k: len(v) for k, v in counts.items()}
    log.info("%s: %s", platform_key, summary)
    if counts["failed"]:
        raise AwardError(
            f"{platform.zh}：{len(counts['failed'])} 部作品推送失败，重试时再推 · {platform.en}: "
            f"{len(counts['failed'])} push(es) failed and will be tried again",
            counts["failed"],
        )
    return {
        "platform": platform_key,
        "accepted": summary["accepted"],
        "rejected": summary["rejected"],
        "failed": summary["failed"],
        "skipped": summary["skipped"],
    }


def write_reports(
    ctx: Any,
    *,
    dry_run: bool,
    platforms: list[str] | None = None,
    has_connection: Callable[[str], bool] = connection_defined,
) -> dict[str, PlatformReported]:
    """One report per platform: each published work's state there, then the works not published and why."""
    c: Campaign = ctx.campaign
    release = current_release(ctx)
    done, withheld = published(ctx, release)
    ids = [w.submission_id for w, _ in done]
    people = entries(ctx.records, c.id, ids) if ids else {}
    out: dict[str, PlatformReported] = {}
    for p in _platforms(c, platforms):
        connected = has_connection(conn_id(p.key))
        rows: list[report.ReportRow] = []
        for w, manifest in done:
            e = people[w.submission_id]
            state = ctx.records.get_push(c.id, p.key, w.submission_id)
            current = state is not None and state["package_sha256"] == manifest["package_sha256"]
            if current and state is not None:
                rows.append(
                    report.ReportRow(
                        w.submission_id,
                        e.title,
                        e.unit,
                        e.province,
                        state["status"],
                        state["http_status"],
                        state["remote_id"],
                        state["attempts"],
                        state["updated_at"].isoformat(timespec="seconds"),
                        state["idempotency_key"],
                        state["detail"] or "",
                    )
                )
                continue
            status = "dry_run" if dry_run else "to_push" if connected else "no_connection"
            rows.append(report.ReportRow(w.submission_id, e.title, e.unit, e.province, status))
        rows.extend(
            report.ReportRow(x.submission_id, x.title, x.unit, x.province, x.reason_code, detail=x.reason)
            for x in withheld
        )
        info = {"key": p.key, "zh": p.zh, "en": p.en}
        xlsx_key, json_key = report.report_keys(c.id, p.key)
        ctx.store.put_bytes(
            xlsx_key,
            report.report_xlsx(info, release.release_id, dry_run, rows),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        ctx.store.put_bytes(
            json_key, report.report_json(info, release.release_id, dry_run, rows), content_type="application/json"
        )
        # The states are those of report.STATES, each a key of PlatformReported.
        out[p.key] = cast(PlatformReported, {"connected": connected, **report.summary(rows)})
    return out
