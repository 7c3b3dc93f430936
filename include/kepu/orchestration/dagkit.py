"""The kit every kepu DAG is built with: default args, the failure watcher, operator errors, mapped tasks.

A DAG file holds its Params and its wiring and calls one domain function per task; whatever two DAGs would
otherwise both write lives here, once::

    from kepu.orchestration.dagkit import default_args, failure_watcher, mapped_task, operator_errors

    @dag(..., default_args=default_args())
    def kepu_x() -> None:
        @mapped_task()
        def step(batch: list[str]) -> list[str]:
            label_map_index(batch)
            ...

        ...
        failure_watcher()  # last: it watches every task defined above it

DAG files import this module while they are parsed: it opens no connection, runs no query and imports no heavy
domain module at import time (the parse-time test in tests/dags holds it to that). The only file it reads then is
the campaign file, for the choices of the trigger forms (:func:`campaign_choices`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from airflow.sdk import task

from kepu.errors import AwardError, CampaignError, ConfigError, JudgingError, KepuError

log = logging.getLogger(__name__)

# --- default args --------------------------------------------------------------------------------------------

#: Retries of every task: a worker lost or a store that hiccups gets two more tries, with a growing wait.
RETRIES = 2
OWNER = "kepu"


def default_args(*, retry_delay: timedelta = timedelta(seconds=20)) -> dict[str, Any]:
    """The ``default_args`` of every kepu DAG; only the first wait before a retry differs between DAGs.

    A fresh dict each call: Airflow copies it into each task, and no DAG can change another's by mistake.
    """
    return {
        "owner": OWNER,
        "retries": RETRIES,
        "retry_delay": retry_delay,
        "retry_exponential_backoff": True,
    }


# --- the failure watcher -------------------------------------------------------------------------------------

WATCHER_TASK_ID = "fail_if_a_step_failed"
WATCHER_MESSAGE = "本次运行有步骤失败，请查看失败步骤的日志 · a step of this run failed; see the failed step's log"


@task(task_id=WATCHER_TASK_ID, trigger_rule="one_failed", retries=0)
def _fail_if_a_step_failed(dag_run: Any = None, ti: Any = None) -> None:
    """Runs only when a step failed (else it is skipped), and fails, so that the run is marked failed."""
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(WATCHER_MESSAGE + _failed_steps(dag_run, ti))


def _failed_steps(dag_run: Any, ti: Any) -> str:
    """A line naming the failed steps (mapped ones as ``task_3``), or "" when Airflow cannot say."""
    try:
        states = ti.get_task_states(dag_id=dag_run.dag_id, run_ids=[dag_run.run_id])[dag_run.run_id]
        failed = sorted(name for name, state in states.items() if state == "failed" and name != WATCHER_TASK_ID)
    except Exception:  # the watcher fails the run whatever happens: naming the steps is only a help
        log.debug("could not list the failed steps", exc_info=True)
        return ""
    if not failed:
        return ""
    shown = failed[:10] + ([f"… 共 {len(failed)} 个 · {len(failed)} in all"] if len(failed) > 10 else [])
    return "\n失败的步骤 failed steps: " + ", ".join(shown)


def failure_watcher() -> Any:
    """Add the watcher task downstream of every task defined so far in the DAG; call it last.

    Steps that run after a failure (``all_done``, ``none_failed``) let a run finish its export or report, and
    a run whose last steps succeed would then look successful. The watcher (``one_failed``, as in Airflow's own
    system tests) fails the run instead; when nothing failed it is skipped and the run succeeds.
    """
    watcher = _fail_if_a_step_failed()
    op = watcher.operator  # type: ignore[attr-defined]  # a @task call returns a PlainXComArg
    op.set_upstream([t for t in op.dag.tasks if t is not op])
    return watcher


# --- operator errors -----------------------------------------------------------------------------------------

#: Problems an operator must deal with (a wrong setting, an invalid campaign file, a round or a release that
#: cannot go ahead as asked): retrying changes nothing, so they fail the task at once.
OPERATOR_ERRORS: tuple[type[KepuError], ...] = (ConfigError, CampaignError, JudgingError, AwardError)
NOT_RETRIED = "本步骤不会自动重试：处理上述问题后重新运行 · not retried: deal with the problem above, then run again"


def operator_message(exc: KepuError) -> str:
    """The failure message an operator reads in the task log, Chinese with English beside it."""
    if isinstance(exc, CampaignError):
        # The path is "<campaign>" when a step asked the loaded campaign for something it does not hold.
        where = "" if exc.path.startswith("<") else f" {exc.path}"
        problems = "\n  - ".join(exc.problems)
        return f"活动文件 · campaign file{where}:\n  - {problems}\n{NOT_RETRIED}"
    if isinstance(exc, ConfigError):
        return f"设置有误 · a setting is wrong: {exc}\n{NOT_RETRIED}"
    # Judging and award errors are written for the operator already, in both languages.
    return f"{exc}\n{NOT_RETRIED}"


@contextmanager
def operator_errors() -> Iterator[None]:
    """Turn an operator's problem into a task failure without retries, with :func:`operator_message`."""
    try:
        yield
    except OPERATOR_ERRORS as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(operator_message(exc)) from exc


