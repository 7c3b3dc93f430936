"""Airflow Assets that connect kepu's DAGs, defined once so that every DAG names them alike.

Only ``kepu_release_results`` emits :data:`RESULTS_RELEASED`, and only when an operator's release was
recorded (a repeated release of the same ranking emits nothing). Certificates and publication schedule on
it::

    from kepu.orchestration.assets import RESULTS_RELEASED

    @dag(schedule=[RESULTS_RELEASED], ...)
    def kepu_certificates(): ...

The event's ``extra`` carries ``campaign``, ``release_id`` and ``ranking_sha256``; the awards themselves
come from :meth:`kepu.db.repository.Records.list_awards`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset

#: The ``x-`` scheme is Airflow's space for custom URIs: it is taken as written, so defining the asset does not
#: load every provider's URI handlers (boto3 among them) while a DAG file is parsed.
RESULTS_RELEASED = Asset(name="kepu_results_released", uri="x-kepu://results/released", group="kepu")

__all__ = ["RESULTS_RELEASED", "release_event"]


def release_event(events: Any) -> dict[str, Any] | None:
    """The extra of the release event that started this run (None for a run started by hand).

    ``events`` is the task's ``triggering_asset_events``.
    """
    if not events:
        return None
    try:
        found = events[RESULTS_RELEASED]
    except KeyError:
        return None
    return dict(found[-1].extra or {}) if found else None
