"""Faults during the intake steps: nothing is lost, nothing is duplicated, a rerun finishes the job.

Every fault is real: a PostgreSQL server restarted under the run, an ffprobe that never returns, a
task process SIGKILLed while ffmpeg encodes, a package changed between runs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import check_outcomes, outcomes, service_unavailable, write_scaled_campaign
from kepu.config import Settings, load_settings
from kepu.context import Context, open_context
from kepu.db.repository import media_summary
from kepu.devtools.sample import SUMMARY_SHEET
from kepu.intake import steps

pytestmark = [pytest.mark.faults, pytest.mark.integration]

PG_BINDIRS = ("/usr/lib/postgresql/15/bin",)


def _settings(home: Path, inbox: Path, campaign: Path, **extra: str) -> Settings:
    return load_settings(
        {"KEPU_HOME": str(home), "KEPU_INBOX": str(inbox), "KEPU_CAMPAIGN_FILE": str(campaign), **extra}
    )


def _copy_packages(src: Path, inbox: Path, names: list[str]) -> None:
    for name in names:
        shutil.copytree(src / name, inbox / name)
    shutil.copy2(src / SUMMARY_SHEET, inbox / SUMMARY_SHEET)  # channels and receipt times


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stored(ctx: Context) -> dict[str, str]:
    """Checksum of every object of the campaign's submissions, by key."""
    out = {}
    for key in ctx.store.list_keys(f"campaigns/{ctx.campaign.id}/submissions/"):
        with ctx.store.open_local(key) as local:
            out[key] = _sha256(local)
    return out


def _state(ctx: Context) -> dict[str, Any]:
    """Everything the records say about each submission, without run ids and times."""
    subs = {}
    for sub in ctx.records.list_submissions(ctx.campaign.id):
        rendition = ctx.records.get_details(sub.id).get("rendition") or {}
        subs[sub.id] = {
            "status": sub.status,
            "verdict": sub.verdict,
            "materials": [
                (m.role, m.filename, m.object_key, m.sha256, m.size_bytes) for m in ctx.records.list_materials(sub.id)
            ],
            "findings": sorted(
                (f.stage, f.code, f.severity, f.value, f.limit_value, f.message_zh, f.message_en)
                for f in ctx.records.list_findings(submission_id=sub.id)
            ),
            "rendition": {n: (o["key"], o.get("sha256")) for n, o in (rendition.get("outputs") or {}).items()},
        }
    return subs


def _processes(*needles: str) -> list[tuple[int, str]]:
    """Running processes whose command line contains any of ``needles`` (zombies left out)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(n in cmdline for n in needles):
            found.append((int(entry.name), cmdline))
    return found


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid``."""
    parent_of: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent_of[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, parent in parent_of.items() if parent == p]
        out += kids
        frontier += kids
    return out


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def _wait_gone(needles: tuple[str, ...], within_s: float) -> list[tuple[int, str]]:
    deadline = time.monotonic() + within_s
    while (left := _processes(*needles)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


# --- a private PostgreSQL server ---------------------------------------------------------------------


@dataclass
class PrivatePg:
    """A PostgreSQL server of one test: its own data folder and port, so it can be restarted."""

    bindir: Path
    data: Path
    port: int
    run_as: list[str]
    log_file: Path
    #: Server options given to every start.
    options: str = ""

    def ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log_file), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def create_database(self, name: str) -> str:
        import sqlalchemy as sa

        admin = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"


