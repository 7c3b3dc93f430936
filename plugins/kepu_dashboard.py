"""科普征集看板 · the kepu operator dashboard, served by the Airflow api-server under /kepu.

The app lives in ``kepu.dashboard``; this file only registers it and its entry in the UI's navigation, and the
api-server's one-write-at-a-time guard for a SQLite metadata database (``kepu.orchestration.sqlite_writes``).
Every page needs an Airflow login except the public certificate check at ``/kepu/verify/{number}``.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from kepu.dashboard import URL_PREFIX, LazyApp
from kepu.orchestration.sqlite_writes import OneWriteAtATime


class KepuDashboardPlugin(AirflowPlugin):
    name = "kepu_dashboard"
    fastapi_apps = [  # noqa: RUF012 - the shape AirflowPlugin declares
        {"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "科普征集看板 kepu dashboard"}
    ]
    # On the embedded SQLite metadata database the api-server handles its write requests one at a time, or the UI's
    # trigger form (run + unpause) can stand still for a minute (kepu.orchestration.sqlite_writes).
    fastapi_root_middlewares = [  # noqa: RUF012
        {"middleware": OneWriteAtATime, "args": [], "kwargs": {}, "name": "kepu: one write at a time on SQLite"}
    ]
    # A relative href resolves against Airflow's base URL, so the entry works behind a path prefix too.
    external_views = [  # noqa: RUF012
        {
            "name": "科普征集 Kepu",
            "href": URL_PREFIX.lstrip("/") + "/",
            "url_route": "kepu",
            "destination": "nav",
            "nav_top_level": True,
            "icon": URL_PREFIX.lstrip("/") + "/static/icon.svg",
        }
    ]
