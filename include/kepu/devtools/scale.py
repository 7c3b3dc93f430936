"""A campaign at national scale: hundreds or thousands of packages, for the throughput bench.

Packages are made the way the sample inbox makes them (:mod:`kepu.devtools.sample`): folders named
省+单位+标题, the notice's Word application forms, a synopsis, a cover and a video with narration and
Chinese subtitles. The videos are short (3.2 s) and small (384×216), each with its own picture (a
large-scale pattern drawn afresh every 0.4 s from the entry's own seed, under a ``life`` pattern),
so that no two of a thousand entries look like duplicates of each other. :func:`write_scale_campaign`
writes the campaign file scaled to them (duration, size and resolution limits, time windows, the
loudness range); every other rule is the real one. Each video costs about half a CPU-second to make.

Entries come from every province through every channel, as a real call receives them: a provincial
recommendation of ten videos and a few science-popularisation accounts (科普号), member units
with three videos, members and self-nominated individuals with one. Some units send more than
their quota, a few entries arrive after the deadline, a few packages are broken (a zero-byte or
a text file named like a video, an empty folder, no cover, no narration) and a few accounts are
too small. :attr:`ScaleEntry.codes` says which findings each one is made to get, and
:attr:`ScaleEntry.verdict` its verdict.

Every file is written under a temporary name and renamed when complete, and files that exist are
kept: a second call on the same folder costs a directory scan. Packages are made on all cores. Where
``KEPU_SAMPLE_CACHE`` names a shared media cache (as for the sample inbox), the videos are kept there by
content and copied into the next inbox that needs the same ones.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import ffmpeg  # ffmpeg-python: builds the argv; kepu.media.runner runs it

from kepu.devtools.sample import (
    FPS,
    PackageSpec,
    bytes_writer,
    cached_file,
    ensure_file,
    make_form,
    media_cache_dir,
    run_ffmpeg,
    save_summary_sheet,
    short_digest,
    subtitles_file,
    x264_cbr_options,
)
from kepu.rules import RULES

log = logging.getLogger(__name__)

#: Picture size of the generated videos (16:9); the scaled campaign takes it as its minimum.
SIZE = (384, 216)
#: Length of every video: ten loop quanta of :mod:`kepu.devtools.sample`, one base clip with its fades.
DURATION_S = 3.2
#: At 384×216×25 fps, 0.05 bits per pixel (the clarity floor) is 104 kbit/s.
VIDEO_KBPS = 300
AUDIO_KBPS = 64
#: Campaign limits around those videos: a 3.2 s video of about 150 kB is inside both.
DURATION_LIMITS_S = (2.0, 6.0)
SIZE_LIMITS = (80_000, 400_000)
#: Time windows scaled to 3.2 s: the fades at each end are the opening and the closing.
WINDOWS: dict[tuple[str, ...], float] = {
    ("video", "freeze", "edge_s"): 1.0,
    ("video", "black", "edge_s"): 1.0,
    ("structure", "edge_window_s"): 1.0,
    ("audio", "silence_min_s"): 2.0,
    # Loudness range is measured over 3 s windows: a 3.2 s video has too few for the real 15 LU.
    ("audio", "lra_max_lu"): 40.0,
}
_COVER_SIZE = (1280, 720)
# Black held at each end of a video, and the fade from and to it.
_HOLD_S = 0.3
_FADE_S = 0.4
_MARKER = "scale.txt"
_VERSION = 1

Kind = Literal["video", "account"]

_CHANNELS = {
    "provincial": "省级推荐",
    "unit_member": "单位会员",
    "individual_member": "个人会员",
    "other": "其他机构和个人自荐",
}
_PROVINCIAL_UNITS = ("青少年科技教育协会", "科学技术协会", "青少年科技中心")
_MEMBER_UNITS = (
    "科技馆",
    "青少年宫",
    "实验中学",
    "科学中心",
    "少年儿童图书馆",
    "自然博物馆",
    "天文馆",
    "科技辅导员协会",
)
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
_GIVEN = ("晓明", "静", "宇航", "思远", "雨桐", "子涵", "浩然", "欣怡", "一帆", "可馨", "天佑", "梓萱")
_TOPICS: tuple[tuple[str, str, str], ...] = (
    ("月亮的阴晴圆缺", "天文", "月亮自己并不发光，我们看到的是它反射的太阳光。本片用小球和手电筒演示月相的成因。"),
    ("看不见的空气有多重", "物理", "空气看不见、摸不着，却有重量。本片用覆杯实验和电子秤带大家感受大气压强。"),
    ("一粒种子的旅行", "生物", "植物不会走路，却有许多办法让后代走得更远。本片介绍种子靠风、水和动物传播。"),
    ("地震来了怎么办", "地球科学", "地震发生时，短短十几秒可能决定安危。本片讲解地震波，演示如何就近避险。"),
    ("彩虹是怎样形成的", "物理", "雨后天晴，天边常会挂起彩虹。本片用三棱镜重现光的色散，解释彩虹的成因。"),
    ("长江里的江豚", "生物", "长江江豚被称为微笑天使。本片介绍江豚的习性，讲述长江禁渔以来江豚数量回升的故事。"),
    ("蚂蚁怎样找到回家的路", "生物", "蚂蚁外出觅食后总能回到巢穴。本片观察蚂蚁如何留下信息素路标、借助太阳辨别方向。"),
    ("潮汐从哪里来", "海洋科学", "海水每天两次涨落。本片用动画演示月球和太阳的引力如何牵动海水，形成大潮和小潮。"),
    ("古人怎样计时", "科技史", "没有钟表的年代，古人靠什么知道时间？本片带大家认识日晷和漏刻，动手制作简易日晷。"),
    ("雨林为什么这么热闹", "生态", "热带雨林里生活着数以万计的物种。本片讲述高温多雨如何造就丰富的生物多样性。"),
    ("绿洲是怎样形成的", "地理", "茫茫沙漠中为什么会有绿洲？本片跟随雪山融水，介绍坎儿井和地下水如何塑造绿洲。"),
    ("会发电的水果", "化学", "柠檬和土豆也能让小灯泡亮起来。本片用金属片和导线搭建水果电池，讲解原电池的原理。"),
    ("桥为什么不会塌", "工程", "一张纸也能承重。本片通过折纸桥实验，介绍拱桥、梁桥和斜拉桥的受力特点。"),
    ("声音是怎样传播的", "物理", "声音需要介质才能传播。本片用真空罩实验和土电话，演示声波在空气和固体中的传播。"),
    ("云朵为什么会下雨", "气象", "小水滴在云中碰撞长大，最终落向地面。本片用瓶中造云实验讲解降水的形成过程。"),
)
# The codes that fail an entry on their own.
_ERROR_CODES = frozenset(r.code for r in RULES if r.severity == "error")


@dataclass(frozen=True)
class ScaleEntry:
    """One package of the scale campaign and the finding it is made to get (None: conformant)."""

    index: int
    province: str
    unit: str
    title: str
    channel: str
    kind: Kind
    received_at: datetime
    expected: str | None
    member: bool
    #: Beyond its channel's quota for its unit and kind, by time received (Q-QUOTA).
    over_quota: bool = False
    #: Codes the defect cannot help bringing along: an empty folder lacks cover, synopsis and form
    #: too; unreadable videos made alike (zero bytes, or the same text) are byte-identical.
    also: frozenset[str] = frozenset()

    @property
    def folder(self) -> str:
        return f"{self.province}+{self.unit}+{self.title}"

    @property
    def codes(self) -> set[str]:
        """The finding codes the entry is made to get (empty: conformant)."""
        planned = {self.expected} if self.expected else set()
        return planned | ({"Q-QUOTA"} if self.over_quota else set()) | set(self.also)

    @property
    def verdict(self) -> str:
        """The verdict the entry must get: ``fail`` for a planned defect, else ``pass``."""
        return "fail" if self.codes & _ERROR_CODES else "pass"


def _province_names() -> list[tuple[str, str]]:
    from kepu.provinces import PROVINCES

    return [(full, shorts[0] if shorts else full) for full, shorts in PROVINCES]


def _person(n: int) -> str:
    return f"{_SURNAMES[n % len(_SURNAMES)]}{_GIVEN[(n // len(_SURNAMES)) % len(_GIVEN)]}"


def _block(round_no: int, k: int, province: str, short: str) -> Iterator[tuple[str, str, Kind, bool]]:
    """(unit, channel key, kind, member) of one province's entries in one round."""
    unit = f"{short}{_PROVINCIAL_UNITS[round_no % len(_PROVINCIAL_UNITS)]}"
    extra = 2 if k % 3 == 0 else 0  # every third provincial unit sends two videos over its ten
    for _ in range(10 + extra):
        yield unit, "provincial", "video", False
    for _ in range(3):
        yield unit, "provincial", "account", False
    for j in range(2):
        member = f"{short}{_MEMBER_UNITS[(2 * round_no + j) % len(_MEMBER_UNITS)]}"
        over = 1 if (k + j) % 4 == 1 else 0
        for _ in range(3 + over):
            yield member, "unit_member", "video", True
    for j in range(2):
        yield f"{_person(97 * round_no + 7 * k + j)}（个人会员）", "individual_member", "video", True
    for j in range(4):
        yield f"{_person(97 * round_no + 7 * k + 2 + j)}（个人）", "other", "video", False


