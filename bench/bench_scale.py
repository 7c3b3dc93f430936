"""A national campaign through the real scheduler: kepu_intake over 1,000 submissions.

Generates (once, cached under ``.kepu/bench/``) the scale campaign of :mod:`kepu.devtools.scale`: 1,000
packages from every province and channel, with Word forms, synopses, covers and short distinct
videos, account entries, entries over quota, late ones and broken ones. Then for each mode it
starts the embedded Airflow (:class:`kepu.localairflow.LocalAirflow`) on fresh records and a fresh
object store, triggers ``kepu_intake``, waits for it, checks the outcome (every submission recorded
once with the verdict and codes it was made to get, no duplicate row, no stray object) and reads
from Airflow's metadata database where the time went.

Modes: ``local`` (LocalExecutor on SQLite, as ``make demo``), and when LocalAirflow supports it
``celery1`` and ``celery2`` (CeleryExecutor on PostgreSQL and Redis with one or two workers, each
consuming the default and media queues with as many processes as the machine has cores, and the
media pool sized to all their processes). The app records go to a fresh PostgreSQL database on
127.0.0.1:5432 (dropped afterwards), Celery's broker to Redis on 127.0.0.1:6379 under a key prefix of
its own. A mode takes about half an hour at 1,000 submissions on 2 cores.

Figures, per mode:

- wall: the DAG run's start to its end (metadata ``dag_run``); submissions per hour = N / wall.
- task instances: the run's rows in ``task_instance`` (mapped ones counted one by one).
- queue wait: per task instance, ``queued_dttm`` → ``start_date`` (the executor and its worker
  picking the task up); schedule wait: ``scheduled_dttm`` → ``queued_dttm`` (the scheduler
  finding slots, pools and the executor's capacity).
- busy: the sum of task instance durations (``start_date`` → ``end_date``: from the moment the task
  reports it is running to its end; the worker's start-up of the task process comes before).
- scheduler overhead per task instance = (wall × slots − busy) / task instances: slot-seconds
  during which an executor slot held no running task, per task instance; slots = the executor's
  parallelism (``core.parallelism``, 4 in LocalAirflow), capped by the Celery workers' processes.
- where the time goes: busy seconds per task id, from the metadata database.

Targets (the script fails when one is missed): the outcome is right, a run holds at most
``MAX_TASK_INSTANCES`` task instances, and at the full size (``TARGET_AT`` submissions or more; a
smaller run is dominated by fixed costs) the LocalExecutor run reaches ``TARGET_PER_HOUR``.

The machine is shared: the 1-minute load average is printed at the start and end of every mode.

Run: ``.venv/bin/python bench/bench_scale.py [--submissions 1000] [--modes local,celery1,celery2]``;
``KEPU_BENCH_SUBMISSIONS`` sets the size too (e.g. 40 for a quick try).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: Not a kepu setting: read, then removed so that load_settings (which refuses unknown KEPU_*) never sees it.
SIZE_ENV = "KEPU_BENCH_SUBMISSIONS"
MAX_TASK_INSTANCES = 1000
TARGET_PER_HOUR = 1000.0
TARGET_AT = 1000
RUN_TIMEOUT_S = 4 * 3600.0
PG_SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
DAG_ID = "kepu_intake"


def _load() -> str:
    one, _, _ = os.getloadavg()
    return f"load average (1 min) {one:.2f} on {os.cpu_count()} cores"


def _ts(value: Any) -> datetime | None:
    """A metadata timestamp (a datetime from PostgreSQL, a string from SQLite) as an aware datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    text = str(value).replace(" ", "T")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _stats(values: list[float]) -> str:
    if not values:
        return "n/a"
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(0.95 * len(values)))]
    return f"mean {statistics.fmean(values):6.2f} s, median {statistics.median(values):6.2f} s, p95 {p95:6.2f} s"


@contextmanager
def _pg_database(prefix: str) -> Iterator[str]:
    """A fresh PostgreSQL database on the shared server, dropped afterwards."""
    import sqlalchemy as sa

    admin = sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    name = f"{prefix}_{secrets.token_hex(5)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield PG_SERVER.rsplit("/", 1)[0] + f"/{name}"
    finally:
        from kepu.db import dispose_engine

        dispose_engine(PG_SERVER.rsplit("/", 1)[0] + f"/{name}")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _celery_supported() -> bool:
    from kepu.localairflow import LocalAirflow

    return "executor" in {f.name for f in dataclasses.fields(LocalAirflow)}


