"""Every DAG imports cleanly, carries what an operator needs, and parsing touches no service."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from kepu.campaign import load_campaign
from kepu.config import DEFAULT_CAMPAIGN_FILE
from kepu.orchestration.dagkit import MAP_LABEL, WATCHER_TASK_ID, default_args

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
    heavy = sorted(m for m in ("kepu.db", "kepu.context", "kepu.intake.steps", "kepu.storage", "boto3", "psycopg2",
                               "pandas", "great_expectations", "ffmpeg", "openpyxl") if m in sys.modules)
    dags = {}
    for dag_id, dag in bag.dags.items():
        dags[dag_id] = {
            "file": dag.fileloc,
            "tags": sorted(dag.tags),
            "doc_md": dag.doc_md or "",
            "tasks": {
                t.task_id: {
                    "retries": t.retries,
                    "owner": t.owner,
                    "retry_exponential_backoff": bool(t.retry_exponential_backoff),
                    "trigger_rule": str(t.trigger_rule.value if hasattr(t.trigger_rule, "value") else t.trigger_rule),
                    "upstream": sorted(t.upstream_task_ids),
                    "mapped": bool(getattr(t, "is_mapped", False)),
                    "map_index_template": getattr(t, "map_index_template", None),
                }
                for t in dag.tasks
            },
            "params": {k: {**dict(v.schema), "description": v.description} for k, v in dag.params.items()},
            # The form's starting values; a Param without a default has none (the form shows an empty field).
            "defaults": {k: v.value for k, v in dag.params.items() if v.has_value or v.value is None},
            "asset_scheduled": bool(getattr(dag.timetable, "asset_condition", None)),
            "is_paused_upon_creation": dag.is_paused_upon_creation,
        }
    # A re-release without a reason is refused before anything is opened (run after "heavy" is taken).
    release = bag.dags["kepu_release_results"].get_task("release_results")
    try:
        release.python_callable(params={"confirm": "2022", "released_by": "x", "reason": None, "re_release": True})
        refused = None
    except Exception as exc:
        refused = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
                      "dags": dags, "calls": calls, "heavy": heavy, "re_release_refused": refused}))
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
        # The watcher fails on purpose: retrying it would only delay the run's failure.
        assert all(t["retries"] >= 1 for name, t in dag["tasks"].items() if name != WATCHER_TASK_ID), dag_id
        doc = dag["doc_md"]
        assert len(doc) > 200, dag_id
        assert any("\u4e00" <= ch <= "\u9fff" for ch in doc), f"{dag_id}: doc_md has no Chinese"
        assert "Params" in doc or not dag["params"], dag_id


def test_params_explain_themselves(parsed: dict) -> None:
    for dag_id, dag in parsed["dags"].items():
        for name, schema in dag["params"].items():
            assert schema.get("title") and schema.get("description"), f"{dag_id}.{name}"


# --- trigger forms ---------------------------------------------------------------------------------------
#
# Airflow 3's trigger form (airflow/ui/src/components/FlexibleForm/isParamRequired.tsx) takes a Param as
# required when its schema has a "type" that does not include "null", and keeps Trigger disabled while a
# required field is null, undefined or "". A field an operator empties is sent as null. So every Param an
# operator may leave empty must allow null, and the defaults must pass the Param's own schema.

#: Params an operator must fill in before Trigger is enabled, by DAG; every other Param starts valid.
REQUIRED_IN_FORM: dict[str, dict[str, object]] = {
    "kepu_release_results": {"confirm": "2022", "released_by": "李主任"},
}
OPERATOR_DAGS = {"kepu_intake", "kepu_judging", "kepu_certificates", "kepu_publication", "kepu_release_results"}


def form_requires(schema: dict) -> bool:
    """The UI's rule: a type is set and "null" is not among its types."""
    kind = schema.get("type")
    return bool(kind) and not (isinstance(kind, list) and "null" in kind)


