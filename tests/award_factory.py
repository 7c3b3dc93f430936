"""Released results for the certificate, publication and notification tests: checked entries with their forms
(contacts, pledge), publication copies in the store, and awards recorded and released through the judging records."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kepu.db.judging_records import AwardRow
from kepu.db.repository import MaterialRecord, Records, SubmissionRecord
from kepu.storage import ObjectStore, object_key
from media_factory import tone_clip

CID = "2022"
PROVINCES = ("广东省", "北京市", "四川省")


@dataclass
class Seeded:
    #: submission id → its facts (holder, title, email, phone, pledge, kind, awards)
    entries: dict[str, dict[str, Any]]
    release_id: int
    contacts: list[str] = field(default_factory=list)

    def with_award(self, award: str) -> list[str]:
        return [sid for sid, e in self.entries.items() if award in e["awards"]]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def need_font() -> None:
    from kepu.certificates.render import find_font
    from kepu.errors import AwardError

    try:
        find_font()
    except AwardError as exc:
        if in_ci():
            pytest.fail(f"CI=true requires the certificate font: {exc}", pytrace=False)
        pytest.skip(str(exc))


def need_ffmpeg() -> None:
    if shutil.which("ffmpeg") is None:
        if in_ci():
            pytest.fail("CI=true requires ffmpeg", pytrace=False)
        pytest.skip("ffmpeg is not installed")


def tiny_video(dest: Path, *, comment: str) -> Path:
    """A 2 s H.264 + AAC MP4 whose container metadata carries ``comment`` (what a submitter might leave there)."""
    return tone_clip(dest, metadata={"comment": comment, "artist": comment})


def png_cover() -> bytes:
    import io

    from PIL import Image

    img = Image.new("RGB", (320, 180), (40, 120, 200))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def seed_release(
    records: Records,
    *,
    videos: int = 6,
    accounts: int = 2,
    best: int = 2,
    no_pledge: tuple[int, ...] = (1,),
    extra: int = 2,
    store: ObjectStore | None = None,
    scratch: Path | None = None,
) -> Seeded:
    """Checked entries; the first ``videos`` are excellent videos (the first ``best`` also best), ``accounts``
    excellent accounts, and ``extra`` entries without an award. With ``store``, each video gets a publication
    copy (a real tiny MP4 whose tags hold the submitter's phone), a cover and a subtitle file."""
    records.upsert_campaign(CID, "2022年青少年科技教育活动主题微视频征集", "sha-test")
    base = datetime(2022, 10, 1, tzinfo=UTC)
    out: dict[str, dict[str, Any]] = {}
    contacts: list[str] = []
    awards: list[AwardRow] = []
    n = videos + accounts + extra
    for i in range(n):
        kind = "account" if videos <= i < videos + accounts else "video"
        sid = f"s{i:04d}"
        province = PROVINCES[i % len(PROVINCES)]
        unit = f"{province[:2]}少年宫{i % 3}"
        title = f"会飞的种子{i}" if kind == "video" else f"科学小达人{i}"
        phone, email = f"1380013{i:04d}", f"author{i}@example.cn"
        contacts += [phone, email]
        pledge = i not in no_pledge
        records.upsert_submission(
            SubmissionRecord(
                id=sid,
                campaign_id=CID,
                kind=kind,
                source_name=f"{province}+{unit}+{title}",
                source_uri=f"file:///inbox/{sid}",
                fingerprint=f"fp-{sid}",
                title=title,
                province=province,
                unit=unit,
                received_at=base + timedelta(hours=i),
                verdict="pass",
                status="checked",
            )
        )
        form = (
            {
                "单位名称（申报人）": unit,
                "微视频名称": title,
                "类别（专业领域）": "物理",
                "主创人员（或单位）": f"张老师（电话 {phone}）、李同学",
                "联系电话": phone,
                "电子邮箱": email,
                "内容简介": f"用纸飞机讲解空气动力学。联系邮箱 {email}",
                "播出时间": "2022-09-01",
            }
            if kind == "video"
            else {"科普号名称": title, "所属单位（团队、个人）": unit, "联系电话": phone, "邮箱": email}
        )
        records.set_details(
            sid,
            {
                "form": form,
                "phone": phone,
                "email": email,
                "pledge_signed": pledge,
                "synopsis": form.get("内容简介"),
                "entity": unit,
            },
        )
        kinds: list[str] = []
        if kind == "video" and i < videos:
            kinds.append("excellent_video")
            awards.append(AwardRow("excellent_video", sid, "first_round", i + 1, 90.0 - i))
            if i < best:
                kinds.append("best_video")
                awards.append(AwardRow("best_video", sid, "final_round", i + 1, 95.0 - i))
        elif kind == "account":
            kinds.append("excellent_account")
            awards.append(AwardRow("excellent_account", sid, "first_round", i - videos + 1, 80.0 - i))
        out[sid] = {
            "kind": kind,
            "holder": unit,
            "title": title,
            "unit": unit,
            "province": province,
            "phone": phone,
            "email": email,
            "pledge": pledge,
            "awards": kinds,
        }
        if store is not None and kind == "video":
            assert scratch is not None
            _media(records, store, scratch, sid, phone)
    records.save_selection(
        CID, "rank-sha-1", inputs={}, notes=[], complete=True, award_rows=awards, export_key=None, export_sha256=None
    )
    outcome = records.release_results(CID, actor="李主任", reason="评审结束")
    return Seeded(out, outcome.release_id, contacts)


def _media(records: Records, store: ObjectStore, scratch: Path, sid: str, phone: str) -> None:
    mp4 = tiny_video(scratch / f"{sid}.mp4", comment=f"联系电话 {phone}")
    outputs = {}
    key = object_key(CID, sid, "rendition", "rendition-1080p.mp4")
    obj = store.put_file(key, mp4)
    outputs["1080p"] = {
        "key": key,
        "role": "rendition",
        "sha256": obj.sha256,
        "size": obj.size,
        "width": 320,
        "height": 180,
    }
    key = object_key(CID, sid, "poster", "cover-16x9.jpg")
    obj = store.put_bytes(key, png_cover())
    outputs["cover-16x9.jpg"] = {"key": key, "role": "poster", "width": 320, "height": 180}
    records.set_details(sid, {"rendition": {"mode": "remux", "outputs": outputs}})
    srt = f"1\n00:00:00,000 --> 00:00:01,500\n会飞的种子\n\n2\n00:00:01,500 --> 00:00:02,000\n联系我 {phone}\n"
    skey = object_key(CID, sid, "attachment", "字幕.srt")
    sobj = store.put_bytes(skey, srt.encode())
    records.replace_materials(sid, [MaterialRecord("attachment", "字幕.srt", skey, sobj.sha256, sobj.size)])


def re_release_without(records: Records, withdrawn: str, seeded: Seeded) -> int:
    """A corrected ranking that withdraws one entry's awards, released again on purpose."""
    rows = []
    for sid, e in seeded.entries.items():
        if sid == withdrawn:
            continue
        for a in e["awards"]:
            rows.append(AwardRow(a, sid, "final_round" if a == "best_video" else "first_round", 1, 50.0))
    records.save_selection(
        CID, "rank-sha-2", inputs={}, notes=[], complete=True, award_rows=rows, export_key=None, export_sha256=None
    )
    return records.release_results(CID, actor="李主任", reason="更正评分表", allow_change=True).release_id
