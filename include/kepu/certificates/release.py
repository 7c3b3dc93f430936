"""Which release a certificates or publication run works on.

Runs start from the ``RESULTS_RELEASED`` asset event (its extra names the campaign and the release) or by
hand. Either way they work on the campaign's latest release: an older event whose release was superseded
does the latest one's work, which a later run then finds done.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kepu.db.judging_records import AwardListing
from kepu.errors import AwardError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Release:
    campaign_id: str
    release_id: int
    ranking_sha256: str
    released_at: dt.datetime
    awards: tuple[AwardListing, ...]

    def by_submission(self) -> dict[str, list[AwardListing]]:
        out: dict[str, list[AwardListing]] = {}
        for a in self.awards:
            out.setdefault(a.submission_id, []).append(a)
        return out


def current_release(ctx: Any, event: Mapping[str, Any] | None = None) -> Release:
    """The campaign's latest release and its awards; an error when the results are not released."""
    cid = ctx.campaign.id
    if event and event.get("campaign") not in (None, cid):
        raise AwardError(
            f"发布事件属于活动 {event.get('campaign')}，而本环境的活动文件是 {cid} · the release event is for campaign "
            f"{event.get('campaign')}, but this environment's campaign file is {cid}"
        )
    releases = ctx.records.list_releases(cid)
    if not releases:
        raise AwardError(f"活动 {cid} 的评审结果尚未发布 · the results of campaign {cid} are not released yet")
    last = releases[-1]
    wanted = (event or {}).get("release_id")
    if wanted is not None and int(wanted) != last["id"]:
        log.info("release #%s was superseded by release #%s: working on the latest", wanted, last["id"])
    awards = tuple(a for a in ctx.records.list_awards(cid) if a.release_id == last["id"])
    return Release(cid, last["id"], last["ranking_sha256"], last["released_at"], awards)
