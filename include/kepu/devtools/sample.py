"""The sample inbox: submission packages as units send them, each conformant or with one known defect.

Used by ``make demo`` and by tests. Videos are made by encoding a short base clip once per package
(lavfi ``testsrc2``/``testsrc``/``life``/``sierpinski``, CBR with filler so the bitrate, hence the file
size, is predictable) and then looping it with stream copy, which costs only disk writes.

Apart from its one defect, every package passes every check of the campaign, the media analysis
included (:func:`kepu.media.quality_checks.analyse_entry`): at least 0.05 bits per pixel, a
desaturated picture inside the legal range, no detail fine enough to look interlaced, a dip through
black at each end of the base clip (so an opening and a closing, never a long black or frozen
stretch), narration at about -19 LUFS with short pauses of digital silence, Chinese subtitles (a
soft track, or drawn into the picture with the CJK font for the package that burns them in).
Defects in the documents come from the forms as units fill them: the provincial entry whose
推荐单位 block is left as printed, to be stamped on paper, gets M-FORM-SEAL and no M-FORM-FIELD.
The interrupted upload is a complete faststart MP4 cut to 40 % of its bytes.
Each package gets its own picture, with its own lens shading (``vignette``) so that the videos'
fingerprints stay far apart however often the base clip repeats: no two entries look like
duplicates of each other. Base clips, covers, the narration track and subtitle files are cached by content
in a folder beside the inbox (``<inbox>.sample-cache``), or in the one ``KEPU_SAMPLE_CACHE`` names:
inboxes made by several processes at once share it, and each cached file is made by one of them.

Every file is written under a temporary name and renamed when complete, so an interrupted run never
leaves a half-written file under its final name, and a second run keeps every file that exists.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import ffmpeg  # ffmpeg-python: builds the argv; kepu.media.runner runs it

from kepu.media.runner import media_timeout, run

log = logging.getLogger(__name__)

ProfileName = Literal["full", "small"]

#: Timeout of each generating command as a multiple of the media it writes.
_TIMEOUT_FACTOR = 6.0
#: Frame rate of every generated video.
FPS = 25
# One video frame (40 ms) and one AAC frame (1024/48000 s) both divide 0.32 s, so a base clip
# whose length is a multiple of it loops without a gap in either stream.
_LOOP_QUANTUM_S = 0.32
_COVER_SIZE = (1920, 1080)
# Each base clip starts and ends with this much black, and fades in and out over _FADE_S.
_BLACK_HOLD_S = 0.16
_FADE_S = 0.4
_MARKER = "profile.txt"
#: Part of every cached media file's name and of the inbox marker: bumped whenever the generated
#: media change, so neither cached base clips nor an inbox made by an older version are reused.
_CACHE_VERSION = 3


@dataclass(frozen=True)
class SampleProfile:
    """Sizes and durations of one inbox profile, and the limits its defects are designed against.

    ``full`` follows the 2022 notice. ``small`` is the same set scaled down for fast tests: its
    defects are defects only under a test campaign using ``duration_limits_s`` and ``size_limits``
    (and time windows scaled to 9.6 s, see ``kepu.devtools.scale.write_scaled_campaign``). Its
    pictures are still 1080p at the real clarity floor of 0.05 bits per pixel, hence files of
    about 5 MB.
    """

    name: ProfileName
    base_s: float
    duration_s: float
    short_duration_s: float
    video_kbps: int
    short_video_kbps: int
    low_video_kbps: int
    audio_kbps: int
    duration_limits_s: tuple[float, float]
    size_limits: tuple[int, int]
    #: The interrupted upload is cut to this fraction of its bytes; its bitrate keeps the cut file
    #: inside the size limits, so that only its truncation is wrong.
    truncated_video_kbps: int = 0
    truncated_fraction: float = 0.4


PROFILES: dict[str, SampleProfile] = {
    # 192 s (3 min 12 s: little above the 3-minute floor, so the demo decodes no more than it
    # must) at ~5.1 Mbit/s ≈ 122 MB; 150 s at ~6.3 Mbit/s ≈ 115 MB (above 104,857,600 bytes, so
    # only the duration is wrong); 192 s at ~3 Mbit/s ≈ 72 MB, too small but still above the
    # 0.05 bits per pixel of V-CLARITY (2.6 Mbit/s at 1080p25), so V-SIZE comes alone. The
    # interrupted upload: 192 s at ~11.3 Mbit/s ≈ 272 MB, cut to 40 % ≈ 109 MB.
    "full": SampleProfile(
        name="full",
        base_s=9.6,
        duration_s=192.0,
        short_duration_s=150.0,
        video_kbps=5000,
        short_video_kbps=6000,
        low_video_kbps=2900,
        audio_kbps=128,
        duration_limits_s=(180.0, 480.0),
        size_limits=(104_857_600, 300_000_000),
        truncated_video_kbps=11200,
    ),
    # 9.6 s at ~4.3 Mbit/s ≈ 5.2 MB; 6.4 s at ~6.4 Mbit/s ≈ 5.1 MB; 9.6 s at ~3 Mbit/s ≈ 3.6 MB,
    # below the 4 MB floor at 0.056 bits per pixel; 9.6 s at ~9.1 Mbit/s ≈ 10.9 MB, cut to 4.4 MB.
    "small": SampleProfile(
        name="small",
        base_s=3.2,
        duration_s=9.6,
        short_duration_s=6.4,
        video_kbps=4000,
        short_video_kbps=6000,
        low_video_kbps=2900,
        audio_kbps=64,
        duration_limits_s=(8.0, 12.0),
        size_limits=(4_000_000, 8_000_000),
        truncated_video_kbps=9000,
    ),
}


@dataclass(frozen=True)
class SamplePackage:
    """One generated package: its folder name, the defect it carries (None = conformant), its video.

    ``expected`` is the finding code the package is built to produce; the empty folder of
    :func:`write_bad_packages` also lacks cover, synopsis and form, and says ``M-VIDEO-MISSING``.
    ``also`` names codes a defect cannot help bringing along (none does today: each package of
    both profiles is built so that every check, probe and media alike, finds its one code only).
    """

    folder: str
    expected: str | None
    video: str | None
    also: tuple[str, ...] = ()

    @property
    def codes(self) -> set[str]:
        """Every finding code the package must get: none for a conformant one."""
        return ({self.expected} if self.expected else set()) | set(self.also)


@dataclass(frozen=True)
class PackageSpec:
    """What one generated package holds: its folder name's parts, the defect it is built to carry, its video
    source and the fields of its form and of its row in the summary sheet."""

    province: str
    unit: str
    title: str
    sep: str
    expected: str | None
    source: str  # lavfi video source, "{w}x{h}" filled in per variant
    category: str
    member: bool
    creators: str
    phone: str
    email: str
    aired: str
    synopsis: str
    #: The channel the summary sheet gives; empty: the sheet's rotation of channels.
    channel: str = ""
    #: Chinese subtitles as a soft track ("soft") or drawn into the picture ("burned", no track).
    subtitles: Literal["soft", "burned"] = "soft"
    #: Whether the form names the recommending unit beside 单位（盖章）; if not, the block stays as
    #: printed, to be stamped on paper.
    recommender: bool = True

    @property
    def folder(self) -> str:
        return f"{self.province}{self.sep}{self.unit}{self.sep}{self.title}"

    @property
    def video_name(self) -> str:
        return f"{self.title}.mp4"


_SPECS: tuple[PackageSpec, ...] = (
    PackageSpec(
        "北京市",
        "北京市青少年科技中心",
        "月亮为什么有阴晴圆缺",
        "+",
        None,
        "testsrc2=size={size}:rate=25,vignette=angle=PI/3:x0=w*0:y0=h*0",
        "天文",
        True,
        "王晓明、李静、陈宇",
        "13801012345",
        "kepu.bj@example.cn",
        "2022年9月10日",
        "中秋节的月亮又圆又亮，可过几天它就变成了弯弯的月牙。月亮自己并不发光，我们看到的是它反射的太阳光。"
        "本片用小球和手电筒做实验，演示月球绕地球公转时被照亮的一面如何转向或背离我们，"
        "从而形成新月、上弦月、满月和下弦月，并介绍农历与月相的关系。",
    ),
    PackageSpec(
        "上海市",
        "上海科技馆（青少年科学教育部）",
        "看不见的空气有多重",
        "＋",
        None,
        "testsrc2=size={size}:rate=25,format=rgb24,negate,vignette=angle=PI/3:x0=w*1:y0=h*1",
        "物理",
        True,
        "上海科技馆科学教育团队",
        "021-68622000",
        "edu@sstm.example.cn",
        "2022年8月20日",
        "空气看不见、摸不着，它有重量吗？本片从托里拆利实验讲起，用覆杯实验、马德堡半球模型和电子秤称量充气"
        "前后的篮球，带领同学们感受大气压强的存在，并解释为什么高山上煮饭不容易熟。",
    ),
    PackageSpec(
        "广东省",
        "深圳市南山区科技教育中心",
        "一粒种子的旅行",
        "-",
        None,
        "testsrc2=size={size}:rate=25,vflip,vignette=angle=PI/3:x0=w*0.33:y0=h*0",
        "生物",
        False,
        "赵敏（个人）",
        "13923456789",
        "zhaomin@example.com",
        "2022年9月1日",
        "蒲公英乘风飞翔，苍耳搭上动物的便车，椰子随海浪漂向远方。植物不会走路，却想出了许多办法让后代"
        "走得更远。本片通过延时摄影和动画，介绍种子靠风、水、动物和自身弹射四种传播方式。",
    ),
    PackageSpec(
        "四川省",
        "成都市第七中学（李晓雯）",
        "地震来了怎么办",
        " + ",
        None,
        "testsrc2=size={size}:rate=25,vflip,format=rgb24,negate,vignette=angle=PI/3:x0=w*0:y0=h*1",
        "地球科学",
        False,
        "李晓雯",
        "13688001234",
        "lixiaowen@example.net",
        "2022年5月12日",
        "地震发生时，短短十几秒可能决定安危。本片结合地震波的传播原理，讲解纵波与横波的区别，"
        "演示在教室、家中和户外应当如何就近避险，并提醒大家震后有序撤离、远离危险建筑。",
    ),
    PackageSpec(
        "浙江省",
        "杭州市少年儿童科技馆",
        "彩虹是怎样形成的",
        "+",
        "V-DURATION",
        "testsrc=size={size}:rate=25,hflip,vignette=angle=PI/3:x0=w*0.67:y0=h*0.5",
        "物理",
        True,
        "孙一帆、周可",
        "13757112233",
        "rainbow@example.cn",
        "2022年7月15日",
        "雨后天晴，天边常会挂起一道彩虹。本片用三棱镜和一杯清水重现光的色散，说明阳光由多种颜色的光组成，"
        "并解释为什么看彩虹时要背对太阳。",
    ),
    PackageSpec(
        "湖北省",
        "武汉市青少年宫",
        "长江里的江豚",
        "＋",
        "V-RESOLUTION",
        "testsrc=size={size}:rate=25,hflip,format=rgb24,negate,vignette=angle=PI/3:x0=w*0.33:y0=h*0.5",
        "生物",
        False,
        "武汉市青少年宫科技部",
        "027-85551234",
        "whqsng@example.cn",
        "2022年6月5日",
        "长江江豚被称为“微笑天使”，是长江中唯一的淡水哺乳动物。本片介绍江豚的身体特征、生活习性和面临的"
        "威胁，讲述长江十年禁渔以来江豚数量回升的故事。",
    ),
    PackageSpec(
        "江苏省",
        "南京市科学技术协会",
        "蚂蚁怎样找到回家的路",
        "-",
        "V-ASPECT",
        "testsrc=size={size}:rate=25,vflip,vignette=angle=PI/3:x0=w*0.67:y0=h*0",
        "生物",
        True,
        "钱磊、吴桐",
        "025-83301234",
        "antpath@example.cn",
        "2022年4月22日",
        "蚂蚁外出觅食后总能准确回到巢穴。本片通过校园里的小实验，观察蚂蚁如何留下信息素“路标”，"
        "又如何借助太阳的位置辨别方向。",
    ),
    PackageSpec(
        "山东省",
        "青岛市海洋科普联盟",
        "潮汐从哪里来",
        " ",
        "V-NO-AUDIO",
        "testsrc=size={size}:rate=25,vflip,format=rgb24,negate,vignette=angle=PI/3:x0=w*0.33:y0=h*1",
        "海洋科学",
        True,
        "刘海涛",
        "15305321234",
        "tide@example.cn",
        "2022年8月8日",
        "海水每天两次涨落，赶海的人都熟悉潮汐的节奏。本片用动画演示月球和太阳的引力如何牵动海水，"
        "解释大潮、小潮的成因以及潮汐对海洋生物和人类生活的影响。",
    ),
    PackageSpec(
        "陕西省",
        "西安市青少年科技辅导员协会",
        "古人怎样计时",
        "+",
        "V-CONTAINER",
        "life=size={size}:rate=25:mold=10:ratio=0.5:seed=7:death_color=#202020:life_color=#e0e0a0:mold_color=#603030,vignette=angle=PI/3:x0=w*0.67:y0=h*1",
        "科技史",
        True,
        "郑文博、韩雪",
        "02987654321",
        "timekeeping@example.cn",
        "2022年9月20日",
        "没有钟表的年代，古人靠什么知道时间？本片带大家认识日晷、漏刻和水运仪象台，动手制作一个简易日晷，"
        "体会古代科学家的智慧。",
    ),
    PackageSpec(
        "云南省",
        "昆明市科技馆（科普展教部）",
        "热带雨林为什么这么热闹",
        "+",
        "V-SIZE",
        "life=size={size}:rate=25:mold=10:ratio=0.3:seed=11:death_color=#303848:life_color=#c0e0f0:mold_color=#284028,vignette=angle=PI/3:x0=w*1:y0=h*1",
        "生态",
        False,
        "杨帆",
        "18687112345",
        "rainforest@example.cn",
        "2022年5月22日",
        "西双版纳的热带雨林里生活着数以万计的物种。本片走进雨林，观察板根、绞杀和附生等奇特现象，"
        "讲述高温多雨的环境如何造就丰富的生物多样性。",
    ),
    PackageSpec(
        "新疆维吾尔自治区",
        "乌鲁木齐市第一中学",
        "沙漠里的绿洲是怎样形成的",
        "＋",
        "M-COVER-MISSING",
        "sierpinski=size={size}:rate=25:type=triangle:seed=5,vignette=angle=PI/3:x0=w*1:y0=h*0",
        "地理",
        False,
        "艾力·买买提、张婷",
        "13999112345",
        "oasis@example.cn",
        "2022年6月17日",
        "茫茫沙漠中为什么会出现绿洲？本片跟随雪山融水的脚步，介绍坎儿井等水利设施，解释地下水、河流和人类"
        "活动如何共同塑造绿洲，并呼吁珍惜每一滴水。",
    ),
    # Subtitles burned into the picture, as most editing apps export them: no subtitle track, no
    # sidecar file. Self-nominated, so its 推荐单位 block stays as printed and needs no seal.
    PackageSpec(
        "福建省",
        "厦门市陈思远",
        "海龟为什么要回到出生的海滩",
        "+",
        None,
        "testsrc2=size={size}:rate=25,hflip,vflip,format=rgb24,negate,vignette=angle=PI/3:x0=w*1:y0=h*0.5",
        "生物",
        False,
        "陈思远（个人）",
        "13859201234",
        "chensiyuan@example.com",
        "2022年7月30日",
        "小海龟破壳后爬向大海，多年后雌海龟又会回到出生的海滩产卵。本片介绍海龟如何借助地磁场导航，"
        "以及保护产卵海滩对海龟繁衍的意义。",
        channel="其他机构和个人自荐",
        subtitles="burned",
        recommender=False,
    ),
    # An interrupted upload: a faststart MP4 whose last 60 % of bytes never arrived.
    PackageSpec(
        "黑龙江省",
        "哈尔滨市青少年活动中心",
        "雪花为什么是六角形的",
        "+",
        "V-TRUNCATED",
        "sierpinski=size={size}:rate=25:type=carpet:seed=9,vignette=angle=PI/3:x0=w*0.5:y0=h*1",
        "物理",
        True,
        "张雪、刘冰",
        "0451-86661234",
        "snowflake@example.cn",
        "2022年1月15日",
        "雪花千姿百态，却几乎都是六角形。本片用显微摄影观察雪晶，从水分子之间的氢键讲起，解释冰晶为什么长成"
        "六角形，以及温度和湿度如何决定雪花的形状。",
        channel="单位会员",
    ),
    # Recommended by a provincial association that left the 推荐单位 block as printed, to stamp it on
    # paper, and sent no scanned signed page.
    PackageSpec(
        "安徽省",
        "安徽省青少年科技教育协会",
        "萤火虫为什么会发光",
        "+",
        "M-FORM-SEAL",
        "testsrc=size={size}:rate=25,hflip,vflip,vignette=angle=PI/3:x0=w*0:y0=h*0.5",
        "生物",
        True,
        "吴晓东（合肥市第八中学，教师）",
        "0551-62881234",
        "firefly@example.cn",
        "2022年6月25日",
        "夏夜的草丛里，萤火虫一闪一闪。本片介绍萤火虫发光器中荧光素和荧光素酶的化学反应，解释萤火虫为什么"
        "用闪光交流，以及光污染为什么让萤火虫越来越少。",
        channel="省级推荐",
        recommender=False,
    ),
)

# The 4:3 picture is 1920x1440, not 1440x1080: at 1080 lines a 4:3 frame is only 1440 wide, which
# would also break the width half of V-RESOLUTION, and each package must carry one defect only.
_VARIANT_SIZE: dict[str | None, tuple[int, int]] = {"V-RESOLUTION": (1280, 720), "V-ASPECT": (1920, 1440)}


def sample_packages(profile: ProfileName = "full") -> list[SamplePackage]:
    """The packages :func:`generate_inbox` makes for ``profile``, without making them."""
    _profile(profile)
    return [SamplePackage(s.folder, s.expected, s.video_name) for s in _SPECS]


def generate_inbox(
    dest: Path,
    *,
    profile: ProfileName = "full",
    only: Sequence[str] | None = None,
) -> list[SamplePackage]:
    """Make the sample inbox in ``dest`` and return its packages.

    ``only`` selects packages by folder name or by expected code (``"V-SIZE"``); ``"conformant"``
    selects the packages without a defect. Files that already exist are kept as they are. Base clips,
    narration and subtitles are kept in :func:`media_cache_dir`.
    """
    prof = _profile(profile)
    specs = _select(only)
    dest.mkdir(parents=True, exist_ok=True)
    own = dest.parent / f"{dest.name}.sample-cache"
    own.mkdir(exist_ok=True)
    _check_marker(own / _MARKER, dest, prof.name)
    cache = media_cache_dir(dest)
    cache.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    packages = []
    for spec in specs:
        _make_package(dest / spec.folder, spec, prof, cache)
        packages.append(SamplePackage(spec.folder, spec.expected, spec.video_name))
    write_summary_sheet(dest)
    log.info(
        "sample inbox (%s): %d package(s) in %s, %.1f s",
        prof.name,
        len(packages),
        dest,
        time.monotonic() - started,
    )
    return packages


def write_bad_packages(dest: Path) -> list[SamplePackage]:
    """Packages whose video cannot be used at all: a zero-byte file, a text file, an empty folder.

    The first two are otherwise complete (cover, synopsis, form) so their only problem is the
    video; the video is named ``video.mp4`` as careless submitters name it.
    """
    dest.mkdir(parents=True, exist_ok=True)
    bad = [
        ("河北省+石家庄市科学技术馆+零字节的视频", "M-UNREADABLE", b""),
        (
            "河南省+郑州市青少年宫+这不是一个视频文件",
            "M-UNREADABLE",
            "这是一个文本文件，只是名字叫 video.mp4。\n".encode(),
        ),
    ]
    packages = []
    for index, (folder, code, content) in enumerate(bad):
        pkg = dest / folder
        pkg.mkdir(exist_ok=True)
        video = pkg / "video.mp4"
        ensure_file(video, bytes_writer(content))
        province, unit, title = folder.split("+")
        spec = PackageSpec(
            province=province,
            unit=unit,
            title=title,
            sep="+",
            expected=code,
            source="testsrc2=size={size}:rate=25",
            category="其他",
            member=False,
            creators="测试人员",
            phone="13800000000",
            email=f"bad{index}@example.cn",
            aired="2022年10月1日",
            synopsis=f"《{title}》用于检验无法读取的视频文件能否被正确识别。",
        )
        _write_documents(pkg, spec, cover=True, cache=media_cache_dir(dest))
        packages.append(SamplePackage(folder, code, video.name))
    empty = "湖南省+长沙市第一中学+空文件夹"
    (dest / empty).mkdir(exist_ok=True)
    packages.append(SamplePackage(empty, "M-VIDEO-MISSING", None))
    write_summary_sheet(dest)
    return packages


# --- packages ---------------------------------------------------------------------------------------


def media_cache_dir(dest: Path, own: Path | None = None) -> Path:
    """Where the media the inbox ``dest`` is made of are cached: ``KEPU_SAMPLE_CACHE`` when it is set (shared
    by every inbox; the files are named by their content), else the inbox's own folder ``own`` (by default
    ``<dest>.sample-cache`` beside it)."""
    shared = os.environ.get("KEPU_SAMPLE_CACHE")
    return Path(shared) if shared else own or dest.parent / f"{dest.name}.sample-cache"


def _profile(name: str) -> SampleProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown sample profile {name!r}; known: {', '.join(PROFILES)}") from None


def _select(only: Sequence[str] | None) -> list[PackageSpec]:
    if only is None:
        return list(_SPECS)
    wanted = set(only)
    chosen = [
        s
        for s in _SPECS
        if s.folder in wanted or s.expected in wanted or ("conformant" in wanted and s.expected is None)
    ]
    known = {s.folder for s in _SPECS} | {s.expected for s in _SPECS if s.expected} | {"conformant"}
    unknown = sorted(wanted - known)
    if unknown:
        raise ValueError(f"unknown sample package(s) {unknown}; known: {sorted(known)}")
    return chosen


def _check_marker(marker: Path, dest: Path, profile: str) -> None:
    # Both profiles use the same folder and file names, so files kept from the other profile would
    # silently have the wrong durations and sizes; files kept from an older version of this module
    # would not be what its packages now promise.
    current = f"{profile} v{_CACHE_VERSION}"
    previous = marker.read_text(encoding="utf-8").strip() if marker.exists() else None
    if previous == current:
        return
    if previous is not None and any(dest.iterdir()):
        old_profile, _, old_version = previous.partition(" ")
        if old_profile != profile:
            raise ValueError(
                f"{dest} holds the {old_profile!r} sample inbox; remove it (and {marker.parent}) "
                f"before generating the {profile!r} one"
            )
        raise ValueError(
            f"{dest} holds a {profile!r} sample inbox made by an older generator ({old_version or 'v1'}); "
            f"remove it (and {marker.parent}) to generate it again"
        )
    marker.write_text(current + "\n", encoding="utf-8")


def _make_package(pkg: Path, spec: PackageSpec, prof: SampleProfile, cache: Path) -> None:
    pkg.mkdir(exist_ok=True)
    for stale in pkg.glob(".*.part"):
        # Left by an interrupted run; never a complete file.
        stale.unlink()
    video = pkg / spec.video_name
    kept = video.exists()
    ensure_file(video, lambda tmp: _make_video(tmp, spec, prof, cache))
    _write_documents(pkg, spec, cover=spec.expected != "M-COVER-MISSING", cache=cache)
    log.info("%s package %s", "kept" if kept else "made", pkg.name)


def _write_documents(pkg: Path, spec: PackageSpec, *, cover: bool, cache: Path) -> None:
    if cover:
        ensure_file(pkg / "封面.jpg", lambda tmp: shutil.copyfile(_cover(cache, spec), tmp))
    ensure_file(pkg / "简介.txt", lambda tmp: tmp.write_text(spec.synopsis + "\n", encoding="utf-8"))
    ensure_file(pkg / "申报表.docx", lambda tmp: make_form(tmp, spec))


def bytes_writer(data: bytes) -> Callable[[Path], object]:
    """A maker for :func:`ensure_file` that writes ``data``."""
    return lambda tmp: tmp.write_bytes(data)


def ensure_file(path: Path, make: Callable[[Path], object]) -> None:
    """Create ``path`` through ``make(tmp)`` unless it already exists; the rename makes it appear whole."""
    if path.exists():
        return
    tmp = path.with_name(f".{path.name}.part")
    try:
        make(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def cached_file(path: Path, make: Callable[[Path], object]) -> None:
    """:func:`ensure_file` for a file of the media cache, which other processes may be making at the same
    time: one makes it (under an exclusive lock of its own name), the others wait and keep what it made."""
    if path.exists():
        return
    locks = path.parent / ".locks"
    locks.mkdir(parents=True, exist_ok=True)  # the cache itself too: bad packages may be the first files made
    with open(locks / f"{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        ensure_file(path, make)  # under the lock no other process writes its temporary name


# --- media ------------------------------------------------------------------------------------------


def _make_video(out: Path, spec: PackageSpec, prof: SampleProfile, cache: Path) -> None:
    defect = spec.expected
    width, height = _VARIANT_SIZE.get(defect, (1920, 1080))
    if defect == "V-DURATION":
        duration, kbps = prof.short_duration_s, prof.short_video_kbps
    elif defect == "V-SIZE":
        duration, kbps = prof.duration_s, prof.low_video_kbps
    elif defect == "V-TRUNCATED":
        duration, kbps = prof.duration_s, prof.truncated_video_kbps
    else:
        duration, kbps = prof.duration_s, prof.video_kbps
    picture = _picture(spec.source, width, height)
    if spec.subtitles == "burned":
        picture += _burned_subtitles(cache, spec, prof.base_s, height)
    base = _base_clip(cache, picture, prof.base_s, kbps)
    matroska = defect == "V-CONTAINER"
    soft = spec.subtitles == "soft"

    streams = [ffmpeg.input(str(base), stream_loop=-1)["v"]]
    if defect != "V-NO-AUDIO":
        streams.append(ffmpeg.input(str(_narration(cache, duration, prof.audio_kbps)))["a"])
    if soft:
        streams.append(ffmpeg.input(str(subtitles_file(cache, spec, duration)), f="srt")["s"])
    options: dict[str, object] = {
        "c:v": "copy",
        "c:a": "copy",
        "t": f"{duration:.3f}",
        "metadata": f"title={spec.title}",
    }
    if soft:
        options["metadata:s:s:0"] = "language=chi"
    if matroska:
        options |= {"c:s": "srt", "metadata:s:s": "title=中文字幕", "f": "matroska"}
    else:
        # faststart: players on the publishing platforms can start before the whole file arrives.
        options |= {"f": "mp4", "movflags": "+faststart"}
        if soft:
            options |= {"c:s": "mov_text", "metadata:s:s": "handler_name=中文字幕"}
    run_ffmpeg(ffmpeg.output(*streams, str(out), **options), duration)
    if defect == "V-TRUNCATED":
        # The upload stopped part way: the header (in front, faststart) still declares the whole
        # duration, the media data ends early.
        os.truncate(out, int(out.stat().st_size * prof.truncated_fraction))


#: The CJK font the burned-in subtitles are drawn with (fonts-wqy-microhei, installed by make setup).
SUBTITLE_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
# Burned-in captions leave the fades at the joins of the looped base clip clear.
_CAPTION_MARGIN_S = _BLACK_HOLD_S + _FADE_S
_CAPTION_CHARS = 18


def _captions(spec: PackageSpec) -> list[str]:
    """Short caption lines cut from the synopsis at its punctuation, as editors cut narration."""
    parts = [p.strip() for p in re.split(r"[，。？！；、]", spec.synopsis) if p.strip()]
    return [p[:_CAPTION_CHARS] for p in parts] or [spec.title]


def _burned_subtitles(cache: Path, spec: PackageSpec, base_s: float, height: int) -> str:
    """drawtext filters drawing two captions per base clip over the picture, while the narration
    speaks: white CJK text with a dark outline at the bottom, as editing apps burn subtitles in."""
    lines = _captions(spec)[:2]
    half = base_s / 2
    windows = [(_CAPTION_MARGIN_S, half), (half, base_s - _CAPTION_MARGIN_S)]
    size = max(24, height // 18)
    out = []
    for text, (start, end) in zip(lines * 2, windows, strict=False):
        path = cache / f"caption-{short_digest(text)}.txt"
        cached_file(path, bytes_writer(text.encode("utf-8")))
        out.append(
            f",drawtext=fontfile={SUBTITLE_FONT}:textfile={path}:fontsize={size}:fontcolor=white"
            f":borderw={max(2, size // 16)}:bordercolor=black:x=(w-text_w)/2:y=h-text_h-{size * 3 // 2}"
            f":enable='between(t,{start:.2f},{end:.2f})'"
        )
    return "".join(out)


def _picture(source: str, width: int, height: int) -> str:
    """The lavfi graph of a package's picture at ``width``×``height``, before any fade.

    The source is drawn at half size and scaled up: testsrc2's and cellauto's one-pixel detail in
    motion looks combed to ``idet`` (V-INTERLACED), and half the pixels are half the drawing work.
    Colours are desaturated because the fully saturated test bars leave the legal range once
    compressed (V-LEVELS). Both keep the picture sharp at the 540 lines the clarity rule looks at.
    """
    drawn = source.format(size=f"{width // 2}x{height // 2}")
    return f"{drawn},scale={width}:{height}:flags=bilinear,hue=s=0.5,format=yuv420p,eq=contrast=0.85"


def x264_cbr_options(video_kbps: int) -> dict[str, object]:
    """ffmpeg output options of the generated videos' picture: H.264 High at a constant bitrate."""
    rate = f"{video_kbps}k"
    return {
        "c:v": "libx264",
        # superfast keeps CABAC and 8x8 transforms, so the stream is High profile as real uploads are.
        "preset": "superfast",
        "profile:v": "high",
        "pix_fmt": "yuv420p",
        "r": FPS,
        "g": 2 * FPS,
        # No B-frames: decode order equals display order, so cutting the looped copy at any
        # duration with -t drops no frame at the end.
        "bf": 0,
        # Constant bitrate padded with filler units: the size of a file is known in advance.
        "b:v": rate,
        "minrate": rate,
        "maxrate": rate,
        "bufsize": rate,
        "x264-params": "nal-hrd=cbr:filler=1",
    }


