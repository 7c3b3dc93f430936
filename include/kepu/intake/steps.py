"""The intake steps, one function per DAG task.

Each step takes ids and returns ids: file contents and tables stay in the object store and the
records, never in XCom. Every step is idempotent: a rerun overwrites the same keys and rows.
A problem with a submitter's material becomes a finding; a problem with the platform (store or
database unreachable) raises, so Airflow retries the task.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import secrets
import shutil
import socket
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict
from dataclasses import replace as dc_replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, ParamSpec, TypedDict, TypeVar
from urllib.parse import urlparse
from urllib.request import url2pathname

from kepu.batches import plan_batches
from kepu.campaign import Campaign, campaign_sha256
from kepu.context import Context
from kepu.db.repository import FindingRecord, MaterialRecord, SubmissionRecord
from kepu.db.retry import retry_transient
from kepu.errors import KepuError, MaterialError
from kepu.findings import Finding, make_finding, verdict
from kepu.intake.package_checks import PackageReading, read_package
from kepu.intake.packages import (
    FolderName,
    PackageContents,
    PackageSource,
    classify,
    discover,
    package_files,
    parse_folder_name,
    safe_extract,
    submission_id,
)
from kepu.media.probe import probe_file
from kepu.rules import STAGE_CODES, Code
from kepu.storage import ObjectStore, StoredObject, audit_key, export_key, object_key

if TYPE_CHECKING:
    from kepu.intake.sources import PendingDownload, SheetRow

log = logging.getLogger(__name__)

RAW_ROLES = ("video", "cover", "synopsis", "form", "attachment")
#: Finding stages written by each step; a rerun of a step replaces exactly its own stages.
FETCH_STAGES = ("package", "form")
PROBE_STAGES = ("probe", "media")
CAMPAIGN_STAGES = ("campaign",)
PROBE_TIMEOUT_S = 120.0
#: A scratch folder with no live owner is removed by the next step after this long even when its
#: owner cannot be told (no owner file, another host).
STALE_SCRATCH_S = 6 * 3600.0
_OWNER_FILE = ".owner.json"

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _db_retried(what: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Run a campaign-wide step again whole while the database is briefly unreachable (it is idempotent)."""

    def wrap(fn: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(fn)
        def retried(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            return retry_transient(lambda: fn(*args, **kwargs), what)

        return retried

    return wrap


class CampaignChecks(TypedDict):
    """What :func:`validate_campaign` found: how many entries, each code's count, where the raw result is."""

    submissions: int
    codes: NotRequired[dict[str, int]]
    validation: NotRequired[str]


class EligibilitySummary(TypedDict):
    """What :func:`export_eligibility` wrote: the entries, their verdicts counted, the exports' URIs."""

    submissions: int
    verdicts: dict[str, int]
    exports: dict[str, str]


class RunOptions(TypedDict):
    """:func:`register_submissions`' options for one DAG run (:func:`run_options`)."""

    inbox: Path | str | None
    sheet: Path | None
    only: list[str] | None
    province: str | None
    force: bool
    dry_run: bool
    window: tuple[datetime, datetime] | None


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


SHEET_NAMES = ("汇总表", "汇总")
PENDING_EXPORT = "pending-downloads.json"
#: Findings about the run as a whole (an unreadable summary sheet), for the export and the dashboard.
RUN_FINDINGS_EXPORT = "run-findings.json"


def find_summary_sheet(inbox: Path) -> Path | None:
    """The units' summary sheet at the top of the inbox (a file named 汇总表….xlsx/.csv), if any."""
    if not inbox.is_dir():
        return None
    candidates = sorted(
        p
        for p in inbox.iterdir()
        if p.is_file() and p.suffix.lower() in (".xlsx", ".csv") and any(n in p.stem for n in SHEET_NAMES)
    )
    return candidates[0] if candidates else None


def run_options(params: Mapping[str, Any], context: Mapping[str, Any]) -> RunOptions:
    """register_submissions' options from a DAG run's Params and context.

    A backfill run re-evaluates what was received inside its data interval: that is how a deadline
    extension reaches the entries it covers.
    """
    from kepu.provinces import match_province

    dag_run = context.get("dag_run")
    window = None
    if dag_run is not None and str(getattr(dag_run, "run_type", "")).lower().endswith("backfill"):
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        if start is not None and end is not None:
            window = (start, end)
    province = (params.get("province") or "").strip()
    matched = match_province(province) if province else None
    if province and (matched is None or matched[1]):
        raise KepuError(f"unknown province {province!r} · 无法识别的省份")
    return {
        "inbox": _inbox_param(str(params["inbox"]).strip()) if params.get("inbox") else None,
        "sheet": Path(params["sheet"]) if params.get("sheet") else None,
        "only": list(params.get("only") or []) or None,
        "province": matched[0] if matched else None,
        "force": bool(params.get("force")),
        "dry_run": bool(params.get("dry_run")),
        "window": window,
    }


def _inbox_param(value: str) -> Path | str:
    # An object-store prefix stays a URL: Path() would fold "s3://b/x" into "s3:/b/x".
    return value if "://" in value else Path(value)


@_db_retried("register")
def register_submissions(
    ctx: Context,
    *,
    run_id: str,
    dag_id: str,
    inbox: Path | str | None = None,
    sheet: Path | None = None,
    only: list[str] | None = None,
    province: str | None = None,
    force: bool = False,
    dry_run: bool = False,
    window: tuple[datetime, datetime] | None = None,
) -> list[str]:
    """Register every package of the inbox; return the ids to process in this run.

    Unchanged packages that were already checked are skipped unless ``force``: a nightly run only
    processes what is new or changed. ``window`` (a backfill's data interval) re-processes what was
    received inside it. The summary sheet, when there is one, gives each package its channel, kind
    and receipt time; its rows with no package are listed as awaiting download. ``dry_run`` writes
    nothing and returns what a run would process.
    """
    c = ctx.campaign
    inbox_url = str(inbox) if inbox else ctx.settings.inbox_url
    if inbox_url.startswith("s3://"):
        # Packages waiting under an object-store prefix are read in place; the sheet is fetched.
        remote = remote_sources(ctx, inbox_url)
        sheet = sheet or _remote_sheet(ctx, inbox_url)
        inbox = None
    elif "://" in inbox_url:
        raise KepuError(f"inbox {inbox_url!r}: a folder or an s3:// prefix is needed · 收件箱须为文件夹或 s3:// 前缀")
    else:
        remote = []
        inbox = Path(inbox_url)
        sheet = sheet or find_summary_sheet(inbox)
    downloads = ctx.settings.home / "downloads"
    sources = _local_sources(inbox, downloads, c) + remote
    folders = {src.name: parse_folder_name(src.name, c) for src in sources}
    run_findings: list[dict[str, Any]] = []
    rows, pending, direct = _sheet_rows(ctx, sheet, folders, run_findings)
    if direct and not dry_run:
        fetched, failed = download_listed(ctx, direct, downloads)
        pending += failed
        if fetched:
            sources = _local_sources(inbox, downloads, c) + remote
            folders = {src.name: parse_folder_name(src.name, c) for src in sources}
            rows = {**rows, **fetched}
    else:
        pending += [_waiting(r) for r in direct]
    run_params = {
        "inbox": str(inbox),
        "sheet": str(sheet) if sheet else None,
        "only": only,
        "province": province,
        "force": force,
        "window": [str(w) for w in window] if window else None,
    }
    if not dry_run:
        ctx.records.upsert_campaign(c.id, c.campaign.name_zh, campaign_sha256(ctx.settings.campaign_file))
        ctx.records.start_run(run_id, c.id, dag_id, run_params)
        data = json.dumps([asdict(p) for p in pending], ensure_ascii=False, default=str, indent=1).encode()
        ctx.store.put_bytes(export_key(c.id, PENDING_EXPORT), data, content_type="application/json")
        data = json.dumps({"run_id": run_id, "findings": run_findings}, ensure_ascii=False, indent=1).encode()
        ctx.store.put_bytes(export_key(c.id, RUN_FINDINGS_EXPORT), data, content_type="application/json")
    selected: list[str] = []
    total = 0
    stored = _StoredKeys(ctx)
    outdated = outdated_fingerprints(ctx)  # checked with an earlier fingerprint: check again
    for src in sources:
        sid = submission_id(c.id, src.name)
        folder = folders[src.name]
        row = rows.get(src.name)
        if only and sid not in only and src.name not in only:
            continue
        if province and (row.province if row and row.province else folder.province) != province:
            continue
        before = ctx.records.get_submission(sid)
        unchanged = before is not None and before.fingerprint == src.fingerprint
        received = (
            row.received_at
            if row and row.received_at
            else before.received_at
            if before and before.received_at
            else _arrival_time(src)
        )
        in_window = window is not None and window[0] <= received < window[1]
        stale = sid in outdated or (before is not None and before.status != "checked")
        if force or in_window or not unchanged or stale:
            selected.append(sid)
        elif not _objects_present(ctx, sid, stored):
            # The records say done but the store lost the files (a new bucket, a restore): fetch again.
            log.warning("%s: stored files are missing from %r; the package is fetched again", src.name, ctx.store)
            selected.append(sid)
        total += 1
        if dry_run:
            continue
        unit = (row.unit if row and row.unit else None) or folder.unit
        prov = (row.province if row and row.province else None) or folder.province
        channel = row.channel if row and row.channel else (before.channel if before else None)
        submitter = ctx.records.upsert_submitter(c.id, unit, prov, channel) if unit else None
        ctx.records.upsert_submission(
            SubmissionRecord(
                id=sid,
                campaign_id=c.id,
                submitter_id=submitter,
                kind=row.kind if row else (before.kind if before else "video"),
                source_name=src.name,
                source_uri=src.uri,
                fingerprint=src.fingerprint,
                title=folder.title or (row.title if row else None),
                province=prov,
                unit=unit,
                channel=channel,
                received_at=received,
                verdict=before.verdict if unchanged and before else None,
                status=before.status if unchanged and before else "registered",
                last_run_id=run_id,
            )
        )
    if not dry_run:
        # The run's record again, now with what it selected and what it found about the run as a whole.
        ctx.records.start_run(run_id, c.id, dag_id, {**run_params, "selected": selected, "run_findings": run_findings})
    log.info(
        "%s%d package(s), %d to process in run %s; %d listed but awaiting download",
        "dry run: " if dry_run else "",
        total,
        len(selected),
        run_id,
        len(pending),
    )
    return selected


def _local_sources(inbox: Path | None, downloads: Path, campaign: Campaign) -> list[PackageSource]:
    found = discover(inbox, campaign) if inbox is not None else []
    return found + (discover(downloads, campaign) if downloads.is_dir() else [])


def _arrival_time(src: PackageSource) -> datetime:
    """When a package with no receipt time in the sheet arrived: its file time, or now for a remote one."""
    if src.uri.startswith("s3://"):
        return datetime.now(UTC)
    return datetime.fromtimestamp(src.path.stat().st_mtime, UTC)


def _s3_location(ctx: Context, url: str) -> tuple[ObjectStore, str]:
    """The store and key prefix of an ``s3://bucket/prefix`` inbox."""
    from kepu.storage import S3Store

    parsed = urlparse(url)
    prefix = parsed.path.lstrip("/")
    store = S3Store(
        parsed.netloc,
        "",
        endpoint_url=ctx.settings.s3_endpoint_url,
        region=ctx.settings.s3_region,
        scratch_dir=ctx.settings.scratch_dir,
        retry_window_s=ctx.settings.s3_retry_window_s,
    )
    return store, (prefix.rstrip("/") + "/") if prefix else ""


def remote_sources(ctx: Context, url: str) -> list[PackageSource]:
    """Packages under an S3 prefix, as sources whose ``uri`` points at them."""
    from kepu.intake.sources import discover_s3

    store, prefix = _s3_location(ctx, url)
    base = url.rstrip("/")
    return [
        PackageSource(r.name, Path(r.name), r.kind, r.fingerprint, uri=f"{base}/{r.name}")
        for r in discover_s3(store, prefix, ctx.campaign)
    ]


def _remote_sheet(ctx: Context, url: str) -> Path | None:
    store, prefix = _s3_location(ctx, url)
    for key in store.list_keys(prefix):
        name = key[len(prefix) :]
        if "/" not in name and name.lower().endswith((".xlsx", ".csv")) and any(n in name for n in SHEET_NAMES):
            dest = ctx.settings.scratch_dir / "sheets" / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            return store.download(key, dest)
    return None


def _materialise_remote(ctx: Context, uri: str, name: str, dest: Path) -> Path | None:
    """Download one remote package into ``dest``; None when it is no longer there."""
    from kepu.intake.sources import discover_s3, materialise

    base = uri[: -len(name)].rstrip("/")
    store, prefix = _s3_location(ctx, base)
    for remote in discover_s3(store, prefix, ctx.campaign):
        if remote.name == name:
            return materialise(remote, store, dest)
    return None


def run_finding(code: Code, severity: str, subject: str, message_zh: str, message_en: str) -> dict[str, Any]:
    """A finding about the run as a whole (the summary sheet), not about one package."""
    return {"code": code, "severity": severity, "subject": subject, "message_zh": message_zh, "message_en": message_en}


def _sheet_rows(
    ctx: Context, sheet: Path | None, folders: Mapping[str, FolderName], run_findings: list[dict[str, Any]]
) -> tuple[dict[str, SheetRow], list[PendingDownload], list[SheetRow]]:
    """Sheet rows by package name, the listed entries a person must fetch, and the direct links.

    A summary sheet that cannot be read is a run-level finding in ``run_findings``: the inbox's
    packages are registered and checked without it.
    """
    from kepu.intake.sources import SheetError, match_rows_to_packages, plan_downloads, read_summary_sheet

    if sheet is None:
        return {}, [], []
    title = ctx.campaign.finding("M-UNREADABLE")
    try:
        try:
            result = read_summary_sheet(sheet, ctx.campaign)
        except (SheetError, KepuError):
            raise
        except Exception as exc:
            if is_platform_error(exc):
                raise
            raise SheetError(
                sheet, f"读取出错（{type(exc).__name__}）", f"reading failed ({type(exc).__name__}: {exc})"
            ) from exc
    except SheetError as exc:
        log.error("summary sheet %s cannot be read: %s; the packages are registered without it", sheet.name, exc)
        run_findings.append(
            run_finding(
                "M-UNREADABLE",
                "error",
                sheet.name,
                f"{title.title_zh}：汇总表 {sheet.name} 无法读取（{exc.message_zh}），各报送包已按文件夹名称登记，"
                "渠道与接收时间未取自汇总表",
                f"{title.title_en}: summary sheet {sheet.name} cannot be read ({exc.message_en}); the packages were "
                "registered from their folder names, without the sheet's channel and receipt time",
            )
        )
        return {}, [], []
    for problem in result.problems:
        log.warning(
            "summary sheet %s row %s: %s / %s", sheet.name, problem.row_number, problem.message_zh, problem.message_en
        )
        if problem.row_number is None:
            run_findings.append(
                run_finding(
                    "M-UNREADABLE",
                    "warning",
                    sheet.name,
                    f"汇总表 {sheet.name}：{problem.message_zh}",
                    f"summary sheet {sheet.name}: {problem.message_en}",
                )
            )
    matches = match_rows_to_packages(result.rows, list(folders.items()))
    plan = plan_downloads(matches.unmatched_rows)
    return dict(matches), list(plan.pending), list(plan.direct)


def _waiting(row: SheetRow) -> PendingDownload:
    from kepu.intake.sources import pending_from_row

    return pending_from_row(row, "直链尚未下载", "direct link not downloaded yet")


def package_name_for(row: SheetRow) -> str:
    """The name a downloaded package gets: 省+报送单位+作品名称, as the notice asks folders to be named."""
    return "+".join(part for part in (row.province, row.unit, row.title) if part)


def download_listed(
    ctx: Context, rows: list[SheetRow], downloads: Path
) -> tuple[dict[str, SheetRow], list[PendingDownload]]:
    """Fetch the sheet's direct links into ``downloads``, each as a package named after its row.

    A package already downloaded is not fetched again. A zip becomes an archive package, anything
    else a folder holding the file. Failures are listed as awaiting download with their reason.
    """
    from kepu.intake.fetch import FetchError, fetch_url
    from kepu.intake.sources import pending_from_row
    from kepu.storage import safe_filename

    fetched: dict[str, SheetRow] = {}
    pending: list[PendingDownload] = []
    downloads.mkdir(parents=True, exist_ok=True)
    for row in rows:
        name = safe_filename(package_name_for(row))
        as_zip, as_folder = downloads / f"{name}.zip", downloads / name
        if as_zip.exists() or as_folder.exists():
            continue
        staging = downloads / f".part-{name}"
        staging.mkdir(exist_ok=True)
        try:
            assert row.link is not None
            result = fetch_url(row.link, staging, max_bytes=ctx.campaign.package.archive_limits.max_total_bytes)
        except FetchError as exc:
            pending.append(pending_from_row(row, f"下载失败：{exc.reason_zh}", f"download failed: {exc.reason}"))
            continue
        finally:
            if not any(staging.glob("*")):
                staging.rmdir()
        if zipfile.is_zipfile(result.path):
            result.path.replace(as_zip)
            shutil.rmtree(staging, ignore_errors=True)
            fetched[as_zip.name] = row
        else:
            staging.replace(as_folder)
            fetched[as_folder.name] = row
        log.info("downloaded %s (%d bytes) for sheet row %d", name, result.size, row.row_number)
    return fetched, pending


# --- scratch folders ---------------------------------------------------------------------------------


def _attempt_dir(ctx: Context, kind: str, sid: str) -> Path:
    """A fresh scratch folder for one attempt of a step on one submission.

    Its own name per attempt: a retry never shares a folder with a killed attempt's leftovers (or
    with a tool of that attempt still writing). The owner file lets a later step remove it once the
    process that made it is gone (:func:`clear_stale_scratch`).
    """
    path = ctx.settings.scratch_dir / f"{kind}-{sid}-{secrets.token_hex(4)}"
    path.mkdir(parents=True)
    owner = {"pid": os.getpid(), "host": socket.gethostname()}
    (path / _OWNER_FILE).write_text(json.dumps(owner), encoding="utf-8")
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clear_stale_scratch(ctx: Context, kinds: tuple[str, ...] = ("fetch", "render")) -> list[Path]:
    """Remove the scratch folders of attempts whose process is gone (killed, or its worker lost).

    A folder is stale when its owner process on this host no longer runs, or, when its owner cannot
    be told, when it is older than :data:`STALE_SCRATCH_S`.
    """
    root = ctx.settings.scratch_dir
    if not root.is_dir():
        return []
    host = socket.gethostname()
    removed = []
    for folder in sorted(root.iterdir()):
        if not folder.is_dir() or not folder.name.startswith(tuple(f"{k}-" for k in kinds)):
            continue
        try:
            owner = json.loads((folder / _OWNER_FILE).read_text(encoding="utf-8"))
            pid, owner_host = int(owner["pid"]), str(owner["host"])
        except (OSError, ValueError, KeyError, TypeError):
            pid, owner_host = -1, ""
        if owner_host == host:
            stale = pid != os.getpid() and not _alive(pid)
        else:
            try:
                stale = time.time() - folder.stat().st_mtime > STALE_SCRATCH_S
            except OSError:
                continue
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if removed:
        log.info(
            "removed %d scratch folder(s) of attempts that did not finish: %s",
            len(removed),
            ", ".join(p.name for p in removed),
        )
    return removed


# --- fetch -----------------------------------------------------------------------------------------


def _source_of(ctx: Context, rec: SubmissionRecord, scratch: Path) -> PackageSource:
    """The package on local disk: where it lies in the inbox, or downloaded from an S3 inbox."""
    if rec.source_uri.startswith("s3://"):
        local = _materialise_remote(ctx, rec.source_uri, rec.source_name, scratch / "remote")
        path = local if local is not None else scratch / "remote" / "missing"
    else:
        path = Path(url2pathname(urlparse(rec.source_uri).path))
    kind = "folder" if path.is_dir() else ("archive" if path.suffix.lower() == ".zip" else "file")
    return PackageSource(rec.source_name, path, kind, rec.fingerprint, uri=rec.source_uri)  # type: ignore[arg-type]


def cover_size(path: Path, *, max_streams: int) -> tuple[int, int]:
    """A cover's size from its header only; a picture too large to decode safely, or a file declaring more
    than ``max_streams`` streams (the campaign's ``video.max_streams``), is refused here."""
    from kepu.media.presets import COVER

    result = probe_file(path, timeout=30, max_streams=max_streams)
    if result.video is None or not result.video.display_width or not result.video.display_height:
        raise MaterialError("M-UNREADABLE", f"{path.name} is not an image")
    w, h = result.video.display_width, result.video.display_height
    if w * h > COVER.max_source_pixels:
        raise MaterialError(
            "M-UNREADABLE",
            f"{path.name}: {w}×{h} 像素过多，无法安全解码 / too many pixels to decode safely "
            f"(limit {COVER.max_source_pixels:,})",
        )
    return w, h


def save_findings(ctx: Context, sid: str, stages: tuple[str, ...], findings: list[Finding], run_id: str) -> None:
    """Replace the findings of ``stages`` for one submission (an empty stage is cleared).

    A code its stage does not own (:data:`kepu.rules.STAGE_CODES`) is refused, so that a rule is
    reported by one step and replaced by the same step on the next run.
    """
    misplaced = sorted({f"{f.code} ({f.stage})" for f in findings if f.code not in STAGE_CODES.get(f.stage, ())})
    if misplaced:
        raise ValueError(f"finding code(s) {', '.join(misplaced)} recorded by a stage the rule registry does not give")
    for stage in stages:
        mine = [f for f in findings if f.stage == stage]
        ctx.records.replace_findings(sid, stage, _to_records(mine), run_id)
    stray = {f.stage for f in findings} - set(stages)
    if stray:
        raise ValueError(f"findings of stage(s) {sorted(stray)} written by a step that owns {stages}")


def package_details(folder: FolderName, contents: PackageContents, reading: PackageReading) -> dict[str, Any]:
    """What the campaign-wide checks need from a package, JSON-serialisable."""
    from kepu.intake.form_checks import account_numbers, checklist_items

    form = reading.form
    fields = dict(form.fields) if form else {}
    works, followers = account_numbers(form) if form and form.kind == "account" else (None, None)
    title_form = fields.get("微视频名称") or fields.get("科普号名称") or None
    entity = folder.unit or fields.get("单位名称（申报人）") or fields.get("所属单位（团队、个人）") or None
    return {
        "entity": entity,
        "title_folder": folder.title,
        "title_form": title_form,
        "title_file": contents.video.stem if contents.video else None,
        "synopsis": reading.synopsis,
        "form": fields,
        "form_source": form.source if form else None,
        "phone": fields.get("联系电话") or None,
        "email": fields.get("电子邮箱") or fields.get("邮箱") or None,
        "member": fields.get("是否为会员") or None,
        "works": works,
        "followers": followers,
        "pledge_signed": bool(form and form.pledge_signed),
        "checklist": checklist_items(form, needs_seal=reading.needs_seal) if form else [],
    }


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


class _StoredKeys:
    """The keys stored under the campaign's submissions, listed once when first asked.

    One paginated listing instead of a HEAD request per file: a nightly run over thousands of
    unchanged entries asks the object store a few dozen times, not tens of thousands.
    """

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._keys: set[str] | None = None

    def __contains__(self, key: object) -> bool:
        if self._keys is None:
            self._keys = set(self._ctx.store.list_keys(f"campaigns/{self._ctx.campaign.id}/submissions/"))
        return key in self._keys


def _objects_present(ctx: Context, sid: str, stored: _StoredKeys) -> bool:
    return all(m.object_key in stored for m in ctx.records.list_materials(sid))


def is_platform_error(exc: BaseException) -> bool:
    """True for a failure of the platform (store, database, disk, settings), which fails the task so
    Airflow retries it; anything else raised while reading one package is that package's problem."""
    import errno as _errno

    from sqlalchemy.exc import SQLAlchemyError

    from kepu.db.retry import DatabaseUnavailable
    from kepu.errors import ConfigError, StorageError

    if isinstance(exc, StorageError | ConfigError | DatabaseUnavailable | SQLAlchemyError | MemoryError):
        return True
    if isinstance(exc, OSError) and exc.errno in (_errno.ENOSPC, _errno.EDQUOT, _errno.EROFS):
        return True
    return type(exc).__module__.split(".")[0] in ("botocore", "boto3", "psycopg2", "urllib3")


def _record_broken(ctx: Context, sid: str, run_id: str, stage: str, exc: BaseException) -> None:
    """One package's step failed on its material: record why, so the batch goes on and the entry
    still gets its later checks and a verdict."""
    rec = ctx.records.get_submission(sid)
    name = rec.source_name if rec else sid
    log.exception("%s: reading the package failed; recorded as M-UNREADABLE", name, exc_info=exc)
    finding = make_finding(
        ctx.campaign,
        "M-UNREADABLE",
        stage=stage,
        detail_zh=f"读取 {name} 时出错（{type(exc).__name__}），该作品需人工查看",
        detail_en=f"reading {name} failed ({type(exc).__name__}: {str(exc)[:300]}); the entry needs a look by hand",
        value=name,
    )
    stages = FETCH_STAGES if stage in FETCH_STAGES else PROBE_STAGES
    with ctx.records.transaction():
        save_findings(ctx, sid, stages, [finding], run_id)
        if stage in FETCH_STAGES:
            ctx.records.set_status(sid, "fetched", run_id)
        else:
            ctx.records.set_verdict(sid, verdict(ctx.records.list_findings(submission_id=sid)))
            ctx.records.set_status(sid, "checked", run_id)


def _isolated(ctx: Context, sid: str, run_id: str, stage: str, step: Callable[[], None], what: str) -> None:
    """Run one package's step; its material problem is recorded, a platform problem raised."""
    try:
        retry_transient(step, what)
    except Exception as exc:
        if is_platform_error(exc):
            raise
        retry_transient(functools.partial(_record_broken, ctx, sid, run_id, stage, exc), f"record {sid}")


def fetch_materials(ctx: Context, submission_ids: list[str], *, run_id: str) -> list[str]:
    """Copy each package's files into the object store and check what the package holds.

    One broken package never fails the batch: what went wrong is its finding, and the batch's
    other packages (and their video checks downstream) go on.
    """
    clear_stale_scratch(ctx)
    for sid in submission_ids:
        _isolated(ctx, sid, run_id, "package", functools.partial(_fetch_registered, ctx, sid, run_id), f"fetch {sid}")
    return submission_ids


def _fetch_registered(ctx: Context, sid: str, run_id: str) -> None:
    rec = ctx.records.get_submission(sid)
    if rec is None:
        raise KeyError(f"submission {sid} is not registered")
    _fetch_one(ctx, rec, run_id)


def _fetch_one(ctx: Context, rec: SubmissionRecord, run_id: str) -> None:
    """Store one package's files, then write its records in one transaction, the status last.

    Objects go first and records after: a process killed in between leaves the previous records
    (and the previous status, so the next run fetches again); objects it uploaded are either the
    same bytes under the same keys or removed by that rerun as no longer listed.
    """
    c = ctx.campaign
    scratch = _attempt_dir(ctx, "fetch", rec.id)
    findings: list[Finding] = []
    try:
        src = _source_of(ctx, rec, scratch)
        if not src.path.exists():
            findings.append(
                make_finding(
                    c,
                    "M-UNREADABLE",
                    detail_zh=f"收件箱中已找不到 {src.name}",
                    detail_en=f"{src.name} is no longer in the inbox",
                    value=src.name,
                )
            )
            files: list[Path] = []
            root = src.path
        elif src.kind == "archive":
            root, arc_findings = safe_extract(src.path, scratch / "package", c)
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
        probe_image = functools.partial(cover_size, max_streams=c.video.max_streams)
        reading = read_package(c, folder, contents, probe_image=probe_image, channel=rec.channel)
        findings.extend(reading.findings)

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
        details = package_details(folder, contents, reading)
        with ctx.records.transaction():
            ctx.records.replace_materials(rec.id, materials)
            ctx.records.set_details(rec.id, details, kind=reading.kind, entity=details.get("entity") or None)
            save_findings(ctx, rec.id, FETCH_STAGES, findings, run_id)
            ctx.records.set_status(rec.id, "fetched", run_id)
        # Files no longer in the package go once the records no longer list them.
        for role in RAW_ROLES:
            removed = ctx.store.delete_prefix_except(_role_prefix(c.id, rec.id, role), keep)
            if removed:
                ctx.records.audit("pipeline", "objects.removed", "submission", rec.id, {"keys": removed})
        log.info("%s: %d file(s) stored, %d package finding(s)", rec.source_name, len(materials), len(findings))
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)


# --- check -----------------------------------------------------------------------------------------


def check_submissions(ctx: Context, submission_ids: list[str], *, run_id: str) -> list[str]:
    """Probe each entry's video and record the rule findings and the verdict."""
    for sid in submission_ids:
        _isolated(ctx, sid, run_id, "probe", functools.partial(_check_one, ctx, sid, run_id), f"check {sid}")
    return submission_ids


def _check_one(ctx: Context, sid: str, run_id: str) -> None:
    from contextlib import ExitStack

    from kepu.media.inspect import inspect_video

    c = ctx.campaign
    findings: list[Finding] = []
    metrics: dict[str, Any] = {}
    materials = ctx.records.list_materials(sid)
    videos = [m for m in materials if m.role == "video"]
    subtitle_ext = tuple(c.package.subtitle_extensions)
    if videos:
        video = videos[0]
        with ExitStack() as stack:
            local = stack.enter_context(ctx.store.open_local(video.object_key))
            sidecars = [
                stack.enter_context(ctx.store.open_local(m.object_key))
                for m in materials
                if m.role == "attachment" and m.filename.lower().endswith(subtitle_ext)
            ]
            findings, metrics = inspect_video(
                local,
                c,
                name=video.filename,
                sidecars=sidecars,
                timeout_factor=ctx.settings.ffmpeg_timeout_factor,
                timeout_floor_s=ctx.settings.ffmpeg_timeout_floor_s,
            )
    # Findings, metrics, verdict and status commit together: a half-written check is never "checked".
    with ctx.records.transaction():
        save_findings(ctx, sid, PROBE_STAGES, findings, run_id)
        ctx.records.set_media_metrics(sid, metrics)
        every = ctx.records.list_findings(submission_id=sid)
        ctx.records.set_verdict(sid, verdict(every))
        ctx.records.set_status(sid, "checked", run_id)


# --- campaign-wide checks ---------------------------------------------------------------------------

_GENERIC_STEMS = re.compile(r"^(video|视频|作品|成稿|正片|终版|final|movie|vid|untitled|新建|\d+)[\s_\-\d]*$", re.I)


def title_from_file(stem: str | None, campaign: Campaign) -> str | None:
    """The title a video file's name gives, if any: generic names (video.mp4, 成稿.mp4) give none,
    a name written like the folder (省+单位+标题) gives its title part."""
    if not stem or _GENERIC_STEMS.match(stem.strip()):
        return None
    parsed = parse_folder_name(stem, campaign)
    return parsed.title if parsed.complete else stem


def campaign_frame_rows(ctx: Context) -> list[dict[str, Any]]:
    """One row per checked submission for the campaign-wide expectations."""
    rows = []
    for r in ctx.records.campaign_rows(ctx.campaign.id):
        if r["status"] not in ("fetched", "checked"):
            continue
        d = r.get("details") or {}
        rows.append(
            {
                "submission_id": r["id"],
                "kind": r["kind"],
                "channel": r["channel"],
                # The sheet's 报送单位 when there is one, else what the folder or form says.
                "entity": r["unit"] or r.get("entity"),
                "province": r["province"],
                "title_folder": d.get("title_folder"),
                "title_form": d.get("title_form"),
                "title_file": title_from_file(d.get("title_file"), ctx.campaign),
                "synopsis": d.get("synopsis") if r["kind"] == "video" else None,
                "phone": d.get("phone"),
                "email": d.get("email"),
                "received_at": r["received_at"],
                "works": d.get("works"),
                "followers": d.get("followers"),
                "video_sha256": r.get("video_sha256"),
                **({"form_fields": d.get("form") or {}} if d.get("form_source") else {"has_form": False}),
            }
        )
    return rows


@_db_retried("campaign-wide checks")
def validate_campaign(ctx: Context, *, run_id: str) -> CampaignChecks:
    """Expectations over the whole campaign (Great Expectations), quotas, channels and deadlines.

    Every checked submission's ``campaign`` findings are replaced and its verdict recomputed; the raw
    validation result is kept in the object store for audit.
    """
    from kepu.intake import eligibility_rules as rules
    from kepu.intake import quality

    c = ctx.campaign
    rows = campaign_frame_rows(ctx)
    if not rows:
        return {"submissions": 0}
    df = quality.build_frame(rows)
    result = quality.validate(c, df)
    overrides = [
        rules.QuotaOverride(o["submission_id"], o["decision"], o["actor"], o["at"], o["reason"])
        for o in ctx.records.list_quota_overrides(c.id)
    ]
    by_sub: dict[str, list[Finding]] = {sid: list(fs) for sid, fs in result.findings.items()}
    for found in (rules.apply_quotas(c, df, overrides), rules.channel_findings(c, df), rules.deadline_findings(c, df)):
        for sid, finding in found.items():
            by_sub.setdefault(sid, []).append(finding)
    for sid, dup in content_duplicates(ctx, [r["submission_id"] for r in rows]).items():
        by_sub.setdefault(sid, []).extend(dup)
    for row in rows:
        sid = row["submission_id"]
        mine = [dc_replace(f, stage="campaign") for f in by_sub.get(sid, [])]
        with ctx.records.transaction():
            save_findings(ctx, sid, CAMPAIGN_STAGES, mine, run_id)
            ctx.records.set_verdict(sid, verdict(ctx.records.list_findings(submission_id=sid)))
    raw = json.dumps(
        {"run_id": run_id, "summary": result.summary, "results": result.raw}, ensure_ascii=False, default=str, indent=1
    ).encode()
    stored = ctx.store.put_bytes(
        audit_key(c.id, f"quality-{_safe_run(run_id)}.json"), raw, content_type="application/json"
    )
    counts = Counter(f.code for fs in by_sub.values() for f in fs)
    summary: CampaignChecks = {
        "submissions": len(rows),
        "codes": dict(sorted(counts.items())),
        "validation": stored.uri,
    }
    log.info("campaign-wide checks: %s", summary)
    return summary


def content_duplicates(ctx: Context, ids: list[str]) -> dict[str, list[Finding]]:
    """O-DUPLICATE-CONTENT: entries whose video fingerprints show the same video.

    A fingerprint stored by an earlier version of :mod:`kepu.media.fingerprint` is not compared
    (:func:`outdated_fingerprints` has the next run check its entry again).
    """
    from kepu.media.fingerprint import VideoHash, duplicate_findings, duplicate_pairs

    wanted = set(ids)
    hashes: dict[str, VideoHash] = {}
    labels: dict[str, str] = {}
    stale: list[str] = []
    for r in ctx.records.campaign_rows(ctx.campaign.id):
        fp = (r.get("media_metrics") or {}).get("fingerprint")
        if r["id"] not in wanted or not fp:
            continue
        h = VideoHash.from_text(fp)
        if h is None:
            stale.append(r["source_name"])
            continue
        hashes[r["id"]] = h
        labels[r["id"]] = r["source_name"]
    if stale:
        log.warning(
            "%d entr(ies) left out of the duplicate search, fingerprint of an earlier version "
            "(checked again by the next run): %s",
            len(stale),
            ", ".join(sorted(stale)[:20]),
        )
    pairs = duplicate_pairs(hashes, ctx.campaign.originality.perceptual_hash_max_distance)
    out: dict[str, list[Finding]] = {}
    for sid in {x for a, b, _ in pairs for x in (a, b)}:
        out[sid] = duplicate_findings(ctx.campaign, sid, pairs, labels=labels)
    return out


def outdated_fingerprints(ctx: Context) -> set[str]:
    """Entries whose stored video fingerprint was made by an earlier version: they are checked again."""
    from kepu.media.fingerprint import is_current

    return {
        r["id"]
        for r in ctx.records.campaign_rows(ctx.campaign.id)
        if not is_current((r.get("media_metrics") or {}).get("fingerprint"))
    }


def _safe_run(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)


# --- publication renditions ---------------------------------------------------------------------------

DERIVED_ROLES = ("rendition", "poster", "thumbnail")


def _role_prefix(campaign_id: str, sid: str, role: str) -> str:
    return object_key(campaign_id, sid, role, "x").rsplit("/", 1)[0] + "/"


@_db_retried("plan renditions")
def plan_renditions(ctx: Context, *, max_tasks: int, force: bool = False) -> list[list[str]]:
    """Batches of the video entries that can still be judged (verdict not ``fail``) and whose
    publication copy is missing or out of date.

    A copy is up to date when it was made from the video now stored (same sha256), under the
    same campaign file and rendition format, and every output is still in the object store: a
    nightly run does not encode again what it encoded last night. ``force`` makes them all again.
    Entries that fail get no publication copy (nobody will judge them): a copy left from an
    earlier run is removed, and the export says why.
    """
    c = ctx.campaign
    campaign_sha = campaign_sha256(ctx.settings.campaign_file)
    stored = _StoredKeys(ctx)
    todo = []
    for sub in ctx.records.list_submissions(c.id):
        if sub.kind != "video" or sub.status != "checked":
            continue
        details = ctx.records.get_details(sub.id)
        if sub.verdict == "fail":
            if details.get("rendition"):
                for role in DERIVED_ROLES:
                    ctx.store.delete_prefix_except(_role_prefix(c.id, sub.id, role), set())
                ctx.records.set_rendition(sub.id, None, run_id=None)
            continue
        if force or not _rendition_current(ctx, sub.id, details.get("rendition"), campaign_sha, stored):
            todo.append(sub.id)
    return plan_batches(todo, max_tasks)


def _rendition_current(
    ctx: Context, sid: str, done: dict[str, Any] | None, campaign_sha: str, stored: _StoredKeys
) -> bool:
    from kepu.media.rendition import FORMAT_VERSION

    if not done or done.get("format_version") != FORMAT_VERSION or done.get("campaign_sha256") != campaign_sha:
        return False
    video = next((m for m in ctx.records.list_materials(sid) if m.role == "video"), None)
    if video is None or done.get("source_sha256") != video.sha256:
        return False
    outputs = done.get("outputs") or {}
    return bool(outputs) and all(o["key"] in stored for o in outputs.values())


def make_renditions(ctx: Context, submission_ids: list[str], *, run_id: str) -> list[str]:
    """Publication copy (remux when the source fits, else H.264 1080p + 720p), poster, thumbnails
    and the cover at 16:9, into the object store beside the raw files.

    One entry whose copy cannot be made (the encoder fails or times out on its file) never stops the
    others: why is recorded as its rendition (:func:`_record_render_failure`), which the export and the
    dashboard show, and the next run tries it again. A platform failure (store, database, disk) fails
    the batch so that Airflow retries it.
    """
    clear_stale_scratch(ctx)
    for sid in submission_ids:
        try:
            retry_transient(functools.partial(_render_one, ctx, sid, run_id), f"rendition {sid}")
        except Exception as exc:
            if is_platform_error(exc):
                raise
            retry_transient(functools.partial(_record_render_failure, ctx, sid, run_id, exc), f"record {sid}")
    return submission_ids


def _record_render_failure(ctx: Context, sid: str, run_id: str, exc: BaseException) -> None:
    """Record that the entry's publication copy could not be made: no outputs (so the next run makes it
    again) and the reason in both languages."""
    from kepu.media.rendition import FORMAT_VERSION

    rec = ctx.records.get_submission(sid)
    name = rec.source_name if rec else sid
    log.exception("%s: the publication copy could not be made; the other entries go on", name, exc_info=exc)
    video = next((m for m in ctx.records.list_materials(sid) if m.role == "video"), None)
    reason = f"{type(exc).__name__}: {str(exc)[:300]}"
    ctx.records.set_rendition(
        sid,
        {
            "format_version": FORMAT_VERSION,
            "source_sha256": video.sha256 if video else None,
            "campaign_sha256": campaign_sha256(ctx.settings.campaign_file),
            "outputs": {},
            "failed": {
                "zh": f"发布副本制作失败（{type(exc).__name__}），下次运行将重试；仍失败时请人工查看视频文件",
                "en": f"the publication copy could not be made ({reason}); the next run tries again, "
                "and if it fails again the video file needs a look by hand",
            },
        },
        run_id=run_id,
    )


def measured_loudness(metrics: Mapping[str, Any]) -> float | None:
    """The integrated loudness (LUFS) the checks measured, or None when unknown or not finite."""
    loudness = metrics.get("loudness")
    value = loudness.get("integrated_lufs") if isinstance(loudness, Mapping) else metrics.get("loudness_lufs")
    try:
        lufs = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return lufs if lufs is not None and math.isfinite(lufs) else None


def _render_one(ctx: Context, sid: str, run_id: str | None = None) -> None:
    """Encode (or remux) into a scratch folder of this attempt, upload, then record the outputs.

    The record is written last: until it is, nothing says the copy is done and the next run makes
    it again; outputs of a killed attempt under other names are removed by that run.
    """
    from kepu.intake.images import normalise_cover
    from kepu.media.rendition import FORMAT_VERSION, render_entry
    from kepu.media.runner import media_timeout, probe_timeout

    c = ctx.campaign
    materials = {m.role: m for m in ctx.records.list_materials(sid)}
    video = materials.get("video")
    if video is None:
        return
    metrics = ctx.records.get_media_metrics(sid)
    floor = ctx.settings.ffmpeg_timeout_floor_s
    work = _attempt_dir(ctx, "render", sid)
    try:
        with ctx.store.open_local(video.object_key) as src:
            probe = probe_file(src, timeout=probe_timeout(floor), max_streams=c.video.max_streams)
            timeout = media_timeout(probe.duration_s, ctx.settings.ffmpeg_timeout_factor, floor_s=floor)
            result = render_entry(src, probe, c, measured_loudness(metrics), work / "out", timeout=timeout)
        keep: set[str] = set()
        stored = {}
        for out in result.outputs:
            key = object_key(c.id, sid, out.role, out.name)
            ctx.store.put_file(key, out.path)
            keep.add(key)
            stored[out.name] = {
                "key": key,
                "role": out.role,
                "sha256": out.sha256,
                "size": out.size,
                "width": out.width,
                "height": out.height,
            }
        cover = materials.get("cover")
        if cover is not None:
            with ctx.store.open_local(cover.object_key) as cover_src:
                try:
                    normalised = normalise_cover(cover_src, work / "cover-16x9.jpg", max_streams=c.video.max_streams)
                except MaterialError as exc:
                    log.warning("%s: cover not normalised: %s", sid, exc)
                else:
                    key = object_key(c.id, sid, "poster", "cover-16x9.jpg")
                    ctx.store.put_file(key, normalised.dest)
                    keep.add(key)
                    stored["cover-16x9.jpg"] = {
                        "key": key,
                        "role": "poster",
                        "width": normalised.width,
                        "height": normalised.height,
                    }
        ctx.records.set_rendition(
            sid,
            {
                "format_version": FORMAT_VERSION,
                "source_sha256": video.sha256,
                "campaign_sha256": campaign_sha256(ctx.settings.campaign_file),
                "plan_key": result.plan.key(),
                "mode": result.mode,
                "reasons": [f"{r.code}: {r.detail_zh} / {r.detail_en}" for r in result.plan.reasons],
                "outputs": stored,
                "elapsed_s": round(result.elapsed_s, 2),
            },
            run_id=run_id,
        )
        # Outputs of an earlier plan (a 720p before a remux) go once the record no longer lists them.
        for role in DERIVED_ROLES:
            ctx.store.delete_prefix_except(_role_prefix(c.id, sid, role), keep)
        log.info("%s: publication copy by %s (%s)", sid, result.mode, ", ".join(stored))
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- export and bookkeeping --------------------------------------------------------------------------


@_db_retried("eligibility export")
def export_eligibility(ctx: Context, *, run_id: str) -> EligibilitySummary:
    """Write the eligibility export (CSV and XLSX) for the whole campaign; return where it is."""
    from kepu.intake.export import eligibility_rows, write_eligibility

    rows = eligibility_rows(ctx.records, ctx.campaign)
    uris = write_eligibility(
        rows, ctx.store, ctx.campaign, scratch=ctx.settings.scratch_dir / _safe_run(run_id), records=ctx.records
    )
    counts = Counter(r["verdict"] for r in rows)
    summary: EligibilitySummary = {
        "submissions": len(rows),
        "verdicts": dict(sorted(counts.items())),
        "exports": uris,
    }
    log.info("eligibility export: %s", summary)
    return summary


def finish_run(ctx: Context, *, run_id: str, summary: Mapping[str, Any] | None) -> None:
    """Record the end of a run; a run whose export is missing is recorded as failed and raises."""
    retry_transient(
        lambda: ctx.records.finish_run(run_id, "success" if summary else "failed", {"summary": summary or {}}),
        "finish run",
    )
    if not summary:
        raise KepuError(f"run {run_id}: the eligibility export was not written; see the export task's log")


def run_intake(ctx: Context, *, run_id: str, inbox: Path | None = None, force: bool = False) -> EligibilitySummary:
    """All steps in this process, in order: for the CLI and for tests of the domain."""
    ids = register_submissions(ctx, run_id=run_id, dag_id="kepu-cli", inbox=inbox, force=force)
    fetch_materials(ctx, ids, run_id=run_id)
    check_submissions(ctx, ids, run_id=run_id)
    validate_campaign(ctx, run_id=run_id)
    for batch in plan_renditions(ctx, max_tasks=1, force=force):
        make_renditions(ctx, batch, run_id=run_id)
    summary = export_eligibility(ctx, run_id=run_id)
    finish_run(ctx, run_id=run_id, summary=summary)
    return summary
