from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from kepu.campaign import load_campaign
from kepu.config import DEFAULT_CAMPAIGN_FILE
from kepu.findings import verdict
from kepu.intake.packages import (
    choose_video,
    classify,
    discover,
    package_files,
    parse_folder_name,
    read_text,
    safe_extract,
    submission_id,
)

pytestmark = pytest.mark.unit
C = load_campaign(DEFAULT_CAMPAIGN_FILE)


@pytest.mark.parametrize(
    ("name", "province", "unit", "title"),
    [
        (
            "北京市+北京市青少年科技中心+月亮为什么有阴晴圆缺",
            "北京市",
            "北京市青少年科技中心",
            "月亮为什么有阴晴圆缺",
        ),
        ("广东＋广州市少年宫＋会飞的种子", "广东省", "广州市少年宫", "会飞的种子"),
        ("新疆生产建设兵团-兵团科协-沙漠里的绿洲", "新疆生产建设兵团", "兵团科协", "沙漠里的绿洲"),
        ("新疆 + 乌鲁木齐市第一中学 + 雪莲", "新疆维吾尔自治区", "乌鲁木齐市第一中学", "雪莲"),
        ("内蒙古自治区+张三（个人）+草原上的星空.zip", "内蒙古自治区", "张三(个人)", "草原上的星空"),
        ("“湖南省+长沙市科技馆+水的三态”", "湖南省", "长沙市科技馆", "水的三态"),
        ("上海市科技馆+光的折射", "上海市", "科技馆", "光的折射"),
    ],
)
def test_folder_names_parse(name: str, province: str, unit: str, title: str) -> None:
    parsed = parse_folder_name(name, C)
    assert (parsed.province, parsed.unit, parsed.title) == (province, unit, title)
    assert parsed.complete


@pytest.mark.parametrize("name", ["我的作品", "火星省+某单位+标题", "月亮为什么有阴晴圆缺.mp4", ""])
def test_folder_names_that_do_not_parse(name: str) -> None:
    assert not parse_folder_name(name, C).complete


def test_submission_id_is_stable_and_normalised() -> None:
    a = submission_id("2022", "北京市+单位+标题")
    assert a == submission_id("2022", "北京市+单位+标题")
    assert a != submission_id("2023", "北京市+单位+标题")
    # The same name in decomposed Unicode (as macOS writes it) maps to the same id.
    assert submission_id("2022", "Cafe\u0301") == submission_id("2022", "Caf\u00e9")
    assert a.startswith("s") and len(a) == 21


def test_discover_sorts_packages_and_skips_junk(tmp_path: Path) -> None:
    (tmp_path / "b+单位+题").mkdir()
    (tmp_path / "b+单位+题" / "v.mp4").write_bytes(b"x")
    (tmp_path / "a.zip").write_bytes(b"PK")
    (tmp_path / "c.mp4").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not a package")
    (tmp_path / ".DS_Store").write_bytes(b"")
    (tmp_path / "__MACOSX").mkdir()
    found = discover(tmp_path, C)
    assert [(s.name, s.kind) for s in found] == [
        ("a.zip", "archive"),
        ("b+单位+题", "folder"),
        ("c.mp4", "file"),
    ]
    fp = found[1].fingerprint
    (tmp_path / "b+单位+题" / "v.mp4").write_bytes(b"xy")
    assert discover(tmp_path, C)[1].fingerprint != fp
    with pytest.raises(FileNotFoundError):
        discover(tmp_path / "missing", C)


