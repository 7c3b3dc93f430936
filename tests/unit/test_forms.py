from __future__ import annotations

import zipfile
from datetime import date
from pathlib import Path

import pytest
from docx import Document
from openpyxl import Workbook

from kepu.campaign import load_campaign
from kepu.config import DEFAULT_CAMPAIGN_FILE
from kepu.errors import MaterialError
from kepu.findings import Finding, verdict
from kepu.intake.form_checks import account_numbers, checklist_items, form_findings, signed_scans
from kepu.intake.form_fields import normalise_label
from kepu.intake.form_signoff import PLEDGE_TEXT
from kepu.intake.form_tables import read_docx_fields
from kepu.intake.form_templates import (
    ACCOUNT_TITLE,
    VIDEO_TITLE,
    seal_png,
    write_filled_account_form,
    write_filled_video_form,
    write_templates,
)
from kepu.intake.form_values import is_valid_email, is_valid_phone, parse_count
from kepu.intake.forms import FormData, read_form

pytestmark = pytest.mark.unit
C = load_campaign(DEFAULT_CAMPAIGN_FILE)

VIDEO = {
    "单位名称（申报人）": "北京市青少年科技中心",
    "是否为会员": "是",
    "微视频名称": "月亮为什么有阴晴圆缺",
    "类别（专业领域）": "天文",
    "播出时间": "2022年9月10日",
    "主创人员（或单位）": "王晓明（北京四中，教师）、李静",
    "报送材料网盘链接地址": "https://pan.baidu.com/s/1abcdef  提取码：x1y2",
    "联系电话": "010-64522026",
    "电子邮箱": "kepu.bj@example.cn",
    "内容简介": "月亮自己并不发光。\n本片用小球和手电筒演示月相的成因。",
    "推荐单位": "北京市科学技术协会",
}
ACCOUNT = {
    "科普号名称": "小小科学家",
    "所属单位（团队、个人）": "北京科学中心",
    "姓名": "赵敏",
    "工作单位": "北京科学中心",
    "职务": "主任",
    "职称": "高级工程师",
    "专业领域": "物理",
    "粉丝量": "8千",
    "联系电话": "13912345678",
    "邮箱": "zhaomin@example.org.cn",
    "主要从事科普创作经历、主要成绩": "2019年起运营本号，累计发布 86 条视频，获市级奖励3项。",
    "报送材料网盘链接地址": "https://pan.baidu.com/s/2xyz",
    "推荐单位意见": "同意推荐",
}


def codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


def make_docx(path: Path, rows: list[list[str]], merges: tuple[tuple[int, int, int, int], ...] = ()) -> Path:
    """A one-table Word file; each merge is (row0, col0, row1, col1), its text put in after merging."""
    doc = Document()
    doc.add_paragraph(VIDEO_TITLE)
    width = max(len(r) for r in rows)
    table = doc.add_table(rows=len(rows), cols=width)
    merged = {}
    for r0, c0, r1, c1 in merges:
        merged[(r0, c0)] = table.cell(r0, c0).merge(table.cell(r1, c1))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            if text:
                (merged.get((r, c)) or table.cell(r, c)).text = text
    doc.save(str(path))
    return path


# --- templates and round trips --------------------------------------------------------------------------


def test_blank_templates_read_as_empty_forms(tmp_path: Path) -> None:
    account_path, video_path = write_templates(tmp_path / "templates")
    assert account_path.name.startswith("附件1") and video_path.name.startswith("附件2")

    video = read_form(video_path, C)
    assert (video.kind, video.format, video.title) == ("video", "docx", VIDEO_TITLE)
    assert set(video.fields) == set(C.package.video_form_fields)
    assert all(v == "" for v in video.fields.values()), video.fields
    assert video.missing_labels == []
    assert not video.has_signature_text and video.pledge_date is None and not video.pledge_signed
    assert not video.seal_mentioned and video.images_count == 0

    account = read_form(account_path, C)
    assert (account.kind, account.title) == ("account", ACCOUNT_TITLE)
    assert set(account.fields) == set(C.package.account_form_fields)
    assert all(v == "" for v in account.fields.values()), account.fields
    assert account.missing_labels == []


def test_blank_video_template_findings_name_each_required_field(tmp_path: Path) -> None:
    _, video_path = write_templates(tmp_path)
    found = form_findings(C, read_form(video_path, C), kind="video", scans=[])
    fields = [f.value for f in found if f.code == "M-FORM-FIELD"]
    # The pledge has its own code and the recommending unit depends on the channel.
    expected = [n for n in C.package.video_form_fields if n not in ("作者承诺", "推荐单位")]
    assert fields == expected
    assert codes(found).count("M-FORM-PLEDGE") == 1
    assert all(f.stage == "form" for f in found)