def plan_scale_campaign(n: int) -> list[ScaleEntry]:
    """The first ``n`` entries of the scale campaign, province by province, round after round.

    Deterministic: the first entries of a larger campaign are the entries of a smaller one.
    """
    if n < 0:
        raise ValueError(f"a campaign of {n} entries")
    provinces = _province_names()
    start = datetime(2022, 10, 1, 8, 0)
    entries: list[ScaleEntry] = []
    round_no = 0
    video_no = account_no = 0
    while len(entries) < n:
        for k, (province, short) in enumerate(provinces):
            for unit, channel, kind, member in _block(round_no, k, province, short):
                if len(entries) >= n:
                    return _mark_alike(_mark_quotas(entries))
                i = len(entries)
                topic, _, _ = _TOPICS[i % len(_TOPICS)]
                expected: str | None = None
                received = start + timedelta(minutes=(40 * i) % (29 * 24 * 60))
                if kind == "account":
                    title = f"{short}科普号第{i + 1}号"
                    if expected is None and account_no % 4 == 1:
                        expected = "K-FANS"
                    elif expected is None and account_no % 4 == 3:
                        expected = "K-WORKS"
                    account_no += 1
                else:
                    title = f"{topic}第{i + 1}集"
                    if expected is None:
                        expected = _video_defect(video_no)
                    video_no += 1
                if expected is None and i % 37 == 19:
                    expected = "D-LATE"
                    received = datetime(2022, 11, 1, 9, 0) + timedelta(hours=i % 120)
                entries.append(
                    ScaleEntry(
                        index=i,
                        province=province,
                        unit=unit,
                        title=title,
                        channel=_CHANNELS[channel],
                        kind=kind,
                        received_at=received,
                        expected=expected,
                        member=member,
                    )
                )
        round_no += 1
    return _mark_alike(_mark_quotas(entries))


