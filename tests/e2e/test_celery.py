"""The intake DAG on the CeleryExecutor: PostgreSQL metadata, Redis broker, a default and a media worker.

One Airflow (api-server, scheduler, dag-processor, triggerer) serves the module; each test starts its
own two workers with its own kepu settings (records on PostgreSQL, objects on the S3 endpoint), as
the compose deployment runs ``airflow-worker`` and ``airflow-media-worker``. The second test SIGKILLs
the media worker's whole process tree while ffmpeg encodes, starts a new one as ``restart: always``
would, and checks that the retried task gives the same bytes as an undisturbed encode, once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest

from celery_support import celery_airflow, media_concurrency, two_workers
from conftest import check_outcomes, outcomes
from kepu.config import Settings, load_settings
from kepu.context import open_context
from kepu.devtools.sample import write_summary_sheet
from kepu.intake import steps
from kepu.localairflow import MEDIA_POOL, MEDIA_QUEUE, LocalAirflow
from kepu.storage import submission_prefix

pytestmark = [pytest.mark.e2e, pytest.mark.celery]

DAG_ID = "kepu_intake"
MEDIA_TASKS = {"probe_videos", "make_renditions"}


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAirflow]:
    with celery_airflow(tmp_path_factory.mktemp("celery") / "airflow") as instance:
        instance.wait_for_dag(DAG_ID)
        yield instance


def _settings(base: Settings, tmp_path: Path, inbox: Path, campaign: Path, pg_url: str) -> Settings:
    return load_settings(
        {
            **base.as_env(),
            "KEPU_HOME": str(tmp_path / "kepu"),
            "KEPU_INBOX": str(inbox),
            "KEPU_CAMPAIGN_FILE": str(campaign),
            "KEPU_DATABASE_URL": pg_url,
            # A shared CI machine can be many times slower than the 60 s floor of a 10 s video allows.
            "KEPU_FFMPEG_TIMEOUT_FACTOR": "40",
        }
    )


def _worker_env(settings: Settings) -> dict[str, str]:
    """What the workers' tasks need: the kepu settings and the S3 credentials (set by ``s3_env``)."""
    return {**settings.as_env(), **{k: v for k, v in os.environ.items() if k.startswith("AWS_")}}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.long(180)
def test_intake_on_celery(
    airflow: LocalAirflow,
    tmp_path: Path,
    small_inbox: tuple[Path, dict],
    small_campaign: Path,
    pg_url: str,
    s3_settings: Settings,
) -> None:
    inbox, expected = small_inbox
    settings = _settings(s3_settings, tmp_path, inbox, small_campaign, pg_url)
    run_id = "celery__intake"
    with two_workers(airflow, _worker_env(settings)):
        airflow.trigger(DAG_ID, run_id)
        assert airflow.wait_for_run(DAG_ID, run_id, timeout=900) == "success"
    check_outcomes(outcomes(settings), expected)

    tis = airflow.task_instances(DAG_ID, run_id)
    ran = [ti for ti in tis if ti["state"] != "skipped"]
    assert all(ti["state"] == "success" for ti in ran), ran
    assert {ti["task_id"] for ti in ran} >= MEDIA_TASKS | {"register_submissions", "export_eligibility"}
    media, default = airflow.worker_hostname("media"), airflow.worker_hostname("default")
    for ti in ran:
        where = (ti["task_id"], ti["map_index"])
        if ti["task_id"] in MEDIA_TASKS:
            assert (ti["queue"], ti["pool"], ti["hostname"]) == (MEDIA_QUEUE, MEDIA_POOL, media), (where, ti)
        else:
            assert ti["queue"] == "default" and ti["pool"] == "default_pool", (where, ti)
            assert ti["hostname"] == default, (where, ti)

    # Every entry that can still be judged got its publication copy, from the media worker.
    ctx = open_context(settings)
    judged = [s for s in ctx.records.list_submissions(ctx.campaign.id) if s.verdict in ("pass", "review")]
    assert judged
    for sub in judged:
        rendition = ctx.records.get_details(sub.id).get("rendition")
        assert rendition and rendition["outputs"], sub.source_name


# --- a worker killed during a transcode --------------------------------------------------------------


def _encoding_inbox(small_inbox: Path, dest: Path) -> tuple[Path, Path]:
    """An inbox of one conformant package whose video carries a 180° display rotation.

    The streams are copied (no re-encode, so every check sees the same picture, upright), but the
    flag makes the publication copy a real H.264 encode rather than a remux. Returns the inbox and
    the video.
    """
    package = next(p for p in sorted(small_inbox.iterdir()) if p.name.endswith("月亮为什么有阴晴圆缺"))
    target = dest / package.name
    shutil.copytree(package, target, ignore=shutil.ignore_patterns("*.mp4"))
    (source,) = package.glob("*.mp4")
    video = target / source.name
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(source),
            "-map",
            "0",
            "-c",
            "copy",
            "-metadata:s:v:0",
            "rotate=180",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
            str(video),
        ],
        check=True,
        timeout=120,
    )
    write_summary_sheet(dest)
    return dest, video


