"""Time the dashboard's overview (and the submissions list) on a synthetic 5,000-submission campaign.

Fills a SQLite records database through the real schema (every province, channel, kind and verdict,
about three findings per entry), then requests the pages through the dashboard app with the login
faked at its Access boundary: the first request (app, templates and engine built) and then several
more. Target: every overview and list request after the first answers in < 1 s.

Run: ``.venv/bin/python bench/bench_dashboard.py [--rows 5000] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import random
import shutil
import statistics
import tempfile
from pathlib import Path
from time import perf_counter
from typing import Any

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from kepu.campaign import load_campaign
from kepu.config import DEFAULT_CAMPAIGN_FILE, load_settings
from kepu.dashboard import URL_PREFIX
from kepu.dashboard.app import Services, create_app
from kepu.dashboard.auth import Access, Viewer
from kepu.db import dispose_engine, get_engine, upgrade
from kepu.db.schema import campaigns, findings, submissions, utcnow
from kepu.provinces import PROVINCES

log = logging.getLogger("bench_dashboard")

TARGET_S = 1.0
BJ = dt.timezone(dt.timedelta(hours=8))


class BenchAccess(Access):
    async def authenticate(self, request: Request) -> Viewer | None:
        return Viewer("bench")

    def authorize(self, viewer: Viewer) -> bool:
        return True

    def login_url(self, next_url: str) -> str | None:
        return None


def fill(url: str, rows: int, seed: int) -> int:
    """Write ``rows`` submissions and their findings; return the number of findings."""
    campaign = load_campaign(DEFAULT_CAMPAIGN_FILE)
    rnd = random.Random(seed)
    codes = [(code, spec.severity) for code, spec in campaign.findings.items()]
    provinces = [full for full, _ in PROVINCES]
    channels = list(campaign.channels)
    engine = get_engine(url)
    now = utcnow()
    start = dt.datetime(2022, 9, 1, 8, 0, tzinfo=BJ)
    subs: list[dict[str, Any]] = []
    finds: list[dict[str, Any]] = []
    for i in range(rows):
        sid = f"s{i:06d}"
        province = rnd.choice(provinces)
        unit = f"{province}第{rnd.randrange(1, 40)}科技教育单位"
        mine = rnd.sample(codes, k=rnd.choice([0, 0, 1, 2, 3, 4, 6, 8]))
        severities = {s for _, s in mine}
        verdict: str | None = "fail" if "error" in severities else "review" if "warning" in severities else "pass"
        if rnd.random() < 0.03:
            verdict = None
        subs.append(
            {
                "id": sid,
                "campaign_id": campaign.id,
                "kind": "video" if rnd.random() < 0.8 else "account",
                "source_name": f"{province}+{unit}+科普作品{i}",
                "source_uri": f"file:///inbox/{sid}",
                "fingerprint": f"{i:064x}",
                "title": f"科普作品{i}",
                "province": province,
                "unit": unit,
                "channel": rnd.choice(channels),
                "received_at": start + dt.timedelta(minutes=rnd.randrange(90_000)),
                "verdict": verdict,
                "status": "checked" if verdict else "registered",
                "created_at": now,
                "updated_at": now,
                "entity": unit,
                "details": {"form": {"微视频名称": f"科普作品{i}"}},
                "media_metrics": {},
            }
        )
        for code, severity in mine:
            finds.append(
                {
                    "submission_id": sid,
                    "stage": "media",
                    "code": code,
                    "severity": severity,
                    "value": None,
                    "limit_value": None,
                    "at_seconds": rnd.uniform(0, 480) if code[0] in "VA" else None,
                    "message_zh": f"{code} 说明",
                    "message_en": f"{code} message",
                    "run_id": "bench",
                    "created_at": now,
                }
            )
    with engine.begin() as conn:
        conn.execute(
            campaigns.insert().values(
                id=campaign.id, name=campaign.campaign.name_zh, file_sha256="0" * 64, loaded_at=now
            )
        )
        conn.execute(submissions.insert(), subs)
        conn.execute(findings.insert(), finds)
    return len(finds)


def _time(client: TestClient, path: str) -> float:
    t0 = perf_counter()
    r = client.get(URL_PREFIX + path)
    elapsed = perf_counter() - t0
    if r.status_code != 200:
        raise SystemExit(f"{path}: HTTP {r.status_code}: {r.text[:500]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kepu-bench-dashboard-"))
    try:
        settings = load_settings({"KEPU_HOME": str(work), "KEPU_DATABASE_URL": f"sqlite:///{work / 'records.db'}"})
        t0 = perf_counter()
        upgrade(settings.database_url)
        n_findings = fill(settings.database_url, args.rows, args.seed)
        setup = perf_counter() - t0

        outer = FastAPI()
        outer.mount(URL_PREFIX, create_app(services=Services(settings), access=BenchAccess()))
        client = TestClient(outer)
        cold = _time(client, "/")
        pages = {
            "overview /": "/",
            "list, page 1": "/submissions",
            "list, code + province": "/submissions?code=A-SILENCE&province=广东省",
            "list, search, page 3": "/submissions?q=科普作品1&page=3",
        }
        timings = {name: [_time(client, path) for _ in range(args.repeat)] for name, path in pages.items()}
        load = os.getloadavg()
        print(f"submissions:                {args.rows} ({n_findings} findings), SQLite, {os.cpu_count()} cores")
        print(f"setup (filling records):    {setup:6.2f} s  (not counted)")
        print(f"load average (1/5/15 min):  {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}")
        print(f"first overview (cold):      {cold:6.3f} s  (app, templates, engine and campaign built)")
        for name, values in timings.items():
            print(f"{name + ':':27} median {statistics.median(values):6.3f} s, slowest {max(values):6.3f} s")
        worst = max(max(v) for v in timings.values())
        print(f"SLOWEST:                    {worst:6.3f} s  (target < {TARGET_S:.0f} s)")
        dispose_engine(settings.database_url)
        return 0 if worst < TARGET_S else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