def prepare(n: int) -> tuple[Path, Path, list[Any]]:
    """The cached scale inbox of ``n`` packages and its campaign file; generated when missing."""
    from kepu.devtools.scale import generate_scale_inbox, write_scale_campaign

    root = REPO / ".kepu" / "bench" / f"scale-{n}"
    t0 = time.perf_counter()
    entries = generate_scale_inbox(root / "inbox", n)
    campaign = write_scale_campaign(root / "campaign.yaml")
    print(f"inbox: {n} packages in {root / 'inbox'} ({time.perf_counter() - t0:.1f} s, cached for the next run)")
    return root / "inbox", campaign, entries


def run_mode(mode: str, inbox: Path, campaign: Path, entries: list[Any]) -> dict[str, Any]:
    """Run kepu_intake once in ``mode``; return its figures and whether its targets were met."""
    from kepu.localairflow import LocalAirflow

    work = Path(tempfile.mkdtemp(prefix=f"kepu-bench-scale-{mode}-"))
    print(f"\n== mode {mode}: {_load()} (start)")
    try:
        with _pg_database("kepu_bench_records") as records_url:
            env = {
                "KEPU_HOME": str(work / "kepu"),
                "KEPU_INBOX": str(inbox),
                "KEPU_CAMPAIGN_FILE": str(campaign),
                "KEPU_DATABASE_URL": records_url,
                "KEPU_STORE_URL": (work / "store").as_uri(),
                "KEPU_SCRATCH_DIR": str(work / "scratch"),
            }
            if mode == "local":
                airflow = LocalAirflow(work / "airflow", extra_env=env)
                return _measure(mode, airflow, env, entries, workers=0)
            with _pg_database("kepu_bench_airflow") as metadata_url:
                workers = int(mode.removeprefix("celery"))
                airflow = LocalAirflow(
                    work / "airflow",
                    extra_env=env,
                    executor="celery",
                    metadata_url=metadata_url,
                    broker_url=REDIS_URL,
                    # Each worker stands for a machine of this one's cores (docs/deploy.md: MEDIA_POOL_SLOTS).
                    media_slots=workers * (os.cpu_count() or 1),
                )
                return _measure(mode, airflow, env, entries, workers=workers)
    finally:
        print(f"== mode {mode}: {_load()} (end)")
        shutil.rmtree(work, ignore_errors=True)


def _measure(mode: str, airflow: Any, env: dict[str, str], entries: list[Any], *, workers: int) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    t0 = time.perf_counter()
    airflow.start()
    try:
        for k in range(workers):
            airflow.start_worker(f"w{k + 1}", queues=["default", "media"], concurrency=cores)
        airflow.wait_for_dag(DAG_ID)
        started = time.perf_counter()
        print(f"airflow up in {started - t0:.0f} s; triggering {DAG_ID} over {len(entries)} packages")
        run_id = f"bench-scale-{mode}-{secrets.token_hex(3)}"
        airflow.trigger(DAG_ID, run_id)
        state = airflow.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT_S, poll=10)
        elapsed = time.perf_counter() - started
        run = next(r for r in airflow.runs(DAG_ID) if r["run_id"] == run_id)
        tis = airflow._query(
            "SELECT task_id, map_index, state, try_number, start_date, end_date, duration, queued_dttm,"
            " scheduled_dttm FROM task_instance WHERE dag_id = :dag_id AND run_id = :run_id",
            dag_id=DAG_ID,
            run_id=run_id,
        )
    finally:
        airflow.stop()
    parallelism = int(airflow.env.get("AIRFLOW__CORE__PARALLELISM", "32"))
    slots = min(parallelism, workers * cores) if workers else parallelism
    # The raw rows, kept beside the cached inbox: figures can be read again without another run.
    raw = REPO / ".kepu" / "bench" / f"scale-{len(entries)}" / f"run-{mode}.json"
    raw.write_text(json.dumps({"run": run, "task_instances": tis, "slots": slots}, default=str, indent=1))
    figures = _figures(run, tis, slots, len(entries))
    figures |= {"mode": mode, "state": state, "trigger_to_done_s": elapsed, "slots": slots}
    try:
        ok_outcome = _check_outcome(env, entries)
    except Exception:  # reported; the figures of a long run are still printed
        traceback.print_exc()
        ok_outcome = False
    _print(figures)
    ok = state == "success" and ok_outcome and figures["task_instances"] <= MAX_TASK_INSTANCES
    if mode == "local" and len(entries) >= TARGET_AT and figures["per_hour"] < TARGET_PER_HOUR:
        print(f"MISSED: {figures['per_hour']:.0f} submissions/hour, target {TARGET_PER_HOUR:.0f}")
        ok = False
    if figures["task_instances"] > MAX_TASK_INSTANCES:
        print(f"MISSED: {figures['task_instances']} task instances, at most {MAX_TASK_INSTANCES}")
    figures["ok"] = ok
    return figures