def test_filled_video_form_round_trips(tmp_path: Path) -> None:
    path = write_filled_video_form(tmp_path / "申报表.docx", VIDEO, signed_on=date(2022, 10, 12))
    form = read_form(path, C)
    assert form.kind == "video" and form.source == "申报表.docx"
    for name, value in VIDEO.items():
        assert form.fields[name] == value, name
    assert form.fields["作者承诺"] == "王晓明"
    assert form.signature_name == "王晓明" and form.has_signature_text
    assert form.pledge_date == date(2022, 10, 12)
    assert form.pledge_signed
    assert form.seal_mentioned and form.seal_text == "北京市科学技术协会"
    found = form_findings(C, form, kind="video", scans=[])
    assert found == [] and verdict(found) == "pass"


def test_hints_left_in_by_the_unit_are_not_values(tmp_path: Path) -> None:
    path = write_filled_video_form(tmp_path / "v.docx", VIDEO, keep_hints=True)
    assert read_form(path, C).fields["内容简介"] == VIDEO["内容简介"]
    path = write_filled_account_form(tmp_path / "a.docx", ACCOUNT, keep_hints=True)
    form = read_form(path, C)
    assert form.fields["所属单位（团队、个人）"] == "北京科学中心"
    assert form.fields["主要从事科普创作经历、主要成绩"] == ACCOUNT["主要从事科普创作经历、主要成绩"]


def test_filled_account_form_round_trips(tmp_path: Path) -> None:
    path = write_filled_account_form(tmp_path / "科普号申报表.docx", ACCOUNT, seal_picture=True)
    form = read_form(path, C)
    assert form.kind == "account"
    for name, value in ACCOUNT.items():
        assert form.fields[name] == value, name
    assert form.fields["负责人签名"] == "赵敏"
    assert form.pledge_date == date(2022, 10, 8)
    assert form.images_count == 1 and form.pledge_images == 1
    assert account_numbers(form) == (86, 8000)
    assert form_findings(C, form, kind="account", scans=[]) == []


# --- layouts units make ---------------------------------------------------------------------------------


def test_retyped_labels_and_label_value_in_one_cell(tmp_path: Path) -> None:
    rows = [
        ["单 位 名 称\n\n（申报人）", "广州市少年宫", "是否为会员？", "否"],
        ["微视频名称：会飞的种子", "", "", ""],
        ["类  别\n（专业领域）", "生物", "播出时间", "2022.9.1"],
        ["主创人员（或单位）", "陈明", "", ""],
        ["报送材料网盘链接地址（百度网盘）：https://pan.baidu.com/s/1x 提取码：ab12", "", "", ""],
        ["联系电话（手机）", "+86 139-1234-5678", "E-mail", "chen＠example.cn"],
        ["内容简介\n（300字以内）\n蒲公英的种子如何随风旅行。", "", "", ""],
        ["作者承诺", "姓名（签字）：陈明    2022年10月9日", "", ""],
        ["推荐单位", "", "", ""],
    ]
    form = read_form(make_docx(tmp_path / "f.docx", rows), C)
    assert form.fields["单位名称（申报人）"] == "广州市少年宫"
    assert form.fields["是否为会员"] == "否"
    assert form.fields["微视频名称"] == "会飞的种子"
    assert form.fields["类别（专业领域）"] == "生物"
    assert form.fields["主创人员（或单位）"] == "陈明"
    assert form.fields["报送材料网盘链接地址"] == "https://pan.baidu.com/s/1x 提取码：ab12"
    assert form.fields["电子邮箱"] == "chen＠example.cn"
    assert form.fields["内容简介"] == "蒲公英的种子如何随风旅行。"
    assert form.pledge_date == date(2022, 10, 9) and form.signature_name == "陈明"
    assert form_findings(C, form, kind="video", scans=[]) == []