def _pg_bindir() -> Path | None:
    candidates = [os.environ.get("KEPU_TEST_PG_BINDIR", ""), *PG_BINDIRS]
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        candidates.append(out)
    return next((Path(c) for c in candidates if c and (Path(c) / "initdb").exists()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def private_pg() -> Iterator[PrivatePg]:
    """A throw-away PostgreSQL server (initdb in a temporary folder, a free port), stopped after the test.

    initdb refuses to run as root: as root the server runs as the ``postgres`` user (runuser).
    """
    bindir = _pg_bindir()
    if bindir is None:
        service_unavailable("no PostgreSQL server binaries (initdb) found; set KEPU_TEST_PG_BINDIR")
    assert bindir is not None
    run_as: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="kepu-pg-"))
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(base)
            service_unavailable("running as root and there is no postgres user to run the server as")
        if not shutil.which("runuser"):
            shutil.rmtree(base)
            service_unavailable("running as root and runuser is missing")
        shutil.chown(base, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    data = base / "data"
    pg = PrivatePg(bindir=bindir, data=data, port=_free_port(), run_as=run_as, log_file=base / "server.log")
    subprocess.run(
        [
            *run_as,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    pg.options = f"-p {pg.port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg.ctl("-w", "-o", pg.options, "start")
    try:
        yield pg
    finally:
        from kepu.db import dispose_engine

        for name in ("kepu_faulted", "kepu_baseline"):
            dispose_engine(pg.url(name))
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            check=False,
            timeout=120,
        )
        shutil.rmtree(base, ignore_errors=True)


class _OnFirstFetch(logging.Handler):
    """Restarts the server in a background thread when the first package has been stored."""

    def __init__(self, pg: PrivatePg, outage_s: float) -> None:
        super().__init__(logging.INFO)
        self.pg, self.outage_s = pg, outage_s
        self.thread: threading.Thread | None = None
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if self.thread is None and "file(s) stored" in record.getMessage():
            self.thread = threading.Thread(target=self._restart, name="pg-restart", daemon=True)
            self.thread.start()

    def _restart(self) -> None:
        try:
            self.pg.ctl("-m", "fast", "-w", "stop")
            time.sleep(self.outage_s)
            self.pg.ctl("-w", "-o", self.pg.options, "start")
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_postgres_restart_mid_run(
    tmp_path: Path, small_inbox: tuple[Path, dict], small_campaign: Path, private_pg: PrivatePg
) -> None:
    src, expected = small_inbox
    clean = sorted(n for n, (v, _) in expected.items() if v == "pass")[:2]
    defect = next(n for n, (_, c) in expected.items() if "V-ASPECT" in c)
    inbox = tmp_path / "inbox"
    _copy_packages(src, inbox, [*clean, defect])

    # The undisturbed run, into a fresh database of the same server.
    base = open_context(
        _settings(
            tmp_path / "baseline", inbox, small_campaign, KEPU_DATABASE_URL=private_pg.create_database("kepu_baseline")
        ),
        migrate=True,
    )
    steps.run_intake(base, run_id="run")

    ctx = open_context(
        _settings(
            tmp_path / "faulted", inbox, small_campaign, KEPU_DATABASE_URL=private_pg.create_database("kepu_faulted")
        ),
        migrate=True,
    )
    restart = _OnFirstFetch(private_pg, outage_s=4.0)
    retries = _Collect()
    pipeline_log, retry_log = logging.getLogger("kepu.intake.steps"), logging.getLogger("kepu.db.retry")
    levels = pipeline_log.level, retry_log.level
    pipeline_log.setLevel(logging.INFO)
    retry_log.setLevel(logging.INFO)
    pipeline_log.addHandler(restart)
    retry_log.addHandler(retries)
    try:
        summary = steps.run_intake(ctx, run_id="run")
    finally:
        pipeline_log.removeHandler(restart)
        retry_log.removeHandler(retries)
        pipeline_log.setLevel(levels[0])
        retry_log.setLevel(levels[1])
        if restart.thread is not None:
            restart.thread.join(timeout=120)
    assert restart.thread is not None, "the restart was never triggered"
    assert not restart.errors, restart.errors
    # The outage was seen and ridden out, not missed.
    assert any("database connection lost" in m for m in retries.messages), retries.messages

    assert summary["submissions"] == 3
    assert ctx.records.get_run("run")["status"] == "success"  # type: ignore[index]
    check_outcomes(outcomes(ctx.settings), {n: expected[n] for n in [*clean, defect]})
    assert ctx.records.table_counts() == base.records.table_counts()
    assert _state(ctx) == _state(base)
    assert _stored(ctx) == _stored(base)


# --- a hung ffprobe ---------------------------------------------------------------------------------

HANG_MARKER = "HANGS-HERE"


def _wrapped_tools(folder: Path, tools: tuple[str, ...], pattern: str, action: str) -> Path:
    """Scripts named after ``tools`` in ``folder`` that run ``action`` (shell) when their arguments match the
    shell ``pattern`` and the real tool otherwise; put ``folder`` first on PATH to use them."""
    folder.mkdir(exist_ok=True)
    for tool in tools:
        real = shutil.which(tool)
        assert real, f"{tool} is needed"
        script = folder / tool
        script.write_text(f'#!/bin/sh\ncase "$*" in {pattern}) {action};; esac\nexec {real} "$@"\n', encoding="utf-8")
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


def _hanging_tools(folder: Path) -> Path:
    """``ffmpeg`` and ``ffprobe`` that never return for a file whose name holds the marker and run the
    real tool otherwise. The hung process keeps its arguments, so it can be found afterwards."""
    hang = f'exec {sys.executable} -c "import time; time.sleep(3600)" "$@"'
    return _wrapped_tools(folder, ("ffmpeg", "ffprobe"), f"*{HANG_MARKER}*", hang)


def test_ffmpeg_hang(
    tmp_path: Path, small_inbox: tuple[Path, dict], small_campaign: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, expected = small_inbox
    ok, hung = sorted(n for n, (v, _) in expected.items() if v == "pass")[:2]
    inbox = tmp_path / "inbox"
    _copy_packages(src, inbox, [ok, hung])
    video = next((inbox / hung).glob("*.mp4"))
    video.rename(video.with_name(f"{video.stem}-{HANG_MARKER}.mp4"))
    tools = _hanging_tools(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    settings = _settings(
        tmp_path / "kepu", inbox, small_campaign, KEPU_FFMPEG_TIMEOUT_FLOOR_S="4", KEPU_FFMPEG_TIMEOUT_FACTOR="10"
    )
    ctx = open_context(settings, migrate=True)
    try:
        summary = steps.run_intake(ctx, run_id="hang")
    finally:
        left = _wait_gone((HANG_MARKER, str(tmp_path)), within_s=5)
        for pid, _ in left:
            os.kill(pid, signal.SIGKILL)
    assert left == [], left  # neither the hung tool nor any other media process outlived the run
    assert summary["submissions"] == 2
    assert ctx.records.get_run("hang")["status"] == "success"  # type: ignore[index]
    got = outcomes(settings)
    assert got[ok] == ("pass", set())
    verdict, codes = got[hung]
    assert verdict == "fail" and "M-UNREADABLE" in codes
    sub = next(s for s in ctx.records.list_submissions(ctx.campaign.id) if s.source_name == hung)
    (unreadable,) = [f for f in ctx.records.list_findings(submission_id=sub.id) if f.code == "M-UNREADABLE"]
    assert "超时" in unreadable.message_zh and "timed out" in unreadable.message_en, unreadable
    assert HANG_MARKER in (unreadable.value or "")
    # Both entries finished their steps; the clean one has its publication copy.
    assert {s.status for s in ctx.records.list_submissions(ctx.campaign.id)} == {"checked"}
    ok_sub = next(s for s in ctx.records.list_submissions(ctx.campaign.id) if s.source_name == ok)
    assert ctx.records.get_details(ok_sub.id).get("rendition")


def _failing_encoder(folder: Path, marker: str) -> Path:
    """An ``ffmpeg`` that fails as a crashing encoder does when it writes a publication copy of a file whose
    path holds ``marker`` (a submission id), and runs the real tool otherwise."""
    return _wrapped_tools(folder, ("ffmpeg",), f"*{marker}*rendition-*", 'echo "Conversion failed!" >&2; exit 1')


def test_a_publication_copy_that_cannot_be_made_stops_nothing(
    tmp_path: Path, small_inbox: tuple[Path, dict], small_campaign: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kepu.intake.export import eligibility_rows

    src, expected = small_inbox
    ok, broken = sorted(n for n, (v, _) in expected.items() if v == "pass")[:2]
    inbox = tmp_path / "inbox"
    _copy_packages(src, inbox, [ok, broken])
    settings = _settings(tmp_path / "kepu", inbox, small_campaign)
    ctx = open_context(settings, migrate=True)
    ids = steps.register_submissions(ctx, run_id="r1", dag_id="test")
    steps.fetch_materials(ctx, ids, run_id="r1")
    steps.check_submissions(ctx, ids, run_id="r1")
    steps.validate_campaign(ctx, run_id="r1")
    by_name = {s.source_name: s.id for s in ctx.records.list_submissions(ctx.campaign.id)}
    assert sorted(sid for batch in steps.plan_renditions(ctx, max_tasks=1) for sid in batch) == sorted(by_name.values())
    # The encoder crashes on the broken entry's file.
    path = os.environ["PATH"]
    monkeypatch.setenv("PATH", f"{_failing_encoder(tmp_path / 'bin', by_name[broken])}{os.pathsep}{path}")

    # The broken entry first in the batch: the one after it still gets its copy, and the run is a success.
    steps.make_renditions(ctx, [by_name[broken], by_name[ok]], run_id="r1")
    summary = steps.export_eligibility(ctx, run_id="r1")
    steps.finish_run(ctx, run_id="r1", summary=summary)
    assert ctx.records.get_run("r1")["status"] == "success"  # type: ignore[index]
    assert outcomes(settings) == {ok: ("pass", set()), broken: ("pass", set())}  # not a finding of the entry
    good = ctx.records.get_details(by_name[ok])["rendition"]
    assert good["outputs"] and "failed" not in good
    failed = ctx.records.get_details(by_name[broken])["rendition"]
    assert failed["outputs"] == {}
    assert "发布副本制作失败" in failed["failed"]["zh"] and "Conversion failed!" in failed["failed"]["en"]
    rows = {r["source_name"]: r for r in eligibility_rows(ctx.records, ctx.campaign)}
    assert rows[broken]["publication"].startswith("发布副本制作失败"), rows[broken]
    assert not rows[ok]["publication"].startswith("发布副本制作失败")
    assert _derived_keys(ctx, by_name[broken]) == []
    # Only the broken entry is planned again; a rerun with the same fault records the same and adds nothing.
    assert steps.plan_renditions(ctx, max_tasks=1) == [[by_name[broken]]]
    counts = ctx.records.table_counts()
    steps.make_renditions(ctx, [by_name[broken]], run_id="r2")
    assert ctx.records.table_counts() == counts
    assert ctx.records.get_details(by_name[broken])["rendition"] == failed

    # With a working encoder the next run makes the copy.
    monkeypatch.setenv("PATH", path)
    steps.make_renditions(ctx, [by_name[broken]], run_id="r3")
    made = ctx.records.get_details(by_name[broken])["rendition"]
    assert made["outputs"] and "failed" not in made
    assert _derived_keys(ctx, by_name[broken]) == sorted(o["key"] for o in made["outputs"].values())
    assert steps.plan_renditions(ctx, max_tasks=1) == []


# --- a transcode killed half-way ----------------------------------------------------------------------

SHORT_WINDOWS = {
    ("video", "freeze", "edge_s"): 1.0,
    ("video", "black", "edge_s"): 1.0,
    ("structure", "edge_window_s"): 1.5,
    ("audio", "silence_min_s"): 1.0,
}


def _quiet_copy(video: Path, dest: Path, *, seconds: float | None) -> None:
    """The same picture (stream copy), audio 9 dB quieter: outside the loudness band, so the
    publication copy must be encoded (two-pass loudness normalisation), not remuxed."""
    argv = ["ffmpeg", "-v", "error", "-y", "-i", str(video), "-map", "0", "-c", "copy"]
    if seconds is not None:
        argv += ["-t", f"{seconds:g}"]
    argv += ["-af", "volume=-9dB", "-c:a", "aac", "-b:a", "64k", str(dest)]
    subprocess.run(argv, check=True, capture_output=True, timeout=120)


def _derived_keys(ctx: Context, sid: str) -> list[str]:
    return sorted(
        k
        for role in steps.DERIVED_ROLES
        for k in ctx.store.list_keys(f"campaigns/{ctx.campaign.id}/submissions/{sid}/{role}/")
    )


def test_killed_transcode_resumes(tmp_path: Path, small_inbox: tuple[Path, dict]) -> None:
    from kepu.media.probe import probe_file
    from kepu.media.rendition import render_entry

    src, expected = small_inbox
    name = sorted(n for n, (v, _) in expected.items() if v == "pass")[0]
    inbox = tmp_path / "inbox"
    _copy_packages(src, inbox, [name])
    video = next((inbox / name).glob("*.mp4"))
    _quiet_copy(next((src / name).glob("*.mp4")), video, seconds=4)
    campaign = write_scaled_campaign(
        tmp_path / "campaign.yaml", duration_s=(3.0, 12.0), size=(1_000_000, 8_000_000), windows=SHORT_WINDOWS
    )
    settings = _settings(tmp_path / "kepu", inbox, campaign)
    ctx = open_context(settings, migrate=True)
    ids = steps.register_submissions(ctx, run_id="r1", dag_id="test")
    steps.fetch_materials(ctx, ids, run_id="r1")
    steps.check_submissions(ctx, ids, run_id="r1")
    steps.validate_campaign(ctx, run_id="r1")
    (sid,) = ids
    assert ctx.records.get_submission(sid).verdict == "review"  # type: ignore[union-attr]
    assert steps.plan_renditions(ctx, max_tasks=1) == [[sid]]
    counts = ctx.records.table_counts()

    # The undisturbed encode of the same entry.
    metrics = ctx.records.get_media_metrics(sid)
    probe = probe_file(video, timeout=60)
    baseline = render_entry(
        video, probe, ctx.campaign, steps.measured_loudness(metrics), tmp_path / "baseline", timeout=300
    )
    assert baseline.mode == "encode"
    want = {o.name: o.sha256 for o in baseline.outputs}

    # The rendition task in its own process, SIGKILLed while ffmpeg encodes.
    code = (
        "import sys; from kepu.intake import steps; from kepu.context import open_context; "
        "steps.make_renditions(open_context(), [sys.argv[1]], run_id='killed')"
    )
    task = subprocess.Popen(
        [sys.executable, "-c", code, sid],
        env={**os.environ, **settings.as_env()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    encoder = None
    deadline = time.monotonic() + 180
    try:
        while encoder is None and time.monotonic() < deadline and task.poll() is None:
            encoder = next((p for p in _children(task.pid) if "libx264" in _cmdline(p)), None)
            time.sleep(0.05)
        assert encoder is not None, "the encode never started"
        task.send_signal(signal.SIGKILL)
    finally:
        if task.poll() is None:
            task.kill()
        task.wait(timeout=60)
    assert task.returncode == -signal.SIGKILL
    # The encoder died with its task (it would otherwise keep encoding for seconds).
    deadline = time.monotonic() + 2
    while Path(f"/proc/{encoder}").exists() and "libx264" in _cmdline(encoder) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = "libx264" in _cmdline(encoder)
    if alive:
        os.kill(encoder, signal.SIGKILL)
    assert not alive, "ffmpeg outlived its killed task"
    assert _processes(str(settings.scratch_dir)) == []

    # Nothing claims the rendition is done.
    assert ctx.records.get_details(sid).get("rendition") is None
    assert _derived_keys(ctx, sid) == []
    assert ctx.records.table_counts() == counts
    assert steps.plan_renditions(ctx, max_tasks=1) == [[sid]]
    leftovers = [p for p in settings.scratch_dir.iterdir() if p.name.startswith(f"render-{sid}")]
    assert leftovers, "the killed attempt's work folder is expected to be left behind"

    # The rerun removes the dead attempt's folder and makes the same files.
    steps.make_renditions(ctx, [sid], run_id="rerun")
    assert not any(p.exists() for p in leftovers)
    rendition = ctx.records.get_details(sid)["rendition"]
    assert rendition["mode"] == "encode"
    assert {n: o["sha256"] for n, o in rendition["outputs"].items() if "sha256" in o} == want
    outputs = sorted(o["key"] for o in rendition["outputs"].values())
    assert _derived_keys(ctx, sid) == outputs  # each output once, nothing else
    stored = _stored(ctx)
    for out in rendition["outputs"].values():
        if "sha256" in out:
            assert stored[out["key"]] == out["sha256"]
    assert ctx.records.table_counts() == counts
    assert steps.plan_renditions(ctx, max_tasks=1) == []
    assert not [p for p in settings.scratch_dir.iterdir() if p.name.startswith("render-")]


# --- a package changed between runs -------------------------------------------------------------------


def test_changed_package_reprocessed(tmp_path: Path, small_inbox: tuple[Path, dict], small_campaign: Path) -> None:
    from kepu.campaign import load_campaign
    from kepu.intake.form_templates import write_filled_video_form
    from kepu.intake.forms import read_form

    src, expected = small_inbox
    name, other = sorted(n for n, (v, _) in expected.items() if v == "pass")[:2]
    inbox = tmp_path / "inbox"
    _copy_packages(src, inbox, [name])
    pkg = inbox / name
    form = read_form(pkg / "申报表.docx", load_campaign(small_campaign))
    values = {k: v for k, v in form.fields.items() if v and k != "作者承诺"}
    # First sent with a form naming another title: a warning, so there are findings to keep.
    write_filled_video_form(pkg / "申报表.docx", {**values, "微视频名称": "另一个名字"})
    settings = _settings(tmp_path / "kepu", inbox, small_campaign)
    ctx = open_context(settings, migrate=True)
    steps.run_intake(ctx, run_id="r1")
    (sub,) = ctx.records.list_submissions(ctx.campaign.id)
    before = _state(ctx)[sub.id]
    assert sub.verdict == "review" and any(f[1] == "M-TITLE-MISMATCH" for f in before["findings"]), before
    old_metrics = media_summary(ctx.records.get_media_metrics(sub.id))
    old_rendition = ctx.records.get_details(sub.id)["rendition"]
    old_keys = set(_stored(ctx))
    counts = ctx.records.table_counts()

    # The unit sends it again: the right form, and another cut of the video under a new file name.
    write_filled_video_form(pkg / "申报表.docx", values)
    old_video = next(pkg.glob("*.mp4"))
    old_video.unlink()
    shutil.copy2(next((src / other).glob("*.mp4")), pkg / "成稿.mp4")
    assert steps.register_submissions(ctx, run_id="r2", dag_id="test", dry_run=True) == [sub.id]
    steps.run_intake(ctx, run_id="r2")

    after = _state(ctx)[sub.id]
    assert ctx.records.get_submission(sub.id).verdict == "pass"  # type: ignore[union-attr]
    assert after["findings"] == []
    new_video = next(m for m in ctx.records.list_materials(sub.id) if m.role == "video")
    assert (new_video.filename, new_video.sha256) == ("成稿.mp4", _sha256(pkg / "成稿.mp4"))
    old_video_row = next(m for m in before["materials"] if m[0] == "video")
    assert new_video.sha256 != old_video_row[3]
    new_form = next(m for m in ctx.records.list_materials(sub.id) if m.role == "form")
    assert new_form.sha256 == _sha256(pkg / "申报表.docx")
    assert after["rendition"] and after["rendition"] != before["rendition"]

    # The old results are in the audit log.
    audit = ctx.records.list_audit("submission", sub.id)
    (changed,) = [a for a in audit if a["action"] == "submission.changed"]
    previous = changed["detail"]["previous"]
    assert changed["detail"]["old_verdict"] == "review" and previous["verdict"] == "review"
    assert [
        (m["role"], m["filename"], m["object_key"], m["sha256"], m["size_bytes"]) for m in previous["materials"]
    ] == before["materials"]
    assert (
        sorted(
            (f["stage"], f["code"], f["severity"], f["value"], f["limit_value"], f["message_zh"], f["message_en"])
            for f in previous["findings"]
        )
        == before["findings"]
    )
    assert previous["media_metrics"] == old_metrics and previous["media_metrics"]["probe"]
    assert {n: (o["key"], o["sha256"]) for n, o in previous["rendition"]["outputs"].items()} == before["rendition"]
    assert previous["rendition"]["source_sha256"] == old_rendition["source_sha256"] == old_video_row[3]
    replaced = {a["action"]: a["detail"] for a in audit}
    assert {"materials.replaced", "findings.replaced", "rendition.replaced", "objects.removed"} <= set(replaced)
    assert "M-TITLE-MISMATCH" in {f["code"] for f in replaced["findings.replaced"]["old_findings"]}
    assert replaced["rendition.replaced"]["old"]["outputs"] == previous["rendition"]["outputs"]
    assert old_video_row[2] in replaced["objects.removed"]["keys"]

    # The current tables and the store hold only the new results.
    again = ctx.records.table_counts()
    for table in ("submissions", "submitters", "materials"):
        assert again[table] == counts[table], table
    assert again["findings"] == 0
    keys = set(_stored(ctx))
    listed = {m[2] for m in after["materials"]} | {k for k, _ in after["rendition"].values()}
    assert keys == listed
    assert len(keys) == len(old_keys) and old_video_row[2] not in keys
