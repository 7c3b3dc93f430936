"""Packages as units really send them, broken in the ways they really break.

Each bad package gets its finding code in the export; the others complete; a rerun changes nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from conftest import outcomes
from kepu.config import load_settings
from kepu.context import open_context
from kepu.devtools.sample import write_summary_sheet
from kepu.intake import steps
from kepu.intake.form_templates import write_filled_video_form
from kepu.intake.forms import read_form

pytestmark = pytest.mark.integration


def _form_values(package: Path) -> dict[str, str]:
    from kepu.campaign import load_campaign
    from kepu.config import DEFAULT_CAMPAIGN_FILE

    form = read_form(package / "申报表.docx", load_campaign(DEFAULT_CAMPAIGN_FILE))
    return {k: v for k, v in form.fields.items() if v and k != "作者承诺"}


class _GbkZipInfo(zipfile.ZipInfo):
    """A member name as a Chinese Windows archiver stores it: GBK bytes, no UTF-8 flag."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # zipfile's own hook
        return self.filename.encode("gbk"), self.flag_bits & ~0x800


def _zip_folder(folder: Path, archive: Path, *, gbk: bool = False) -> None:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.iterdir()):
            name = f"{folder.name}/{f.name}"
            info = _GbkZipInfo(name) if gbk else zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, f.read_bytes())
    if gbk:
        with zipfile.ZipFile(archive) as zf:
            assert not any(i.flag_bits & 0x800 for i in zf.infolist())


@pytest.fixture
def bad_inbox(tmp_path: Path, small_inbox: tuple[Path, dict]) -> tuple[Path, dict[str, str | None]]:
    src, expected = small_inbox
    clean = sorted(n for n, (v, _) in expected.items() if v == "pass")
    base = src / clean[0]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    wanted: dict[str, str | None] = {}

    def copy(name: str) -> Path:
        dest = inbox / name
        shutil.copytree(base, dest)
        return dest

    wanted[clean[1]] = None  # a clean package stays clean
    shutil.copytree(src / clean[1], inbox / clean[1])

    p = copy("北京市+北京市第一中学+旧版Word申报表")
    (p / "申报表.docx").rename(p / "申报表.doc")
    (p / "申报表.doc").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512)
    wanted[p.name] = "M-UNREADABLE"

    p = copy("北京市+北京市第二中学+损坏的申报表")
    (p / "申报表.docx").write_bytes(b"PK\x03\x04" + b"garbage" * 50)
    wanted[p.name] = "M-UNREADABLE"

    p = copy("天津市+天津科技馆+两个视频")
    video = next(p.glob("*.mp4"))
    shutil.copy2(video, p / "另一个版本.mp4")
    with open(p / "另一个版本.mp4", "r+b") as fh:  # same size, other bytes: not clearly the entry
        fh.seek(-1, 2)
        fh.write(b"\x01")
    wanted[p.name] = "M-VIDEO-AMBIGUOUS"

    values = _form_values(base)
    p = copy("河北省+唐山市科协+简介为空")
    (p / "简介.txt").write_text("  \n", encoding="utf-8")
    write_filled_video_form(p / "申报表.docx", {**values, "内容简介": ""})
    wanted[p.name] = "M-SUMMARY-MISSING"

    p = copy("河北省+保定市科协+简介太长")
    (p / "简介.txt").write_text("长" * 301, encoding="utf-8")
    write_filled_video_form(p / "申报表.docx", {**values, "内容简介": "长" * 301})
    wanted[p.name] = "M-SUMMARY-LENGTH"

    p = copy("火星省+火星科协+不存在的省份")
    wanted[p.name] = "M-FOLDER-NAME"

    p = copy("山西省+大同市科协+封面是4比3")
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=c=blue:s=640x480",
            "-frames:v",
            "1",
            str(p / "封面.jpg"),
        ],
        check=True,
    )
    wanted[p.name] = "M-COVER-FORMAT"

    p = copy("山西省+阳泉市科协+封面打不开")
    (p / "封面.jpg").write_text("这不是图片", encoding="utf-8")
    wanted[p.name] = "M-COVER-FORMAT"

    p = copy("山西省+太原市科协+电话有字母")
    write_filled_video_form(p / "申报表.docx", {**values, "联系电话": "138OO13800O"})
    wanted[p.name] = "M-FORM-CONTACT"

    # The same video sent twice, by two units.
    for unit in ("吉林省+长春市科技馆+同一部片子", "辽宁省+沈阳市科技馆+同一部片子"):
        copy(unit)
        wanted[unit] = "O-DUPLICATE-FILE"

    # Archives: GBK names from Windows (clean), a bomb, a path traversal.
    _zip_folder(src / clean[2], inbox / f"{clean[2]}.zip", gbk=True)
    wanted[f"{clean[2]}.zip"] = None
    with zipfile.ZipFile(inbox / "江西省+南昌市科协+压缩炸弹.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.bin", b"\0" * 60_000_000)
    wanted["江西省+南昌市科协+压缩炸弹.zip"] = "M-UNSAFE-ARCHIVE"
    with zipfile.ZipFile(inbox / "江西省+九江市科协+路径穿越.zip", "w") as zf:
        zf.writestr("../../evil.txt", b"x")
        for f in sorted(base.iterdir()):
            zf.write(f, f.name)
    wanted["江西省+九江市科协+路径穿越.zip"] = "M-UNSAFE-ARCHIVE"

    write_summary_sheet(inbox)  # channels and receipt times for the folders
    return inbox, wanted


def test_each_bad_package_gets_its_code_and_the_rest_complete(
    tmp_path: Path, bad_inbox: tuple[Path, dict[str, str | None]], small_campaign: Path
) -> None:
    inbox, wanted = bad_inbox
    settings = load_settings(
        {"KEPU_HOME": str(tmp_path / "kepu"), "KEPU_INBOX": str(inbox), "KEPU_CAMPAIGN_FILE": str(small_campaign)}
    )
    ctx = open_context(settings, migrate=True)
    steps.run_intake(ctx, run_id="bad1")
    got = outcomes(settings)
    assert set(got) == set(wanted)
    for name, code in wanted.items():
        _verdict, codes = got[name]
        if code is None:
            # The zip is not listed in the folder-based sheet: only its channel and date are unknown.
            assert not {c for c in codes if c.startswith(("M-", "V-", "A-", "O-"))}, (name, codes)
        else:
            assert code in codes, (name, codes)
    assert got[next(n for n, c in wanted.items() if c is None and not n.endswith(".zip"))] == ("pass", set())
    assert not (tmp_path / "evil.txt").exists() and not (inbox.parent / "evil.txt").exists()
    # Every package finished, none is left half-done.
    assert {s.status for s in ctx.records.list_submissions(ctx.campaign.id)} == {"checked"}

    counts = ctx.records.table_counts()
    steps.run_intake(ctx, run_id="bad2", force=True)
    again = ctx.records.table_counts()
    for table in ("submissions", "materials", "findings", "submitters"):
        assert again[table] == counts[table], table
    assert outcomes(settings) == got
