"""Small pieces every kepu DAG uses inside its tasks (imported at parse time: nothing heavy here)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


def label_map_index(batch: list[str]) -> None:
    """Name a mapped task instance in the grid after its first item (``map_index_template="{{ batch_label }}"``)."""
    from airflow.sdk import get_current_context

    label = f"{batch[0]} (+{len(batch) - 1})" if len(batch) > 1 else batch[0]
    get_current_context()["batch_label"] = label  # type: ignore[typeddict-unknown-key]


@contextmanager
def operator_errors() -> Iterator[None]:
    """An operator's problem (results not released, no SMTP connection) fails the task without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from kepu.errors import AwardError, CampaignError

    try:
        yield
    except (AwardError, CampaignError) as exc:
        raise AirflowFailException(str(exc)) from exc