def _params_dict(dag: dict, values: dict[str, object]) -> Any:
    from airflow.sdk.definitions.param import Param, ParamsDict

    params = {}
    for name, schema in dag["params"].items():
        spec = {k: v for k, v in schema.items() if k != "description"}
        if name in values:
            params[name] = Param(values[name], description=schema["description"], **spec)
        else:
            params[name] = Param(description=schema["description"], **spec)
    return ParamsDict(params)


def test_every_operator_dag_has_a_form_checked_here(parsed: dict) -> None:
    assert set(parsed["dags"]) == OPERATOR_DAGS


@pytest.mark.parametrize("dag_id", sorted(OPERATOR_DAGS))
def test_trigger_form_starts_valid_from_its_defaults(parsed: dict, dag_id: str) -> None:
    dag = parsed["dags"][dag_id]
    required = REQUIRED_IN_FORM.get(dag_id, {})
    blocked = {
        name
        for name, schema in dag["params"].items()
        if form_requires(schema) and dag["defaults"].get(name) in (None, "")
    }
    assert blocked == set(required), f"{dag_id}: the form would hold Trigger back for {blocked - set(required)}"
    # What the form submits untouched (plus the required fields typed in) passes Airflow's validation.
    resolved = _params_dict(dag, {**dag["defaults"], **required}).validate()
    assert set(resolved) == set(dag["params"])


@pytest.mark.parametrize("dag_id", sorted(OPERATOR_DAGS))
def test_every_optional_field_can_be_emptied(parsed: dict, dag_id: str) -> None:
    """An emptied field is sent as null: every field the form does not require must accept it."""
    dag = parsed["dags"][dag_id]
    required = REQUIRED_IN_FORM.get(dag_id, {})
    for name, schema in dag["params"].items():
        if form_requires(schema):
            continue
        values = {**dag["defaults"], **required, name: None}
        _params_dict(dag, values).validate()  # raises ParamValidationError naming the Param


def test_required_release_fields_refuse_a_run_without_them(parsed: dict) -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    dag = parsed["dags"]["kepu_release_results"]
    assert "confirm" not in dag["defaults"] and "released_by" not in dag["defaults"]
    for missing in ("confirm", "released_by"):
        values = {**dag["defaults"], **REQUIRED_IN_FORM["kepu_release_results"]}
        del values[missing]
        with pytest.raises(ParamValidationError, match=missing):
            _params_dict(dag, values).validate()
        with pytest.raises(ParamValidationError, match=missing):
            _params_dict(dag, {**values, missing: ""}).validate()
    assert dag["defaults"]["reason"] is None and not form_requires(dag["params"]["reason"])


def test_province_is_a_dropdown_of_every_province_where_empty_means_all(parsed: dict) -> None:
    from kepu.provinces import PROVINCES

    schema = parsed["dags"]["kepu_intake"]["params"]["province"]
    assert parsed["dags"]["kepu_intake"]["defaults"]["province"] is None
    assert schema["enum"] == [None, *(full for full, _ in PROVINCES)]
    assert "全部" in schema["values_display"]["null"]
    assert set(schema["values_display"]) == {"null", *(full for full, _ in PROVINCES)}


def test_form_rule_matches_the_installed_ui() -> None:
    """The rule above is the one the installed UI bundle runs (a newer Airflow may change it)."""
    import airflow

    assets = Path(airflow.__file__).parent / "ui" / "dist" / "assets"
    bundles = [p.read_text(encoding="utf-8", errors="replace") for p in assets.glob("index-*.js")]
    assert bundles, f"no UI bundle under {assets}"
    rule = re.compile(
        r"!!(\w+)\.schema\.type&&\(!Array\.isArray\(\1\.schema\.type\)\|\|!\1\.schema\.type\.includes\(`null`\)\)"
    )
    assert any(rule.search(text) for text in bundles), "the UI's rule for a required field changed"


