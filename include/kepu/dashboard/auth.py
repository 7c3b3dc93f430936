"""Who may see the dashboard.

Airflow does not protect a plugin's FastAPI app: the app checks every request itself. The identity is
Airflow's own: the JWT the UI keeps in the ``_token`` cookie after login (or an ``Authorization: Bearer``
header, for scripts), validated by Airflow's auth manager. The permission is "may read the
``kepu_intake`` DAG" (``is_authorized_dag(GET)``), because the dashboard shows what that DAG
recorded; it works the same with the simple, FAB or Keycloak auth manager.

An anonymous browser is sent to Airflow's login page and comes back afterwards; other anonymous
clients get 401; a logged-in user without the permission gets 403.

Tests replace :class:`AirflowAccess` by any :class:`Access` (or override :func:`require_viewer`).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

log = logging.getLogger(__name__)

#: The DAG whose read permission opens the dashboard.
DEFAULT_DAG_ID = "kepu_intake"


@dataclass(frozen=True)
class Viewer:
    """A logged-in user: the name shown on the pages and the auth manager's own user object."""

    name: str
    user: Any = None


class LoginRequired(Exception):
    """No valid login on the request."""


class NotAllowed(Exception):
    """A valid login without the permission."""


class Access(ABC):
    @abstractmethod
    async def authenticate(self, request: Request) -> Viewer | None:
        """The request's user, or ``None`` when anonymous or the token is invalid or expired."""

    @abstractmethod
    def authorize(self, viewer: Viewer) -> bool:
        """Whether ``viewer`` may see the dashboard (may block: called in a worker thread)."""

    @abstractmethod
    def login_url(self, next_url: str) -> str | None:
        """Where a browser logs in and then returns to ``next_url``; ``None`` when there is no login page."""


class AirflowAccess(Access):
    """The Airflow api-server's auth manager (only usable inside the api-server)."""

    def __init__(self, dag_id: str = DEFAULT_DAG_ID) -> None:
        self.dag_id = dag_id

    async def authenticate(self, request: Request) -> Viewer | None:
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
        from jwt import InvalidTokenError

        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        token = credentials.strip() if scheme.lower() == "bearer" else ""
        token = token or request.cookies.get(COOKIE_NAME_JWT_TOKEN, "")
        if not token:
            return None
        try:
            user = await get_auth_manager().get_user_from_token(token)
        except InvalidTokenError:  # expired, revoked, badly signed or malformed
            return None
        return Viewer(name=str(user.get_name()), user=user)

    def authorize(self, viewer: Viewer) -> bool:
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

        return bool(
            get_auth_manager().is_authorized_dag(method="GET", details=DagDetails(id=self.dag_id), user=viewer.user)
        )

    def login_url(self, next_url: str) -> str | None:
        from airflow.api_fastapi.app import get_auth_manager

        return str(get_auth_manager().get_url_login(next_url=next_url))


async def require_viewer(request: Request) -> Viewer:
    """The FastAPI dependency of every page but verification."""
    access: Access = request.app.state.access
    viewer = await access.authenticate(request)
    if viewer is None:
        raise LoginRequired()
    if not await run_in_threadpool(access.authorize, viewer):
        log.warning("dashboard refused to %s (no read permission on the DAG)", viewer.name)
        raise NotAllowed()
    return viewer
