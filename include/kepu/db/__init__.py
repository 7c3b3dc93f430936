"""App records: engine set-up and schema migrations.

Importing this package connects to nothing and imports neither SQLAlchemy's engine machinery nor
alembic: DAG files import kepu while the scheduler parses them, and that must stay cheap.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: Key of the PostgreSQL advisory lock held while migrating ("kepu" as an integer).
MIGRATION_LOCK_KEY = 0x6B657075

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()

#: Execution option that makes a SQLite transaction start with ``BEGIN IMMEDIATE``.
WRITE_OPTION = "kepu_write"


def _json_dumps(value: Any) -> str:
    # Keep Chinese readable in the database; str() covers dates and paths in run params.
    return json.dumps(value, ensure_ascii=False, default=str)


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _setup_sqlite(engine: Engine) -> None:
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin; the module's
        # own handling commits implicitly before DDL and never takes a write lock up front.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute("PRAGMA busy_timeout = 30000")
            cur.execute("PRAGMA foreign_keys = ON")
            # WAL lets readers (the UI, reports) run while a DAG task writes.
            cur.execute("PRAGMA journal_mode = WAL")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the lock at BEGIN so a read-then-write upsert cannot interleave with
        # another process's; busy_timeout makes the second writer wait instead of failing.
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def _private_sqlite_file(path: Path) -> None:
    """The records file (and so its -wal/-shm files, which SQLite makes with the same mode) readable by its owner
    only, in a folder made 0700; an existing file of ours is tightened too."""
    from kepu.storage import PRIVATE_FILE_MODE, private_dir

    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE))
    except OSError:
        return  # read-only location: SQLite says so itself
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(OSError):
            if p.stat().st_uid == os.getuid():
                os.chmod(p, PRIVATE_FILE_MODE)


def get_engine(url: str) -> Engine:
    """The engine for ``url``, created on first use and cached per URL.

    SQLite: WAL journal, 30 s busy timeout, foreign keys enforced, parent folder created.
    PostgreSQL: connections are pinged before use so a restarted server is survived.
    """
    with _engines_lock:
        engine = _engines.get(url)
        if engine is not None:
            return engine
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        kwargs: dict[str, Any] = {"json_serializer": _json_dumps}
        if _is_sqlite(url):
            database = parsed.database
            if database and database != ":memory:" and not database.startswith("file:"):
                _private_sqlite_file(Path(database).expanduser())
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        engine = create_engine(url, **kwargs)
        if _is_sqlite(url):
            _setup_sqlite(engine)
        _engines[url] = engine
        log.debug("created engine for %s", parsed.render_as_string(hide_password=True))
        return engine


def dispose_engine(url: str) -> None:
    """Close and forget the cached engine for ``url`` (before dropping its database, in tests)."""
    with _engines_lock:
        engine = _engines.pop(url, None)
    if engine is not None:
        engine.dispose()


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    # No ini file: the migrations ship inside the package and logging stays the host's (Airflow's).
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # configparser treats "%" as interpolation; URL-encoded passwords contain it.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``; a no-op when it is already there.

    The whole upgrade runs in one transaction (both backends have transactional DDL), so a failed
    migration leaves the schema as it was. Concurrent callers are serialised: PostgreSQL through an
    advisory lock, SQLite through its write lock.
    """
    from alembic import command
    from sqlalchemy import text

    engine = get_engine(url)
    cfg = _alembic_config(url)
    postgres = engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        if postgres:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            conn.commit()
        try:
            conn = conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
        finally:
            if postgres:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
                conn.commit()
    log.info("records database at revision %s", current_revision(url))


def current_revision(url: str) -> str | None:
    """The alembic revision the database at ``url`` is at, or ``None`` before the first upgrade."""
    from alembic.runtime.migration import MigrationContext

    with get_engine(url).connect() as conn:
        rev = MigrationContext.configure(conn).get_current_revision()
        conn.rollback()
        return rev


def head_revision() -> str | None:
    """The newest revision shipped with the package."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head()


__all__ = [
    "MIGRATIONS_DIR",
    "current_revision",
    "dispose_engine",
    "get_engine",
    "head_revision",
    "upgrade",
]