def _base_clip(cache: Path, picture: str, length_s: float, video_kbps: int) -> Path:
    """Encode ``length_s`` of ``picture`` once; later calls with the same parameters reuse the file.

    The clip opens with a fade from black and closes with a fade to black, each with a short black
    hold, so the looped video dips through black at every join: an opening and a closing within
    any structure window at least as long as the clip (S-STRUCTURE), far shorter than a black
    segment (V-BLACK) or a freeze (V-FREEZE) in the body.
    """
    out_at = length_s - _BLACK_HOLD_S - _FADE_S
    graph = f"{picture},fade=t=in:st={_BLACK_HOLD_S:g}:d={_FADE_S:g},fade=t=out:st={out_at:.3f}:d={_FADE_S:g}"
    stream = ffmpeg.input(graph, f="lavfi", t=f"{length_s:.3f}")
    options: dict[str, object] = {**x264_cbr_options(video_kbps), "an": None, "f": "mp4"}
    digest = short_digest(_CACHE_VERSION, graph, length_s, options)
    path = cache / f"base-v{_CACHE_VERSION}-{digest}.mp4"
    cached_file(path, lambda tmp: run_ffmpeg(ffmpeg.output(stream, str(tmp), **options), length_s))
    return path


def _narration(cache: Path, duration_s: float, audio_kbps: int) -> Path:
    """A narration-like stereo track: a voiced tone with syllable tremolo and a pause every 5 s.

    The pauses stay under a second (no A-SILENCE) and are digital silence (no A-NOISE); the level
    is about -19 LUFS, inside the campaign's loudness window.
    """
    graph = (
        f"sine=frequency=220:sample_rate=48000:duration={duration_s:.3f},"
        "tremolo=f=3.7:d=0.6,"
        "volume=0:enable='gte(mod(t,5),4.2)',"
        "volume=2,"
        "aformat=channel_layouts=stereo"
    )
    options: dict[str, object] = {"c:a": "aac", "b:a": f"{audio_kbps}k", "f": "mp4"}
    path = cache / f"narration-v{_CACHE_VERSION}-{short_digest(_CACHE_VERSION, graph, options)}.m4a"
    stream = ffmpeg.input(graph, f="lavfi")
    cached_file(path, lambda tmp: run_ffmpeg(ffmpeg.output(stream, str(tmp), **options), duration_s))
    return path


