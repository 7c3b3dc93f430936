"""The kit's watcher and operator errors in real runs: two small DAGs (``kit_probe/``) through ``dag.test()``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kepu.orchestration.dagkit import NOT_RETRIED, WATCHER_MESSAGE

pytestmark = pytest.mark.e2e

PROBE = Path(__file__).resolve().parent / "kit_probe"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    home = tmp_path_factory.mktemp("airflow-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "KEPU_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROBE),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "KEPU_HOME": str(home / "kepu"),
        }
    )
    proc = subprocess.run(
        [sys.executable, str(PROBE / "kit_probe.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-6000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT ")), proc.stdout


def test_a_failed_step_fails_the_run_though_the_last_step_succeeded(runs: tuple[dict, str]) -> None:
    out, log = runs
    fails = out["fails"]
    assert fails["state"] == "failed", fails
    assert fails["tasks"]["report"]["state"] == "success", fails  # the all_done step still ran
    assert fails["tasks"]["fail_if_a_step_failed"]["state"] == "failed", fails
    # The watcher names the step that failed.
    assert WATCHER_MESSAGE in log and "失败的步骤 failed steps: decide" in log


def test_an_operator_error_fails_its_step_at_once_with_a_clear_message(runs: tuple[dict, str]) -> None:
    out, log = runs
    decide = out["fails"]["tasks"]["decide"]
    assert decide == {"state": "failed", "try_number": 1}  # retries=2, but an operator's problem is not retried
    assert "评分表不全 · sheets are missing" in log and NOT_RETRIED in log


def test_the_watcher_is_skipped_when_nothing_failed(runs: tuple[dict, str]) -> None:
    out, _ = runs
    passes = out["passes"]
    assert passes["state"] == "success", passes
    assert passes["tasks"]["fail_if_a_step_failed"]["state"] == "skipped", passes
    assert {passes["tasks"][t]["state"] for t in ("decide", "report")} == {"success"}, passes