def test_merged_cells_count_once_and_values_span_the_row(tmp_path: Path) -> None:
    rows = [
        ["单位名称（申报人）", "上海科技馆", "是否为会员", "是"],
        ["微视频名称", "看不见的空气有多重", "", ""],
        ["类别（专业领域）", "物理", "播出时间", "2022年8月20日"],
        # Units that do not merge type across cells: the rest of the row is the value.
        ["主创人员（或单位）", "上海科技馆", "科学教育团队", ""],
        ["报送材料网盘链接地址：https://pan.baidu.com/s/1y", "", "", ""],
        ["联系电话", "021-68622000", "电子邮箱", "edu@example.cn"],
        ["内容简介", "空气有重量吗？", "", ""],
        ["作者承诺", "本人（本单位）郑重承诺：对所提交的微视频作品拥有自主知识产权。", "", ""],
        ["", "姓名（签字）：周洁", "", ""],
        ["", "2022年 10 月 3 日", "", ""],
        ["推荐单位", "单位（盖章）：上海市科协", "", ""],
    ]
    merges = (
        (1, 1, 1, 3),  # the value spans three grid columns: one cell, read once
        (4, 0, 4, 3),
        (6, 1, 6, 3),
        (7, 0, 9, 0),  # the pledge label merged down over three rows
        (7, 1, 7, 3),
        (8, 1, 8, 3),
        (9, 1, 9, 3),
        (10, 1, 10, 3),
    )
    form = read_form(make_docx(tmp_path / "m.docx", rows, merges), C)
    assert form.fields["微视频名称"] == "看不见的空气有多重"
    assert form.fields["主创人员（或单位）"] == "上海科技馆\n科学教育团队"
    assert form.fields["内容简介"] == "空气有重量吗？"
    assert form.fields["作者承诺"] == "周洁"
    assert form.pledge_date == date(2022, 10, 3)
    assert form.fields["推荐单位"] == "上海市科协"
    assert form_findings(C, form, kind="video", scans=[]) == []


def test_nested_table_with_the_fields(tmp_path: Path) -> None:
    doc = Document()
    doc.add_paragraph("附件2 2022年青少年科技教育活动微视频申报表")
    outer = doc.add_table(rows=1, cols=1)
    inner = outer.cell(0, 0).add_table(rows=3, cols=2)
    for r, (label, value) in enumerate([("微视频名称", "雪莲"), ("联系电话", "0991-1234567"), ("电子邮箱", "x@y.cn")]):
        inner.cell(r, 0).text = label
        inner.cell(r, 1).text = value
    path = tmp_path / "nested.docx"
    doc.save(str(path))
    form = read_form(path, C)
    assert form.kind == "video"
    assert (form.fields["微视频名称"], form.fields["联系电话"], form.fields["电子邮箱"]) == (
        "雪莲",
        "0991-1234567",
        "x@y.cn",
    )
    assert "内容简介" in form.missing_labels


def test_kind_from_labels_when_the_title_is_gone(tmp_path: Path) -> None:
    doc = Document()
    table = doc.add_table(rows=3, cols=4)
    for r, row in enumerate(
        [["科普号名称", "星空", "", ""], ["姓名", "李四", "粉丝量", "1.2万"], ["职称", "无", "", ""]]
    ):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    path = tmp_path / "no-title.docx"
    doc.save(str(path))
    form = read_form(path, C)
    assert form.kind == "account" and form.title == ""
    assert account_numbers(form) == (None, 12000)


def test_one_file_with_both_forms_reads_the_filled_one(tmp_path: Path) -> None:
    account_blank, _ = write_templates(tmp_path / "t")
    video = write_filled_video_form(tmp_path / "v.docx", VIDEO)
    both = Document(str(account_blank))
    for element in Document(str(video)).element.body.iterchildren():
        if not element.tag.endswith("sectPr"):
            both.element.body.append(element)
    path = tmp_path / "附件1和附件2.docx"
    both.save(str(path))
    form = read_form(path, C)
    assert form.kind == "video"
    assert form.fields["微视频名称"] == VIDEO["微视频名称"]
    assert any("科普号申报表" in n for n in form.notes)


def test_read_docx_fields_keeps_working(tmp_path: Path) -> None:
    path = write_filled_video_form(tmp_path / "v.docx", VIDEO, keep_hints=True)
    got = read_docx_fields(path, ["内容简介", "微视频名称", "不存在的栏目"])
    assert got == {"内容简介": VIDEO["内容简介"], "微视频名称": VIDEO["微视频名称"]}
    assert normalise_label("类  别\n（专业领域）：") == "类别"