def subtitles_file(cache: Path, spec: PackageSpec, duration_s: float) -> Path:
    """Chinese subtitles from the synopsis, one sentence every 4 s, repeated to the end."""
    sentences = [s for s in re.split(r"(?<=[。？！])", spec.synopsis) if s.strip()] or [spec.title]
    cues = []
    start, n = 0.0, 0
    while start < duration_s:
        end = min(start + 4.0, duration_s)
        cues.append(f"{n + 1}\n{_srt_time(start)} --> {_srt_time(end)}\n{sentences[n % len(sentences)]}\n")
        start, n = end, n + 1
    text = "\n".join(cues)
    path = cache / f"subtitles-{short_digest(text)}.srt"
    cached_file(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


def _srt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def _cover(cache: Path, spec: PackageSpec) -> Path:
    """The 2 s frame of the package's own picture, a 1920×1080 JPEG made once per picture (drawing the
    2 s that lead to it is most of a package's cost once its base clip is cached)."""
    width, height = _COVER_SIZE
    graph = _picture(spec.source, width, height)
    options: dict[str, object] = {
        "frames:v": 1,
        "pix_fmt": "yuvj420p",
        "q:v": 3,
        "update": 1,
        "f": "image2",
        "c:v": "mjpeg",
    }
    path = cache / f"cover-v{_CACHE_VERSION}-{short_digest(_CACHE_VERSION, graph, options)}.jpg"
    stream = ffmpeg.input(graph, f="lavfi", ss=2)
    cached_file(path, lambda tmp: run_ffmpeg(ffmpeg.output(stream, str(tmp), **options), None))
    return path


def run_ffmpeg(node: Any, duration_s: float | None) -> None:
    """Run an ffmpeg-python output node through the runner.

    ffmpeg-python only builds the argv here: its own ``run`` has no timeout and logs nothing, and
    every media subprocess of kepu goes through :func:`kepu.media.runner.run`.
    """
    argv: list[str] = node.global_args("-nostdin", "-hide_banner", "-v", "error").overwrite_output().compile()
    run(argv, timeout=media_timeout(duration_s if duration_s is not None else 0.0, _TIMEOUT_FACTOR))


def short_digest(*parts: object) -> str:
    """16 hex digits that stand for ``parts``: names of cached files, made-up links and access codes."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


# --- documents --------------------------------------------------------------------------------------


def make_form(out: Path, spec: PackageSpec) -> None:
    """附件2 微视频申报表 on the notice's own template, filled as a unit would fill it."""
    from kepu.intake.form_templates import write_filled_video_form

    write_filled_video_form(
        out,
        {
            "单位名称（申报人）": spec.unit,
            "是否为会员": "是" if spec.member else "否",
            "微视频名称": spec.title,
            "类别（专业领域）": spec.category,
            "播出时间": spec.aired,
            "主创人员（或单位）": spec.creators,
            "报送材料网盘链接地址": f"https://pan.baidu.com/s/1{short_digest(spec.title)[:12]}  提取码：{short_digest(spec.unit)[:4]}",
            "联系电话": spec.phone,
            "电子邮箱": spec.email,
            "内容简介": spec.synopsis,
            "推荐单位": f"{spec.unit}（盖章）" if spec.recommender else "",
        },
        pledge_signed=True,
    )


# --- the units' summary sheet -------------------------------------------------------------------------

SUMMARY_SHEET = "汇总表.csv"
_SHEET_HEADER = ("序号", "省份", "报送单位", "报送渠道", "类型", "作品名称", "网盘链接", "提取码", "接收时间")
# Channels the sample packages arrive through, in turn: mostly provincial recommendations.
_SAMPLE_CHANNELS = ("省级推荐", "省级推荐", "单位会员", "省级推荐", "其他机构和个人自荐")


def write_summary_sheet(dest: Path) -> Path:
    """The units' summary sheet (汇总表) for every package folder in ``dest``: one row each, with
    its channel and a receipt time in October 2022 (Beijing time), before the deadline.

    Written as UTF-8 CSV with a BOM, as Excel saves it; rewritten only when its content changes.
    """
    import csv
    import io

    from kepu.campaign import load_campaign
    from kepu.config import DEFAULT_CAMPAIGN_FILE
    from kepu.intake.packages import parse_folder_name

    campaign = load_campaign(DEFAULT_CAMPAIGN_FILE)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(_SHEET_HEADER)
    folders = sorted(p.name for p in dest.iterdir() if p.is_dir())
    fixed = {s.folder: s.channel for s in _SPECS if s.channel}
    turn = 0  # the rotation counts only the folders without a channel of their own
    for n, name in enumerate(folders, start=1):
        if name not in fixed:
            turn += 1
        channel = fixed.get(name) or _SAMPLE_CHANNELS[turn % len(_SAMPLE_CHANNELS)]
        parsed = parse_folder_name(name, campaign)
        writer.writerow(
            (
                n,
                parsed.province or "",
                parsed.unit or "",
                channel,
                "微视频",
                parsed.title or name,
                f"https://pan.baidu.com/s/1{short_digest(name)[:12]}",
                short_digest(name, "code")[:4],
                f"2022-10-{1 + n % 28:02d} {9 + n % 8:02d}:{(7 * n) % 60:02d}",
            )
        )
    return save_summary_sheet(dest, buf.getvalue())


def save_summary_sheet(dest: Path, text: str) -> Path:
    """The summary sheet (UTF-8 CSV with a BOM, as Excel saves it) in ``dest``, rewritten only when it changed."""
    data = ("\ufeff" + text).encode("utf-8")
    sheet = dest / SUMMARY_SHEET
    if not sheet.exists() or sheet.read_bytes() != data:
        part = sheet.with_name(sheet.name + ".part")
        part.write_bytes(data)
        part.replace(sheet)
    return sheet
