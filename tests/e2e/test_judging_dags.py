"""``kepu_judging`` and ``kepu_release_results`` through ``dag.test()`` on the embedded default.

The first run of the first round waits for sheets that do not come: the sensor defers, its trigger polls the
store until the deadline, and the round goes on with what it has. Once the judges' sheets are back, the
DAG runs again and ranks. After the final round, the release DAG emits the asset event once: releasing again,
or re-running the judging upstream, issues nothing twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from judging_factory import write_campaign

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from airflow.dag_processing.dagbag import DagBag
    from judging_factory import fill_sheet, make_judges, pass_gates, seed_entries, truthful, write_roster
    from kepu.context import open_context
    from kepu.orchestration.assets import RESULTS_RELEASED
    from kepu.judging import keys, steps
    from kepu.orchestration.metadata import prepare

    prepare()  # Airflow's metadata database, migrated in this process: no `airflow db migrate` process of its own

    out = {}
    bag = DagBag(dag_folder=sys.argv[1])
    judging, release = bag.dags["kepu_judging"], bag.dags["kepu_release_results"]
    ctx = open_context(migrate=True)
    entries = seed_entries(ctx.records, "2022", videos=12, accounts=4)
    pass_gates(ctx.records, "2022", entries)
    roster = write_roster(Path(sys.argv[3]) / "评委名单.csv", make_judges(6))
    scorer = truthful({sid: 3.0 + (int(sid[1:]) * 7 % 13) / 2 for sid in entries})

    def run(dag, conf):
        dr = dag.test(run_conf=conf)
        return dr.state, {ti.task_id: ti.state for ti in dr.get_task_instances()}

    def hand_in(stage):
        for jid, info in steps.write_sheets(ctx, stage)["sheets"].items():
            with ctx.store.open_local(info["key"]) as path:
                data = fill_sheet(path.read_bytes(), scorer)
            ctx.store.put_bytes(keys.returned_prefix("2022", stage) + f"{jid}.xlsx", data)

    soon = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    out["waiting"] = run(judging, {"stage": "first_round", "roster": str(roster), "deadline": soon})
    out["after_deadline"] = ctx.records.get_round("2022", "first_round")["aggregate"]["counts"]
    hand_in("first_round")
    out["returned"] = run(judging, {"stage": "first_round"})
    out["ranked"] = ctx.records.get_round("2022", "first_round")["aggregate"]["counts"]
    steps.prepare_round(ctx, "final_round")
    hand_in("final_round")
    steps.ingest_sheets(ctx, "final_round")
    steps.aggregate_round(ctx, "final_round")
    out["selection"] = steps.select_awards(ctx)
    confirm = {"confirm": "2022", "released_by": "李主任", "reason": "评审结束"}
    out["bad_confirm"] = run(release, {**confirm, "confirm": "yes"})
    out["release"] = run(release, confirm)
    out["release_again"] = run(release, confirm)
    out["rerun"] = run(judging, {"stage": "first_round", "wait": False})
    out["release_after_rerun"] = run(release, confirm)
    out["releases"] = len(ctx.records.list_releases("2022"))
    out["awards"] = len(ctx.records.list_awards("2022"))

    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select
    with create_session() as session:
        events = session.scalars(
            select(AssetEvent).join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.uri == RESULTS_RELEASED.uri)
        ).all()
        out["events"] = [e.extra for e in events]
    print("RESULT " + json.dumps(out, ensure_ascii=False, default=str))
    """
)


def test_judging_and_release_dags(tmp_path: Path) -> None:
    home = tmp_path / "airflow"
    campaign = write_campaign(tmp_path / "campaign.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "KEPU_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "KEPU_HOME": str(tmp_path / "kepu"),
            "KEPU_CAMPAIGN_FILE": str(campaign),
        }
    )
    home.mkdir(parents=True)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(REPO / "dags"), str(REPO / "tests"), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    out = json.loads(line.removeprefix("RESULT "))

    # No sheet came back before the deadline: the sensor deferred, the trigger fired at the deadline, and the
    # round went on with nothing to rank.
    state, tasks = out["waiting"]
    assert state == "success" and tasks["wait_for_sheets"] == "success", tasks
    assert out["after_deadline"]["ranked"] == 0 and out["after_deadline"]["insufficient"] == 16
    # With the sheets back, the next run ranks every entry.
    state, tasks = out["returned"]
    assert state == "success" and tasks.pop("fail_if_a_step_failed") == "skipped", tasks
    assert set(tasks.values()) == {"success"}, tasks
    assert out["ranked"] == {
        "entries": 16,
        "scores": out["ranked"]["scores"],
        "ranked": 16,
        "insufficient": 0,
        "withdrawn": 0,
    }
    assert out["selection"]["complete"]

    # A release needs the campaign id typed.
    state, tasks = out["bad_confirm"]
    assert state == "failed" and tasks["release_results"] == "failed" and tasks["announce_release"] != "success"
    assert tasks["fail_if_a_step_failed"] == "failed", tasks
    # Released once: the asset event is emitted once; releasing again and re-running upstream emit nothing.
    assert out["release"][1] == {
        "release_results": "success",
        "announce_release": "success",
        "fail_if_a_step_failed": "skipped",
    }
    assert out["release_again"][1]["announce_release"] == "skipped"
    assert out["rerun"][0] == "success"
    assert out["release_after_rerun"][1]["announce_release"] == "skipped"
    assert out["releases"] == 1 and out["awards"] == 10
    assert len(out["events"]) == 1
    assert (
        out["events"][0]["campaign"] == "2022"
        and out["events"][0]["ranking_sha256"] == out["selection"]["ranking_sha256"]
    )
