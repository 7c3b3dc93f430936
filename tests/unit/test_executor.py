"""The embedded executor: Airflow loads it from the embedded instance's settings, it imports what the DAG files
import before its workers are forked, and a module it cannot import does not stop the scheduler."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from airflow.executors.local_executor import LocalExecutor

from kepu.localairflow import EMBEDDED_EXECUTOR, LocalAirflow
from kepu.orchestration import executor
from kepu.orchestration.executor import TASK_MODULES, PreloadingLocalExecutor, preload

pytestmark = pytest.mark.unit

DAGS = Path(__file__).resolve().parents[2] / "dags"


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent is a module, not a package: `name` is one of its attributes
        return False


def _dag_imports() -> set[str]:
    """The kepu modules the DAG files import, at the top and inside their tasks, read from their syntax trees."""
    names: set[str] = set()
    for path in sorted(DAGS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names if a.name.startswith("kepu")}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kepu"):
                names.add(node.module)
                # `from kepu.intake import steps` imports the module kepu.intake.steps.
                names |= {f"{node.module}.{a.name}" for a in node.names if _is_module(f"{node.module}.{a.name}")}
    return names


def _run(program: str, env: dict[str, str] | None = None) -> dict:
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_what_the_dag_files_import_is_imported_before_the_workers_fork() -> None:
    needed = _dag_imports()
    assert {"kepu.context", "kepu.intake.steps", "kepu.orchestration.dagkit"} <= needed, needed  # the scan works
    result = _run(
        "import json, sys\n"
        "from kepu.orchestration.executor import preload\n"
        "failed = preload()\n"
        "print(json.dumps({'failed': failed, 'modules': sorted(sys.modules)}))\n"
    )
    assert result["failed"] == []
    assert sorted(needed - set(result["modules"])) == [], "add them to kepu.orchestration.executor.TASK_MODULES"
    assert {"great_expectations", "docx", "openpyxl", "numpy"} <= set(result["modules"])


def test_airflow_loads_the_embedded_executor_from_the_instance_settings(tmp_path: Path) -> None:
    env = LocalAirflow(tmp_path / "airflow").env
    assert env["AIRFLOW__CORE__EXECUTOR"] == EMBEDDED_EXECUTOR
    result = _run(
        "import json\n"
        "from airflow.executors.executor_loader import ExecutorLoader\n"
        "from airflow.executors.local_executor import LocalExecutor\n"
        "cls, _ = ExecutorLoader.import_executor_cls(ExecutorLoader.get_default_executor_name())\n"
        "print(json.dumps([cls.__module__, cls.__name__, issubclass(cls, LocalExecutor)]))\n",
        env,
    )
    assert result == ["kepu.orchestration.executor", "PreloadingLocalExecutor", True]


def test_the_modules_are_imported_before_the_workers_are_started(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def record(step: str) -> Callable[..., None]:
        return lambda *args: calls.append(step)

    monkeypatch.setattr(executor, "preload", record("preload"))
    monkeypatch.setattr(LocalExecutor, "start", record("fork workers"))
    PreloadingLocalExecutor(parallelism=1).start()
    assert calls == ["preload", "fork workers"]


def test_a_module_that_cannot_be_imported_is_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="kepu.orchestration.executor")
    assert preload(("kepu.no_such_module", "kepu.errors")) == ["kepu.no_such_module"]
    assert "kepu.no_such_module not pre-imported" in caplog.text
    assert "kepu.errors" in sys.modules and "great_expectations" in TASK_MODULES
