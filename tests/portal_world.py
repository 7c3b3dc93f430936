"""A judging round with portal links, for the judging portal's web and browser tests.

The 2022 campaign scaled to a small panel (judging_factory), entries past every gate, a roster, the first
round assigned and every judge's link issued; each video entry has a real MP4 (ffmpeg) as its raw video
and as its publication copy, and a cover. One entry's title and synopsis are hostile text.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dashboard_seed import PNG_16x9
from judging_factory import make_judges, pass_gates, seed_entries, settings_for, write_campaign, write_roster
from kepu.context import Context, open_context
from kepu.db.repository import MaterialRecord
from kepu.judging import steps
from kepu.storage import object_key
from media_factory import tone_clip

CID = "2022"
R1, R2 = "first_round", "final_round"
#: Text from a submission that must show as text: markup, quotes, a spreadsheet formula.
HOSTILE_TITLE = '<script>alert(1)</script>"\'><img src=x onerror=alert(2)>=HYPERLINK("http://evil.example")'
HOSTILE_SYNOPSIS = '</p><script src=https://evil.example/x.js></script>=1+1 & "quoted"'
PORTAL_SECRET = "portal-test-secret-0123456789abcdef"


def make_mp4(dest: Path, seconds: int = 6) -> bytes:
    """A small H.264 + AAC MP4 with the index up front (a browser can play it while it streams)."""
    if not shutil.which("ffmpeg"):
        raise RuntimeError("ffmpeg is needed for the portal's media (make setup installs it)")
    return tone_clip(dest, seconds=seconds).read_bytes()


@dataclass
class PortalWorld:
    ctx: Context
    entries: dict[str, dict[str, Any]]
    #: judge id → their first-round token
    tokens: dict[str, str]
    hostile: str  # the entry with hostile texts
    mp4: bytes = b""
    urls: dict[str, str] = field(default_factory=dict)

    def assigned(self, judge_id: str, stage: str = R1) -> list[str]:
        rows = self.ctx.records.list_assignments(CID, stage)
        return [r.submission_id for r in sorted(rows, key=lambda r: r.position) if r.judge_id == judge_id]

    def judges(self, stage: str = R1) -> list[str]:
        return sorted({r.judge_id for r in self.ctx.records.list_assignments(CID, stage)})


def token_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def build(
    tmp: Path,
    database_url: str | None = None,
    *,
    videos: int = 6,
    accounts: int = 2,
    judges: int = 6,
    extra_env: dict[str, str] | None = None,
) -> PortalWorld:
    from kepu.judging.portal import issue_links

    env = {"KEPU_PORTAL_SECRET": PORTAL_SECRET, **(extra_env or {})}
    if database_url:
        env["KEPU_DATABASE_URL"] = database_url
    settings = settings_for(tmp, write_campaign(tmp / "campaign.yaml"), env)
    ctx = open_context(settings, migrate=True)
    entries = seed_entries(ctx.records, CID, videos=videos, accounts=accounts, fail=[videos - 1])
    steps.load_roster(ctx, str(write_roster(tmp / "评委名单.csv", make_judges(judges))))
    pass_gates(ctx.records, CID, entries)

    # The hostile entry: the first video, which every judge scores when it is in the linking set or not.
    hostile = "E000"
    sub = ctx.records.get_submission(hostile)
    assert sub is not None
    from dataclasses import replace

    ctx.records.upsert_submission(replace(sub, title=HOSTILE_TITLE))
    ctx.records.set_details(hostile, {"synopsis": HOSTILE_SYNOPSIS})

    mp4 = make_mp4(tmp / "clip.mp4")
    for sid, info in entries.items():
        if info["kind"] != "video":
            continue
        video = ctx.store.put_bytes(object_key(CID, sid, "video", "作品.mp4"), mp4)
        cover = ctx.store.put_bytes(object_key(CID, sid, "cover", "封面.png"), PNG_16x9)
        ctx.records.replace_materials(
            sid,
            [
                MaterialRecord("video", "作品.mp4", video.key, video.sha256, video.size),
                MaterialRecord("cover", "封面.png", cover.key, cover.sha256, cover.size),
            ],
        )
        outputs = {}
        for name, role, data in (("publication-1080p.mp4", "rendition", mp4), ("cover-16x9.jpg", "poster", PNG_16x9)):
            obj = ctx.store.put_bytes(object_key(CID, sid, role, name), data)
            outputs[name] = {
                "key": obj.key,
                "role": role,
                "sha256": obj.sha256,
                "size": obj.size,
                "width": 320,
                "height": 180,
            }
        ctx.records.set_rendition(
            sid, {"mode": "remux", "reasons": [], "outputs": outputs, "source_sha256": video.sha256}, "run-1"
        )

    steps.prepare_round(ctx, R1)
    links = issue_links(ctx, R1)
    return PortalWorld(
        ctx=ctx,
        entries=entries,
        tokens={link.judge_id: token_of(link.url) for link in links},
        hostile=hostile,
        mp4=mp4,
        urls={link.judge_id: link.url for link in links},
    )


def full_scores(world: PortalWorld, sid: str, value: float = 7.5) -> dict[str, str]:
    """Every criterion of ``sid``'s kind, as the form posts them."""
    kind = world.entries[sid]["kind"]
    return {f"score.{c.key}": f"{value:g}" for c in world.ctx.campaign.judging.criteria[kind]}
