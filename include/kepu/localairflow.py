"""The embedded Airflow: api-server, scheduler, dag-processor and triggerer.

Used by ``make demo``, ``make airflow`` and the end-to-end tests, so that they all go through the
real scheduler. Everything lives under one folder (``$KEPU_HOME/airflow``).

Two executors:

- ``local`` (the default, used by the demo): SQLite metadata in that folder and the LocalExecutor
  (:data:`EMBEDDED_EXECUTOR`).
- ``celery``: the production layout on one machine. Metadata on PostgreSQL (``metadata_url``, a
  database of its own), Celery's broker on Redis (``broker_url``), task results in the metadata
  database, and Celery workers started and stopped by name::

      airflow = LocalAirflow(home, executor="celery", metadata_url="postgresql+psycopg2://…/af_x",
                             broker_url="redis://127.0.0.1:6379/3", extra_env=settings.as_env())
      airflow.start()
      airflow.start_worker("default", queues=["default"], concurrency=2)
      airflow.start_worker("media", queues=["media"])       # concurrency: this machine's cores
      airflow.trigger("kepu_intake", "run-1")
      airflow.wait_for_run("kepu_intake", "run-1")
      airflow.task_instances("kepu_intake", "run-1")        # queue, pool, hostname, try_number …
      airflow.kill_worker("media")                          # SIGKILL, whole process tree
      airflow.stop()                                        # workers too; removes its Redis keys

  Every Celery key of one instance carries its own prefix (``broker_prefix``), so several instances
  (and other users) can share one Redis; ``stop()`` deletes that prefix's keys and nothing else.

Either way the scheduler needs the media pool (:data:`MEDIA_POOL`) the heavy media tasks run in:
``start()`` creates it with ``media_slots`` slots (default: this machine's cores).

The api-server listens on ``host`` (loopback unless told otherwise). ``start()`` also starts a mail sink
(:mod:`kepu.mailsink`) on loopback, offered as the ``smtp_default`` connection, so that the result e-mails
land as ``.eml`` files in ``$KEPU_HOME/outbox/`` (a ``kepu_smtp`` connection, if defined, comes first).
Every component gets its own process group and dies with the process that started it
(``PR_SET_PDEATHSIG``); ``stop()`` ends the components and every process under them.
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
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from kepu.childproc import die_with_parent, start_guard
from kepu.errors import KepuError
from kepu.mailsink import MailSink, conn_env_var, connection_json
from kepu.storage import open_private

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
TERMINAL_STATES = {"success", "failed"}

#: The Airflow pool of the ffmpeg-heavy tasks (``pool=`` in the DAGs): its slots cap the ffmpeg
#: processes running at once over all media workers. A pool that does not exist blocks every task
#: assigned to it, so whatever starts Airflow creates it (here, and airflow-init in compose).
MEDIA_POOL = "kepu_media"
MEDIA_POOL_DESCRIPTION = "ffmpeg 槽位：媒体工作进程的 CPU 核数合计 · ffmpeg slots: total cores of the media workers"
#: Celery queues of the DAGs' tasks: ``media`` for ffmpeg work, Airflow's default queue for the rest.
DEFAULT_QUEUE = "default"
MEDIA_QUEUE = "media"
#: Environment variable carrying a Celery worker's name into its task processes (see :func:`worker_hostname`).
WORKER_HOSTNAME_ENV = "LOCAL_AIRFLOW_WORKER_HOSTNAME"
#: Task instance states after which a task does not change any more.
FINISHED_TASK_STATES = {"success", "failed", "skipped", "upstream_failed", "removed"}

#: Connect arguments of Airflow's SQLite metadata engines (``[database] sql_alchemy_connect_args`` and
#: ``…_async``): a writer waits up to a minute for the lock instead of five seconds. Airflow already puts the
#: database in WAL mode (readers never block the writer); but the api-server, the scheduler, the
#: dag-processor, the triggerer and every task write to one file, and under load a UI request (unpause,
#: trigger) that waited five seconds failed with HTTP 500 "database is locked".
SQLITE_CONNECT_ARGS: dict[str, Any] = {"timeout": 60}
SQLITE_CONNECT_ARGS_ASYNC: dict[str, Any] = {"timeout": 60}
#: Seconds after which the embedded dag-processor parses an unchanged DAG file again (Airflow's default is 30).
DAG_REPARSE_S = 120
#: Length of the embedded instance's JWT secret: HS512's minimum key size.
JWT_SECRET_BYTES = 64
#: The ``local`` executor: Airflow's LocalExecutor, whose task processes start with kepu's libraries imported.
EMBEDDED_EXECUTOR = "kepu.orchestration.executor.PreloadingLocalExecutor"
#: How often :meth:`LocalAirflow.prepare_metadata` and :meth:`LocalAirflow.api` try what met a locked SQLite
#: metadata database.
SQLITE_LOCKED_ATTEMPTS = 3

Executor = Literal["local", "celery"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _airflow_bin() -> str:
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else (shutil.which("airflow") or "airflow")


def worker_hostname() -> str:
    """Airflow's ``[core] hostname_callable`` in the Celery workers this module starts.

    Workers on one machine share its host name; this gives each one its own (``name@host``, as
    Celery names them), so that a task instance's hostname says which worker ran it.
    """
    return os.environ.get(WORKER_HOSTNAME_ENV) or socket.getfqdn()


def postgres_url(url: str) -> str:
    """``url`` with the psycopg2 driver when it names PostgreSQL without a driver."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg2://" + url[len(scheme) :]
    return url