def _mark_quotas(entries: list[ScaleEntry]) -> list[ScaleEntry]:
    """Mark the entries beyond their quota as the campaign counts them: per unit, channel and kind,
    the earliest received are kept."""
    from dataclasses import replace

    from kepu.campaign import load_campaign
    from kepu.config import DEFAULT_CAMPAIGN_FILE

    channels = {ch.label_zh: ch for ch in load_campaign(DEFAULT_CAMPAIGN_FILE).channels.values()}
    seen: dict[tuple[str, str, str], int] = {}
    over: set[int] = set()
    for e in sorted(entries, key=lambda e: (e.received_at, e.index)):
        key = (e.unit, e.channel, e.kind)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > channels[e.channel].quota.for_kind(e.kind):
            over.add(e.index)
    return [replace(e, over_quota=True) if e.index in over else e for e in entries]


def _mark_alike(entries: list[ScaleEntry]) -> list[ScaleEntry]:
    """The codes broken packages bring along (see :attr:`ScaleEntry.also`)."""
    from dataclasses import replace

    missing = frozenset({"M-COVER-MISSING", "M-SUMMARY-MISSING", "M-FORM-MISSING"})
    unreadable = Counter(_unreadable_kind(e) for e in entries if e.expected == "M-UNREADABLE")
    out = []
    for e in entries:
        if e.expected == "M-VIDEO-MISSING":
            e = replace(e, also=missing)
        elif e.expected == "M-UNREADABLE" and unreadable[_unreadable_kind(e)] > 1:
            e = replace(e, also=frozenset({"O-DUPLICATE-FILE"}))
        out.append(e)
    return out


