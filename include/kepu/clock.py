"""Beijing time, the campaign's clock: every time a person reads is shown in it.

Records keep UTC; these helpers turn a stored time into what an operator, judge or submitter reads.
"""

from __future__ import annotations

import datetime as dt

#: China Standard Time (UTC+8, no daylight saving): the notice's deadlines and every shown time.
BEIJING = dt.timezone(dt.timedelta(hours=8), "CST")


def in_beijing(value: dt.datetime) -> dt.datetime:
    """``value`` in Beijing time; a naive value is taken as UTC (how the records store times)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(BEIJING)


def beijing_text(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """``2022-11-30 18:00`` in Beijing time, or an empty string for no time."""
    return "" if value is None else in_beijing(value).strftime(fmt)