def _figures(run: dict[str, Any], tis: list[dict[str, Any]], slots: int, n: int) -> dict[str, Any]:
    start, end = _ts(run["start_date"]), _ts(run["end_date"])
    assert start is not None and end is not None
    wall = (end - start).total_seconds()
    busy_by_task: dict[str, float] = defaultdict(float)
    count_by_task: Counter[str] = Counter()
    queue_wait, schedule_wait = [], []
    for ti in tis:
        t_start, t_end = _ts(ti["start_date"]), _ts(ti["end_date"])
        duration = ti["duration"]
        if duration is None and t_start and t_end:
            duration = (t_end - t_start).total_seconds()
        busy_by_task[ti["task_id"]] += float(duration or 0.0)
        count_by_task[ti["task_id"]] += 1
        queued, scheduled = _ts(ti["queued_dttm"]), _ts(ti["scheduled_dttm"])
        if queued and t_start:
            queue_wait.append((t_start - queued).total_seconds())
        if scheduled and queued:
            schedule_wait.append((queued - scheduled).total_seconds())
    busy = sum(busy_by_task.values())
    return {
        "submissions": n,
        "wall_s": wall,
        "per_hour": n / wall * 3600 if wall > 0 else 0.0,
        "task_instances": len(tis),
        "states": Counter(str(ti["state"]) for ti in tis),
        "busy_s": busy,
        "overhead_per_ti_s": (wall * slots - busy) / len(tis) if tis else 0.0,
        "idle_wall_s": wall - busy / slots,
        "queue_wait": queue_wait,
        "schedule_wait": schedule_wait,
        "by_task": sorted(((busy_by_task[t], count_by_task[t], t) for t in busy_by_task), reverse=True),
    }


def _print(f: dict[str, Any]) -> None:
    print(f"mode {f['mode']}: run {f['state']}, {f['submissions']} submissions, {f['slots']} executor slots")
    print(f"wall (dag run start → end):   {f['wall_s']:8.0f} s  ({f['wall_s'] / 60:.1f} min)")
    print(f"trigger → run finished:       {f['trigger_to_done_s']:8.0f} s")
    print(f"throughput:                   {f['per_hour']:8.0f} submissions/hour")
    print(f"task instances:               {f['task_instances']:8d}  {dict(f['states'])}")
    print(f"busy (sum of TI durations):   {f['busy_s']:8.0f} s")
    print(
        f"scheduler overhead per TI:    {f['overhead_per_ti_s']:8.2f} slot-seconds  "
        f"((wall × slots − busy) / TIs); wall − busy/slots = {f['idle_wall_s']:.0f} s"
    )
    print(f"scheduled → queued:           {_stats(f['schedule_wait'])}")
    print(f"queued → started:             {_stats(f['queue_wait'])}")
    print("where the time goes (busy seconds by task):")
    for busy, count, task in f["by_task"]:
        share = 100 * busy / f["busy_s"] if f["busy_s"] else 0.0
        print(f"  {task:24s} {busy:8.0f} s  {share:5.1f} %  {count:4d} TI  {busy / count:6.1f} s each")