def test_package_files_skip_links_and_junk(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("a")
    (tmp_path / "Thumbs.db").write_text("x")
    (tmp_path / "~$申报表.docx").write_text("lock file")
    os.symlink("/etc/passwd", tmp_path / "link.txt")
    assert [p.relative_to(tmp_path).as_posix() for p in package_files(tmp_path)] == ["sub/a.txt"]


def _zip_with(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)


def test_gbk_member_names_decode(tmp_path: Path) -> None:
    archive = tmp_path / "pkg.zip"
    gbk = "封面.jpg".encode("gbk")
    placeholder = b"X" * (len(gbk) - 4) + b".jpg"
    _zip_with(archive, [(placeholder.decode(), b"\xff\xd8\xffdata")])
    # Windows archivers write the GBK bytes with no UTF-8 flag: patch them in where the name stands.
    archive.write_bytes(archive.read_bytes().replace(placeholder, gbk))
    with zipfile.ZipFile(archive) as zf:
        assert not zf.infolist()[0].flag_bits & 0x800
    root, findings = safe_extract(archive, tmp_path / "out", C)
    assert findings == []
    assert (root / "封面.jpg").read_bytes() == b"\xff\xd8\xffdata"


def test_unsafe_members_are_refused_and_nothing_escapes(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    link = zipfile.ZipInfo("link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    _zip_with(
        archive,
        [
            ("ok/简介.txt", "简介".encode()),
            ("../../escape.txt", b"x"),
            ("/abs.txt", b"x"),
            ("C:\\win.txt", b"x"),
            (link, b"/etc/passwd"),
        ],
    )
    root, findings = safe_extract(archive, tmp_path / "scratch" / "pkg", C)
    assert [f.code for f in findings] == ["M-UNSAFE-ARCHIVE"] * 4
    assert verdict(findings) == "fail"
    assert (root / "ok" / "简介.txt").exists()
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "scratch" / "escape.txt").exists()
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == ["简介.txt"]


def test_zip_bomb_is_refused_whole(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    _zip_with(archive, [("big.bin", b"\0" * 30_000_000)])
    root, findings = safe_extract(archive, tmp_path / "out", C)
    assert [f.code for f in findings] == ["M-UNSAFE-ARCHIVE"]
    assert list(root.iterdir()) == []


def test_broken_zip_is_unreadable(tmp_path: Path) -> None:
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"PK\x03\x04 not really")
    _, findings = safe_extract(archive, tmp_path / "out", C)
    assert [f.code for f in findings] == ["M-UNREADABLE"]


def test_classify_by_role(tmp_path: Path) -> None:
    files = {
        "作品成稿.mp4": b"v" * 100,
        "封面.jpg": b"\xff\xd8\xff" + b"c" * 10,
        "承诺书签字.jpg": b"\xff\xd8\xff" + b"s" * 50,
        "简介.txt": "简介".encode(),
        "申报表.docx": b"PK",
        "字幕.srt": b"1",
        "untitled": b"\x89PNG\r\n\x1a\n....",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    c = classify(package_files(tmp_path), C, "标题")
    assert c.kind == "video"
    assert c.video and c.video.name == "作品成稿.mp4"
    assert c.cover and c.cover.name == "封面.jpg"
    assert c.synopsis and c.synopsis.name == "简介.txt"
    assert [f.name for f in c.forms] == ["申报表.docx"]
    roles = {p.name: r for r, p in c.roles()}
    assert roles["承诺书签字.jpg"] == "attachment" and roles["字幕.srt"] == "attachment"
    assert len(roles) == len(files)


def test_account_package_has_no_video(tmp_path: Path) -> None:
    (tmp_path / "科普号申报表.docx").write_bytes(b"PK")
    assert classify(package_files(tmp_path), C, None).kind == "account"


def test_choose_video(tmp_path: Path) -> None:
    def make(name: str, size: int) -> Path:
        p = tmp_path / name
        p.write_bytes(b"\0" * size)
        return p

    big, trailer = make("a.mp4", 3000), make("b.mp4", 100)
    assert choose_video([big, trailer], None) == big
    x, y = make("x.mp4", 1000), make("y.mp4", 1000)
    assert choose_video([x, y], None) is None
    final = make("终版.mp4", 1000)
    assert choose_video([x, final], None) == final
    titled = make("会飞的种子.mp4", 1000)
    assert choose_video([x, titled], "会飞的种子") == titled


def test_read_text_encodings(tmp_path: Path) -> None:
    p = tmp_path / "s.txt"
    p.write_bytes("简介内容".encode("gbk"))
    assert read_text(p) == "简介内容"
    p.write_bytes("\ufeff简介内容".encode())
    assert read_text(p) == "简介内容"


def test_batch_settings() -> None:
    from kepu.config import load_settings
    from kepu.errors import ConfigError

    default = load_settings({"KEPU_HOME": "/tmp/kepu-settings"})
    assert (default.batch_size, default.max_tasks_per_step) == (1, 256)
    chosen = load_settings({"KEPU_HOME": "/tmp/kepu-settings", "KEPU_BATCH_SIZE": "8", "KEPU_MAX_TASKS_PER_STEP": "64"})
    assert (chosen.batch_size, chosen.max_tasks_per_step) == (8, 64)
    assert load_settings(chosen.as_env()).batch_size == 8  # child processes get the same settings
    for name, value in (("KEPU_BATCH_SIZE", "0"), ("KEPU_MAX_TASKS_PER_STEP", "many")):
        with pytest.raises(ConfigError, match=name):
            load_settings({"KEPU_HOME": "/tmp/kepu-settings", name: value})