def _unreadable_kind(entry: ScaleEntry) -> str:
    return "zero-byte" if entry.index % 2 else "text"


def _video_defect(video_no: int) -> str | None:
    if video_no % 97 == 13:
        return "M-UNREADABLE"  # a zero-byte video
    if video_no % 97 == 61:
        return "M-UNREADABLE"  # a text file named like a video
    if video_no % 199 == 83:
        return "M-VIDEO-MISSING"  # an empty folder
    if video_no % 89 == 31:
        return "M-COVER-MISSING"
    if video_no % 71 == 7:
        return "V-NO-AUDIO"
    return None


# --- generating ---------------------------------------------------------------------------------------


def generate_scale_inbox(dest: Path, n: int, *, workers: int | None = None) -> list[ScaleEntry]:
    """Make the first ``n`` packages of the scale campaign in ``dest`` and its summary sheet.

    Packages already in ``dest`` are kept; which campaign ``dest`` holds and the subtitle files are written
    beside it (``<dest>.scale-cache``). Where ``KEPU_SAMPLE_CACHE`` names a shared media cache, the subtitle
    files and the videos are kept there by content. ``dest`` must hold this campaign's packages only: a package
    of another size or version is refused.
    """
    entries = plan_scale_campaign(n)
    dest.mkdir(parents=True, exist_ok=True)
    own = dest.parent / f"{dest.name}.scale-cache"
    own.mkdir(exist_ok=True)
    cache = media_cache_dir(dest, own)
    cache.mkdir(parents=True, exist_ok=True)
    marker = own / _MARKER
    current = f"v{_VERSION} n={n}"
    if marker.exists() and marker.read_text(encoding="utf-8").strip() != current:
        raise ValueError(f"{dest} holds another scale campaign ({marker.read_text().strip()}); remove it first")
    started = time.monotonic()
    todo = [e for e in entries if not _complete(dest / e.folder, e)]
    if todo:
        workers = workers or os.cpu_count() or 1
        make = functools.partial(_make_package, dest, cache=cache, keep=cache != own)  # keep: a shared cache
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for _ in pool.map(make, todo, chunksize=8):
                pass
    write_scale_sheet(dest, entries)
    marker.write_text(current + "\n", encoding="utf-8")
    log.info(
        "scale inbox: %d package(s) in %s (%d made), %.1f s", len(entries), dest, len(todo), time.monotonic() - started
    )
    return entries


def _complete(pkg: Path, entry: ScaleEntry) -> bool:
    if entry.expected == "M-VIDEO-MISSING":
        return pkg.is_dir()
    return (pkg / "申报表.docx").exists() or (pkg / "科普号申报表.docx").exists()