# --- files that are no form ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "said"),
    [
        ("申报表.doc", bytes.fromhex("D0CF11E0A1B11AE1") + b"\x00" * 504, ".doc"),
        ("申报表.wps", bytes.fromhex("D0CF11E0A1B11AE1") + b"\x00" * 504, ".wps"),
        ("申报表.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF"),
        ("申报表.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "图片"),
        ("申报表.docx", b"PK\x03\x04" + b"\x13\x37garbage" * 40, "损坏"),
        ("申报表.docx", b"", "空文件"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, content: bytes, said: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(MaterialError) as err:
        read_form(path, C)
    assert err.value.code == "M-UNREADABLE"
    assert said in str(err.value) and ".docx" in str(err.value) and name in str(err.value)


def test_zip_with_garbage_parts_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "申报表.docx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("[Content_Types].xml", "not xml at all <")
        zf.writestr("word/document.xml", b"\x00\x01garbage")
    with pytest.raises(MaterialError) as err:
        read_form(path, C)
    assert err.value.code == "M-UNREADABLE"
    other = tmp_path / "photos.docx"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("a.txt", "hello")
    with pytest.raises(MaterialError, match="not a Word/Excel"):
        read_form(other, C)


def test_word_file_without_a_form(tmp_path: Path) -> None:
    doc = Document()
    doc.add_paragraph("本片讲述月相变化。")
    path = tmp_path / "简介.docx"
    doc.save(str(path))
    with pytest.raises(MaterialError) as err:
        read_form(path, C)
    assert err.value.code == "M-FORM-MISSING"


# --- findings ----------------------------------------------------------------------------------------------


def test_empty_synopsis_is_named(tmp_path: Path) -> None:
    path = write_filled_video_form(tmp_path / "v.docx", {**VIDEO, "内容简介": ""})
    found = form_findings(C, read_form(path, C), kind="video", scans=[])
    assert codes(found) == ["M-FORM-FIELD"]
    assert found[0].value == "内容简介" and found[0].severity == "error"
    assert "内容简介" in found[0].message_zh and "synopsis" in found[0].message_en


def test_phone_with_letters_is_malformed(tmp_path: Path) -> None:
    path = write_filled_video_form(tmp_path / "v.docx", {**VIDEO, "联系电话": "010-6452abcd"})
    found = form_findings(C, read_form(path, C), kind="video", scans=[])
    assert codes(found) == ["M-FORM-CONTACT"]
    assert found[0].severity == "warning" and "010-6452abcd" in found[0].message_zh


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("13912345678", True),
        ("139 1234 5678", True),
        ("+86 139-1234-5678", True),
        ("010-64522026", True),
        ("0755-12345678", True),
        ("（010）68518719", True),
        ("010-64522026转8012", True),
        ("010-64522026-123", True),
        ("+86-10-64522026", True),
        ("010-64522026 / 13912345678", True),
        ("１３９１２３４５６７８", True),
        ("12912345678", False),
        ("1391234567", False),
        ("64522026", False),
        ("010-6452abcd", False),
        ("电话待定", False),
    ],
)
def test_phone_numbers(text: str, ok: bool) -> None:
    assert is_valid_phone(text) is ok


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("xhhd@cacsi.org.cn", True),
        ("a.b+c@example.com; d@example.cn", True),
        ("kepu＠example．cn", True),
        ("xhhd@cacsi", False),
        ("xhhd.cacsi.org.cn", False),
        ("张三@example.cn", False),
    ],
)
def test_email_addresses(text: str, ok: bool) -> None:
    assert is_valid_email(text) is ok


def test_unsigned_pledge_without_and_with_a_scan(tmp_path: Path) -> None:
    pkg = tmp_path / "北京市+北京市青少年科技中心+月亮"
    path = write_filled_video_form(pkg / "申报表.docx", VIDEO, pledge_signed=False)
    form = read_form(path, C)
    assert not form.pledge_signed
    cover = pkg / "封面.jpg"
    elsewhere = tmp_path / "其他" / "照片.jpg"
    assert codes(form_findings(C, form, kind="video", scans=[cover, elsewhere])) == ["M-FORM-PLEDGE"]
    assert form_findings(C, form, kind="video", scans=[pkg / "承诺书签字.pdf"]) == []
    assert form_findings(C, form, kind="video", scans=[pkg / "IMG_2041.JPG"]) == []
    assert signed_scans([path, cover, pkg / "扫描件.png", elsewhere], form) == [pkg / "扫描件.png"]
    assert any("扫描页" in item for item in checklist_items(form))


def test_pledge_with_a_name_but_no_date_is_unsigned(tmp_path: Path) -> None:
    rows = [["微视频名称", "雪莲"], ["作者承诺", "姓名（签字）：王芳\n2022年   月   日"]]
    form = read_form(make_docx(tmp_path / "f.docx", rows), C)
    assert form.has_signature_text and form.pledge_date is None and not form.pledge_signed
    found = [f for f in form_findings(C, form, kind="video", scans=[]) if f.code == "M-FORM-PLEDGE"]
    assert len(found) == 1 and "日期" in found[0].message_zh