def test_asset_scheduled_dags_are_active_from_creation(parsed: dict) -> None:
    """An asset event queues runs only for DAGs that are not paused: one paused at creation misses the release."""
    scheduled = {dag_id for dag_id, dag in parsed["dags"].items() if dag["asset_scheduled"]}
    assert scheduled == {"kepu_certificates", "kepu_publication"}
    for dag_id in scheduled:
        assert parsed["dags"][dag_id]["is_paused_upon_creation"] is False, dag_id


def test_a_re_release_without_a_reason_fails_clearly(parsed: dict) -> None:
    refused = parsed["re_release_refused"]
    assert refused is not None and refused.startswith("AirflowFailException"), refused
    assert "reason" in refused and "理由" in refused


# --- the DAG kit -----------------------------------------------------------------------------------------


def test_every_task_runs_with_the_kits_default_args(parsed: dict) -> None:
    kit = default_args()
    for dag_id, dag in parsed["dags"].items():
        for name, t in dag["tasks"].items():
            assert t["owner"] == kit["owner"], f"{dag_id}.{name}"
            if name != WATCHER_TASK_ID:
                assert t["retries"] == kit["retries"], f"{dag_id}.{name}"
                assert t["retry_exponential_backoff"] is kit["retry_exponential_backoff"], f"{dag_id}.{name}"


def test_every_dag_has_the_failure_watcher_downstream_of_every_task(parsed: dict) -> None:
    for dag_id, dag in parsed["dags"].items():
        watcher = dag["tasks"].get(WATCHER_TASK_ID)
        assert watcher is not None, f"{dag_id} has no failure watcher"
        assert watcher["trigger_rule"] == "one_failed" and watcher["retries"] == 0, dag_id
        assert set(watcher["upstream"]) == set(dag["tasks"]) - {WATCHER_TASK_ID}, dag_id


def test_every_mapped_task_is_labelled_alike(parsed: dict) -> None:
    mapped = {
        f"{dag_id}.{name}": t["map_index_template"]
        for dag_id, dag in parsed["dags"].items()
        for name, t in dag["tasks"].items()
        if t["mapped"]
    }
    assert mapped, "no mapped task found"
    assert set(mapped.values()) == {MAP_LABEL}, mapped


def test_dag_files_hold_no_default_args_failure_handling_or_caps_of_their_own() -> None:
    """Default args, operator errors, the watcher and map caps come from the kit, not from a DAG file."""
    for path in sorted(DAGS.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        for own in (
            "DEFAULT_ARGS",
            "AirflowFailException",
            'trigger_rule="one_failed"',
            "max_map_length",
            "MAX_TASKS",
            "map_index_template",
        ):
            assert own not in text, f"{path.name} has its own {own}"
        assert "default_args=default_args(" in text, path.name


def test_form_choices_are_the_campaign_files(parsed: dict) -> None:
    """The stage and platform choices are read from the campaign file, in its order, never copied into a DAG."""
    campaign = load_campaign(DEFAULT_CAMPAIGN_FILE)
    stage = parsed["dags"]["kepu_judging"]["params"]["stage"]
    assert stage["enum"] == [s.key for s in campaign.judging.scoring_stages]
    assert parsed["dags"]["kepu_judging"]["defaults"]["stage"] == campaign.judging.scoring_stages[0].key
    assert stage["values_display"] == {s.key: f"{s.zh} {s.key}" for s in campaign.judging.scoring_stages}
    platforms = parsed["dags"]["kepu_publication"]["params"]["platforms"]
    assert platforms["items"]["enum"] == [p.key for p in campaign.publication.platforms]
    assert platforms["values_display"] == {p.key: f"{p.zh} {p.key}" for p in campaign.publication.platforms}
    for path in sorted(DAGS.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        for key in [
            *(s.key for s in campaign.judging.scoring_stages),
            *(p.key for p in campaign.publication.platforms),
        ]:
            assert f'"{key}"' not in text, f"{path.name} copies {key!r} from the campaign file"