def _spec(entry: ScaleEntry) -> PackageSpec:
    _, category, synopsis = _TOPICS[entry.index % len(_TOPICS)]
    i = entry.index
    return PackageSpec(
        province=entry.province,
        unit=entry.unit,
        title=entry.title,
        sep="+",
        expected=entry.expected,
        source=_source(i),
        category=category,
        member=entry.member,
        creators=f"{_person(i)}、{_person(i + 5)}",
        phone=f"139{i:08d}",
        email=f"entry{i}@example.cn",
        aired=f"2022年{1 + i % 9}月{1 + i % 28}日",
        synopsis=f"《{entry.title}》{synopsis}",
    )


def _source(i: int) -> str:
    """Entry ``i``'s own picture as a lavfi graph, drawn at ``{size}`` (half the output size).

    The large-scale picture is what the perceptual fingerprint (:mod:`kepu.media.fingerprint`)
    sees: the 64 lowest DCT frequencies of each second's picture, of the whole and of nine windows of
    90 %. Here it is a sum of eight low cosines, with weights drawn afresh for every 0.4 s from the
    entry's own seed, so that the fingerprints of any two entries differ like coin tosses and no
    two seconds of two entries line up. A ``life`` pattern averaged over it gives the fine detail
    the clarity and blur checks look for.
    """
    seed = i + 1
    terms = []
    for j, (p, q) in enumerate(((0, 1), (1, 0), (2, 0), (1, 1), (0, 2), (0, 3), (1, 2), (2, 1))):
        weight = f"(2*(sin({seed}*12.9898+floor(T/0.4)*78.233+{j}*37.719)*43758.5453" + (
            f"-floor(sin({seed}*12.9898+floor(T/0.4)*78.233+{j}*37.719)*43758.5453))-1)"
        )
        terms.append(f"{weight}*cos(PI*{p}*(Y+0.5)/H)*cos(PI*{q}*(X+0.5)/W)")
    field = f"128+20*({'+'.join(terms)})"
    return (
        f"color=c=gray:s=32x18:r={FPS},format=gray,geq=lum='{field}',scale={{size}}:flags=bicubic,"
        f"format=gbrp[g];life=s={{size}}:r={FPS}:mold=10:ratio=0.{3 + i % 4}:seed={i}:death_color=#404040"
        f":life_color=#c8c8c8:mold_color=#707070,format=gbrp[l];[g][l]blend=all_mode=average"
    )


def _picture(source: str, width: int, height: int) -> str:
    """The picture at ``width``×``height``: drawn at half size and scaled up (no one-pixel detail to
    look interlaced), desaturated and inside the legal range, as :mod:`kepu.devtools.sample` makes it."""
    drawn = source.format(size=f"{width // 2}x{height // 2}")
    return f"{drawn},scale={width}:{height}:flags=bilinear,hue=s=0.5,format=yuv420p,eq=contrast=0.85"


def _make_package(dest: Path, entry: ScaleEntry, cache: Path, keep: bool) -> None:
    pkg = dest / entry.folder
    pkg.mkdir(exist_ok=True)
    for stale in pkg.glob(".*.part"):
        stale.unlink()
    if entry.expected == "M-VIDEO-MISSING":
        return
    spec = _spec(entry)
    if entry.kind == "account":
        ensure_file(pkg / "科普号简介.txt", lambda tmp: tmp.write_text(spec.synopsis + "\n", encoding="utf-8"))
        ensure_file(pkg / "科普号申报表.docx", lambda tmp: _make_account_form(tmp, entry, spec))
        return
    if entry.expected == "M-UNREADABLE":
        video = pkg / "video.mp4"
        content = b"" if _unreadable_kind(entry) == "zero-byte" else "这不是视频文件。\n".encode()
        ensure_file(video, bytes_writer(content))
    else:
        ensure_file(pkg / spec.video_name, lambda tmp: _make_video(tmp, spec, cache, keep))
    if entry.expected != "M-COVER-MISSING":
        ensure_file(pkg / "封面.jpg", lambda tmp: _make_cover(tmp, spec))
    ensure_file(pkg / "简介.txt", lambda tmp: tmp.write_text(spec.synopsis + "\n", encoding="utf-8"))
    # The last file written: its presence marks a complete package (see _complete).
    ensure_file(pkg / "申报表.docx", lambda tmp: make_form(tmp, spec))


