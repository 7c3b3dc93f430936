"""The intake steps, one function per DAG task.

Each step takes ids and returns ids: file contents and tables stay in the object store and the
records, never in XCom. Every step is idempotent: a rerun overwrites the same keys and rows.
A problem with a submitter's material becomes a finding; a problem with the platform (store or
database unreachable) raises, so Airflow retries the task.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from kepu.campaign import Campaign, campaign_sha256, load_campaign
from kepu.config import Settings, load_settings
from kepu.db import get_engine, upgrade
from kepu.db.repository import FindingRecord, MaterialRecord, Records, SubmissionRecord
from kepu.errors import KepuError, MaterialError, MediaToolError
from kepu.findings import Finding, make_finding, verdict
from kepu.intake import (
    PackageSource,
    classify,
    discover,
    package_files,
    parse_folder_name,
    safe_extract,
    submission_id,
)
from kepu.media.checks import probe_findings
from kepu.media.probe import probe_file
from kepu.package_checks import package_findings
from kepu.storage import ObjectStore, StoredObject, object_key, open_store

log = logging.getLogger(__name__)

RAW_ROLES = ("video", "cover", "synopsis", "form", "attachment")
PROBE_TIMEOUT_S = 120.0


@dataclass
class Context:
    settings: Settings
    campaign: Campaign
    records: Records
    store: ObjectStore


def open_context(settings: Settings | None = None, *, migrate: bool = False) -> Context:
    """Everything a step needs, built from the environment (never at DAG parse time)."""
    settings = settings or load_settings()
    campaign = load_campaign(settings.campaign_file)
    if migrate:
        upgrade(settings.database_url)
    records = Records(get_engine(settings.database_url))
    return Context(settings, campaign, records, open_store(settings))


def _now() -> datetime:
    return datetime.now(UTC)


def _to_records(findings: list[Finding]) -> list[FindingRecord]:
    return [
        FindingRecord(
            code=f.code,
            severity=f.severity,
            value=f.value,
            limit_value=f.limit,
            at_seconds=f.at_seconds,
            message_zh=f.message_zh,
            message_en=f.message_en,
            stage=f.stage,
        )
        for f in findings
    ]


# --- register --------------------------------------------------------------------------------------


def register_submissions(
    ctx: Context,
    *,
    run_id: str,
    dag_id: str,
    inbox: Path | None = None,
    only: list[str] | None = None,
    force: bool = False,
) -> list[str]:
    """Register every package of the inbox; return the ids to process in this run.

    Unchanged packages that were already checked are skipped unless ``force``: a nightly run only
    processes what is new or changed.
    """
    inbox = inbox or ctx.settings.inbox
    c = ctx.campaign
    ctx.records.upsert_campaign(c.id, c.campaign.name_zh, campaign_sha256(ctx.settings.campaign_file))
    ctx.records.start_run(run_id, c.id, dag_id, {"inbox": str(inbox), "only": only, "force": force})
    selected: list[str] = []
    total = 0
    for src in discover(inbox, c):
        sid = submission_id(c.id, src.name)
        if only and sid not in only and src.name not in only:
            continue
        folder = parse_folder_name(src.name, c)
        submitter = None
        if folder.unit:
            submitter = ctx.records.upsert_submitter(c.id, folder.unit, folder.province, None)
        before = ctx.records.get_submission(sid)
        unchanged = before is not None and before.fingerprint == src.fingerprint
        ctx.records.upsert_submission(
            SubmissionRecord(
                id=sid,
                campaign_id=c.id,
                submitter_id=submitter,
                kind=before.kind if before else "video",
                source_name=src.name,
                source_uri=src.path.resolve().as_uri(),
                fingerprint=src.fingerprint,
                title=folder.title,
                province=folder.province,
                unit=folder.unit,
                channel=before.channel if before else None,
                received_at=before.received_at
                if before and before.received_at
                else datetime.fromtimestamp(src.path.stat().st_mtime, UTC),
                verdict=before.verdict if unchanged and before else None,
                status=before.status if unchanged and before else "registered",
                last_run_id=run_id,
            )
        )
        if force or not unchanged or (before is not None and before.status != "checked"):
            selected.append(sid)
        total += 1
    log.info("registered %d package(s); %d to process in run %s", total, len(selected), run_id)
    return selected


def plan_batches(ids: list[str], max_tasks: int) -> list[list[str]]:
    """Split ids into at most ``max_tasks`` batches of near-equal size, one id each when they fit.

    Airflow caps a mapped task at ``max_map_length`` (1024 by default): a larger campaign is
    processed in batches instead of failing the run.
    """
    if not ids:
        return []
    size = max(1, math.ceil(len(ids) / max(1, max_tasks)))
    return [ids[i : i + size] for i in range(0, len(ids), size)]


# --- fetch -----------------------------------------------------------------------------------------


def _source_of(rec: SubmissionRecord) -> PackageSource:
    path = Path(url2pathname(urlparse(rec.source_uri).path))
    kind = "folder" if path.is_dir() else ("archive" if path.suffix.lower() == ".zip" else "file")
    return PackageSource(rec.source_name, path, kind, rec.fingerprint)  # type: ignore[arg-type]


def _probe_image(path: Path) -> tuple[int, int]:
    result = probe_file(path, timeout=30)
    if result.video is None or not result.video.display_width or not result.video.display_height:
        raise MaterialError("M-UNREADABLE", f"{path.name} is not an image")
    return result.video.display_width, result.video.display_height


def _unique_key(key: str, taken: set[str]) -> str:
    """``key``, or with a counter before the extension when a flattened name collides."""
    if key not in taken:
        return key
    stem, dot, ext = key.rpartition(".")
    if not dot or "/" in ext:
        stem, ext = key, ""
    n = 2
    while (candidate := f"{stem}-{n}.{ext}" if ext else f"{stem}-{n}") in taken:
        n += 1
    return candidate


def fetch_materials(ctx: Context, submission_ids: list[str], *, run_id: str) -> list[str]:
    """Copy each package's files into the object store and check what the package holds."""
    for sid in submission_ids:
        rec = ctx.records.get_submission(sid)
        if rec is None:
            raise KeyError(f"submission {sid} is not registered")
        _fetch_one(ctx, rec, run_id)
    return submission_ids


