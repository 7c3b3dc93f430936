"""Batches of ids for mapped tasks: one fan-out of any size holds a bounded number of task instances.

The DAGs pass the cap of :func:`kepu.orchestration.dagkit.map_cap`; the steps that plan their own
batches (renditions, publication, pushes, result e-mails) take it as ``max_tasks``.
"""

from __future__ import annotations

import math


def plan_batches(ids: list[str], max_tasks: int, *, batch_size: int = 1) -> list[list[str]]:
    """Split ids, in order, into batches of ``batch_size`` ids (one each by default), or into
    ``max_tasks`` larger batches when that would make more; batch sizes differ by one at most.

    Each batch is one mapped task instance. Airflow caps a mapped task at ``max_map_length``
    (1024 by default), and every task instance costs the scheduler a few seconds whatever it does:
    the intake passes the smaller of that cap and ``KEPU_MAX_TASKS_PER_STEP`` as ``max_tasks``, so a
    run of any size holds a bounded number of task instances, and ``KEPU_BATCH_SIZE`` as
    ``batch_size`` for entries so short that one each would cost more in scheduling than in work.
    """
    if not ids:
        return []
    count = min(math.ceil(len(ids) / max(1, batch_size)), max(1, max_tasks))
    size, longer = divmod(len(ids), count)
    batches, start = [], 0
    for k in range(count):
        end = start + size + (1 if k < longer else 0)
        batches.append(ids[start:end])
        start = end
    return batches
