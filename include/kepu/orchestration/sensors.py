"""Waiting for the judges' returned sheets without holding a worker slot.

:class:`ReturnedSheetsSensor` looks once at the round's ``returned/`` prefix in the object store; when
sheets are still out it defers to :class:`ReturnedSheetsTrigger`, which polls the prefix from the
triggerer (the store call runs in a thread) until every judge's scores seem back — a file whose name
holds the judge's id or a submit in the judges' portal, or as many files as judges still out — or until
the round's deadline, whichever comes first.
What the files hold is judged later, by the ingest step; waiting only needs them to be there.

Importing this module is cheap (it is imported when DAG files are parsed): the store and the records are
opened inside the methods that run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.triggers.base import BaseTrigger, TriggerEvent

log = logging.getLogger(__name__)

#: How often the triggerer looks at the store, in seconds, when ``KEPU_SHEETS_POLL_S`` does not say.
DEFAULT_POLL_S = 300.0
#: A round without a deadline is waited for this long at most.
DEFAULT_TIMEOUT = timedelta(days=60)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "none", "off")
    return bool(value)


def store_status(prefix: str, judge_ids: list[str], stage: str | None = None) -> dict[str, Any]:
    """:func:`kepu.judging.steps.store_status`, imported when the wait looks (not when a DAG file is parsed)."""
    from kepu.judging import steps

    return dict(steps.store_status(prefix, judge_ids, stage))


def _deadline(text: str | None) -> datetime | None:
    if not text:
        return None
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class ReturnedSheetsTrigger(BaseTrigger):
    """Fires once every judge's sheet seems back under ``prefix``, or at ``deadline``."""

    def __init__(
        self,
        prefix: str,
        judge_ids: list[str],
        deadline: str | None = None,
        poll_interval: float = DEFAULT_POLL_S,
        stage: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.prefix = prefix
        self.stage = stage
        self.judge_ids = list(judge_ids)
        self.deadline = deadline
        self.poll_interval = float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "prefix": self.prefix,
                "judge_ids": self.judge_ids,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "stage": self.stage,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = _deadline(self.deadline)
        while True:
            try:
                status = await asyncio.to_thread(store_status, self.prefix, self.judge_ids, self.stage)
            except Exception as exc:  # a store outage: keep polling, the next look may work
                self.log.warning("cannot list %s: %s; trying again in %.0f s", self.prefix, exc, self.poll_interval)
                status = None
            if status is not None and status["complete"]:
                yield TriggerEvent({"status": "returned", **status})  # type: ignore[no-untyped-call]
                return
            now = datetime.now(UTC)
            if deadline is not None and now >= deadline:
                yield TriggerEvent({"status": "deadline", **(status or {})})  # type: ignore[no-untyped-call]
                return
            if status is not None:
                self.log.info(
                    "%d of %d judges' sheets back under %s",
                    len(status["judges_back"]),
                    len(self.judge_ids),
                    self.prefix,
                )
            pause = self.poll_interval
            if deadline is not None:
                pause = max(0.0, min(pause, (deadline - now).total_seconds()))
            await asyncio.sleep(pause)


class ReturnedSheetsSensor(BaseSensorOperator):
    """Wait (deferred) until the round's sheets are back or its deadline has passed.

    ``wait`` false returns at once: the ingest then takes whatever is there.
    """

    template_fields = ("stage", "deadline", "wait")

    def __init__(
        self,
        *,
        stage: str,
        deadline: str = "",
        wait: Any = True,
        poll_interval: float | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("timeout", DEFAULT_TIMEOUT.total_seconds())
        super().__init__(poke_interval=poll_interval or DEFAULT_POLL_S, **kwargs)
        self.stage = stage
        self.deadline = deadline
        self.wait = wait
        self.poll_interval = poll_interval

    def _round(self) -> tuple[str, list[str], str | None, str]:
        from kepu.context import open_context
        from kepu.judging import keys
        from kepu.judging.steps import parse_deadline, round_judges, scoring_stage

        ctx = open_context()
        stage = scoring_stage(ctx, str(self.stage))
        deadline = parse_deadline(ctx, str(self.deadline or ""))
        return (
            keys.returned_prefix(ctx.campaign.id, stage.key),
            round_judges(ctx, stage.key),
            deadline.isoformat() if deadline else None,
            stage.key,
        )

    def poke(self, context: Any) -> bool:
        prefix, judges, deadline, stage = self._round()
        status = store_status(prefix, judges, stage)
        when = _deadline(deadline)
        return bool(status["complete"]) or (when is not None and datetime.now(UTC) >= when)

    def execute(self, context: Any) -> dict[str, Any]:
        prefix, judges, deadline, stage = self._round()
        status = store_status(prefix, judges, stage)
        if not _truthy(self.wait):
            self.log.info("not waiting (wait is off): %s", status)
            return {"status": "not_waiting", **status}
        when = _deadline(deadline)
        if status["complete"]:
            return {"status": "returned", **status}
        if when is not None and datetime.now(UTC) >= when:
            return {"status": "deadline", **status}
        poll = self.poll_interval
        if poll is None:
            from kepu.config import sheets_poll_s

            poll = sheets_poll_s()
        self.log.info("waiting for %s (deadline %s, a look every %.0f s): %s", prefix, deadline or "none", poll, status)
        self.defer(
            trigger=ReturnedSheetsTrigger(prefix, judges, deadline, poll, stage),
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout)),
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        event = event or {}
        self.log.info("sheets: %s", event)
        return event
