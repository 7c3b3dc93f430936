"""More submissions than Airflow maps in one task still complete: they are processed in batches.

Airflow refuses to map a task over more than ``core.max_map_length`` items (1,024 by default). This
test lowers the cap to 3 and runs the real DAG (``dag.test()``) over 8 packages.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kepu.config import load_settings
from kepu.context import open_context

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import sys
    from airflow.dag_processing.dagbag import DagBag
    from kepu.orchestration.metadata import prepare

    prepare()  # Airflow's metadata database, migrated in this process: no `airflow db migrate` process of its own
    bag = DagBag(dag_folder=sys.argv[1])
    dag = bag.dags["kepu_intake"]
    run = dag.test()
    tis = run.get_task_instances()
    fetch = sorted(ti.map_index for ti in tis if ti.task_id == "fetch_materials")
    print("STATE", run.state, "FETCH", fetch)
    """
)


def test_more_packages_than_the_map_cap(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    names = [f"北京市+单位{i}+作品{i}" for i in range(8)]
    for name in names:
        (inbox / name).mkdir(parents=True)
        (inbox / name / "简介.txt").write_text("一段简介", encoding="utf-8")
    home = tmp_path / "airflow"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "KEPU_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__MAX_MAP_LENGTH": "3",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "KEPU_HOME": str(tmp_path / "kepu"),
            "KEPU_INBOX": str(inbox),
        }
    )
    home.mkdir(parents=True)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(REPO / "dags")], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("STATE"))
    assert "success" in line
    assert line.endswith("[0, 1, 2]"), line  # 8 submissions in 3 mapped batches

    ctx = open_context(load_settings({"KEPU_HOME": str(tmp_path / "kepu"), "KEPU_INBOX": str(inbox)}))
    subs = ctx.records.list_submissions(ctx.campaign.id)
    assert sorted(s.source_name for s in subs) == sorted(names)
    assert all(s.status == "checked" and s.verdict == "fail" for s in subs)