def _check_outcome(env: dict[str, str], entries: list[Any]) -> bool:
    """Every package recorded once with its planned verdict and codes; no duplicate row or stray object."""
    import sqlalchemy as sa

    from kepu.config import load_settings
    from kepu.context import open_context
    from kepu.intake.export import eligibility_rows

    ctx = open_context(load_settings(env))
    c = ctx.campaign
    rows = eligibility_rows(ctx.records, c)
    by_name = {r["source_name"]: r for r in rows}
    expected = {e.folder: e for e in entries}
    problems: list[str] = []
    if len(rows) != len(entries) or set(by_name) != set(expected):
        problems.append(f"{len(rows)} rows exported for {len(entries)} packages")
    verdicts = Counter(r["verdict"] for r in rows)
    unexpected: Counter[str] = Counter()
    wrong = 0
    for name, e in expected.items():
        row = by_name.get(name)
        if row is None:
            continue
        codes = set(filter(None, row["codes"].split(";")))
        unexpected.update(codes - e.codes)
        planned_fail = e.verdict == "fail"
        if not e.codes <= codes or planned_fail != (row["verdict"] == "fail"):
            wrong += 1
            if wrong <= 5:
                problems.append(f"{name}: planned {sorted(e.codes)}, got {row['verdict']} {sorted(codes)}")
    if wrong:
        problems.append(f"{wrong} package(s) without their planned verdict or codes")
    engine = ctx.records.engine
    with engine.connect() as conn:
        dup_materials = conn.execute(
            sa.text("SELECT COUNT(*) - COUNT(DISTINCT object_key) FROM materials")
        ).scalar_one()
        dup_findings = conn.execute(
            sa.text(
                "SELECT COUNT(*) FROM (SELECT submission_id, stage, code, value, COUNT(*) AS n FROM findings"
                " GROUP BY submission_id, stage, code, value HAVING COUNT(*) > 1) d"
            )
        ).scalar_one()
        material_keys = {k for (k,) in conn.execute(sa.text("SELECT object_key FROM materials"))}
    rendition_keys: set[str] = set()
    for sub in ctx.records.list_submissions(c.id):
        outputs = (ctx.records.get_details(sub.id).get("rendition") or {}).get("outputs") or {}
        rendition_keys.update(o["key"] for o in outputs.values())
    stored = set(ctx.store.list_keys(f"campaigns/{c.id}/submissions/"))
    stray = stored - material_keys - rendition_keys
    missing = (material_keys | rendition_keys) - stored
    if dup_materials or dup_findings:
        problems.append(f"duplicate rows: {dup_materials} material(s), {dup_findings} finding group(s)")
    if stray or missing:
        problems.append(f"objects: {len(stray)} stray, {len(missing)} missing (e.g. {sorted(stray | missing)[:2]})")
    renditions = sum(1 for k in rendition_keys if "/rendition/" in k)
    print(
        f"outcome: {len(rows)} submissions recorded, verdicts {dict(sorted(verdicts.items()))}, "
        f"{len(stored)} objects ({renditions} publication copies)"
    )
    print(f"codes beyond the planned ones: {dict(unexpected.most_common(8)) or 'none'}")
    for p in problems:
        print(f"WRONG: {p}")
    return not problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--submissions", type=int, default=int(os.environ.pop(SIZE_ENV, "") or 1000))
    parser.add_argument("--modes", default="", help="comma-separated: local, celery1, celery2 (default: all available)")
    args = parser.parse_args()
    os.environ.pop(SIZE_ENV, None)
    modes = [m for m in args.modes.split(",") if m] or (
        ["local", "celery1", "celery2"] if _celery_supported() else ["local"]
    )
    if any(m.startswith("celery") for m in modes) and not _celery_supported():
        print("LocalAirflow has no Celery mode here; run with --modes local", file=sys.stderr)
        return 2
    print(f"bench_scale: {args.submissions} submissions, modes {modes}; machine: {os.cpu_count()} cores, {_load()}")
    batching = {k: os.environ[k] for k in ("KEPU_BATCH_SIZE", "KEPU_MAX_TASKS_PER_STEP") if k in os.environ}
    print(f"batching: {batching or 'defaults (KEPU_BATCH_SIZE=1, KEPU_MAX_TASKS_PER_STEP=256)'}")
    inbox, campaign, entries = prepare(args.submissions)
    results = [run_mode(mode, inbox, campaign, entries) for mode in modes]
    print("\nsummary:")
    for r in results:
        top = ", ".join(f"{t} {b:.0f} s" for b, _, t in r["by_task"][:3])
        print(
            f"  {r['mode']:8s} {r['state']:8s} wall {r['wall_s']:6.0f} s  {r['per_hour']:6.0f}/h  "
            f"{r['task_instances']:4d} TI  overhead {r['overhead_per_ti_s']:5.2f} slot-s/TI  top: {top}"
        )
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
