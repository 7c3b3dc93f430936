"""How often a judging round waiting for its returned sheets looks at the store (KEPU_SHEETS_POLL_S)."""

from __future__ import annotations

from typing import Any

import pytest

from kepu.config import DEFAULT_SHEETS_POLL_S, sheets_poll_s
from kepu.errors import ConfigError
from kepu.orchestration import sensors

pytestmark = pytest.mark.unit


def test_the_setting_reads_seconds_and_refuses_what_is_not_a_pause() -> None:
    assert sheets_poll_s({}) == DEFAULT_SHEETS_POLL_S == 300
    assert sheets_poll_s({"KEPU_SHEETS_POLL_S": " 30 "}) == 30
    for bad in ("abc", "0", "4.9", "-10", "nan"):
        with pytest.raises(ConfigError, match="KEPU_SHEETS_POLL_S"):
            sheets_poll_s({"KEPU_SHEETS_POLL_S": bad})


def _deferred_poll(monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> float:
    from airflow.sdk.exceptions import TaskDeferred

    sensor = sensors.ReturnedSheetsSensor(task_id="wait_for_sheets", stage="first_round", **kwargs)
    monkeypatch.setattr(sensors.ReturnedSheetsSensor, "_round", lambda self: ("p/returned/", ["j1", "j2"], None, "s"))
    monkeypatch.setattr(sensors, "store_status", lambda prefix, judges, stage=None: {"complete": False})
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, sensors.ReturnedSheetsTrigger)
    return float(trigger.serialize()[1]["poll_interval"])


def test_the_wait_looks_as_often_as_the_setting_says_when_it_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEPU_SHEETS_POLL_S", raising=False)
    assert _deferred_poll(monkeypatch) == 300
    monkeypatch.setenv("KEPU_SHEETS_POLL_S", "15")
    assert _deferred_poll(monkeypatch) == 15
    assert _deferred_poll(monkeypatch, poll_interval=60) == 60  # a DAG that names its own interval keeps it
    monkeypatch.setenv("KEPU_SHEETS_POLL_S", "1")
    with pytest.raises(ConfigError):
        _deferred_poll(monkeypatch)
