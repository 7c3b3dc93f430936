"""The operator dashboard: a FastAPI app the Airflow api-server serves through ``plugins/kepu_dashboard.py``.

Pages: the campaign overview, the submissions list, one submission, judging and certificates, and the
public certificate verification, and the judges' portal (``/kepu/judge/{token}/``, see
:mod:`kepu.dashboard.judge`). Every page but verification and the portal needs an Airflow login (see
:mod:`kepu.dashboard.auth`); the portal's token is its own credential.

Airflow imports plugins in every component, task processes included, so importing this package costs
nothing: :class:`LazyApp` builds the real app (FastAPI, Jinja2, SQLAlchemy) on the first request.
"""

from __future__ import annotations

import threading
from typing import Any

#: Where the Airflow api-server mounts the app; the navigation entry points here.
URL_PREFIX = "/kepu"


class LazyApp:
    """An ASGI app that builds :func:`kepu.dashboard.app.create_app` when it first serves a request."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._app: Any = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Any:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from kepu.dashboard.app import create_app

                    self._app = create_app(**self._options)
        return self._app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
