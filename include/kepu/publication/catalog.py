"""``catalog.json``: the published works, best first, with relative links to each work's files.

It sits at the top of the public prefix beside the gallery, so a partner or a browser can read it straight
from the bucket. The same works give the same bytes: a rerun uploads nothing.
"""

from __future__ import annotations

import json
from typing import Any

from kepu.campaign import Campaign

CATALOG = "catalog.json"
CATALOG_VERSION = 1


def work_links(submission_id: str, files: dict[str, Any]) -> dict[str, str | None]:
    base = f"works/{submission_id}/"
    return {
        "page": base + "index.html",
        "metadata": base + "metadata.json",
        "video": base + "video.mp4" if "video.mp4" in files else None,
        "cover": base + "cover.jpg" if "cover.jpg" in files else None,
        "subtitles": base + "subtitles.vtt" if "subtitles.vtt" in files else None,
    }


def catalog(c: Campaign, release_id: int, works: list[dict[str, Any]]) -> dict[str, Any]:
    """``works``: each work's public metadata (as in its ``metadata.json``), in publication order."""
    entries = []
    for meta in works:
        entries.append(
            {
                "id": meta["id"],
                "title": meta["title"],
                "unit": meta["unit"],
                "province": meta["province"],
                "category": meta["category"],
                "synopsis": meta["synopsis"],
                "awards": meta["awards"],
                **work_links(meta["id"], meta.get("files") or {}),
            }
        )
    return {
        "version": CATALOG_VERSION,
        "campaign": {
            "id": c.id,
            "name_zh": c.campaign.name_zh,
            "name_en": c.campaign.name_en,
            "organiser_zh": c.campaign.organiser_zh,
            "organiser_en": c.campaign.organiser_en,
        },
        "release": release_id,
        "count": len(entries),
        "works": entries,
    }


def catalog_bytes(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode()
