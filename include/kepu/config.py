"""Runtime settings, read from the environment.

The embedded default and production differ only here: ``KEPU_DATABASE_URL`` chooses SQLite or
PostgreSQL, ``KEPU_STORE_URL`` a local folder or an S3 bucket. DAG code never branches on them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from kepu.errors import ConfigError

#: Environment variables understood by :func:`load_settings`, with their meaning.
ENV_VARS: dict[str, str] = {
    "KEPU_HOME": "working folder of the embedded default (records, store, scratch, exports)",
    "KEPU_CAMPAIGN_FILE": "campaign file (rules as data)",
    "KEPU_INBOX": "where the packages arrive: a folder, or s3://bucket/prefix",
    "KEPU_DATABASE_URL": "SQLAlchemy URL of the app records (sqlite:///… or postgresql+psycopg2://…)",
    "KEPU_STORE_URL": "object store: file:///folder or s3://bucket[/prefix]",
    "KEPU_S3_ENDPOINT_URL": "S3 API endpoint (MinIO, a local test endpoint); empty for AWS",
    "KEPU_S3_PUBLIC_URL": "S3 endpoint as operators' browsers reach it, for the dashboard's presigned links "
    "(default: KEPU_S3_ENDPOINT_URL)",
    "KEPU_S3_REGION": "S3 region name",
    "KEPU_S3_RETRY_WINDOW_S": "seconds an S3 operation keeps retrying while the endpoint is unreachable (default 120)",
    "KEPU_SCRATCH_DIR": "local scratch folder for downloads and archive extraction",
    "KEPU_FFMPEG_TIMEOUT_FACTOR": "ffmpeg timeout as a multiple of the media duration",
    "KEPU_FFMPEG_TIMEOUT_FLOOR_S": "shortest ffmpeg timeout in seconds, whatever the duration (default 60; "
    "ffprobe gets twice this)",
    "KEPU_FFMPEG_MEMORY_LIMIT_MB": "address-space limit (RLIMIT_AS, virtual memory) of each ffmpeg/ffprobe in MiB; "
    "a file that needs more is M-UNREADABLE (default 4096 + 512 per CPU this process may use; 0: no limit)",
    "KEPU_CERT_SECRET": "secret key of the certificate numbers (HMAC); default: a random key kept in "
    "$KEPU_HOME/cert-secret",
    "KEPU_PORTAL_SECRET": "secret key of the judges' portal links (HMAC); default: a random key kept in "
    "$KEPU_HOME/portal-secret. The api-server and the workers must share it",
    "KEPU_BATCH_SIZE": "submissions per mapped task of the intake steps (default 1: a real video takes minutes)",
    "KEPU_MAX_TASKS_PER_STEP": "most mapped tasks of one intake step; more submissions share tasks (default 256)",
    "KEPU_PUBLIC_BASE_URL": "address the public reaches the dashboard at, printed on certificates "
    "({base}/kepu/verify/{number}) and used in e-mails (default: the embedded Airflow UI's address, "
    "AIRFLOW__API__BASE_URL, else http://127.0.0.1:8080)",
    "KEPU_FETCH_ALLOW_HOSTS": "tests and private mirrors only: non-public hosts, host:port or networks that "
    "direct links may be downloaded from (default: none, only public addresses)",
    "KEPU_MEDIA_MEMO": "folder where the probes, analyses and OCR readings of videos and the stills of publication "
    "copies are kept by content, so that a rerun or a backfill does not decode an unchanged video again "
    "(default: $KEPU_HOME/cache/media; off: none)",
    "KEPU_SHEETS_POLL_S": "how often, in seconds, a judging round waiting for its returned sheets looks at the "
    "store (default 300; at least 5)",
    "KEPU_SAMPLE_CACHE": "folder where `kepu sample inbox` and `make demo` keep the sample videos' base clips, "
    "covers, narration and subtitles by content, shared by every inbox made (default: <inbox>.sample-cache beside each)",
}

_REPO_ROOT = Path(__file__).resolve().parents[2]


def _default_campaign_file() -> Path:
    """The repository's campaign file; in an image the package is installed away from it, so
    ``$AIRFLOW_HOME/include/campaigns`` is looked at too."""
    name = Path("include") / "campaigns" / "2022.yaml"
    candidates = [
        _REPO_ROOT / name,
        Path(os.environ.get("AIRFLOW_HOME", "/opt/airflow")) / name,
        Path.cwd() / name,
    ]
    return next((c for c in candidates if c.exists()), candidates[0])


DEFAULT_CAMPAIGN_FILE = _default_campaign_file()

#: Below this ffprobe cannot even load its libraries (its address space at start is about 270 MiB).
MIN_MEMORY_LIMIT_MB = 300

#: The default address-space limit of an ffmpeg/ffprobe child: a base plus a share per CPU, because FFmpeg
#: starts about one decoding (and encoding) thread per CPU for every input, each with its own stack and
#: frame buffers. RLIMIT_AS counts that reserved virtual memory, which is several times the resident size:
#: the heaviest command of an analysis (the subtitle frames: a dozen seeks into a 1080p H.264 file) needs
#: 2.4 GiB of address space on 2 CPUs (0.6 GiB resident), about 8 GiB with 16 decoding threads and 22 GiB
#: with 64 (1.4–1.6 GiB resident); see bench/bench_hostile.py --memory.
MEMORY_LIMIT_BASE_MB = 4096
MEMORY_LIMIT_PER_CPU_MB = 512


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def default_memory_limit_mb() -> int:
    """The address-space limit of an ffmpeg/ffprobe child when ``KEPU_FFMPEG_MEMORY_LIMIT_MB`` is not set."""
    return MEMORY_LIMIT_BASE_MB + MEMORY_LIMIT_PER_CPU_MB * _cpus()


def ffmpeg_memory_limit_mb(environ: Mapping[str, str] | None = None) -> int:
    """The address-space limit of each ffmpeg/ffprobe child in MiB (0: none), from ``KEPU_FFMPEG_MEMORY_LIMIT_MB``.

    Read from the environment on every call, so the runner, which has no settings object, follows it.
    """
    env = os.environ if environ is None else environ
    text = (env.get("KEPU_FFMPEG_MEMORY_LIMIT_MB") or "").strip()
    if not text:
        return default_memory_limit_mb()
    try:
        value = int(text)
    except ValueError as exc:
        raise ConfigError(f"KEPU_FFMPEG_MEMORY_LIMIT_MB is not a whole number of MiB: {text!r}") from exc
    if value != 0 and value < MIN_MEMORY_LIMIT_MB:
        raise ConfigError(
            f"KEPU_FFMPEG_MEMORY_LIMIT_MB must be 0 (no limit) or at least {MIN_MEMORY_LIMIT_MB} MiB "
            f"(ffmpeg cannot even start below that), got {value}"
        )
    return value


def media_memo_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """Where measurements and stills are kept by content (kepu.media.memo), or None when that is off.

    ``KEPU_MEDIA_MEMO`` names the folder (``off`` turns the memo off); without it, ``cache/media`` under
    ``KEPU_HOME``; a process with neither keeps nothing. Read from the environment on every call, like
    :func:`ffmpeg_memory_limit_mb`, because the media commands run without a settings object.
    """
    env = os.environ if environ is None else environ
    text = (env.get("KEPU_MEDIA_MEMO") or "").strip()
    if text.lower() == "off":
        return None
    if text:
        return Path(text)
    home = (env.get("KEPU_HOME") or "").strip()
    return Path(home) / "cache" / "media" if home else None


#: Seconds between two looks of a judging round waiting for its sheets: by default, and the fewest allowed.
DEFAULT_SHEETS_POLL_S = 300.0
MIN_SHEETS_POLL_S = 5.0


def sheets_poll_s(environ: Mapping[str, str] | None = None) -> float:
    """Seconds between two looks of a round waiting for returned sheets (``KEPU_SHEETS_POLL_S``).

    Read from the environment when the wait starts (kepu.orchestration.sensors), which has no settings object.
    """
    env = os.environ if environ is None else environ
    text = (env.get("KEPU_SHEETS_POLL_S") or "").strip()
    if not text:
        return DEFAULT_SHEETS_POLL_S
    try:
        value = float(text)
    except ValueError as exc:
        raise ConfigError(f"KEPU_SHEETS_POLL_S is not a number of seconds: {text!r}") from exc
    if not value >= MIN_SHEETS_POLL_S:  # also refuses nan
        raise ConfigError(f"KEPU_SHEETS_POLL_S must be at least {MIN_SHEETS_POLL_S:g} s, got {text!r}")
    return value


DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:8080"


@dataclass(frozen=True)
class Settings:
    home: Path
    campaign_file: Path
    inbox: Path
    #: The inbox as configured: a folder path, or an ``s3://bucket/prefix`` URL.
    inbox_url: str
    database_url: str
    store_url: str
    s3_endpoint_url: str | None
    s3_region: str
    scratch_dir: Path
    ffmpeg_timeout_factor: float
    #: The S3 endpoint as a browser reaches it (MinIO behind a proxy); None: the API endpoint itself.
    s3_public_url: str | None = None
    #: Key of the certificate numbers; None: a random key kept under ``home`` (see kepu.certificates.numbers).
    cert_secret: str | None = None
    #: Key of the judges' portal links; None: a random key kept under ``home`` (see kepu.judging.portal).
    portal_secret: str | None = None
    #: The public address of the dashboard (certificate verification links), without a trailing slash.
    public_base_url: str = DEFAULT_PUBLIC_BASE_URL
    #: Whether ``KEPU_PUBLIC_BASE_URL`` chose it; otherwise it follows the Airflow UI a process runs under
    #: (``AIRFLOW__API__BASE_URL``, which the embedded Airflow sets to the port it listens on).
    public_base_url_set: bool = False
    #: Submissions per mapped task of the intake steps, and the most mapped tasks of one step
    #: (kepu.batches.plan_batches): a run holds at most a few times ``max_tasks_per_step`` tasks.
    batch_size: int = 1
    max_tasks_per_step: int = 256
    #: No ffmpeg command gets a shorter timeout than this (see kepu.media.runner.media_timeout).
    ffmpeg_timeout_floor_s: float = 60.0
    #: Seconds an S3 operation is retried while the endpoint is unreachable or overloaded (kepu.storage).
    s3_retry_window_s: float = 120.0
    #: Address-space limit of each ffmpeg/ffprobe child in MiB, 0 for none (kepu.media.runner); None: the default.
    ffmpeg_memory_limit_mb: int | None = None

    @property
    def outbox_dir(self) -> Path:
        """Where the embedded default's mail sink keeps the e-mails it received (kepu.mailsink)."""
        return self.home / "outbox"

    def as_env(self) -> dict[str, str]:
        """The settings as environment variables, for child processes."""
        env = {
            "KEPU_HOME": str(self.home),
            "KEPU_CAMPAIGN_FILE": str(self.campaign_file),
            "KEPU_INBOX": self.inbox_url,
            "KEPU_DATABASE_URL": self.database_url,
            "KEPU_STORE_URL": self.store_url,
            "KEPU_S3_REGION": self.s3_region,
            "KEPU_SCRATCH_DIR": str(self.scratch_dir),
            "KEPU_FFMPEG_TIMEOUT_FACTOR": str(self.ffmpeg_timeout_factor),
            "KEPU_FFMPEG_TIMEOUT_FLOOR_S": str(self.ffmpeg_timeout_floor_s),
        }
        if self.s3_endpoint_url:
            env["KEPU_S3_ENDPOINT_URL"] = self.s3_endpoint_url
        if self.s3_public_url:
            env["KEPU_S3_PUBLIC_URL"] = self.s3_public_url
        if self.cert_secret:
            env["KEPU_CERT_SECRET"] = self.cert_secret
        if self.portal_secret:
            env["KEPU_PORTAL_SECRET"] = self.portal_secret
        if self.public_base_url_set:
            env["KEPU_PUBLIC_BASE_URL"] = self.public_base_url
        env["KEPU_BATCH_SIZE"] = str(self.batch_size)
        env["KEPU_MAX_TASKS_PER_STEP"] = str(self.max_tasks_per_step)
        env["KEPU_S3_RETRY_WINDOW_S"] = f"{self.s3_retry_window_s:g}"
        if self.ffmpeg_memory_limit_mb is not None:
            env["KEPU_FFMPEG_MEMORY_LIMIT_MB"] = str(self.ffmpeg_memory_limit_mb)
        return env


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``environ`` (default: the process environment).

    An unknown ``KEPU_*`` variable is an error, so that a misspelt setting is never silently ignored.
    """
    env = dict(os.environ if environ is None else environ)
    unknown = sorted(k for k in env if k.startswith("KEPU_") and k not in ENV_VARS)
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(ENV_VARS)}")
    home = Path(env.get("KEPU_HOME") or Path.cwd() / ".kepu").resolve()
    try:
        factor = float(env.get("KEPU_FFMPEG_TIMEOUT_FACTOR") or 4.0)
    except ValueError as exc:
        raise ConfigError(f"KEPU_FFMPEG_TIMEOUT_FACTOR is not a number: {exc}") from exc
    try:
        floor = float(env.get("KEPU_FFMPEG_TIMEOUT_FLOOR_S") or 60.0)
    except ValueError as exc:
        raise ConfigError(f"KEPU_FFMPEG_TIMEOUT_FLOOR_S is not a number: {exc}") from exc
    if floor <= 0:
        raise ConfigError(f"KEPU_FFMPEG_TIMEOUT_FLOOR_S must be positive, got {floor}")
    try:
        s3_retry_window_s = float(env.get("KEPU_S3_RETRY_WINDOW_S") or 120.0)
    except ValueError as exc:
        raise ConfigError(f"KEPU_S3_RETRY_WINDOW_S is not a number: {exc}") from exc
    if not 0 <= s3_retry_window_s <= 24 * 3600:
        raise ConfigError(f"KEPU_S3_RETRY_WINDOW_S must be between 0 and 86400 s, got {s3_retry_window_s:g}")
    batch_size = _positive_int(env, "KEPU_BATCH_SIZE", 1)
    memory_limit_mb = ffmpeg_memory_limit_mb(env) if (env.get("KEPU_FFMPEG_MEMORY_LIMIT_MB") or "").strip() else None
    max_tasks_per_step = _positive_int(env, "KEPU_MAX_TASKS_PER_STEP", 256)
    store_url = env.get("KEPU_STORE_URL") or (home / "store").as_uri()
    public_base_url_set = bool(env.get("KEPU_PUBLIC_BASE_URL"))
    public_base_url = (
        env.get("KEPU_PUBLIC_BASE_URL") or env.get("AIRFLOW__API__BASE_URL") or DEFAULT_PUBLIC_BASE_URL
    ).rstrip("/")
    if not public_base_url.startswith(("http://", "https://")):
        name = "KEPU_PUBLIC_BASE_URL" if public_base_url_set else "AIRFLOW__API__BASE_URL"
        raise ConfigError(f"{name} must start with http:// or https://, got {public_base_url!r}")
    if not store_url.startswith(("file://", "s3://")):
        raise ConfigError(f"KEPU_STORE_URL must start with file:// or s3://, got {store_url!r}")
    return Settings(
        home=home,
        campaign_file=Path(env.get("KEPU_CAMPAIGN_FILE") or DEFAULT_CAMPAIGN_FILE),
        inbox=Path(env.get("KEPU_INBOX") or home / "inbox"),
        inbox_url=env.get("KEPU_INBOX") or str(home / "inbox"),
        database_url=env.get("KEPU_DATABASE_URL") or f"sqlite:///{home / 'records.db'}",
        store_url=store_url,
        s3_endpoint_url=env.get("KEPU_S3_ENDPOINT_URL") or None,
        s3_region=env.get("KEPU_S3_REGION") or "us-east-1",
        scratch_dir=Path(env.get("KEPU_SCRATCH_DIR") or home / "scratch"),
        ffmpeg_timeout_factor=factor,
        s3_public_url=env.get("KEPU_S3_PUBLIC_URL") or None,
        cert_secret=env.get("KEPU_CERT_SECRET") or None,
        portal_secret=env.get("KEPU_PORTAL_SECRET") or None,
        public_base_url=public_base_url,
        public_base_url_set=public_base_url_set,
        ffmpeg_timeout_floor_s=floor,
        s3_retry_window_s=s3_retry_window_s,
        batch_size=batch_size,
        max_tasks_per_step=max_tasks_per_step,
        ffmpeg_memory_limit_mb=memory_limit_mb,
    )


def _positive_int(env: dict[str, str], name: str, default: int) -> int:
    try:
        value = int(env.get(name) or default)
    except ValueError as exc:
        raise ConfigError(f"{name} is not a whole number: {exc}") from exc
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, got {value}")
    return value


SETTINGS_FIELDS = tuple(f.name for f in fields(Settings))