def test_pledge_name_typed_without_the_template_prefix(tmp_path: Path) -> None:
    rows = [["微视频名称", "雪莲"], ["作者承诺", f"{PLEDGE_TEXT}\n王芳    2022年10月1日"]]
    form = read_form(make_docx(tmp_path / "f.docx", rows), C)
    assert (form.signature_name, form.pledge_date) == ("王芳", date(2022, 10, 1))


def test_value_merged_down_over_two_labels_is_read_once(tmp_path: Path) -> None:
    rows = [["微视频名称", "雪莲"], ["联系电话", "13912345678"], ["电子邮箱", ""], ["内容简介", "雪莲生长在高山。"]]
    form = read_form(make_docx(tmp_path / "f.docx", rows, merges=((1, 1, 2, 1),)), C)
    assert form.fields["联系电话"] == "13912345678"
    assert form.fields["电子邮箱"] == ""
    assert form.fields["内容简介"] == "雪莲生长在高山。"


def test_pledge_signed_with_a_pasted_picture(tmp_path: Path) -> None:
    path = write_filled_video_form(tmp_path / "v.docx", VIDEO, pledge_signed=False, signature_picture=True)
    form = read_form(path, C)
    assert form.pledge_images == 1 and form.pledge_signed
    assert form_findings(C, form, kind="video", scans=[]) == []


def test_account_registered_by_a_unit_needs_seal_evidence(tmp_path: Path) -> None:
    path = write_filled_account_form(tmp_path / "a.docx", ACCOUNT)
    form = read_form(path, C)
    found = form_findings(C, form, kind="account", scans=[])
    assert codes(found) == ["K-SEAL"] and found[0].value == "北京科学中心"
    assert form_findings(C, form, kind="account", scans=[tmp_path / "盖章页.pdf"]) == []
    personal = read_form(
        write_filled_account_form(tmp_path / "p.docx", {**ACCOUNT, "所属单位（团队、个人）": "个人"}), C
    )
    assert form_findings(C, personal, kind="account", scans=[]) == []


def test_account_form_fields_and_signature(tmp_path: Path) -> None:
    values = {**ACCOUNT, "所属单位（团队、个人）": "赵敏科普团队", "粉丝量": "", "邮箱": "zhaomin#example.cn"}
    form = read_form(write_filled_account_form(tmp_path / "a.docx", values, pledge_signed=False), C)
    found = form_findings(C, form, kind="account", scans=[])
    # The signature is handwritten on paper: never a field finding, M-FORM-PLEDGE without a scanned page.
    assert [(f.code, f.value) for f in found if f.code == "K-FORM-FIELD"] == [("K-FORM-FIELD", "粉丝量")]
    assert "M-FORM-CONTACT" in codes(found) and "M-FORM-PLEDGE" in codes(found)
    # A scanned signed page stands for the handwritten signature.
    assert "M-FORM-PLEDGE" not in codes(form_findings(C, form, kind="account", scans=[tmp_path / "签名.jpg"]))


def test_wrong_kind_of_form_and_no_form(tmp_path: Path) -> None:
    form = read_form(write_filled_account_form(tmp_path / "a.docx", ACCOUNT), C)
    found = form_findings(C, form, kind="video", scans=[])
    assert codes(found) == ["M-FORM-MISSING"] and "科普号申报表" in found[0].message_zh
    assert form_findings(C, None, kind="video", scans=[]) == []


