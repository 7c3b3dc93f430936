"""The LocalExecutor of the embedded Airflow, started with kepu's task libraries already imported.

Airflow's LocalExecutor forks its workers from the scheduler when it starts, and each worker forks a process for
every task. A task process inherits what its parents imported and imports the rest itself: the DAG file's kit,
Great Expectations, the records, the form and media readers — about 0.25 CPU-s for a typical kepu task and 2 s for
the one that runs the campaign's expectations, every time, before the task's own work begins.
:class:`PreloadingLocalExecutor` imports them once in the scheduler, just before the workers are forked, so every
task process starts with them (as Airflow's Celery workers pre-import Airflow's own heavy modules, and gunicorn's
``--preload`` an application).

Importing is all it does: no connection is opened and no Python thread started (the modules open theirs inside the
tasks). A module that cannot be imported is logged and skipped: its tasks import it themselves and fail there with
their own error, as they would without this executor.
"""

from __future__ import annotations

import importlib
import logging
import time

from airflow.executors.local_executor import LocalExecutor

log = logging.getLogger(__name__)

#: What the DAG files import, at the top and inside their tasks, with what those modules import on the way (the
#: records and the object store, every stage's steps, the form and sheet readers, numpy for the media checks);
#: Great Expectations is imported as the quality checks import it. ``tests/unit/test_executor.py`` keeps the list
#: complete.
TASK_MODULES: tuple[str, ...] = (
    "kepu.orchestration.dagkit",
    "kepu.orchestration.assets",
    "kepu.orchestration.sensors",
    "kepu.provinces",
    "kepu.context",
    "kepu.batches",
    "kepu.errors",
    "kepu.intake.steps",
    "kepu.intake.quality",
    "kepu.media.analysis",
    "kepu.media.rendition",
    "kepu.judging.steps",
    "kepu.certificates.steps",
    "kepu.publication.steps",
    "kepu.publication.notify",
    "docx",
    "openpyxl",
    "great_expectations",
)


def _import(name: str) -> None:
    if name != "great_expectations":
        importlib.import_module(name)
        return
    from kepu.intake.quality import import_gx

    # Great Expectations logs each function it registers for its docs at import: hundreds of INFO lines.
    gx_log = logging.getLogger("great_expectations")
    level = gx_log.level
    gx_log.setLevel(logging.WARNING)
    try:
        import_gx()
    finally:
        gx_log.setLevel(level)


def preload(modules: tuple[str, ...] = TASK_MODULES) -> list[str]:
    """Import ``modules`` into this process; the names that could not be imported (each logged)."""
    started = time.process_time()
    failed = []
    for name in modules:
        try:
            _import(name)
        except Exception:  # the task that needs it reports the error itself
            log.warning("kepu: %s not pre-imported; its tasks import it themselves", name, exc_info=True)
            failed.append(name)
    log.info("kepu: task libraries pre-imported in %.1f CPU-s", time.process_time() - started)
    return failed


class PreloadingLocalExecutor(LocalExecutor):
    """Airflow's LocalExecutor, whose workers (and so every task process) start with :data:`TASK_MODULES`."""

    def start(self) -> None:
        preload()
        super().start()
