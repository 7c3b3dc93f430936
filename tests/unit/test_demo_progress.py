"""``kepu demo``'s wait: progress lines while the run moves, a clear error (what is stuck) once nothing has moved
for the stall timeout, at once when a component died; the embedded Airflow's configuration."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from kepu.cli import build_parser, wait_with_progress
from kepu.errors import KepuError
from kepu.localairflow import LocalAirflow

pytestmark = pytest.mark.unit


class FakeRun:
    """run_progress() answers from a script of states; the last one repeats."""

    def __init__(self, script: list[dict[str, Any]], dead: list[str] | None = None) -> None:
        self.script, self.dead, self.home = script, dead or [], Path("/nowhere")

    def run_progress(self, dag_id: str, run_id: str) -> dict[str, Any]:
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        base = {"state": "running", "total": 0, "done": 0, "by_state": {}, "running": {}, "waiting": {}, "beat": None}
        return {**base, **step}

    def dead_components(self) -> list[str]:
        return self.dead


def test_progress_is_printed_and_a_finished_run_returns(capsys: pytest.CaptureFixture[str]) -> None:
    run = FakeRun(
        [
            {
                "total": 3,
                "done": 1,
                "by_state": {"success": 1, "running": 1, "queued": 1},
                "running": {"fetch_materials": 1},
                "waiting": {"probe_videos (queued)": 1},
            },
            {"total": 3, "done": 2, "by_state": {"success": 2, "running": 1}, "running": {"probe_videos": 1}},
            {"state": "success", "total": 3, "done": 3, "by_state": {"success": 3}},
        ]
    )
    assert wait_with_progress(run, "kepu_intake", "r", stall_timeout=5, poll=0.01) == "success"
    out = capsys.readouterr().out
    assert "任务 tasks 1/3" in out and "fetch_materials" in out and "等待 waiting 1" in out
    assert "任务 tasks 2/3" in out and "probe_videos" in out and "任务 tasks 3/3" in out


def test_a_heartbeat_counts_as_moving_but_a_still_run_is_given_up() -> None:
    beats = [{"by_state": {"running": 1}, "running": {"probe_videos": 1}, "beat": f"t{i}"} for i in range(30)]
    still = {"by_state": {"queued": 2}, "waiting": {"probe_videos (queued)": 2}}
    run = FakeRun([*beats, still])
    with pytest.raises(KepuError) as err:
        wait_with_progress(run, "kepu_intake", "r1", stall_timeout=0.2, poll=0.02)
    assert "nothing moved" in str(err.value) and "probe_videos (queued) ×2" in str(err.value)
    assert not run.script[1:]  # every heartbeat was seen before it gave up


def test_a_dead_component_ends_the_wait_at_once() -> None:
    with pytest.raises(KepuError, match="scheduler"):
        wait_with_progress(FakeRun([{}], dead=["scheduler"]), "kepu_intake", "r", stall_timeout=60, poll=0.01)


def test_demo_has_no_wall_clock_limit_and_airflow_binds_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_HOST", raising=False)
    demo = build_parser().parse_args(["demo"])
    assert demo.timeout == 0 and demo.stall_timeout >= 180
    assert build_parser().parse_args(["airflow"]).host == "127.0.0.1"
    assert build_parser().parse_args(["airflow", "--host", "0.0.0.0"]).host == "0.0.0.0"


def test_embedded_sqlite_waits_for_the_lock(tmp_path: Path) -> None:
    env = LocalAirflow(tmp_path / "airflow").env
    module, _, name = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"].rpartition(".")
    assert getattr(importlib.import_module(module), name)["timeout"] >= 30
    module, _, name = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC"].rpartition(".")
    assert getattr(importlib.import_module(module), name)["timeout"] >= 30
    pg = LocalAirflow(tmp_path / "pg", executor="celery", metadata_url="postgresql://u@h/db", broker_url="redis://h")
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS" not in pg.env


def test_embedded_airflow_runs_on_the_campaigns_time_zone(tmp_path: Path) -> None:
    """As compose does: dates typed without an offset and the components' clocks are the campaign's zone."""
    from kepu.campaign import load_campaign
    from kepu.config import load_settings

    zone = load_campaign(load_settings({}).campaign_file).campaign.timezone
    assert LocalAirflow(tmp_path / "airflow").env["AIRFLOW__CORE__DEFAULT_TIMEZONE"] == zone == "Asia/Shanghai"
