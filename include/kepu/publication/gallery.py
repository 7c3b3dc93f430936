"""A static HTML gallery of the published works, served straight from the bucket.

``index.html`` lists the works (cover, title, unit, awards, synopsis); each work has ``works/{id}/index.html``
with a ``<video>`` player, its Chinese subtitles and its metadata. Links are relative, the pages load nothing
from elsewhere and run no script, so the folder works from any static host or a bucket's website endpoint.
"""

from __future__ import annotations

from typing import Any

from kepu.campaign import Campaign
from kepu.publication.catalog import work_links

STYLE = "style.css"


def _env() -> Any:
    from jinja2 import Environment, PackageLoader, select_autoescape

    return Environment(
        loader=PackageLoader("kepu.publication", "templates"),
        autoescape=select_autoescape(["html"]),
        keep_trailing_newline=True,
    )


def index_page(c: Campaign, works: list[dict[str, Any]]) -> bytes:
    items = [{**w, **work_links(w["id"], w.get("files") or {})} for w in works]
    return str(_env().get_template("index.html").render(c=c, works=items, style=STYLE)).encode()


def work_page(c: Campaign, work: dict[str, Any]) -> bytes:
    files = work.get("files") or {}
    return str(_env().get_template("work.html").render(c=c, w=work, files=files, style="../../" + STYLE)).encode()


def style_sheet() -> bytes:
    return str(_env().get_template(STYLE).render()).encode()
