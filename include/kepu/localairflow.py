"""The embedded Airflow: api-server, scheduler, dag-processor and triggerer on SQLite with the LocalExecutor.

Used by ``make demo``, ``make airflow`` and the end-to-end tests, so that they all go through the
real scheduler. Everything lives under one folder (``$KEPU_HOME/airflow``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kepu.errors import KepuError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
TERMINAL_STATES = {"success", "failed"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parse_json_output(text: str) -> Any:
    """JSON printed by an Airflow CLI command; warnings may come before it on stdout."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(("[", "{")):
            return json.loads("\n".join(lines[i:]))
    return []


def _airflow_bin() -> str:
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else (shutil.which("airflow") or "airflow")


@dataclass
class LocalAirflow:
    home: Path
    port: int = 0
    extra_env: Mapping[str, str] = field(default_factory=dict)
    #: Whether the scheduler creates the DAGs' scheduled runs (the nightly intake). Off for the demo
    #: and the tests, which trigger their own runs; backfills run either way.
    schedules: bool = False
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()

    @property
    def passwords_file(self) -> Path:
        """Login of the embedded UI: user ``admin`` with a random password kept in this file."""
        path = self.home / "passwords.json"
        if not path.exists():
            path.write_text(json.dumps({"admin": secrets.token_urlsafe(12)}))
            path.chmod(0o600)
        return path

    @property
    def admin_password(self) -> str:
        return str(json.loads(self.passwords_file.read_text())["admin"])

    @property
    def env(self) -> dict[str, str]:
        secret_file = self.home / "jwt_secret"
        if not secret_file.exists():
            secret_file.write_text(secrets.token_urlsafe(32))
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
        # Airflow starts its components as `airflow …` from PATH: it must find this environment's.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.port}",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
                "AIRFLOW__API_AUTH__JWT_SECRET": secret_file.read_text().strip(),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(self.schedules),
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            }
        )
        env.update(self.extra_env)
        return env

    def cli(self, *args: str, timeout: float = 180) -> str:
        argv = [_airflow_bin(), *args]
        log.info("airflow %s", " ".join(args))
        proc = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise KepuError(f"`airflow {' '.join(args)}` failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return proc.stdout

    def migrate(self) -> None:
        self.cli("db", "migrate", timeout=600)

    def _spawn(self, name: str, *args: str) -> None:
        log_path = self.home / f"{name}.log"
        fh = open(log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        proc = subprocess.Popen(
            [_airflow_bin(), *args], env=self.env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs.append(proc)
        log.info("started airflow %s (pid %d, log %s)", name, proc.pid, log_path)

    def start(self, *, timeout: float = 180, api_server_only: bool = False) -> None:
        """Migrate, then start api-server, scheduler, dag-processor and triggerer (deferred tasks such as
        the judging round's wait for returned sheets run there); wait until the API answers.

        ``api_server_only`` starts just the api-server (UI, API and plugins such as the dashboard).
        """
        self.migrate()
        self._spawn("api-server", "api-server", "--port", str(self.port), "--host", "127.0.0.1")
        if not api_server_only:
            self._spawn("scheduler", "scheduler")
            self._spawn("dag-processor", "dag-processor")
            self._spawn("triggerer", "triggerer")
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}/api/v2/monitor/health"
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise KepuError(f"an Airflow component exited early ({proc.args!r}); see logs in {self.home}")
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(2)
        raise KepuError(f"the Airflow api-server did not answer on port {self.port} within {timeout:.0f} s")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.procs.clear()

    def __enter__(self) -> LocalAirflow:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for_dag(self, dag_id: str, *, timeout: float = 180) -> None:
        """Wait until the dag-processor has serialized ``dag_id`` (import errors are raised)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._metadata() as conn:
                found = conn.execute("SELECT 1 FROM serialized_dag WHERE dag_id = ?", (dag_id,)).fetchone()
                errors = [] if found else conn.execute("SELECT filename, stacktrace FROM import_error").fetchall()
            if found:
                return
            if errors:
                raise KepuError(f"DAG import errors: {[dict(e) for e in errors]}")
            time.sleep(2)
        raise KepuError(f"DAG {dag_id} did not appear within {timeout:.0f} s")

    @contextlib.contextmanager
    def _metadata(self) -> Iterator[sqlite3.Connection]:
        """The embedded SQLite metadata database, read-only.

        Polling through the Airflow CLI (``dags list``, ``dags list-runs``) would start a whole
        Airflow process, seconds of CPU, every few seconds: on a 2-core machine that takes a
        quarter of it away from the components and the run being waited for.
        """
        db = self.home / "airflow.db"
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as conn:
            conn.row_factory = sqlite3.Row
            yield conn

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any] | None = None) -> None:
        self.cli("dags", "unpause", dag_id)
        self.cli("dags", "trigger", dag_id, "-r", run_id, "-c", json.dumps(conf or {}))

    def _metadata_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's runs, from the metadata database."""
        with self._metadata() as conn:
            rows = conn.execute(
                "SELECT run_id, state, run_type, logical_date, start_date, end_date FROM dag_run WHERE dag_id = ?"
                " ORDER BY id",
                (dag_id,),
            ).fetchall()
        return [dict(r) for r in rows]

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        for run in self._metadata_runs(dag_id):
            if run.get("run_id") == run_id:
                return str(run.get("state"))
        return None

    def wait_for_run(self, dag_id: str, run_id: str, *, timeout: float = 900, poll: float = 5) -> str:
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            if state in TERMINAL_STATES:
                return state
            time.sleep(poll)
        raise KepuError(f"run {run_id} of {dag_id} still {state} after {timeout:.0f} s; logs in {self.home}")

    def backfill(self, dag_id: str, from_date: str, to_date: str) -> None:
        """Create a backfill over [from_date, to_date]; the scheduler runs it."""
        self.cli("dags", "unpause", dag_id)
        self.cli("backfill", "create", "--dag-id", dag_id, "--from-date", from_date, "--to-date", to_date,
                 "--reprocess-behavior", "completed")  # fmt: skip

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self._metadata_runs(dag_id)

    def wait_for_backfill(self, dag_id: str, *, timeout: float = 900, poll: float = 5) -> list[dict[str, Any]]:
        """Wait until every backfill run of ``dag_id`` has finished; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = [r for r in self.runs(dag_id) if "backfill" in str(r.get("run_type", r.get("run_id", "")))]
            if runs and all(r.get("state") in TERMINAL_STATES for r in runs):
                return runs
            time.sleep(poll)
        raise KepuError(f"the backfill of {dag_id} did not finish within {timeout:.0f} s; logs in {self.home}")

    def task_states(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        out = self.cli("tasks", "states-for-dag-run", dag_id, run_id, "-o", "json")
        return list(parse_json_output(out))
