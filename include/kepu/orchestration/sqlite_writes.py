"""One write request at a time in the api-server of an Airflow whose metadata database is SQLite (the embedded default).

Airflow's audit log of the UI's and the API's actions (``action_logging``, a dependency of every request that changes
something) is an ``async`` function that writes through a blocking SQLAlchemy session, so on SQLite it waits for the
database's write lock *on the event loop*. When another request of the same api-server holds that lock, its commit
(run after its handler, dispatched by the same event loop) cannot start until the wait ends: both stand still for the
whole busy timeout (a minute, :data:`kepu.localairflow.SQLITE_CONNECT_ARGS`), then the audit log fails with HTTP 500.
The UI's trigger form does exactly that when it unpauses the DAG it triggers: it sends ``POST …/dagRuns`` and
``PATCH /api/v2/dags/{id}`` together; the run waits a minute and the DAG stays paused, so the run never starts.

SQLite takes one writer at a time anyway, so :class:`OneWriteAtATime` lets the api-server handle requests that may
write (every method but GET, HEAD and OPTIONS) one after the other, each to its end (commit included), while the
others wait without holding the event loop. Reads are not held. On PostgreSQL (compose, the Celery layout) it does
nothing: there the two requests do not contend. Registered by the kepu plugin as a root middleware.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Methods that never write: they are not held.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def metadata_is_sqlite() -> bool:
    """Whether this Airflow's metadata database is SQLite (``[database] sql_alchemy_conn``)."""
    from airflow.configuration import conf

    return str(conf.get("database", "sql_alchemy_conn", fallback="")).startswith("sqlite")


class OneWriteAtATime:
    """ASGI middleware: on a SQLite metadata database, requests other than GET, HEAD and OPTIONS run one at a time.

    ``enabled`` decides it for tests; by default it follows :func:`metadata_is_sqlite`.
    """

    def __init__(self, app: App, enabled: bool | None = None) -> None:
        self.app = app
        self.enabled = metadata_is_sqlite() if enabled is None else enabled
        self._turn: asyncio.Lock | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.enabled or scope["type"] != "http" or scope.get("method", "GET") in READ_METHODS:
            await self.app(scope, receive, send)
            return
        if self._turn is None:  # made in the server's event loop, at its first write
            self._turn = asyncio.Lock()
        async with self._turn:
            await self.app(scope, receive, send)