def _make_video(out: Path, spec: PackageSpec, cache: Path, keep: bool) -> None:
    """Picture, narration and subtitles in one ffmpeg run: H.264 High at a constant bitrate, AAC, mov_text;
    with ``keep`` (``cache`` is a shared media cache), the video is kept there and copied when made again.

    The picture holds black for ``_HOLD_S`` and fades in, then fades out and holds black again: an
    opening and a closing. The narration is a voiced tone with a short pause of digital silence
    every 1.6 s (the last under the closing black), at about -20 LUFS.
    """
    width, height = SIZE
    out_at = DURATION_S - _HOLD_S - _FADE_S
    graph = (
        f"{_picture(spec.source, width, height)},fade=t=in:st={_HOLD_S:g}:d={_FADE_S:g},"
        f"fade=t=out:st={out_at:.3f}:d={_FADE_S:g}"
    )
    streams = [ffmpeg.input(graph, f="lavfi", t=f"{DURATION_S:.3f}")["v"]]
    narration = None
    if spec.expected != "V-NO-AUDIO":
        narration = (
            f"sine=frequency=220:sample_rate=48000:duration={DURATION_S:.3f},tremolo=f=3.7:d=0.6,"
            "volume=0:enable='gte(mod(t,1.6),1.1)',volume=2,aformat=channel_layouts=stereo"
        )
        streams.append(ffmpeg.input(narration, f="lavfi")["a"])
    subtitles = subtitles_file(cache, spec, DURATION_S)
    streams.append(ffmpeg.input(str(subtitles), f="srt")["s"])
    options: dict[str, object] = {
        **x264_cbr_options(VIDEO_KBPS),
        "c:a": "aac",
        "b:a": f"{AUDIO_KBPS}k",
        "c:s": "mov_text",
        "t": f"{DURATION_S:.3f}",
        "metadata": f"title={spec.title}",
        "metadata:s:s:0": "language=chi",
        "metadata:s:s": "handler_name=中文字幕",
        "movflags": "+faststart",
        "f": "mp4",
    }
    if not keep:
        run_ffmpeg(ffmpeg.output(*streams, str(out), **options), DURATION_S)
        return
    # Named by everything the command is made of (the subtitle file is named by its text).
    video = cache / f"scale-v{_VERSION}-{short_digest(_VERSION, graph, narration, subtitles.name, options)}.mp4"
    cached_file(video, lambda tmp: run_ffmpeg(ffmpeg.output(*streams, str(tmp), **options), DURATION_S))
    shutil.copyfile(video, out)


def _make_cover(out: Path, spec: PackageSpec) -> None:
    """The first frame of the entry's picture at 1280×720 (drawn at a quarter of that: a cover's
    sharpness is not checked, and drawing is most of the cost)."""
    width, height = _COVER_SIZE
    drawn = spec.source.format(size=f"{width // 4}x{height // 4}")
    graph = f"{drawn},scale={width}:{height}:flags=bilinear,hue=s=0.5,format=yuv420p"
    stream = ffmpeg.input(graph, f="lavfi")
    options = {"frames:v": 1, "pix_fmt": "yuvj420p", "q:v": 3, "update": 1, "f": "image2", "c:v": "mjpeg"}
    run_ffmpeg(ffmpeg.output(stream, str(out), **options), None)