# --- counts ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("8千", 8000),
        ("1.2万", 12000),
        ("12,000", 12000),
        ("约5000人", 5000),
        ("3k", 3000),
        ("1.5W", 15000),
        ("10万+", 100000),
        ("五千余人", 5000),
        ("一万二千", 12000),
        ("1万2千", 12000),
        ("抖音8000，快手5000，共计1.3万", 13000),
        ("截至2022年10月，粉丝1.2万", 12000),
        ("粉丝800（截至2022.10）", 800),
        ("百家号", None),
        ("暂无", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_count(text: str | None, count: int | None) -> None:
    assert parse_count(text) == count


@pytest.mark.parametrize(
    ("experience", "fans", "expected"),
    [
        ("发布作品120部，其中3部获奖", "8千", (120, 8000)),
        ("累计发布 86 条视频", "约5000人", (86, 5000)),
        ("已有60余部原创科普视频", "粉丝1.2万，作品70部", (70, 12000)),
        ("长期从事科技教育工作，多次获奖", "", (None, None)),
        ("创作科普短视频，粉丝达3万", "", (None, 30000)),
    ],
)
def test_account_numbers(experience: str, fans: str, expected: tuple[int | None, int | None]) -> None:
    form = FormData(
        kind="account",
        fields={"粉丝量": fans, "主要从事科普创作经历、主要成绩": experience},
        source="a.docx",
        format="docx",
    )
    assert account_numbers(form) == expected


def test_account_checklist_says_what_the_form_does_not_state(tmp_path: Path) -> None:
    values = {**ACCOUNT, "主要从事科普创作经历、主要成绩": "长期从事青少年科技教育。"}
    form = read_form(write_filled_account_form(tmp_path / "a.docx", values), C)
    items = checklist_items(form)
    assert any("作品数量" in i for i in items)
    assert any("盖章" in i for i in items)
    assert any("手写签名" in i for i in items)


# --- Excel ------------------------------------------------------------------------------------------------


def test_xlsx_form_with_merged_ranges_and_extra_columns(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.title = "微视频申报表"
    ws["A1"] = VIDEO_TITLE
    ws.merge_cells("A1:F1")
    rows: list[tuple[int, list[object]]] = [
        # A: an index column the unit added; F: notes.
        (2, ["1", "单位名称（申报人）", "湖南省长沙市科技馆", "是否为会员", "否", "备注"]),
        (3, ["2", "微视频名称", "水的三态", None, None, None]),
        (4, ["3", "类别（专业领域）", "化学", "播出时间", "2022-09-01", None]),
        (5, ["4", "主创人员（或单位）", "刘洋", None, None, None]),
        (6, ["5", "报送材料网盘链接地址", "https://pan.baidu.com/s/1z", None, None, None]),
        (7, ["6", "联系电话", 13812345678, "电子邮箱", "liu@example.cn", None]),
        (8, ["7", "内容简介", "（300字以内）冰、水和水蒸气。", None, None, None]),
        (9, ["8", "作者承诺", "姓名（签字）：刘洋\n2022年10月20日", None, None, None]),
    ]
    for r, values in rows:
        for c, v in enumerate(values, start=1):
            if v is not None:
                ws.cell(r, c, v)
    for r in (3, 5, 6, 8, 9):
        ws.merge_cells(start_row=r, start_column=3, end_row=r, end_column=5)
    path = tmp_path / "申报表.xlsx"
    wb.save(str(path))
    form = read_form(path, C)
    assert (form.kind, form.format) == ("video", "xlsx")
    assert form.fields["单位名称（申报人）"] == "湖南省长沙市科技馆"
    assert form.fields["是否为会员"] == "否"  # not joined with the notes column
    assert form.fields["微视频名称"] == "水的三态"
    assert form.fields["联系电话"] == "13812345678"
    assert form.fields["内容简介"] == "冰、水和水蒸气。"
    assert form.pledge_date == date(2022, 10, 20) and form.signature_name == "刘洋"
    # No 推荐单位 row in this variant: reported as a missing label, not read as a value.
    assert form.missing_labels == ["推荐单位"] and form.fields["推荐单位"] == ""
    assert form_findings(C, form, kind="video", scans=[]) == []


def test_xlsx_account_form_with_labels_above_values(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.title = "科普号"
    header = ["科普号名称", "所属单位（团队、个人）", "姓名", "粉丝量", "发布作品数", "联系电话", "邮箱"]
    values = ["天文小站", "个人", "孙亮", "3,500", "52部", "0731-88888888", "sun@example.cn"]
    for c, (h, v) in enumerate(zip(header, values, strict=True), start=1):
        ws.cell(1, c, h)
        ws.cell(2, c, v)
    path = tmp_path / "科普号申报表.xlsx"
    wb.save(str(path))
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("xl/media/image1.png", seal_png(16))
    form = read_form(path, C)
    assert form.kind == "account" and form.images_count == 1
    assert form.fields["科普号名称"] == "天文小站"
    assert form.fields["所属单位（团队、个人）"] == "个人"
    assert form.extra["作品数"] == "52部"
    assert account_numbers(form) == (52, 3500)
    assert form.fields["工作单位"] == "" and "工作单位" in form.missing_labels


def test_pictures_in_alternate_content_are_counted_once() -> None:
    from lxml import etree

    from kepu.intake.form_tables import count_images

    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    mc = "http://schemas.openxmlformats.org/markup-compatibility/2006"
    a = "http://schemas.openxmlformats.org/drawingml/2006/main"
    v = "urn:schemas-microsoft-com:vml"
    xml = f"""<w:p xmlns:w="{w}" xmlns:mc="{mc}" xmlns:a="{a}" xmlns:v="{v}"><w:r>
      <mc:AlternateContent><mc:Choice><a:blip/></mc:Choice>
        <mc:Fallback><v:imagedata/><mc:AlternateContent><mc:Fallback><v:imagedata/></mc:Fallback></mc:AlternateContent>
        </mc:Fallback></mc:AlternateContent>
      <a:blip/></w:r></w:p>"""
    assert count_images(etree.fromstring(xml)) == 2


def test_a_document_part_that_is_not_word_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "申报表.docx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("word/document.xml", '<?xml version="1.0"?><html><body>表格</body></html>')
    with pytest.raises(MaterialError) as err:
        read_form(path, C)
    assert err.value.code == "M-UNREADABLE" and "损坏" in str(err.value)
    truncated = tmp_path / "截断.docx"
    good = write_filled_video_form(tmp_path / "v.docx", VIDEO)
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(truncated, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            dst.writestr(item, data[: len(data) // 2] if item.filename == "word/document.xml" else data)
    with pytest.raises(MaterialError) as err:
        read_form(truncated, C)
    assert err.value.code == "M-UNREADABLE"


# --- signature and seal blocks: signed and stamped on paper ---------------------------------------------

SELF_NOMINATED = ("individual_member", "other")
RECOMMENDED = ("provincial", "unit_member")

# Ways units leave the printed 推荐单位 block: as printed, retyped with half-width brackets, spaced
# dates, full-width spaces, fill-in underscores and placeholders.
TEMPLATE_BLOCKS = {
    "as printed": None,
    "half-width": ["单位(盖章):", "", "年 月 日"],
    "full-width spaces": [
        "\u3000\u3000单位（盖章）：\u3000\u3000\u3000",
        "\u3000\u3000\u3000年\u3000\u3000月\u3000\u3000日",
    ],
    "underscores": ["推荐单位（盖章）：________", "日期：____年__月__日"],
    "placeholder": ["（此处加盖公章）", "签字：XXX", "2022年    月    日"],
    "opinion hint": ["（推荐单位公单）", "                    年   月   日"],
}


def template_only_form(tmp_path: Path, block: str, *, in_table: bool = True) -> FormData:
    path = write_filled_video_form(
        tmp_path / f"{block}-{in_table}.docx",
        {**VIDEO, "推荐单位": ""},
        recommender_lines=TEMPLATE_BLOCKS[block],
        recommender_in_table=in_table,
    )
    return read_form(path, C)


@pytest.mark.parametrize("in_table", [True, False], ids=["table cell", "paragraphs"])
@pytest.mark.parametrize("block", list(TEMPLATE_BLOCKS))
def test_template_only_seal_block_is_no_field_finding(tmp_path: Path, block: str, in_table: bool) -> None:
    form = template_only_form(tmp_path, block, in_table=in_table)
    assert form.fields["推荐单位"] == "" and not form.recommender_filled, form.fields["推荐单位"]
    assert form.fields["微视频名称"] == VIDEO["微视频名称"] and form.pledge_signed
    assert "推荐单位" not in form.missing_labels
    for channel in (*RECOMMENDED, *SELF_NOMINATED, None):
        found = form_findings(C, form, kind="video", scans=[], channel=channel)
        assert "M-FORM-FIELD" not in codes(found), channel
        assert codes(found) == (["M-FORM-SEAL"] if channel in RECOMMENDED else []), channel
    seal = form_findings(C, form, kind="video", scans=[], channel="provincial")[0]
    assert seal.severity == "warning" and verdict([seal]) == "review"
    assert "省级推荐" in seal.message_zh and "推荐单位" in seal.message_zh
    # A scanned signed page is the evidence.
    pkg = tmp_path / "pkg"
    for scan in (pkg / "申报表签字盖章页.pdf", pkg / "扫描件.jpg"):
        assert form_findings(C, form, kind="video", scans=[scan], channel="unit_member") == [], scan


def test_seal_block_naming_the_unit_or_holding_a_seal_picture_is_evidence(tmp_path: Path) -> None:
    named = read_form(write_filled_video_form(tmp_path / "n.docx", VIDEO), C)
    assert named.recommender == "北京市科学技术协会"
    assert form_findings(C, named, kind="video", scans=[], channel="provincial") == []
    rows = [["微视频名称", "雪莲"], ["推荐单位", "单位（盖章）：\n2022年 月 日"]]
    path = make_docx(tmp_path / "p.docx", rows)
    doc = Document(str(path))
    doc.tables[0].cell(1, 1).add_paragraph().add_run().add_picture(str(_png(tmp_path, seal_png())))
    doc.save(str(path))
    pictured = read_form(path, C)
    assert pictured.recommender_images == 1 and pictured.recommender_filled
    assert "M-FORM-SEAL" not in codes(form_findings(C, pictured, kind="video", scans=[], channel="provincial"))


def _png(tmp_path: Path, data: bytes) -> Path:
    out = tmp_path / "seal.png"
    out.write_bytes(data)
    return out


def test_signature_blocks_are_not_field_findings_in_the_campaign_wide_suite() -> None:
    from kepu.intake.form_signoff import is_signature_block
    from kepu.intake.quality import build_suites

    signed_on_paper = {"作者承诺", "推荐单位", "负责人签名", "推荐单位意见"}
    assert {n for n in (*C.package.video_form_fields, *C.package.account_form_fields) if is_signature_block(n)} == (
        signed_on_paper
    )
    suites = build_suites(C)
    checked = {(e.meta or {})["field"] for key in ("video.form", "account.form") for e in suites[key].expectations}
    assert checked and not checked & signed_on_paper
    assert "所属单位（团队、个人）" in checked  # the owner's name is a value, its seal line is not


def test_blank_template_pledge_and_seal_blocks_by_channel(tmp_path: Path) -> None:
    # The notice's blank 附件2: every value field is empty, the two signed blocks are not fields.
    _, video_path = write_templates(tmp_path)
    form = read_form(video_path, C)
    provincial = form_findings(C, form, kind="video", scans=[], channel="provincial")
    assert not {"作者承诺", "推荐单位"} & {f.value for f in provincial if f.code == "M-FORM-FIELD"}
    assert codes(provincial).count("M-FORM-PLEDGE") == 1 and codes(provincial).count("M-FORM-SEAL") == 1
    assert "M-FORM-SEAL" not in codes(form_findings(C, form, kind="video", scans=[], channel="other"))


def test_account_recommender_opinion_block_and_channel(tmp_path: Path) -> None:
    blank_opinion = {**ACCOUNT, "推荐单位意见": ""}
    form = read_form(write_filled_account_form(tmp_path / "a.docx", blank_opinion, seal_picture=True), C)
    assert form.fields["推荐单位意见"] == "" and not form.recommender_filled
    assert codes(form_findings(C, form, kind="account", scans=[], channel="unit_member")) == ["M-FORM-SEAL"]
    assert form_findings(C, form, kind="account", scans=[], channel="individual_member") == []
    filled = read_form(write_filled_account_form(tmp_path / "b.docx", ACCOUNT, seal_picture=True), C)
    assert form_findings(C, filled, kind="account", scans=[], channel="provincial") == []


def test_checklist_lists_the_seal_for_a_person_to_check_on_paper(tmp_path: Path) -> None:
    form = template_only_form(tmp_path, "as printed")
    provincial = checklist_items(form, needs_seal=True)
    assert any("推荐单位" in i and "扫描页" in i for i in provincial)
    assert not any("推荐单位" in i for i in checklist_items(form, needs_seal=False))
    named = read_form(write_filled_video_form(tmp_path / "n.docx", VIDEO), C)
    assert any("北京市科学技术协会" in i and "扫描页" in i for i in checklist_items(named))
    assert any(i.key == "seal" for i in C.human_checklist)


def test_package_reading_gives_the_seal_finding_by_channel(tmp_path: Path) -> None:
    from kepu.intake.package_checks import read_package
    from kepu.intake.packages import classify, package_files, parse_folder_name
    from kepu.intake.steps import package_details

    pkg = tmp_path / "安徽省+安徽省青少年科技教育协会+萤火虫为什么会发光"
    write_filled_video_form(pkg / "申报表.docx", {**VIDEO, "微视频名称": "萤火虫为什么会发光", "推荐单位": ""})
    (pkg / "萤火虫为什么会发光.mp4").write_bytes(b"\0" * 64)
    (pkg / "封面.jpg").write_bytes(b"\xff\xd8\xff")
    folder = parse_folder_name(pkg.name, C)

    def read(channel: str | None) -> tuple[list[str], list[str]]:
        contents = classify(package_files(pkg), C, folder.title)
        reading = read_package(C, folder, contents, probe_image=lambda _: (1920, 1080), channel=channel)
        checklist = package_details(folder, contents, reading)["checklist"]
        return codes(reading.findings), [i for i in checklist if "推荐单位" in i]

    found, items = read("provincial")
    assert found == ["M-FORM-SEAL"] and len(items) == 1 and "扫描页" in items[0]
    assert read("unit_member")[0] == ["M-FORM-SEAL"]
    assert read("other") == ([], [])
    assert read("individual_member") == ([], [])
    assert read(None)[0] == []  # channel unknown: Q-CHANNEL says so, the checklist still asks
    (pkg / "申报表签字盖章页.pdf").write_bytes(b"%PDF-1.4\n")
    assert read("provincial")[0] == []
