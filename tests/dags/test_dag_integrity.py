"""Every DAG imports cleanly, carries what an operator needs, and parsing touches no service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"

# Runs in a fresh interpreter so that nothing imported by other tests hides a parse-time import.
PARSE_SCRIPT = textwrap.dedent(
    """
    import json, socket, sqlite3, sys
    calls = []
    def refuse(*args, **kwargs):
        calls.append(repr(args[:2]))
        raise OSError("parsing a DAG must not open a connection")
    socket.socket.connect = refuse
    socket.create_connection = refuse
    real_sqlite_connect = sqlite3.connect
    def counting_sqlite(*args, **kwargs):
        calls.append("sqlite3.connect" + repr(args[:1]))
        return real_sqlite_connect(*args, **kwargs)
    sqlite3.connect = counting_sqlite
    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag(dag_folder=sys.argv[1])
    heavy = sorted(m for m in ("kepu.db", "kepu.pipeline", "kepu.storage", "boto3", "psycopg2", "pandas",
                               "great_expectations", "ffmpeg", "openpyxl") if m in sys.modules)
    dags = {}
    for dag_id, dag in bag.dags.items():
        dags[dag_id] = {
            "file": dag.fileloc,
            "tags": sorted(dag.tags),
            "doc_md": dag.doc_md or "",
            "tasks": {t.task_id: {"retries": t.retries} for t in dag.tasks},
            "params": {k: {**dict(v.schema), "description": v.description} for k, v in dag.params.items()},
        }
    print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
                      "dags": dags, "calls": calls, "heavy": heavy}))
    """
)


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("airflow-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "KEPU_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'never-opened.db'}",
        }
    )
    proc = subprocess.run(
        [sys.executable, "-c", PARSE_SCRIPT, str(DAGS)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_dag_imports(parsed: dict) -> None:
    assert parsed["errors"] == {}
    files = {Path(d["file"]).name for d in parsed["dags"].values()}
    assert {p.name for p in DAGS.glob("*.py") if not p.name.startswith("_")} <= files
    assert "kepu_intake" in parsed["dags"]


def test_parsing_opens_no_connection_and_loads_no_heavy_module(parsed: dict) -> None:
    assert parsed["calls"] == []
    assert parsed["heavy"] == []


def test_dag_id_matches_file_name(parsed: dict) -> None:
    for dag_id, dag in parsed["dags"].items():
        assert Path(dag["file"]).stem == dag_id


def test_each_dag_has_tags_retries_and_bilingual_docs(parsed: dict) -> None:
    for dag_id, dag in parsed["dags"].items():
        assert dag["tags"], dag_id
        assert all(t["retries"] >= 1 for t in dag["tasks"].values()), dag_id
        doc = dag["doc_md"]
        assert len(doc) > 200, dag_id
        assert any("\u4e00" <= ch <= "\u9fff" for ch in doc), f"{dag_id}: doc_md has no Chinese"
        assert "Params" in doc or not dag["params"], dag_id


def test_params_explain_themselves(parsed: dict) -> None:
    for dag_id, dag in parsed["dags"].items():
        for name, schema in dag["params"].items():
            assert schema.get("title") and schema.get("description"), f"{dag_id}.{name}"