def _fetch_one(ctx: Context, rec: SubmissionRecord, run_id: str) -> None:
    c = ctx.campaign
    src = _source_of(rec)
    scratch = ctx.settings.scratch_dir / rec.id
    findings: list[Finding] = []
    try:
        if not src.path.exists():
            findings.append(
                make_finding(
                    c, "M-UNREADABLE",
                    detail_zh=f"收件箱中已找不到 {src.name}", detail_en=f"{src.name} is no longer in the inbox",
                    value=src.name,
                )
            )  # fmt: skip
            files: list[Path] = []
            root = src.path
        elif src.kind == "archive":
            root, arc_findings = safe_extract(src.path, scratch, c)
            findings.extend(arc_findings)
            files = package_files(root)
        elif src.kind == "folder":
            root = src.path
            files = package_files(root)
        else:
            root = src.path.parent
            files = [src.path]
        folder = parse_folder_name(src.name, c)
        contents = classify(files, c, folder.title)
        findings.extend(package_findings(c, folder, contents, probe_image=_probe_image))

        materials: list[MaterialRecord] = []
        keep: set[str] = set()
        for role, path in contents.roles():
            rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
            key = _unique_key(object_key(c.id, rec.id, role, rel.replace("/", "__")), keep)
            stored: StoredObject = ctx.store.put_file(key, path)
            keep.add(key)
            materials.append(
                MaterialRecord(
                    role=role,
                    filename=rel,
                    object_key=key,
                    sha256=stored.sha256,
                    size_bytes=stored.size,
                    content_type=None,
                )
            )
        for role in RAW_ROLES:
            prefix = object_key(c.id, rec.id, role, "x").rsplit("/", 1)[0] + "/"
            removed = ctx.store.delete_prefix_except(prefix, keep)
            if removed:
                ctx.records.audit("pipeline", "objects.removed", "submission", rec.id, {"keys": removed})
        ctx.records.replace_materials(rec.id, materials)
        ctx.records.replace_findings(rec.id, "package", _to_records(findings), run_id)
        ctx.records.set_status(rec.id, "fetched", run_id)
        log.info(
            "%s: %d file(s) stored, %d package finding(s)", rec.source_name, len(materials), len(findings)
        )
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)


