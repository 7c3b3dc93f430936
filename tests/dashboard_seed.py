"""A small campaign written through the real Records and object store, for the dashboard's tests.

Six entries over three provinces and three channels, with every verdict, findings with a place in the
video, a publication copy (rendition, poster frame, thumbnails, cover at 16:9) for the conformant one,
and one entry whose title, unit and form fields are HTML that must show as text.
"""

from __future__ import annotations

import datetime as dt
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from kepu.campaign import Campaign, load_campaign
from kepu.config import Settings, load_settings
from kepu.db import upgrade
from kepu.db.repository import FindingRecord, MaterialRecord, Records, SubmissionRecord
from kepu.storage import ObjectStore, object_key, open_store
from media_factory import tone_clip

XSS = "<script>alert(1)</script>"
BJ = dt.timezone(dt.timedelta(hours=8))


def png(width: int = 16, height: int = 9, rgb: tuple[int, int, int] = (40, 90, 160)) -> bytes:
    """A valid PNG of one colour (16:9 by default)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


PNG_16x9 = png()


@dataclass(frozen=True)
class Seeded:
    settings: Settings
    campaign: Campaign
    records: Records
    store: ObjectStore
    good: str  # the conformant video entry, with a publication copy
    xss: str  # the entry whose texts are HTML
    account: str
    ids: list[str]


PLACEHOLDER_MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(4096)


def tiny_mp4(dest: Path) -> bytes:
    """A 2 s H.264 + AAC MP4 made by ffmpeg (a few kB); placeholder bytes when ffmpeg is absent."""
    if shutil.which("ffmpeg"):
        return tone_clip(dest).read_bytes()
    return PLACEHOLDER_MP4


def settings_for(home: Path, **overrides: str) -> Settings:
    env = {
        "KEPU_HOME": str(home),
        "KEPU_DATABASE_URL": f"sqlite:///{home / 'records.db'}",
        "KEPU_STORE_URL": (home / "store").as_uri(),
        **overrides,
    }
    return load_settings(env)


def seed(settings: Settings, scratch: Path, *, real_video: bool = False) -> Seeded:
    """Write the campaign; ``real_video`` makes the rendition a playable MP4 with ffmpeg (else placeholder bytes)."""
    upgrade(settings.database_url)
    campaign = load_campaign(settings.campaign_file)
    records = Records.from_url(settings.database_url)
    store = open_store(settings)
    cid = campaign.id
    records.upsert_campaign(cid, campaign.campaign.name_zh, "0" * 64)
    received = dt.datetime(2022, 10, 20, 9, 0, tzinfo=BJ)
    entries = [
        # id, title, province, unit, channel, kind, verdict
        ("s-good", "会飞的种子", "广东省", "广州市少年宫", "provincial", "video", "pass"),
        ("s-xss", XSS, "北京市", f"{XSS}单位", "other", "video", "review"),
        ("s-late", "水的旅行", "广东省", "深圳科学馆", "unit_member", "video", "fail"),
        ("s-short", "光的秘密", "四川省", "成都少年宫", "provincial", "video", "fail"),
        ("s-account", "科普小站", "四川省", "成都科协", "provincial", "account", "pass"),
        ("s-pending", "未完成的作品", "北京市", "北京某校", "other", "video", None),
    ]
    for n, (sid, title, province, unit, channel, kind, verdict) in enumerate(entries):
        source = f"{province}+{unit}+{title}"
        submitter = records.upsert_submitter(cid, unit, province, channel)
        records.upsert_submission(
            SubmissionRecord(
                id=sid,
                campaign_id=cid,
                kind=kind,
                source_name=source,
                source_uri=f"file:///inbox/{sid}",
                fingerprint=f"fp-{sid}",
                submitter_id=submitter,
                title=title,
                province=province,
                unit=unit,
                channel=channel,
                received_at=received + dt.timedelta(hours=n),
                verdict=verdict,
                status="checked" if verdict else "registered",
            )
        )
        records.set_details(
            sid,
            {
                "entity": unit,
                "title_folder": title,
                "title_form": title,
                "synopsis": f"{title}的简介。" if sid != "s-xss" else f"简介 {XSS}",
                "form": {
                    "微视频名称": title,
                    "单位名称（申报人）": unit,
                    "联系电话": "13800000000",
                    "电子邮箱": "someone@example.org",
                },
                "pledge_signed": sid != "s-xss",
                "checklist": [f"核对推荐单位盖章：{unit} / verify the recommending unit's seal: {unit}"],
            },
        )

    scratch.mkdir(parents=True, exist_ok=True)
    mp4 = tiny_mp4(scratch / "tiny.mp4") if real_video else PLACEHOLDER_MP4
    good = "s-good"
    video_key = object_key(cid, good, "video", "会飞的种子.mp4")
    cover_key = object_key(cid, good, "cover", "封面.png")
    stored_video = store.put_bytes(video_key, mp4)
    stored_cover = store.put_bytes(cover_key, PNG_16x9)
    records.replace_materials(
        good,
        [
            MaterialRecord("video", "会飞的种子.mp4", video_key, stored_video.sha256, stored_video.size),
            MaterialRecord("cover", "封面.png", cover_key, stored_cover.sha256, stored_cover.size),
        ],
    )
    for sid in (good, "s-xss"):  # entries that can still be judged get a publication copy
        outputs = {}
        for name, role, data, (w, h) in (
            ("publication-1080p.mp4", "rendition", mp4, (320, 180)),
            ("poster.jpg", "poster", PNG_16x9, (16, 9)),
            ("cover-16x9.jpg", "poster", PNG_16x9, (16, 9)),
            *((f"thumb-{i}.jpg", "thumbnail", PNG_16x9, (16, 9)) for i in range(1, 5)),
        ):
            key = object_key(cid, sid, role, name)
            obj = store.put_bytes(key, data)
            outputs[name] = {"key": key, "role": role, "sha256": obj.sha256, "size": obj.size, "width": w, "height": h}
        records.set_details(
            sid,
            {"rendition": {"mode": "remux", "reasons": [], "outputs": outputs, "source_sha256": stored_video.sha256}},
        )
    records.set_media_metrics(
        good,
        {
            "loudness": {"integrated_lufs": -16.2, "lra_lu": 6.1, "true_peak_dbtp": -1.5},
            "audio_stats": {"rms_trough_dbfs": -62.0, "clipped_runs": 0},
            "bits_per_pixel": 0.11,
            "timing": {
                "video": {"start_s": 0.0, "end_s": 240.0},
                "frames": {"frames": 6000, "nominal_s": 0.04, "dropped": 0, "drop_ratio": 0.0},
                "start_offset_ms": 0.0,
                "end_offset_ms": 12.0,
            },
            "blacks": [],
            "freezes": [],
            "silences": [],
            "cuts": [{"time_s": 3.2, "score": 0.4}],
            "subtitles": {"found": True, "method": "ocr", "sample": "种子会飞"},
        },
    )

    def finding(code: str, severity: str, zh: str, en: str, at: float | None = None) -> FindingRecord:
        return FindingRecord(code=code, severity=severity, message_zh=zh, message_en=en, at_seconds=at)

    records.replace_findings(
        "s-xss",
        "media",
        [
            finding("V-FREEZE", "warning", f"静帧 {XSS}", "frozen picture", 75.25),
            finding("A-SILENCE", "warning", "静音 3.4 秒", "silence of 3.4 s", 120.0),
        ],
        "run-1",
    )
    records.replace_findings("s-late", "campaign", [finding("D-LATE", "error", "超过截止时间", "late")], "run-1")
    records.replace_findings(
        "s-short",
        "probe",
        [
            finding("V-DURATION", "error", "时长 95 秒，不在 180–480 秒之间", "duration 95 s outside 180–480 s"),
            finding("A-SILENCE", "warning", "静音 4 秒", "silence of 4 s", 30.5),
        ],
        "run-1",
    )
    return Seeded(
        settings=settings,
        campaign=campaign,
        records=records,
        store=store,
        good=good,
        xss="s-xss",
        account="s-account",
        ids=[e[0] for e in entries],
    )