def process_tree(pid: int) -> list[int]:
    """``pid`` and every live descendant of it (whatever process group or session they moved to)."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [pid, *(child.pid for child in root.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


#: How long :func:`terminate_trees` lets the components stop their own children before it signals them too.
OWN_STOP_S = 5.0


def terminate_trees(roots: Sequence[int], *, grace: float = 30) -> list[int]:
    """Stop the process trees led by ``roots``; return the pids that were alive.

    Each root (an Airflow component, leader of its own process group) gets SIGTERM first and up to
    :data:`OWN_STOP_S` seconds to stop its children itself: the scheduler sends each executor worker its stop
    message, the triggerer stops its trigger runner. Their children are not signalled meanwhile, because a
    second signal is not harmless: the scheduler takes one as "do not wait for the workers" and leaves them
    waiting for a message that never comes, and a trigger runner signalled under its supervisor is stopped
    only by the supervisor's 10 s timeout. Whatever is left of the trees as they were (descendants that moved
    to another group or session included) and whatever they started meanwhile then gets SIGTERM, and SIGKILL
    when ``grace`` seconds have passed since the start.
    """
    import psutil

    deadline = time.monotonic() + grace
    procs: dict[int, psutil.Process] = {}

    def collect() -> None:
        for root in roots:
            for pid in process_tree(root):
                with contextlib.suppress(psutil.NoSuchProcess):
                    procs.setdefault(pid, psutil.Process(pid))

    collect()
    leaders = [procs[root] for root in roots if root in procs]
    for leader in leaders:
        with contextlib.suppress(psutil.NoSuchProcess):
            leader.terminate()
    psutil.wait_procs(leaders, timeout=min(OWN_STOP_S, grace))
    collect()
    rest = [p for p in procs.values() if _alive(p)]
    for root in roots:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(root, signal.SIGTERM)
    groups = set(roots)
    for proc in rest:  # members of the trees in other groups
        with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
            if os.getpgid(proc.pid) not in groups:
                proc.terminate()
    psutil.wait_procs(rest, timeout=max(0.0, deadline - time.monotonic()))
    collect()
    alive = [p for p in procs.values() if _alive(p)]
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            log.warning("process %d (%s) did not stop: killing it", proc.pid, " ".join(proc.cmdline()[:3]))
            proc.kill()
    psutil.wait_procs(alive, timeout=10)
    return sorted(procs)


def _alive(proc: Any) -> bool:
    import psutil

    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def kill_tree(pid: int) -> list[int]:
    """SIGKILL ``pid`` and all its descendants, as the kernel kills a container; return their pids.

    The tree is frozen first (SIGSTOP) so that no process can start a child between the listing
    and the kill, then listed again and killed.
    """
    seen: list[int] = []
    for _ in range(3):
        pids = [p for p in process_tree(pid) if p not in seen] if seen else process_tree(pid)
        if not pids:
            break
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGSTOP)
        seen.extend(pids)
    for p in seen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    return seen


@dataclass
class LocalAirflow:
    home: Path
    port: int = 0
    extra_env: Mapping[str, str] = field(default_factory=dict)
    #: Whether the scheduler creates the DAGs' scheduled runs: the nightly intake, and also the runs an
    #: asset event starts (certificates and publication after a release; Airflow's ``use_job_schedule``
    #: covers both). Off for the demo and the tests that trigger their own runs; on for ``kepu airflow``.
    #: Triggered runs and backfills run either way.
    schedules: bool = False
    #: ``local`` (SQLite, LocalExecutor) or ``celery`` (PostgreSQL, Redis, workers by name).
    executor: Executor = "local"
    #: SQLAlchemy URL of the metadata database; required for ``celery``, default SQLite in ``home``.
    metadata_url: str | None = None
    #: Celery broker, e.g. ``redis://127.0.0.1:6379/3``; required for ``celery``.
    broker_url: str | None = None
    #: Slots of :data:`MEDIA_POOL`; 0 means this machine's cores.
    media_slots: int = 0
    #: Address the api-server (UI, API, dashboard) listens on: loopback unless told otherwise.
    host: str = "127.0.0.1"
    #: Start the mail sink (:mod:`kepu.mailsink`) and offer it as ``smtp_default``.
    mail_sink: bool = True
    #: Where the mail sink keeps messages; default ``$KEPU_HOME/outbox`` (``KEPU_HOME`` of ``extra_env``).
    outbox: Path | None = None
    mail_port: int = 0
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    #: Running Celery workers by name.
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _engine: Any = field(default=None, init=False, repr=False)
    #: Where each worker's current start begins in its log (a restart appends to the same file).
    _log_offsets: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _sink: MailSink | None = field(default=None, init=False, repr=False)
    #: Name of each process started, by pid (``scheduler``, ``worker-media`` …).
    _names: dict[int, str] = field(default_factory=dict, init=False, repr=False)
    #: The admin's access token for :meth:`api`.
    _api_token: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.executor not in ("local", "celery"):
            raise KepuError(f"unknown executor {self.executor!r}: local or celery")
        if self.executor == "celery" and not (self.metadata_url and self.broker_url):
            raise KepuError("the celery executor needs metadata_url (PostgreSQL) and broker_url (Redis)")
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.mail_port = self.mail_port or free_port()
        if self.outbox is None:
            kepu_home = self.extra_env.get("KEPU_HOME") or os.environ.get("KEPU_HOME")
            self.outbox = Path(kepu_home) / "outbox" if kepu_home else self.home.parent / "outbox"
        self.metadata_url = postgres_url(self.metadata_url or f"sqlite:///{self.home / 'airflow.db'}")

    @property
    def url(self) -> str:
        """The UI's address as this machine reaches it (loopback when listening on every address)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def on_sqlite(self) -> bool:
        """Whether the metadata database is SQLite (the embedded default): one writer at a time."""
        return str(self.metadata_url).startswith("sqlite")

    @property
    def broker_prefix(self) -> str:
        """Prefix of every Redis key of this instance's Celery app (queues included)."""
        path = self.home / "broker_prefix"
        if not path.exists():
            path.write_text(f"kepu-{secrets.token_hex(6)}:")
        return path.read_text().strip()

    @property
    def passwords_file(self) -> Path:
        """Login of the embedded UI: user ``admin`` with a random password kept in this file."""
        path = self.home / "passwords.json"
        if not path.exists():
            with open_private(path, "w") as f:
                f.write(json.dumps({"admin": secrets.token_urlsafe(12)}))
        return path

    @property
    def admin_password(self) -> str:
        return str(json.loads(self.passwords_file.read_text())["admin"])

    @property
    def env(self) -> dict[str, str]:
        secret_file = self.home / "jwt_secret"
        # Airflow signs its tokens with HS512, whose key should be at least 64 bytes (RFC 7518, 3.2); PyJWT warns
        # in every component otherwise. A shorter secret an older home kept is replaced: every component of the
        # instance starts with the new one.
        if not secret_file.exists() or len(secret_file.read_text().strip().encode()) < JWT_SECRET_BYTES:
            with open_private(secret_file, "w") as f:  # whoever reads it can sign any token: owner only
                f.write(secrets.token_urlsafe(JWT_SECRET_BYTES * 3 // 4))
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
        # Airflow starts its components as `airflow …` from PATH: it must find this environment's.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                # The campaign lives in Beijing time: the time a DAG without its own zone and the logs use.
                "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Asia/Shanghai",
                # The operator triggers a DAG from the UI and it runs: no unpausing first.
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                # Airflow's LocalExecutor, its workers forked with kepu's task libraries already imported.
                "AIRFLOW__CORE__EXECUTOR": EMBEDDED_EXECUTOR,
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": str(self.metadata_url),
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__API_AUTH__JWT_SECRET": secret_file.read_text().strip(),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                # A DAG file is parsed again when it changes (Airflow's default order, newest first) and otherwise
                # every two minutes rather than every 30 s: the re-parses were half of an idle instance's CPU
                # (3.9 CPU-s a minute, 2.0 with none). What a parse reads besides the DAG files, the campaign
                # file's scoring stages and platforms offered by the trigger forms, follows within two minutes.
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": str(DAG_REPARSE_S),
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(self.schedules),
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            }
        )
        if self.on_sqlite:
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] = f"{__name__}.SQLITE_CONNECT_ARGS"
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC"] = f"{__name__}.SQLITE_CONNECT_ARGS_ASYNC"
        sink_var = conn_env_var()
        if self.mail_sink and sink_var not in os.environ and sink_var not in self.extra_env:
            env[sink_var] = connection_json(self.mail_port)
        if self.executor == "celery":
            env.update(
                {
                    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                    "AIRFLOW__CELERY__BROKER_URL": str(self.broker_url),
                    "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{self.metadata_url}",
                    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": self.broker_prefix,
                    "AIRFLOW__OPERATORS__DEFAULT_QUEUE": DEFAULT_QUEUE,
                }
            )
        env.update(self.extra_env)
        return env

    def prepare_metadata(self, *, media_pool: bool = True) -> None:
        """Write ``airflow.cfg`` (with the instance's one Fernet key) when the home has none, migrate the metadata
        database and, with ``media_pool``, create (or resize) :data:`MEDIA_POOL` with ``media_slots`` slots (default
        this machine's cores): one Airflow process (:mod:`kepu.orchestration.metadata`) instead of
        ``airflow db migrate`` and ``airflow pools set``, run before any component starts.

        On the SQLite metadata database a run whose write met another component's (SQLite gives up at once when
        a read turns into a write) rolled back and is run again, up to :data:`SQLITE_LOCKED_ATTEMPTS` times."""
        argv = [sys.executable, "-m", "kepu.orchestration.metadata"]
        what = "prepare the metadata database"
        if media_pool:
            slots = self.media_slots or os.cpu_count() or 1
            argv += ["--pool", MEDIA_POOL, str(slots), MEDIA_POOL_DESCRIPTION]
            what += f" and the pool {MEDIA_POOL} ({slots} slots)"
        for attempt in range(1, SQLITE_LOCKED_ATTEMPTS + 1):
            log.info("%s", what)
            proc = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=600, check=False)
            if proc.returncode == 0:
                return
            if not (self.on_sqlite and "database is locked" in proc.stderr) or attempt == SQLITE_LOCKED_ATTEMPTS:
                break
            log.warning("%s: the metadata database was locked; running it again", what)
            time.sleep(2 * attempt)
        raise KepuError(f"could not {what} ({proc.returncode}):\n{proc.stderr[-3000:]}")

    def _spawn(self, name: str, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start ``airflow ARGS`` in a process group of its own, logging to ``home/NAME.log``. It gets SIGTERM
        when the thread that started it ends (Linux's parent-death signal follows the thread): call
        :meth:`start` and :meth:`start_worker` from a thread that lives as long as the instance."""
        # What the parent-death signal does not reach (a task under the scheduler, its encoder) is killed by
        # the guard when this process dies without stopping it.
        start_guard()
        log_path = self.home / f"{name}.log"
        fh = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed here after the fork
        proc = subprocess.Popen(
            [_airflow_bin(), *args],
            env=dict(env or self.env),
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # SIGTERM when the process that started it is gone (even killed with SIGKILL), so that no scheduler
            # or api-server outlives ``kepu demo`` / ``kepu airflow``.
            preexec_fn=die_with_parent(os.getpid(), signal.SIGTERM),
        )
        fh.close()  # the child holds its own descriptor
        self._names[proc.pid] = name
        log.info("started airflow %s (pid %d, log %s)", name, proc.pid, log_path)
        return proc

    def start(self, *, timeout: float = 600, api_server_only: bool = False) -> None:
        """Prepare the metadata database, then start api-server, scheduler, dag-processor and triggerer (deferred
        tasks such as the judging round's wait for returned sheets run there); wait until the API answers.

        ``api_server_only`` starts just the api-server (UI, API and plugins such as the dashboard).
        """
        try:
            self.prepare_metadata(media_pool=not api_server_only)
            self.procs.append(self._spawn("api-server", "api-server", "--port", str(self.port), "--host", self.host))
            if not api_server_only:
                # Every component writes its task logs to files under home, which the api-server reads
                # directly: no log server (it would listen on every address, on one fixed port a machine).
                for component, *flags in (
                    ("scheduler", "--skip-serve-logs"),
                    ("dag-processor",),
                    ("triggerer", "--skip-serve-logs"),
                ):
                    self.procs.append(self._spawn(component, component, *flags))
            if self.mail_sink and conn_env_var() in self.env:
                assert self.outbox is not None
                self._sink = MailSink(self.outbox, port=self.mail_port).start()
            self._wait_for_api(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_for_api(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"{self.url}/api/v2/monitor/health"
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
        """Stop the workers, then the components and every process under them (SIGTERM, then SIGKILL after
        30 s); stop the mail sink; remove this instance's Celery keys from Redis."""
        for name in list(self.workers):
            self.stop_worker(name)
        if self.procs:
            terminate_trees([p.pid for p in self.procs])
            for proc in self.procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
        self.procs.clear()
        if self._sink is not None:
            self._sink.stop()
            self._sink = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        if self.executor == "celery":
            self.flush_broker()

    def flush_broker(self) -> int:
        """Delete the Redis keys under :attr:`broker_prefix` (only those); return how many."""
        import redis

        client = redis.Redis.from_url(str(self.broker_url))
        try:
            keys = list(client.scan_iter(match=f"{self.broker_prefix}*", count=500))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start : start + 500])
            return len(keys)
        finally:
            client.close()

    # --- Celery workers ------------------------------------------------------------------------

    def worker_hostname(self, name: str) -> str:
        """Celery node name of worker ``name``, also the hostname its task instances record."""
        return f"{name}@{socket.getfqdn()}"

    def start_worker(
        self,
        name: str,
        queues: Sequence[str] = (DEFAULT_QUEUE,),
        concurrency: int = 0,
        *,
        env: Mapping[str, str] | None = None,
        wait: bool = True,
        timeout: float = 180,
    ) -> None:
        """Start Celery worker ``name`` consuming ``queues`` with ``concurrency`` pool processes
        (0: this machine's cores); with ``wait``, return once it is ready to take tasks.

        ``env`` adds to (and overrides) the instance's environment for this worker only: the kepu
        settings its tasks use, for instance. Its output goes to ``worker-<name>.log`` in ``home``.
        A name can be started again after :meth:`kill_worker` or :meth:`stop_worker`, as a restarted
        container would be.
        """
        if self.executor != "celery":
            raise KepuError("Celery workers need executor='celery'")
        if name in self.workers and self.workers[name].poll() is None:
            raise KepuError(f"worker {name} is already running")
        hostname = self.worker_hostname(name)
        worker_env = {
            **self.env,
            **(env or {}),
            WORKER_HOSTNAME_ENV: hostname,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_hostname",
        }
        log_path = self.home / f"worker-{name}.log"
        self._log_offsets[name] = log_path.stat().st_size if log_path.exists() else 0
        # Logs are files under home, read by the api-server directly: no log server (one port per machine).
        self.workers[name] = self._spawn(
            f"worker-{name}",
            "celery",
            "worker",
            "--queues",
            ",".join(queues),
            "--concurrency",
            str(concurrency or os.cpu_count() or 1),
            "--celery-hostname",
            hostname,
            "--pid",
            str(self.home / f"worker-{name}.pid"),
            "--skip-serve-logs",
            env=worker_env,
        )
        if wait:
            self.wait_for_worker(name, timeout=timeout)

    def wait_for_worker(self, name: str, *, timeout: float = 180) -> None:
        """Wait until worker ``name`` (as last started) logs that it is ready to take tasks."""
        proc = self.workers[name]
        log_path = self.home / f"worker-{name}.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise KepuError(f"Celery worker {name} exited ({proc.returncode}); see {log_path}")
            with open(log_path, "rb") as fh:
                fh.seek(self._log_offsets.get(name, 0))
                if f"{self.worker_hostname(name)} ready.".encode() in fh.read():
                    return
            time.sleep(1)
        raise KepuError(f"Celery worker {name} was not ready within {timeout:.0f} s; see {log_path}")

    def worker_pids(self, name: str) -> list[int]:
        """Worker ``name``'s process tree: Celery, its pool, task supervisors, tasks, their ffmpeg."""
        proc = self.workers.get(name)
        return process_tree(proc.pid) if proc is not None and proc.poll() is None else []

    def kill_worker(self, name: str) -> list[int]:
        """SIGKILL worker ``name`` and every process under it, with no chance to clean up (a crashed
        machine or an OOM-killed container); return the pids killed. Its tasks are left running in
        the metadata until the scheduler sees their heartbeats stop."""
        proc = self.workers.pop(name)
        pids = kill_tree(proc.pid)
        proc.wait(timeout=30)
        log.info("killed worker %s: pids %s", name, pids)
        return pids

    def stop_worker(self, name: str, *, timeout: float = 60) -> None:
        """Stop worker ``name`` (Celery's warm shutdown), killing its tree after ``timeout``."""
        proc = self.workers.pop(name)
        if proc.poll() is None:
            pids = process_tree(proc.pid)
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("worker %s did not stop within %.0f s; killing it", name, timeout)
            for pid in pids:  # what the warm shutdown left behind
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc.wait(timeout=30)

    def __enter__(self) -> LocalAirflow:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for_dag(self, dag_id: str, *, timeout: float = 600) -> None:
        """Wait until the dag-processor has serialized ``dag_id`` (import errors are raised)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self._query("SELECT 1 AS found FROM serialized_dag WHERE dag_id = :dag_id", dag_id=dag_id)
            if found:
                return
            errors = self._query("SELECT filename, stacktrace FROM import_error")
            if errors:
                raise KepuError(f"DAG import errors: {errors}")
            time.sleep(2)
        raise KepuError(f"DAG {dag_id} did not appear within {timeout:.0f} s")

    @contextlib.contextmanager
    def _metadata(self) -> Iterator[Any]:
        """A connection to the metadata database (SQLite read-only, or PostgreSQL), via SQLAlchemy.

        Polling through the Airflow CLI (``dags list``, ``dags list-runs``) would start a whole
        Airflow process, seconds of CPU, every few seconds: on a 2-core machine that takes a
        quarter of it away from the components and the run being waited for.
        """
        import sqlalchemy as sa

        if self._engine is None:
            url = str(self.metadata_url)
            if url.startswith("sqlite:///"):
                db = url.removeprefix("sqlite:///")
                self._engine = sa.create_engine(
                    f"sqlite:///file:{db}?mode=ro&uri=true", connect_args={"timeout": 30}, poolclass=sa.NullPool
                )
            else:
                self._engine = sa.create_engine(url, poolclass=sa.NullPool)
        with self._engine.connect() as conn:
            yield conn

    def _query(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        """Rows of a read-only query on the metadata database, as dicts."""
        import sqlalchemy as sa

        with self._metadata() as conn:
            return [dict(row._mapping) for row in conn.execute(sa.text(sql), params)]

    def dead_components(self) -> list[str]:
        """Components that exited although nobody stopped them (``scheduler``, ``api-server`` …)."""
        return [self._names.get(p.pid, str(p.pid)) for p in self.procs if p.poll() is not None]

    def run_progress(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """Where a run is: ``state``; ``total`` and ``done`` task instances (mapped ones counted once
        expanded); ``by_state``; ``running`` and ``waiting`` task ids with counts; ``beat``, the latest
        heartbeat of its running tasks (a running task's supervisor beats every few seconds)."""
        rows = self._query(
            "SELECT task_id, state, last_heartbeat_at FROM task_instance WHERE dag_id = :dag_id AND run_id = :run_id",
            dag_id=dag_id,
            run_id=run_id,
        )
        by_state: dict[str, int] = {}
        running: dict[str, int] = {}
        waiting: dict[str, int] = {}
        beat = None
        for row in rows:
            state = str(row["state"] or "none")
            by_state[state] = by_state.get(state, 0) + 1
            if state == "running":
                running[row["task_id"]] = running.get(row["task_id"], 0) + 1
                if row["last_heartbeat_at"] is not None:
                    beat = max(beat or str(row["last_heartbeat_at"]), str(row["last_heartbeat_at"]))
            elif state in ("queued", "scheduled", "deferred", "up_for_retry", "up_for_reschedule"):
                waiting[f"{row['task_id']} ({state})"] = waiting.get(f"{row['task_id']} ({state})", 0) + 1
        return {
            "state": self.run_state(dag_id, run_id),
            "total": len(rows),
            "done": sum(n for s, n in by_state.items() if s in FINISHED_TASK_STATES),
            "by_state": by_state,
            "running": running,
            "waiting": waiting,
            "beat": beat,
        }

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call the REST API of this instance's api-server as its admin (``/api/v2/…``); the decoded answer.

        Triggering and unpausing go through the API as the UI's do: an ``airflow dags trigger`` or ``dags unpause``
        process would cost seconds of CPU each before it did anything. An answer of HTTP 5xx on the SQLite
        metadata database (a write that met another component's, as in :meth:`prepare_metadata`) is asked again,
        up to :data:`SQLITE_LOCKED_ATTEMPTS` times in all; a refused token is renewed once; any other error raises
        :class:`KepuError` with Airflow's detail.
        """
        data = None if body is None else json.dumps(body).encode()
        attempt, renewed = 1, False
        while True:
            request = urllib.request.Request(
                f"{self.url}{path}",
                data=data,
                method=method,
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {self._token()}"},
            )
            try:
                with urllib.request.urlopen(request, timeout=180) as resp:
                    raw = resp.read()
                return json.loads(raw) if raw else None
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", "replace")[-2000:]
                if exc.code == 401 and not renewed:
                    self._api_token, renewed = None, True  # expired: log in again, once
                elif self.on_sqlite and exc.code >= 500 and attempt < SQLITE_LOCKED_ATTEMPTS:
                    log.warning("%s %s: HTTP %d; asking again", method, path, exc.code)
                    time.sleep(2 * attempt)
                    attempt += 1
                else:
                    raise KepuError(f"{method} {path}: HTTP {exc.code} {detail}") from None
            except OSError as exc:  # refused, reset or timed out: the api-server is down or stuck
                raise KepuError(f"{method} {path}: the api-server at {self.url} did not answer ({exc})") from None

    def _token(self) -> str:
        """An access token of the embedded UI's admin (``POST /auth/token``), kept until it is refused."""
        if self._api_token is None:
            request = urllib.request.Request(
                f"{self.url}/auth/token",
                data=json.dumps({"username": "admin", "password": self.admin_password}).encode(),
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as resp:
                    self._api_token = str(json.loads(resp.read())["access_token"])
            except urllib.error.HTTPError as exc:
                raise KepuError(f"the api-server refused the admin's login: HTTP {exc.code}") from None
            except OSError as exc:
                raise KepuError(f"the api-server at {self.url} did not answer the admin's login ({exc})") from None
        return self._api_token

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"/api/v2/dags/{quote(dag_id, safe='')}", {"is_paused": False})

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any] | None = None) -> None:
        """Unpause the DAG, then start a manual run ``run_id`` with ``conf`` and no logical date (as
        ``airflow dags trigger`` without ``--logical-date``)."""
        self.unpause(dag_id)
        body = {"dag_run_id": run_id, "logical_date": None, "conf": conf or {}}
        self.api("POST", f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns", body)

    def _metadata_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's runs, from the metadata database."""
        return self._query(
            "SELECT run_id, state, run_type, logical_date, start_date, end_date FROM dag_run WHERE dag_id = :dag_id"
            " ORDER BY id",
            dag_id=dag_id,
        )

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
        """Create a backfill over [from_date, to_date] (ISO dates or times; without a zone, in the instance's
        default time zone, as ``airflow backfill create`` reads them) that runs completed dates again; the
        scheduler runs it."""
        zone = ZoneInfo(self.env["AIRFLOW__CORE__DEFAULT_TIMEZONE"])

        def aware(text: str) -> str:
            moment = datetime.fromisoformat(text)
            return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).isoformat()

        self.unpause(dag_id)
        body = {
            "dag_id": dag_id,
            "from_date": aware(from_date),
            "to_date": aware(to_date),
            "reprocess_behavior": "completed",
        }
        self.api("POST", "/api/v2/backfills", body)

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

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of a run, from the metadata database: ``task_id``, ``map_index``,
        ``state``, ``try_number``, ``queue``, ``pool``, ``hostname`` (the worker that ran its last
        try), ``start_date``, ``end_date``."""
        return self._query(
            "SELECT task_id, map_index, state, try_number, queue, pool, hostname, start_date, end_date"
            " FROM task_instance WHERE dag_id = :dag_id AND run_id = :run_id ORDER BY task_id, map_index",
            dag_id=dag_id,
            run_id=run_id,
        )

    def task_tries(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Finished earlier tries of a run's task instances (Airflow's ``task_instance_history``)."""
        return self._query(
            "SELECT task_id, map_index, try_number, state, hostname FROM task_instance_history"
            " WHERE dag_id = :dag_id AND run_id = :run_id ORDER BY task_id, map_index, try_number",
            dag_id=dag_id,
            run_id=run_id,
        )