def _running_encode(airflow: LocalAirflow, worker: str, run_id: str, timeout: float = 600) -> psutil.Process:
    """The libx264 ffmpeg that worker ``worker`` is running (found through its process tree)."""
    deadline = time.monotonic() + timeout
    last = 0.0
    while time.monotonic() < deadline:
        for pid in airflow.worker_pids(worker):
            try:
                proc = psutil.Process(pid)
                cmdline = proc.cmdline()
            except psutil.Error:
                continue
            if cmdline and Path(cmdline[0]).name == "ffmpeg" and "libx264" in cmdline:
                return proc
        if time.monotonic() - last > 5:
            last = time.monotonic()
            state = airflow.run_state(DAG_ID, run_id)
            assert state not in ("success", "failed"), f"the run ended ({state}) before an encode was seen"
        time.sleep(0.2)
    raise AssertionError(f"no encode started on worker {worker} within {timeout:.0f} s")


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _ffmpeg_under(folder: Path) -> list[psutil.Process]:
    """Live ffmpeg processes working on files under ``folder``."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if proc.info.get("name") == "ffmpeg" and any(str(folder) in part for part in cmdline) and _alive(proc):
            found.append(proc)
    return found


def _reference_encode(settings: Settings, video: Path, out_dir: Path) -> dict[str, str]:
    """sha256 of each output of the rendition code called directly on ``video``, by output name.

    The plan depends on the loudness the checks measured, so this runs once the video was probed.
    """
    from kepu.media.probe import probe_file
    from kepu.media.rendition import render_entry

    ctx = open_context(settings)
    (sub,) = ctx.records.list_submissions(ctx.campaign.id)
    loudness = ctx.records.get_media_metrics(sub.id).get("loudness_lufs")
    result = render_entry(video, probe_file(video, timeout=120), ctx.campaign, loudness, out_dir, timeout=600)
    assert result.mode == "encode" and not result.reused
    return {out.name: out.sha256 for out in result.outputs}


@pytest.mark.faults
@pytest.mark.long(160)
def test_worker_killed_during_transcode(
    airflow: LocalAirflow,
    tmp_path: Path,
    small_inbox: tuple[Path, dict],
    small_campaign: Path,
    pg_url: str,
    s3_settings: Settings,
) -> None:
    inbox, video = _encoding_inbox(small_inbox[0], tmp_path / "inbox")
    settings = _settings(s3_settings, tmp_path, inbox, small_campaign, pg_url)
    env = _worker_env(settings)
    run_id = "celery__killed"
    with two_workers(airflow, env):
        airflow.trigger(DAG_ID, run_id)
        encoder = _running_encode(airflow, "media", run_id)
        killed = airflow.kill_worker("media")
        assert encoder.pid in killed
        time.sleep(1)
        assert not _alive(encoder), "the killed worker's ffmpeg is still running"
        assert not _ffmpeg_under(tmp_path), "an ffmpeg outlived the killed worker"
        # As compose's `restart: always` would: a new media worker under the same name.
        airflow.start_worker("media", [MEDIA_QUEUE], media_concurrency(), env=env)
        # The undisturbed encode to compare with, made while the scheduler waits out the heartbeat.
        with ThreadPoolExecutor(max_workers=1) as pool:
            reference = pool.submit(_reference_encode, settings, video, tmp_path / "reference")
            assert airflow.wait_for_run(DAG_ID, run_id, timeout=900) == "success"
            expected = reference.result(timeout=600)
    assert not _ffmpeg_under(tmp_path)

    tis = {ti["task_id"]: ti for ti in airflow.task_instances(DAG_ID, run_id) if ti["map_index"] in (-1, 0)}
    render = tis["make_renditions"]
    assert render["state"] == "success"
    assert render["try_number"] > 1, render
    assert render["hostname"] == airflow.worker_hostname("media")
    earlier = [t for t in airflow.task_tries(DAG_ID, run_id) if t["task_id"] == "make_renditions"]
    assert earlier and all(t["state"] != "success" for t in earlier), earlier

    # The retried encode wrote what an undisturbed one writes, once.
    ctx = open_context(settings)
    (sub,) = ctx.records.list_submissions(ctx.campaign.id)
    rendition: dict[str, Any] = ctx.records.get_details(sub.id)["rendition"]
    assert rendition["mode"] == "encode", rendition
    assert any(reason.startswith("rotation") for reason in rendition["reasons"]), rendition["reasons"]

    recorded = {name: out["sha256"] for name, out in rendition["outputs"].items() if "sha256" in out}
    assert recorded == expected
    for name, out in rendition["outputs"].items():
        if name in expected:
            with ctx.store.open_local(out["key"]) as local:
                assert _sha256(local) == expected[name], name

    derived = {
        key
        for key in ctx.store.list_keys(submission_prefix(ctx.campaign.id, sub.id))
        if key.split("/")[-2] in steps.DERIVED_ROLES
    }
    assert derived == {out["key"] for out in rendition["outputs"].values()}
    counts = ctx.records.table_counts()
    assert counts["submissions"] == 1
    materials = ctx.records.list_materials(sub.id)
    assert counts["materials"] == len(materials) == len({m.object_key for m in materials})
    findings = [(f.code, f.stage, f.value, f.at_seconds) for f in ctx.records.list_findings(submission_id=sub.id)]
    assert len(findings) == len(set(findings)), findings
