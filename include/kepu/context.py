"""What every step of every stage works with: the settings, the campaign, the records and the object store.

:func:`open_context` builds it from the environment when a task runs (never at DAG parse time: it
opens the database and the store). The DAG files, the command line, the dashboard and the steps of
each stage take a :class:`Context` from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from kepu.campaign import Campaign, load_campaign
from kepu.config import Settings, load_settings
from kepu.db import get_engine, upgrade
from kepu.db.repository import Records
from kepu.storage import ObjectStore, open_store


@dataclass
class Context:
    settings: Settings
    campaign: Campaign
    records: Records
    store: ObjectStore


def open_context(settings: Settings | None = None, *, migrate: bool = False) -> Context:
    """Everything a step needs, built from the environment (never at DAG parse time)."""
    settings = settings or load_settings()
    campaign = load_campaign(settings.campaign_file)
    if migrate:
        upgrade(settings.database_url)
    records = Records(get_engine(settings.database_url))
    return Context(settings, campaign, records, open_store(settings))
