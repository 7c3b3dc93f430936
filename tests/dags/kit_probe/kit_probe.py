"""Two small DAGs built with the DAG kit, run through ``dag.test()`` by ``test_failure_watcher``.

This folder is the DAG folder of that test's Airflow home; ``python kit_probe.py`` migrates its metadata database,
runs both DAGs and prints, as one JSON line, each run's state and each task's state and tries. Each DAG has a step
that runs whatever happened before it (``all_done``), as the intake's export does: without the watcher a failed first
step would leave the run green.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, dag, task

from kepu.errors import JudgingError
from kepu.orchestration.dagkit import default_args, failure_watcher, operator_errors


def probe_dag(*, fail: bool) -> DAG:
    @dag(
        dag_id="kit_probe_fails" if fail else "kit_probe_passes",
        schedule=None,
        start_date=pendulum.datetime(2022, 11, 1, tz="Asia/Shanghai"),
        catchup=False,
        default_args=default_args(retry_delay=timedelta(0)),
    )
    def probe() -> None:
        @task
        def decide() -> str:
            with operator_errors():
                if fail:
                    raise JudgingError("评分表不全 · sheets are missing")
            return "ok"

        @task(trigger_rule="all_done")
        def report() -> str:
            return "written"

        decide() >> report()
        failure_watcher()

    return probe()


def run(d: DAG) -> dict[str, Any]:
    dr = d.test()
    return {
        "state": str(dr.state),
        "tasks": {ti.task_id: {"state": str(ti.state), "try_number": ti.try_number} for ti in dr.get_task_instances()},
    }


probe_fails = probe_dag(fail=True)
probe_passes = probe_dag(fail=False)

if __name__ == "__main__":
    from airflow.dag_processing.dagbag import DagBag

    from kepu.orchestration.metadata import prepare

    prepare()  # Airflow's metadata database, migrated in this process: no `airflow db migrate` process of its own

    bag = DagBag(dag_folder=str(Path(__file__).parent))
    assert not bag.import_errors, bag.import_errors
    print("RESULT " + json.dumps({key: run(bag.dags[f"kit_probe_{key}"]) for key in ("fails", "passes")}))
