"""``LocalAirflow.cli``: a command that found the SQLite metadata database locked is run again; nothing else is."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from kepu import localairflow
from kepu.errors import KepuError
from kepu.localairflow import LocalAirflow

pytestmark = pytest.mark.unit

LOCKED = "sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) database is locked\n[SQL: INSERT INTO dag_run …]"


class Script:
    """Stands in for subprocess.run: answers each call with the next (returncode, stderr)."""

    def __init__(self, *answers: tuple[int, str]) -> None:
        self.answers = list(answers)
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        code, err = self.answers.pop(0)
        return subprocess.CompletedProcess(argv, code, stdout="done\n" if code == 0 else "", stderr=err)


@pytest.fixture
def no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(localairflow.time, "sleep", lambda s: None)


def test_a_locked_sqlite_database_is_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_wait: None
) -> None:
    script = Script((1, LOCKED), (1, LOCKED), (0, ""))
    monkeypatch.setattr(localairflow.subprocess, "run", script)
    assert LocalAirflow(tmp_path).cli("backfill", "create", "--dag-id", "kepu_intake") == "done\n"
    assert len(script.calls) == 3
    assert all(call[1:] == ["backfill", "create", "--dag-id", "kepu_intake"] for call in script.calls)


def test_a_lock_that_stays_fails_with_the_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_wait: None) -> None:
    script = Script(*[(1, LOCKED)] * localairflow.SQLITE_LOCKED_ATTEMPTS)
    monkeypatch.setattr(localairflow.subprocess, "run", script)
    with pytest.raises(KepuError, match="database is locked"):
        LocalAirflow(tmp_path).cli("dags", "trigger", "kepu_intake")
    assert len(script.calls) == localairflow.SQLITE_LOCKED_ATTEMPTS


@pytest.mark.parametrize(
    ("metadata_url", "stderr"),
    [
        (None, "airflow.exceptions.DagNotFound: Dag id kepu_nothing not found"),
        ("postgresql://postgres@127.0.0.1:5432/airflow", LOCKED),
    ],
    ids=["other-error", "not-sqlite"],
)
def test_other_failures_are_not_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_wait: None, metadata_url: str | None, stderr: str
) -> None:
    script = Script((1, stderr), (0, ""))
    monkeypatch.setattr(localairflow.subprocess, "run", script)
    with pytest.raises(KepuError, match="failed"):
        LocalAirflow(tmp_path, metadata_url=metadata_url).cli("dags", "unpause", "kepu_nothing")
    assert len(script.calls) == 1