# --- mapped tasks: labels and caps ---------------------------------------------------------------------------

#: Every mapped task instance is named in the grid by :func:`label_map_index`.
MAP_LABEL = "{{ batch_label }}"
#: Mapped tasks per fan-out of the award DAGs (certificates, packages, pushes, e-mails): each takes a batch.
AWARD_FAN_OUT = 32
#: Airflow's own cap on one mapped task (``core.max_map_length``) when the configuration does not set it.
MAX_MAP_LENGTH = 1024


def mapped_task(**kwargs: Any) -> Any:
    """``@task`` for a task mapped over batches: its instances carry the label of :func:`label_map_index`."""
    return task(map_index_template=MAP_LABEL, **kwargs)


def map_label(batch: Sequence[str], *, prefix: str = "") -> str:
    """A batch's name in the grid: its first item and how many follow, ``[prefix: ]first (+n)``."""
    label = f"{batch[0]} (+{len(batch) - 1})" if len(batch) > 1 else (batch[0] if batch else "-")
    return f"{prefix}: {label}" if prefix else label


def label_map_index(batch: Sequence[str], *, prefix: str = "") -> None:
    """Name the running mapped task instance after its batch (:func:`map_label`); its task is a :func:`mapped_task`."""
    from airflow.sdk import get_current_context

    get_current_context()["batch_label"] = map_label(batch, prefix=prefix)  # type: ignore[typeddict-unknown-key]


def map_cap(limit: int) -> int:
    """Most instances one fan-out may map: ``limit``, never above Airflow's ``core.max_map_length``.

    Read when a task runs (the configuration of the worker that plans the batches), never at parse time.
    """
    from airflow.configuration import conf

    return max(1, min(limit, conf.getint("core", "max_map_length", fallback=MAX_MAP_LENGTH)))


# --- choices of the trigger forms, from the campaign file ----------------------------------------------------


@dataclass(frozen=True)
class CampaignChoices:
    """What the trigger forms offer from the campaign file: each key with its label ("中文 key")."""

    scoring_stages: dict[str, str] = field(default_factory=dict)
    platforms: dict[str, str] = field(default_factory=dict)
    #: Why there are no choices (the campaign file could not be read), to show in a Param's description.
    problem: str = ""


def campaign_choices() -> CampaignChoices:
    """Read the campaign file that the tasks will use (``KEPU_CAMPAIGN_FILE``) for the forms' choices.

    Called while a DAG file is parsed: it reads one YAML file and nothing else. A campaign file that cannot be
    read does not hide the DAGs (an asset-triggered run must still start and fail clearly); the forms then
    offer no choices and say why.
    """
    from kepu.campaign import load_campaign
    from kepu.config import load_settings

    try:
        campaign = load_campaign(load_settings().campaign_file)
    except (ConfigError, CampaignError) as exc:
        log.warning("the trigger forms offer no campaign choices: %s", exc)
        return CampaignChoices(problem=f"（活动文件无法读取 the campaign file cannot be read: {exc}）")
    return CampaignChoices(
        scoring_stages={s.key: f"{s.zh} {s.key}" for s in campaign.judging.scoring_stages},
        platforms={p.key: f"{p.zh} {p.key}" for p in campaign.publication.platforms},
    )


def enum_schema(choices: dict[str, str]) -> dict[str, Any]:
    """A Param's ``enum`` and ``values_display`` for ``choices`` (none when there are no choices to offer)."""
    return {"enum": list(choices), "values_display": dict(choices)} if choices else {}
