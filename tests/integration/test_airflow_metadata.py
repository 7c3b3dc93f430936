"""The embedded Airflow prepared by one process (``kepu.orchestration.metadata``): a new home gets its
``airflow.cfg`` with one Fernet key before any component starts, and a new SQLite database migrated to Airflow's head
with the media pool; at the next start it is prepared again (nothing to migrate; the pool resized to the slots asked
for; the configuration and its key kept). Its dag-processor reads a changed DAG file first and an unchanged one
every two minutes."""

from __future__ import annotations

import configparser
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from kepu.localairflow import DAG_REPARSE_S, MEDIA_POOL, MEDIA_POOL_DESCRIPTION, LocalAirflow

pytestmark = pytest.mark.integration


def _read(db: Path) -> tuple[list[str], list[tuple[str, int, str]], int]:
    with sqlite3.connect(db) as conn:
        revisions = [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]
        pools = list(conn.execute("SELECT pool, slots, description FROM slot_pool ORDER BY pool"))
        tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    return revisions, pools, tables


def _fernet_key(home: Path) -> str:
    config = configparser.ConfigParser(interpolation=None)
    config.read(home / "airflow.cfg", encoding="utf-8")
    return config.get("core", "fernet_key")


def test_a_new_database_is_migrated_with_the_media_pool_and_prepared_again_at_the_next_start(tmp_path: Path) -> None:
    from airflow.utils.db import _get_script_object
    from cryptography.fernet import Fernet

    head = _get_script_object().get_current_head()
    home = tmp_path / "airflow"
    LocalAirflow(home, media_slots=2).prepare_metadata()
    # The components read the key from here; none of them has to write the file (and make a key of its own).
    key = _fernet_key(home)
    Fernet(key.encode())  # a real key: 32 bytes, URL-safe base64
    revisions, pools, tables = _read(home / "airflow.db")
    assert revisions == [head]
    assert (MEDIA_POOL, 2, MEDIA_POOL_DESCRIPTION) in pools
    assert tables > 50  # Airflow's whole schema, not just the two tables read here

    LocalAirflow(home, media_slots=5).prepare_metadata()
    assert _fernet_key(home) == key
    assert _read(home / "airflow.db") == (
        [head],
        [p if p[0] != MEDIA_POOL else (MEDIA_POOL, 5, MEDIA_POOL_DESCRIPTION) for p in pools],
        tables,
    )


def test_the_embedded_dag_processor_parses_changed_files_first_and_unchanged_ones_every_two_minutes(
    tmp_path: Path,
) -> None:
    # Read back by Airflow itself, in the instance's environment: a misspelt variable would be ignored silently.
    code = (
        "from airflow.configuration import conf; "
        "print(conf.getint('dag_processor', 'min_file_process_interval'), "
        "conf.get('dag_processor', 'file_parsing_sort_mode'))"
    )
    env = LocalAirflow(tmp_path / "airflow").env
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == [str(DAG_REPARSE_S), "modified_time"]
    assert DAG_REPARSE_S == 120  # what the operator guide promises: a changed campaign file in the forms within 2 min
