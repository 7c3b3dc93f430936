"""Static checks of the container deployment: docker-compose.yaml, Dockerfile, .env.example.

No Docker engine is needed. The compose file is parsed with PyYAML (anchors and merge keys resolved)
and its ``${VAR}`` references are substituted the way compose does. The airflow-init script is run
with stand-in commands to prove that it refuses the example secrets. When the ``docker compose``
client is installed, it validates the file as well.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from kepu.config import ENV_VARS, load_settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
REQUIREMENTS = ROOT / "requirements.txt"

AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-media-worker",
)
AIRFLOW_AND_INIT = (*AIRFLOW_SERVICES, "airflow-init")
REQUIRED_SERVICES = ("postgres", "redis", "minio", "minio-init", *AIRFLOW_AND_INIT)
EXPECTED_SECRETS = {
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_JWT_SECRET",
    "POSTGRES_PASSWORD",
    "MINIO_ROOT_PASSWORD",
    "AIRFLOW_ADMIN_PASSWORD",
    "KEPU_CERT_SECRET",
    "KEPU_PORTAL_SECRET",
}
PLACEHOLDER_PREFIX = "change-me-"

# --- compose-style variable substitution ------------------------------------------------------------

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_TOKEN = re.compile(rf"\$(?:(?P<escaped>\$)|\{{(?P<braced>[^}}]*)\}}|(?P<named>{_NAME}))")
_BRACED = re.compile(rf"(?P<name>{_NAME})(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.S)


class MissingVariable(Exception):
    """A ``${VAR:?message}`` whose variable is unset or empty."""


def interpolate(text: str, env: dict[str, str]) -> str:
    """Substitute ``$$``, ``$VAR`` and ``${VAR[:-|-|:?|?|:+|+]arg}`` as docker compose does."""

    def repl(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("named"):
            return env.get(match.group("named"), "")
        braced = _BRACED.fullmatch(match.group("braced"))
        assert braced, f"malformed substitution {match.group(0)!r}"
        name, op, arg = braced.group("name"), braced.group("op"), braced.group("arg")
        value = env.get(name)
        if op is None:
            return value or ""
        if op == ":-":
            return value if value else arg
        if op == "-":
            return value if value is not None else arg
        if op == ":+":
            return arg if value else ""
        if op == "+":
            return arg if value is not None else ""
        if (op == ":?" and not value) or (op == "?" and value is None):
            raise MissingVariable(f"{name}: {arg}")
        return value or ""

    return _TOKEN.sub(repl, text)


def referenced_variables(text: str) -> list[tuple[str, str | None]]:
    """``(name, operator)`` of every substitution in ``text``; ``$$`` escapes are skipped."""
    found: list[tuple[str, str | None]] = []
    for match in _TOKEN.finditer(text):
        if match.group("named"):
            found.append((match.group("named"), None))
        elif match.group("braced") is not None:
            braced = _BRACED.fullmatch(match.group("braced"))
            assert braced, f"malformed substitution {match.group(0)!r}"
            found.append((braced.group("name"), braced.group("op")))
    return found


def walk_strings(node: Any):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from walk_strings(key)
            yield from walk_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk_strings(item)


def interpolate_tree(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    return node


# --- fixtures ----------------------------------------------------------------------------------------


def parse_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f"{path.name}: not a NAME=value line: {raw!r}"
        assert re.fullmatch(_NAME, name), f"{path.name}: bad variable name {name!r}"
        values[name] = value
    return values


def generate_secret(name: str) -> str:
    if name == "AIRFLOW_FERNET_KEY":
        from cryptography.fernet import Fernet

        return Fernet.generate_key().decode()
    return secrets.token_hex(24)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return parse_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def secret_names(env_example: dict[str, str]) -> set[str]:
    return {name for name, value in env_example.items() if value.startswith(PLACEHOLDER_PREFIX)}


@pytest.fixture(scope="module")
def dotenv(env_example: dict[str, str], secret_names: set[str]) -> dict[str, str]:
    """A filled-in .env: the example with every change-me value replaced by a generated secret."""
    return {name: generate_secret(name) if name in secret_names else value for name, value in env_example.items()}


@pytest.fixture(scope="module")
def resolved(compose: dict[str, Any], dotenv: dict[str, str]) -> dict[str, Any]:
    return interpolate_tree(compose, dotenv)


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def command_text(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return command if isinstance(command, str) else " ".join(str(part) for part in command)


# --- compose file ------------------------------------------------------------------------------------


def test_compose_parses_with_merge_keys_resolved(compose, services):
    assert "x-airflow-common" in compose
    for name in AIRFLOW_AND_INIT:
        service = services[name]
        assert "<<" not in service, f"{name}: merge key left unresolved"
        assert "<<" not in environment(service)
        assert service["image"] == compose["x-airflow-common"]["image"]


def test_required_services_exist(services):
    missing = [name for name in REQUIRED_SERVICES if name not in services]
    assert not missing, f"services missing from docker-compose.yaml: {missing}"


def test_airflow_services_use_the_image_built_from_the_dockerfile(services):
    for name in AIRFLOW_AND_INIT:
        build = services[name].get("build")
        context = build if isinstance(build, str) else (build or {}).get("context")
        assert context in {".", "./"}, f"{name}: not built from ./Dockerfile"
        if isinstance(build, dict):
            assert build.get("dockerfile", "Dockerfile") == "Dockerfile"


def test_executor_is_celery_and_examples_are_off(services):
    for name in AIRFLOW_AND_INIT:
        env = environment(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false", name
        assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"].lower() == "true", name
        for key in (
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
            "AIRFLOW__CELERY__RESULT_BACKEND",
            "AIRFLOW__CELERY__BROKER_URL",
            "AIRFLOW__CORE__FERNET_KEY",
        ):
            assert env.get(key), f"{name}: {key} is not set"


def _campaign_timezone(services: dict[str, dict[str, Any]]) -> str:
    from kepu.campaign import load_campaign

    shipped = Path(environment(services["airflow-worker"])["KEPU_CAMPAIGN_FILE"]).name
    return load_campaign(ROOT / "include" / "campaigns" / shipped).campaign.timezone


def test_airflow_runs_on_the_campaigns_time_zone(services):
    zone = _campaign_timezone(services)
    assert zone == "Asia/Shanghai"
    for name in AIRFLOW_AND_INIT:
        env = environment(services[name])
        assert env.get("AIRFLOW__CORE__DEFAULT_TIMEZONE") == zone, name
        assert env.get("TZ") == zone, name


def test_dags_the_release_starts_are_not_paused_at_creation(services):
    """Compose pauses new DAGs; a paused DAG never receives the release event, so the asset-scheduled DAGs opt out."""
    import ast

    scheduled = {}
    for path in sorted((ROOT / "dags").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "dag":
                kwargs = {kw.arg: kw.value for kw in node.keywords}
                if isinstance(kwargs.get("schedule"), ast.List):  # schedule=[ASSET, …]
                    paused = kwargs.get("is_paused_upon_creation")
                    scheduled[path.stem] = paused.value if isinstance(paused, ast.Constant) else None
    assert scheduled == {"kepu_certificates": False, "kepu_publication": False}
    for name in AIRFLOW_SERVICES:
        assert environment(services[name])["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"].lower() == "true", name


_AIRFLOW_OPTIONS = """
import json
from airflow.configuration import retrieve_configuration_description
sections = retrieve_configuration_description(include_airflow=True, include_providers=True)
print(json.dumps({name: sorted(section["options"]) for name, section in sections.items()}))
"""


def test_every_airflow_setting_is_one_this_airflow_knows(services, tmp_path):
    """A misspelt or removed option (such as Airflow 2's default_ui_timezone) would be ignored without a word."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env["AIRFLOW_HOME"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", _AIRFLOW_OPTIONS], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    known = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "default_timezone" in known["core"]
    assert not any("ui_timezone" in option for options in known.values() for option in options)
    for name in AIRFLOW_AND_INIT:
        for key in environment(services[name]):
            if not key.startswith("AIRFLOW__"):
                continue
            section, _, option = key.removeprefix("AIRFLOW__").lower().partition("__")
            assert section in known, f"{name}: {key}: no section [{section}] in this Airflow"
            assert option in known[section], f"{name}: {key}: [{section}] has no option {option}"


def test_celery_urls_point_at_the_compose_services(resolved):
    env = environment(resolved["services"]["airflow-worker"])
    broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
    assert broker.scheme == "redis" and broker.hostname == "redis"
    backend = urlsplit(env["AIRFLOW__CELERY__RESULT_BACKEND"])
    assert backend.scheme == "db+postgresql" and backend.hostname == "postgres"
    assert backend.path == "/airflow"
    metadata = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert metadata.scheme == "postgresql+psycopg2" and metadata.hostname == "postgres"
    assert metadata.path == "/airflow"


def test_api_server_and_workers_share_one_jwt_secret(services):
    references = {
        name: environment(services[name]).get("AIRFLOW__API_AUTH__JWT_SECRET")
        for name in ("airflow-apiserver", "airflow-worker", "airflow-scheduler")
    }
    assert all(references.values()), references
    assert len(set(references.values())) == 1, f"JWT secret references differ: {references}"
    assert referenced_variables(references["airflow-apiserver"]) == [("AIRFLOW_JWT_SECRET", ":?")]


def test_execution_api_url_points_at_the_api_server(services):
    url = urlsplit(environment(services["airflow-worker"])["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert url.hostname == "airflow-apiserver"
    assert url.path.rstrip("/") == "/execution"
    container_ports = {str(p).rsplit(":", 1)[-1] for p in services["airflow-apiserver"]["ports"]}
    assert str(url.port) in container_ports
    assert services["airflow-apiserver"]["command"] == "api-server"


def _dag_task_options() -> dict[str, dict[str, str]]:
    """``queue`` and ``pool`` of every ``@task(...)`` or ``@mapped_task(...)`` in dags/ (parsed, not imported)."""
    import ast

    options: dict[str, dict[str, str]] = {}
    for path in sorted((ROOT / "dags").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef):
                continue
            for deco in node.decorator_list:
                func = deco.func if isinstance(deco, ast.Call) else deco
                if isinstance(func, ast.Name) and func.id in ("task", "mapped_task"):
                    keywords = deco.keywords if isinstance(deco, ast.Call) else []
                    options[f"{path.stem}.{node.name}"] = {
                        k.arg: str(k.value.value)
                        for k in keywords
                        if k.arg in ("queue", "pool") and isinstance(k.value, ast.Constant)
                    }
    return options


def _worker_queues(service: dict[str, Any]) -> set[str]:
    command = command_text(service).split()
    flag = next(i for i, part in enumerate(command) if part in {"-q", "--queues"})
    return set(command[flag + 1].split(","))


def test_workers_serve_the_queues_the_dags_use(resolved):
    services = resolved["services"]
    tasks = _dag_task_options()
    media = {name for name, opts in tasks.items() if opts.get("queue") == "media"}
    assert media >= {"kepu_intake.probe_videos", "kepu_intake.make_renditions"}, sorted(media)
    dag_queues = {opts.get("queue", "default") for opts in tasks.values()}
    assert dag_queues == {"default", "media"}

    assert command_text(services["airflow-worker"]).split()[:2] == ["celery", "worker"]
    assert _worker_queues(services["airflow-worker"]) == {"default"}
    assert _worker_queues(services["airflow-media-worker"]) == {"media"}
    assert environment(services["airflow-worker"]).get("AIRFLOW__OPERATORS__DEFAULT_QUEUE", "default") == "default"
    for name in ("airflow-worker", "airflow-media-worker"):
        assert "container_name" not in services[name], f"{name}: a fixed name prevents --scale"
        assert "ports" not in services[name], f"{name}: published ports prevent --scale"
        assert services[name]["restart"] == "always", name


def test_media_worker_runs_one_process_per_core(resolved):
    command = resolved["services"]["airflow-media-worker"]["command"]
    # The image's entrypoint runs `bash -c …` as it is; `exec` makes the worker dumb-init's child.
    assert command[:2] == ["bash", "-c"]
    script = command[2]
    assert script.startswith("exec airflow celery worker ")
    assert '--concurrency "$(nproc)"' in script
    bash = shutil.which("bash")
    assert bash
    argv = subprocess.run(
        [bash, "-c", script.replace("exec airflow", 'printf "%s\\n" airflow', 1)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    assert argv[argv.index("--concurrency") + 1] == str(len(os.sched_getaffinity(0)))


def test_media_tasks_use_the_pool_airflow_init_creates(compose, dotenv, tmp_path):
    from kepu.localairflow import MEDIA_POOL

    tasks = _dag_task_options()
    pools = {opts.get("pool") for opts in tasks.values() if opts.get("queue") == "media"}
    assert pools == {MEDIA_POOL}, "every media task must run in the media pool"
    assert all("pool" not in opts for opts in tasks.values() if opts.get("queue") != "media")

    init = interpolate_tree(compose, dotenv)["services"]["airflow-init"]
    result, calls = _run_init(init, tmp_path)
    assert result.returncode == 0, result.stderr
    creates = [call.split(" ", 4) for call in calls if call.startswith("airflow pools set ")]
    assert len(creates) == 1, calls
    _, _, _, name, rest = creates[0]
    slots = rest.split(" ", 1)[0]
    assert name == MEDIA_POOL
    assert slots == str(len(os.sched_getaffinity(0))), "empty MEDIA_POOL_SLOTS: the host's cores"
    assert calls.index("airflow db migrate") < calls.index(" ".join(creates[0]))

    init = interpolate_tree(compose, {**dotenv, "MEDIA_POOL_SLOTS": "12"})["services"]["airflow-init"]
    (tmp_path / "12").mkdir()
    result, calls = _run_init(init, tmp_path / "12")
    assert result.returncode == 0, result.stderr
    assert any(call.startswith(f"airflow pools set {MEDIA_POOL} 12 ") for call in calls), calls


def test_depends_on_conditions(services):
    for name, service in services.items():
        for target, spec in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown service {target}"
            condition = spec["condition"]
            assert condition in {"service_healthy", "service_completed_successfully", "service_started"}
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target}, which has no healthcheck"
    for name in AIRFLOW_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    init_depends = services["airflow-init"]["depends_on"]
    assert init_depends["postgres"]["condition"] == "service_healthy"
    assert init_depends["minio-init"]["condition"] == "service_completed_successfully"
    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"
    for name in (*AIRFLOW_SERVICES, "postgres", "redis", "minio"):
        assert "healthcheck" in services[name], f"{name} has no healthcheck"


def _kepu_environment(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {
        name: {k: v for k, v in environment(service).items() if k.startswith("KEPU_")}
        for name, service in services.items()
    }


def test_every_kepu_variable_is_a_known_setting(services):
    unknown = {
        f"{name}: {key}" for name, env in _kepu_environment(services).items() for key in env if key not in ENV_VARS
    }
    assert not unknown, f"KEPU_* variables unknown to kepu.config.ENV_VARS: {sorted(unknown)}"
    for name, service in services.items():
        assert "env_file" not in service, f"{name}: env_file would pass host-only variables into containers"


def test_load_settings_accepts_the_union_of_kepu_variables(resolved):
    union: dict[str, str] = {}
    for name, env in _kepu_environment(resolved["services"]).items():
        for key, value in env.items():
            assert union.setdefault(key, value) == value, f"{name}: {key} differs between services"
    for key in (
        "KEPU_DATABASE_URL",
        "KEPU_STORE_URL",
        "KEPU_S3_ENDPOINT_URL",
        "KEPU_CAMPAIGN_FILE",
        "KEPU_INBOX",
    ):
        assert key in union, f"{key} is not set in docker-compose.yaml"

    settings = load_settings(union)

    database = urlsplit(settings.database_url)
    assert database.scheme == "postgresql+psycopg2"
    assert database.hostname == "postgres" and database.path == "/kepu"
    assert settings.store_url.startswith("s3://")
    assert settings.s3_endpoint_url == "http://minio:9000"
    assert str(settings.inbox) == "/opt/airflow/inbox"
    assert str(settings.campaign_file) == "/opt/airflow/include/campaigns/2022.yaml"


def test_every_airflow_container_gets_the_same_kepu_settings(services):
    envs = _kepu_environment(services)
    reference = envs["airflow-worker"]
    for name in AIRFLOW_AND_INIT:
        assert envs[name] == reference, f"{name}: KEPU_* settings differ from the worker's"


def test_campaign_file_ships_in_the_image(services):
    campaign = Path(environment(services["airflow-worker"])["KEPU_CAMPAIGN_FILE"])
    copies = {dest.rstrip("/"): src.rstrip("/") for src, dest in _copies(_dockerfile())}
    source = copies.get(str(campaign.parent))
    assert source == "include/campaigns", f"the image has no {campaign.parent}"
    shipped = sorted(p.name for p in (ROOT / source).glob("*.yaml"))
    if shipped:  # campaign files are added by the campaign work; check once there are any
        assert campaign.name in shipped


def test_inbox_is_mounted_from_the_host(services):
    inbox = environment(services["airflow-worker"])["KEPU_INBOX"]
    for name in AIRFLOW_AND_INIT:
        mounts = {str(v).rsplit(":", 1)[-1]: str(v).rsplit(":", 1)[0] for v in services[name]["volumes"]}
        assert inbox in mounts, f"{name}: {inbox} is not mounted"
        assert referenced_variables(mounts[inbox]) == [("KEPU_INBOX_HOST", ":-")]
        assert mounts[inbox].endswith(":-./inbox}")


def test_store_bucket_is_the_one_minio_init_creates(services):
    store = urlsplit(environment(services["airflow-worker"])["KEPU_STORE_URL"])
    assert store.scheme == "s3"
    script = command_text(services["minio-init"])
    created = re.findall(r"\bmc mb\b[^\n]*?\s(?:[\w.-]+)/([\w.-]+)\s*$", script, re.M)
    assert created, "minio-init creates no bucket"
    assert store.netloc in created


def test_s3_settings_are_the_minio_ones(services):
    worker = environment(services["airflow-worker"])
    minio = environment(services["minio"])
    assert worker["AWS_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
    assert worker["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
    assert environment(services["minio-init"])["MINIO_ROOT_PASSWORD"] == minio["MINIO_ROOT_PASSWORD"]
    endpoint = urlsplit(worker["KEPU_S3_ENDPOINT_URL"])
    assert endpoint.hostname == "minio" and endpoint.port == 9000
    assert "http://minio:9000" in command_text(services["minio-init"])


def test_database_passwords_match_the_postgres_server(services):
    password_ref = environment(services["postgres"])["POSTGRES_PASSWORD"]
    user = environment(services["postgres"])["POSTGRES_USER"]
    worker = environment(services["airflow-worker"])
    for key in (
        "KEPU_DATABASE_URL",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__RESULT_BACKEND",
    ):
        assert f"://{user}:{password_ref}@postgres:" in worker[key], key


# --- variables and secrets ---------------------------------------------------------------------------


def test_every_variable_is_documented_in_env_example_and_back(compose, env_example):
    used = {name for text in walk_strings(compose) for name, _ in referenced_variables(text)}
    documented = set(env_example)
    assert not used - documented, f"used in docker-compose.yaml, missing from .env.example: {used - documented}"
    assert not documented - used, f"in .env.example, unused by docker-compose.yaml: {documented - used}"


def test_env_example_explains_every_variable():
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert index > 0 and lines[index - 1].startswith("#"), f"{line.split('=')[0]} has no comment"


def test_secrets_are_placeholders_with_generation_instructions(env_example, secret_names):
    assert secret_names == EXPECTED_SECRETS
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    for name in secret_names:
        assert env_example[name].startswith(PLACEHOLDER_PREFIX)
        block = text.split(f"\n{name}=")[0].rsplit("\n\n", 1)[-1]
        assert "Generate:" in block, f"{name}: no generation command in .env.example"
    assert "Fernet.generate_key()" in text


def test_secrets_use_the_required_form(compose, secret_names):
    usages: dict[str, set[str | None]] = {name: set() for name in secret_names}
    for text in walk_strings(compose):
        for name, op in referenced_variables(text):
            if name in usages:
                usages[name].add(op)
    for name, ops in usages.items():
        assert ops, f"secret {name} is not used"
        assert ops == {":?"}, f"secret {name} must always be ${{{name}:?message}}, found operators {ops}"


def test_compose_refuses_to_resolve_without_each_secret(compose, dotenv, secret_names):
    for name in secret_names:
        partial = {k: v for k, v in dotenv.items() if k != name}
        with pytest.raises(MissingVariable, match=name):
            interpolate_tree(compose, partial)


def test_no_pythonpath_tricks(services):
    for name, service in services.items():
        assert "PYTHONPATH" not in environment(service), name
    for keyword, args in _dockerfile():
        if keyword in {"ENV", "ARG"}:
            assert "PYTHONPATH" not in args


# --- airflow-init ------------------------------------------------------------------------------------

STUBBED = ("airflow", "kepu", "python", "mkdir", "chown", "chmod")


def _run_init(resolved_init: dict[str, Any], tmp_path: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run airflow-init's script with every side-effecting command replaced by a recorder."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    for name in STUBBED:
        stub = bin_dir / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> "$STUB_LOG"\ncat > /dev/null\nexit 0\n')
        stub.chmod(stub.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    command = resolved_init["command"]
    assert resolved_init["entrypoint"] == "/bin/bash" and command[0] == "-c"
    env = {
        **environment(resolved_init),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "STUB_LOG": str(log),
        "HOME": str(tmp_path),
    }
    bash = shutil.which("bash")
    assert bash
    result = subprocess.run(
        [bash, "-c", command[1]],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    calls = log.read_text().splitlines() if log.exists() else []
    return result, calls


def test_airflow_init_runs_the_setup_steps_in_order(compose, dotenv, tmp_path):
    init = interpolate_tree(compose, dotenv)["services"]["airflow-init"]
    assert init["user"] == "0:0"
    result, calls = _run_init(init, tmp_path)
    assert result.returncode == 0, result.stderr
    programs = [call.split(" ")[0] for call in calls]
    assert "airflow db migrate" in calls
    assert "kepu db upgrade" in calls
    assert calls.index("airflow db migrate") < calls.index("kepu db upgrade")
    assert any(call.startswith("chown") for call in calls)
    assert programs.count("python") >= 3  # Fernet check, kepu database, admin password file


def test_airflow_init_refuses_the_example_secrets(compose, env_example, tmp_path):
    init = interpolate_tree(compose, env_example)["services"]["airflow-init"]
    result, calls = _run_init(init, tmp_path)
    assert result.returncode != 0
    assert calls == [], f"airflow-init went on despite example secrets: {calls}"
    for name in EXPECTED_SECRETS:
        assert name in result.stderr


@pytest.mark.parametrize("secret", sorted(EXPECTED_SECRETS))
def test_airflow_init_refuses_any_single_example_secret(compose, dotenv, env_example, secret, tmp_path):
    init = interpolate_tree(compose, {**dotenv, secret: env_example[secret]})["services"]["airflow-init"]
    result, calls = _run_init(init, tmp_path)
    assert result.returncode != 0
    assert calls == []
    assert secret in result.stderr
    assert "change-me" in result.stderr


def _init_python_blocks(resolved_init: dict[str, Any]) -> list[str]:
    return re.findall(r"^python - <<'PY'\n(.*?)^PY$", resolved_init["command"][1], re.S | re.M)


def test_airflow_init_python_blocks_compile(resolved):
    blocks = _init_python_blocks(resolved["services"]["airflow-init"])
    assert len(blocks) == 2
    for block in blocks:
        compile(block, "airflow-init", "exec")


def test_airflow_init_writes_a_password_file_the_auth_manager_reads(resolved, dotenv, tmp_path):
    init = resolved["services"]["airflow-init"]
    writer = next(block for block in _init_python_blocks(init) if "PASSWORDS_FILE" in block)
    env = environment(init)
    password_file = tmp_path / "passwords.json"
    subprocess.run(
        [sys.executable, "-c", writer],
        env={**env, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file)},
        check=True,
        timeout=60,
    )
    # SimpleAuthManager reads the file as one JSON object {username: password}.
    passwords = json.loads(password_file.read_text())
    assert passwords == {dotenv["AIRFLOW_ADMIN_USERNAME"]: dotenv["AIRFLOW_ADMIN_PASSWORD"]}
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == f"{dotenv['AIRFLOW_ADMIN_USERNAME']}:admin"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith(".SimpleAuthManager")


# --- Dockerfile --------------------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            instructions.append((keyword.upper(), " ".join(args.split())))
    return instructions


def _copies(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for keyword, args in instructions:
        if keyword == "COPY":
            parts = [p for p in args.split() if not p.startswith("--")]
            pairs.extend((src, parts[-1]) for src in parts[:-1])
    return pairs


def _requirement_pin(name: str) -> str:
    for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(rf"{re.escape(name)}==([^\s;#]+)", line.strip(), re.I)
        if match:
            return match.group(1)
    raise AssertionError(f"{name} is not pinned in requirements.txt")


def test_base_image_matches_the_airflow_pin():
    instructions = _dockerfile()
    froms = [args for keyword, args in instructions if keyword == "FROM"]
    assert len(froms) == 1
    match = re.fullmatch(r"apache/airflow:(\d+\.\d+\.\d+)-python(\d+\.\d+)", froms[0])
    assert match, froms[0]
    assert match.group(1) == _requirement_pin("apache-airflow")
    assert match.group(1) == _requirement_pin("apache-airflow-core")
    assert match.group(2) == "3.11"


def test_dockerfile_installs_media_tools_and_cjk_font():
    runs = [args for keyword, args in _dockerfile() if keyword == "RUN"]
    apt = next(run for run in runs if "apt-get install" in run)
    packages = set(apt.split("apt-get install", 1)[1].split("&&")[0].split())
    assert {"ffmpeg", "fonts-noto-cjk"} <= packages
    assert "rm -rf /var/lib/apt/lists/*" in apt


def test_dockerfile_installs_requirements_and_kepu_as_airflow():
    instructions = _dockerfile()
    user = None
    pip_runs = []
    for keyword, args in instructions:
        if keyword == "USER":
            user = args
        elif keyword == "RUN" and "pip install" in args:
            pip_runs.append((user, args))
    assert pip_runs and all(user == "airflow" for user, _ in pip_runs), pip_runs
    assert any(re.search(r"pip install --no-cache-dir -r \S*requirements\.txt", run) for _, run in pip_runs)
    assert any("--no-deps" in run for _, run in pip_runs)
    assert user == "airflow", "the image must end as the airflow user"
    sources = {src.rstrip("/") for src, _ in _copies(instructions)}
    assert {"requirements.txt", "pyproject.toml", "dags", "plugins", "include/campaigns"} <= sources
    assert any(src.startswith("include") and src != "include/campaigns" for src in sources)


def test_dockerignore_keeps_what_the_dockerfile_copies():
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for src, _ in _copies(_dockerfile()):
        parts = Path(src).parts
        for depth in range(1, len(parts) + 1):
            assert "/".join(parts[:depth]) not in patterns, f".dockerignore excludes {src}"
    assert {".venv", ".git", ".env"} <= patterns


# --- the real compose client, when installed ---------------------------------------------------------


def _compose_client() -> list[str] | None:
    if shutil.which("docker") is None:
        return None
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, check=False)
    return ["docker", "compose"] if probe.returncode == 0 else None


def test_docker_compose_config_validates(dotenv, tmp_path):
    client = _compose_client()
    if client is None:
        pytest.skip("the docker compose client is not installed")
    shutil.copy(COMPOSE_FILE, tmp_path / "docker-compose.yaml")
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in dotenv.items()))
    ok = subprocess.run(
        [*client, "-f", "docker-compose.yaml", "config", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    (tmp_path / ".env").unlink()
    refused = subprocess.run(
        [*client, "-f", "docker-compose.yaml", "config", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode != 0
    assert "is not set" in refused.stderr