# --- check -----------------------------------------------------------------------------------------


def check_submissions(ctx: Context, submission_ids: list[str], *, run_id: str) -> list[str]:
    """Probe each entry's video and record the rule findings and the verdict."""
    for sid in submission_ids:
        _check_one(ctx, sid, run_id)
    return submission_ids


def _check_one(ctx: Context, sid: str, run_id: str) -> None:
    c = ctx.campaign
    findings: list[Finding] = []
    videos = [m for m in ctx.records.list_materials(sid) if m.role == "video"]
    if videos:
        video = videos[0]
        with ctx.store.open_local(video.object_key) as local:
            try:
                probe = probe_file(local, timeout=PROBE_TIMEOUT_S)
            except MaterialError as exc:
                findings.append(
                    make_finding(
                        c, exc.code, stage="probe",
                        detail_zh=f"视频 {video.filename} 无法作为视频读取（{exc}）",
                        detail_en=f"video {video.filename} cannot be read as a video ({exc})",
                        value=video.filename,
                    )
                )  # fmt: skip
            except MediaToolError as exc:
                findings.append(
                    make_finding(
                        c, "M-UNREADABLE", stage="probe",
                        detail_zh=f"探测视频 {video.filename} 失败（{'超时' if exc.timed_out else exc}）",
                        detail_en=f"probing {video.filename} failed ({'timed out' if exc.timed_out else exc})",
                        value=video.filename,
                    )
                )  # fmt: skip
            else:
                findings.extend(probe_findings(c, probe))
    ctx.records.replace_findings(sid, "probe", _to_records(findings), run_id)
    every = ctx.records.list_findings(submission_id=sid)
    ctx.records.set_verdict(sid, verdict(every))
    ctx.records.set_status(sid, "checked", run_id)


# --- export and bookkeeping --------------------------------------------------------------------------


def export_eligibility(ctx: Context, *, run_id: str) -> dict[str, Any]:
    """Write the eligibility export (CSV and XLSX) for the whole campaign; return where it is."""
    from kepu.export import eligibility_rows, write_eligibility

    rows = eligibility_rows(ctx.records, ctx.campaign)
    uris = write_eligibility(rows, ctx.store, ctx.campaign, scratch=ctx.settings.scratch_dir / run_id)
    counts = Counter(r["verdict"] for r in rows)
    summary = {"submissions": len(rows), "verdicts": dict(sorted(counts.items())), "exports": uris}
    log.info("eligibility export: %s", summary)
    return summary


def finish_run(ctx: Context, *, run_id: str, summary: dict[str, Any] | None) -> None:
    """Record the end of a run; a run whose export is missing is recorded as failed and raises."""
    ctx.records.finish_run(run_id, "success" if summary else "failed", {"summary": summary or {}})
    if not summary:
        raise KepuError(f"run {run_id}: the eligibility export was not written; see the export task's log")


def run_intake(
    ctx: Context, *, run_id: str, inbox: Path | None = None, force: bool = False
) -> dict[str, Any]:
    """All steps in this process, in order: for the CLI and for tests of the domain."""
    ids = register_submissions(ctx, run_id=run_id, dag_id="kepu-cli", inbox=inbox, force=force)
    fetch_materials(ctx, ids, run_id=run_id)
    check_submissions(ctx, ids, run_id=run_id)
    summary = export_eligibility(ctx, run_id=run_id)
    finish_run(ctx, run_id=run_id, summary=summary)
    return summary
