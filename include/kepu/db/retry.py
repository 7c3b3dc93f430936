"""Riding out a database that goes away for a moment (a PostgreSQL restart, a fail-over).

A step that loses its connection half-way has written nothing (its records commit in one
transaction), so it is run again whole after a short wait. Only connection losses are retried:
a data error (a constraint, a bad value) fails at once, however many times it would be tried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from kepu.errors import KepuError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long a step keeps trying while the database is unreachable before it gives up.
RETRY_WINDOW_S = 90.0
#: First wait between attempts; it doubles up to :data:`MAX_DELAY_S`.
FIRST_DELAY_S = 0.5
MAX_DELAY_S = 8.0

#: Driver messages that mean the connection, not the statement, failed.
_TRANSIENT_MESSAGES = (
    "server closed the connection",
    "connection refused",
    "could not connect to server",
    "connection to server at",
    "terminating connection due to administrator command",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "connection already closed",
    "connection has been closed unexpectedly",
    "could not receive data from server",
    "could not send data to server",
    "no connection to the server",
    "lost synchronization with server",
    "connection reset by peer",
    "broken pipe",
)


class DatabaseUnavailable(KepuError):
    """The database stayed unreachable for the whole retry window."""


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` says the database connection was lost or refused (worth another try)."""
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.DBAPIError):
        if isinstance(exc, sa_exc.IntegrityError | sa_exc.DataError | sa_exc.ProgrammingError):
            return False
        if exc.connection_invalidated:
            return True
        if not isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            return False
    elif type(exc).__module__.split(".")[0] == "psycopg2":
        # A driver error raised outside SQLAlchemy's wrapping (e.g. while connecting).
        if type(exc).__name__ not in ("OperationalError", "InterfaceError"):
            return False
    else:
        return False
    text = str(exc).lower()
    return any(m in text for m in _TRANSIENT_MESSAGES)


def retry_transient(
    fn: Callable[[], T],
    what: str,
    *,
    window_s: float = RETRY_WINDOW_S,
    first_delay_s: float = FIRST_DELAY_S,
    max_delay_s: float = MAX_DELAY_S,
) -> T:
    """``fn()``, run again after a growing wait while it fails on a lost database connection.

    ``fn`` must be safe to run again whole (an idempotent step whose writes commit together).
    After ``window_s`` of failures :class:`DatabaseUnavailable` is raised from the last error.
    """
    started = time.monotonic()
    delay = first_delay_s
    attempt = 1
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            waited = time.monotonic() - started
            if waited + delay > window_s:
                raise DatabaseUnavailable(
                    f"{what}: the database stayed unreachable for {waited:.0f} s ({attempt} attempts): "
                    f"{_first_line(exc)} · 数据库持续无法连接，已放弃"
                ) from exc
            log.warning(
                "%s: database connection lost (attempt %d, %.0f s so far), trying again in %.1f s: %s",
                what,
                attempt,
                waited,
                delay,
                _first_line(exc),
            )
            time.sleep(delay)
            delay = min(max_delay_s, delay * 2)
            attempt += 1


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