def _make_account_form(out: Path, entry: ScaleEntry, spec: PackageSpec) -> None:
    """附件1 科普号申报表: 120 works and 8,600 followers, or too few of one for K-WORKS / K-FANS."""
    from kepu.intake.form_templates import write_filled_account_form

    works = 30 if entry.expected == "K-WORKS" else 120 + entry.index % 50
    fans = "600" if entry.expected == "K-FANS" else f"{8600 + entry.index}"
    write_filled_account_form(
        out,
        {
            "科普号名称": entry.title,
            "所属单位（团队、个人）": entry.unit,
            "姓名": _person(entry.index),
            "工作单位": entry.unit,
            "职务": "科普部主任",
            "职称": "高级工程师",
            "专业领域": spec.category,
            "粉丝量": fans,
            "联系电话": spec.phone,
            "邮箱": spec.email,
            "主要从事科普创作经历、主要成绩": f"2019年起运营本号，累计发布 {works} 条视频，获省级奖励2项。",
            "报送材料网盘链接地址": f"https://pan.baidu.com/s/2{short_digest(entry.title)[:12]}",
            "推荐单位意见": "同意推荐",
        },
        seal_picture=True,
    )


# --- the summary sheet and the campaign file ------------------------------------------------------------

_SHEET_HEADER = ("序号", "省份", "报送单位", "报送渠道", "类型", "作品名称", "网盘链接", "提取码", "接收时间")


def write_scale_sheet(dest: Path, entries: list[ScaleEntry]) -> Path:
    """The units' summary sheet: each entry's channel, kind and receipt time (UTF-8 CSV with a BOM)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(_SHEET_HEADER)
    for e in entries:
        writer.writerow(
            (
                e.index + 1,
                e.province,
                e.unit,
                e.channel,
                "科普号" if e.kind == "account" else "微视频",
                e.title,
                f"https://pan.baidu.com/s/1{short_digest(e.folder)[:12]}",
                short_digest(e.folder, "code")[:4],
                e.received_at.strftime("%Y-%m-%d %H:%M"),
            )
        )
    return save_summary_sheet(dest, buf.getvalue())


def write_scaled_campaign(
    dest: Path,
    *,
    duration_s: tuple[float, float],
    size: tuple[int, int],
    windows: dict[tuple[str, ...], float] | None = None,
    resolution: tuple[int, int] | None = None,
) -> Path:
    """The 2022 campaign with its duration and size limits scaled to short generated videos.

    ``windows`` replaces time windows, keyed by their path in the campaign file. The default suits
    the small sample profile's 9.6 s videos, whose 3.2 s base clip dips through black at every loop
    join (3.2 s and 6.4 s): the closing window reaches back to the last join, and the freeze, black
    and silence rules keep a body of a few seconds to look at. ``resolution`` lowers the minimum
    picture size (and with it the size a publication copy is remuxed at). Every other limit stays
    the real one, the clarity floor of 0.05 bits per pixel included.
    """
    import yaml

    from kepu.campaign import load_campaign
    from kepu.config import DEFAULT_CAMPAIGN_FILE

    data = yaml.safe_load(DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8"))
    data["video"]["duration_s"] = {"min": duration_s[0], "max": duration_s[1]}
    lo, hi = size
    data["video"]["size_bytes"] = {"error_min": lo, "warn_min": lo, "warn_max": hi, "error_max": hi}
    if resolution is not None:
        data["video"]["min_width"], data["video"]["min_height"] = resolution
    if windows is None:
        windows = {
            ("video", "freeze", "edge_s"): 2.0,
            ("video", "black", "edge_s"): 2.0,
            ("structure", "edge_window_s"): 3.5,
            ("audio", "silence_min_s"): 2.0,
        }
    for (*parents, key), value in windows.items():
        section = data
        for name in parents:
            section = section[name]
        if key not in section:
            raise KeyError(f"the campaign has no {'.'.join([*parents, key])}")
        section[key] = value
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    load_campaign(dest)  # the scaled file must still be a valid campaign
    return dest


def write_scale_campaign(dest: Path) -> Path:
    """The campaign file the scale inbox's packages are judged under."""
    return write_scaled_campaign(dest, duration_s=DURATION_LIMITS_S, size=SIZE_LIMITS, windows=WINDOWS, resolution=SIZE)
