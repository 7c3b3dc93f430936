"""Bad input never stops a run: damaged archives, forms and summary sheets, bombs, hostile names.

Every input is generated (tests/hostile/__init__.py) and named by what it is. Each case asserts its
finding code or a clean rejection with the reason in Chinese and English; the run-level cases
assert that every other package of the run completes with its video checks, that the exports are
written and read back without a live formula or an illegal character, that nothing is written
outside the run's own folders, and that no kepu process goes above 500 MB.
"""

from __future__ import annotations

import csv
import json
import re
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

import hostile
from hostile.conftest import GOOD_FOLDER, MEMORY_LIMIT_MB, copy_package, run_kepu, tree
from kepu.campaign import Campaign, load_campaign
from kepu.cells import neutralise_workbook, safe_cell, safe_row
from kepu.config import DEFAULT_CAMPAIGN_FILE, load_settings
from kepu.context import open_context
from kepu.errors import MaterialError, StorageError
from kepu.intake import steps
from kepu.intake.forms import read_form
from kepu.intake.packages import package_files, read_text, safe_extract
from kepu.intake.sources import SheetError, read_summary_sheet

_FORMULA = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def campaign() -> Campaign:
    return load_campaign(DEFAULT_CAMPAIGN_FILE)


def _bilingual(text: str) -> None:
    """A reason an operator reads: Chinese, with English beside it."""
    assert _CJK.search(text), text
    assert re.search(r"[A-Za-z]{4,}", text), text


# --- archives ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(hostile.ARCHIVES))
def test_a_damaged_archive_member_is_named_and_the_other_members_are_extracted(
    kind: str, tmp_path: Path, campaign: Campaign
) -> None:
    make, code, member = hostile.ARCHIVES[kind]
    archive = make(tmp_path / "inbox")
    before = tree(tmp_path)
    root, findings = safe_extract(archive, tmp_path / "scratch" / "package", campaign)
    hits = [f for f in findings if f.code == code]
    assert hits, (kind, findings)
    assert any(member in f.message_zh and member in f.message_en and member in (f.value or "") for f in hits), hits
    for f in hits:
        _bilingual(f.message_zh + f.message_en)
    # The good synopsis beside the damaged member is still there.
    assert read_text(root / "简介.txt").startswith("月亮")
    written = tree(tmp_path) - before
    assert all(p.startswith("scratch") for p in written), written
    assert not Path("/tmp/kepu-hostile-absolute.txt").exists()


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (hostile.archive_nul_in_name, {"简介.txt", "ev"}),
        (hostile.archive_gbk_name_without_utf8_flag, {"简介.txt", "说明.txt"}),
        (hostile.archive_nested_zip, {"简介.txt", "inner.zip"}),
    ],
    ids=["nul-in-name", "gbk-name-without-utf8-flag", "nested-zip"],
)
def test_odd_but_harmless_archives_extract_inside_their_folder(
    make: object, expected: set[str], tmp_path: Path, campaign: Campaign
) -> None:
    archive = make(tmp_path / "inbox")  # type: ignore[operator]
    root, findings = safe_extract(archive, tmp_path / "scratch" / "package", campaign)
    assert findings == []
    assert {str(p.relative_to(root)) for p in package_files(root)} == expected
    assert all(p.resolve().is_relative_to(root.resolve()) for p in root.rglob("*"))


def test_a_zip_of_100000_members_and_a_bomb_are_refused_whole(tmp_path: Path, campaign: Campaign) -> None:
    for archive in (hostile.archive_many_members(tmp_path / "in"), hostile.archive_bomb(tmp_path / "in")):
        root, findings = safe_extract(archive, tmp_path / "scratch" / archive.stem, campaign)
        assert [f.code for f in findings] == ["M-UNSAFE-ARCHIVE"], archive.name
        _bilingual(findings[0].message_zh + findings[0].message_en)
        assert list(root.iterdir()) == []


# --- forms ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (hostile.docx_encrypted_document, "encrypted"),
        (hostile.docx_unsupported_method, "Deflate64"),
        (hostile.docx_rels_bomb, "_rels/.rels"),
        (hostile.docx_main_part_not_xml_bomb, "word/main.bin"),
    ],
    ids=["encrypted-document-part", "unsupported-method", "rels-bomb", "main-part-not-xml-bomb"],
)
def test_a_damaged_word_form_is_unreadable_with_its_reason(
    make: object, what: str, good_package: Path, tmp_path: Path, campaign: Campaign
) -> None:
    form = make(good_package / "申报表.docx", tmp_path)  # type: ignore[operator]
    with pytest.raises(MaterialError) as err:
        read_form(form, campaign)
    assert err.value.code == "M-UNREADABLE"
    assert what in str(err.value) and form.name in str(err.value)
    _bilingual(str(err.value))


def test_a_form_with_10000_tables_and_an_excel_form_300000_rows_long_are_read(
    good_package: Path, tmp_path: Path, campaign: Campaign
) -> None:
    many = read_form(hostile.docx_many_tables(good_package / "申报表.docx", tmp_path), campaign)
    assert many.fields["微视频名称"] == "月亮为什么有阴晴圆缺"
    long = read_form(hostile.xlsx_form_formatted_down(tmp_path), campaign)
    assert long.fields["微视频名称"] == "会飞的种子"


def test_a_400_mib_synopsis_is_not_read_into_memory(tmp_path: Path) -> None:
    big = hostile.sparse_file(tmp_path / "简介.txt", 400 * 2**20)
    with pytest.raises(OSError, match="over the cap") as err:
        read_text(big)
    _bilingual(str(err.value))


def test_a_synopsis_with_nul_bytes_reads_without_them(tmp_path: Path) -> None:
    """PostgreSQL refuses NUL in text and JSON: it never reaches the records."""
    path = tmp_path / "简介.txt"
    path.write_bytes("月亮\x00的\x00简介".encode() + b"\x00" * 10)
    assert read_text(path) == "月亮的简介"


# --- summary sheets ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(hostile.SHEETS))
def test_a_damaged_summary_sheet_is_rejected_with_its_reason(kind: str, tmp_path: Path, campaign: Campaign) -> None:
    sheet = hostile.SHEETS[kind](tmp_path)
    with pytest.raises(SheetError) as err:
        read_summary_sheet(sheet, campaign)
    _bilingual(err.value.message_zh + " " + err.value.message_en)


@pytest.mark.parametrize(
    ("make", "rows", "problem"),
    [(hostile.sheet_16384_columns, 1, "columns"), (hostile.sheet_100000_rows, 19_999, "rows")],
    ids=["16384-columns", "100000-rows"],
)
def test_an_oversized_summary_sheet_is_read_up_to_its_cap_and_says_so(
    make: object, rows: int, problem: str, tmp_path: Path, campaign: Campaign
) -> None:
    result = read_summary_sheet(make(tmp_path), campaign)  # type: ignore[operator]
    assert len(result.rows) == rows
    whole = [p for p in result.problems if p.row_number is None]
    assert any(problem in p.message_en and _CJK.search(p.message_zh) for p in whole), whole


@pytest.mark.parametrize("kind", sorted(hostile.SHEETS))
def test_a_damaged_summary_sheet_still_registers_every_package_with_a_run_finding(
    kind: str, tmp_path: Path, small_campaign: Path
) -> None:
    inbox = tmp_path / "inbox"
    for name in ("北京市+甲单位+第一部", "上海市+乙单位+第二部"):
        (inbox / name).mkdir(parents=True)
        (inbox / name / "简介.txt").write_text("简介", encoding="utf-8")
    hostile.SHEETS[kind](inbox)
    settings = load_settings(
        {"KEPU_HOME": str(tmp_path / "kepu"), "KEPU_INBOX": str(inbox), "KEPU_CAMPAIGN_FILE": str(small_campaign)}
    )
    ctx = open_context(settings, migrate=True)
    ids = steps.register_submissions(ctx, run_id="r1", dag_id="test")
    assert len(ids) == 2
    key = f"campaigns/{ctx.campaign.id}/exports/{steps.RUN_FINDINGS_EXPORT}"
    with ctx.store.open_local(key) as path:
        found = json.loads(path.read_text(encoding="utf-8"))["findings"]
    assert [f["code"] for f in found] == ["M-UNREADABLE"]
    assert "汇总表" in found[0]["message_zh"] and "summary sheet" in found[0]["message_en"]
    run = ctx.records.get_run("r1")
    assert run is not None and run["params"]["run_findings"] == found


# --- neutralising what is written ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ['=HYPERLINK("http://x","点我")', "+1+1", "-2+3", "@SUM(1)", "\t=1", "\r=1", "＝1+1", "＋1", "－1", "＠A1"],
)
def test_a_text_that_starts_like_a_formula_is_written_as_text(text: str, tmp_path: Path) -> None:
    assert safe_cell(text) == "'" + text
    wb = Workbook()
    ws = wb.active
    ws.append(safe_row([text, 42, None]))
    wb.save(tmp_path / "x.xlsx")
    cell = load_workbook(tmp_path / "x.xlsx")["Sheet"]["A1"]
    assert cell.data_type == "s" and cell.value == "'" + text
    assert load_workbook(tmp_path / "x.xlsx")["Sheet"]["B1"].value == 42


def test_control_characters_are_replaced_and_the_net_catches_a_formula_set_directly(tmp_path: Path) -> None:
    assert safe_cell("标题\x0b\x1b\x07尾") == "标题\ufffd\ufffd\ufffd尾"
    assert safe_cell("line\nbreak") == "line\nbreak"
    wb = Workbook()
    wb.active["A1"] = "=1+1"
    assert neutralise_workbook(wb) == 1
    assert wb.active["A1"].value == "'=1+1"


def test_judging_workbooks_neutralise_what_they_write(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from kepu.judging.xlsx import workbook_bytes, write_table

    wb = Workbook()
    write_table(wb.active, ["作品 title"], [["=cmd|' /C calc'!A0"], ["标题\x1b"]], [20])
    (tmp_path / "j.xlsx").write_bytes(workbook_bytes(wb, datetime(2022, 1, 1, tzinfo=UTC)))
    values = [c.value for c in load_workbook(tmp_path / "j.xlsx").active["A"]]
    assert values == ["作品 title", "'=cmd|' /C calc'!A0", "标题\ufffd"]


# --- the batch and the run -----------------------------------------------------------------------


def test_one_broken_package_never_fails_its_batch(
    tmp_path: Path, small_campaign: Path, good_package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the DAG's fetch_materials and probe_videos tasks call, on a batch of two."""
    inbox = tmp_path / "inbox"
    copy_package(good_package, inbox / GOOD_FOLDER)
    broken = "广东省+坏包单位+读取时出错"
    copy_package(good_package, inbox / broken)
    settings = load_settings(
        {"KEPU_HOME": str(tmp_path / "kepu"), "KEPU_INBOX": str(inbox), "KEPU_CAMPAIGN_FILE": str(small_campaign)}
    )
    ctx = open_context(settings, migrate=True)
    ids = steps.register_submissions(ctx, run_id="r1", dag_id="test")
    real = steps.read_package

    def read_package(campaign: Campaign, folder: object, contents: object, **kw: object) -> object:
        if getattr(folder, "raw", "") == broken:
            raise RuntimeError("an unforeseen fault in one package")
        return real(campaign, folder, contents, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(steps, "read_package", read_package)
    assert steps.fetch_materials(ctx, ids, run_id="r1") == ids
    assert steps.check_submissions(ctx, ids, run_id="r1") == ids
    subs = {s.source_name: s for s in ctx.records.list_submissions(ctx.campaign.id)}
    assert {s.status for s in subs.values()} == {"checked"}
    good, bad = subs[GOOD_FOLDER], subs[broken]
    assert good.verdict == "pass" and ctx.records.get_media_metrics(good.id)  # its video was checked
    codes = {f.code for f in ctx.records.list_findings(submission_id=bad.id)}
    assert "M-UNREADABLE" in codes and bad.verdict == "fail"

    # A platform fault still fails the task, so Airflow retries it.
    def store_down(*_a: object, **_k: object) -> object:
        raise StorageError("the object store is unreachable")

    monkeypatch.setattr(steps, "read_package", store_down)
    with pytest.raises(StorageError):
        steps.fetch_materials(ctx, ids[:1], run_id="r2")


def _hostile_inbox(inbox: Path, good: Path, form: Path) -> dict[str, str]:
    """The good package beside every hostile one; name → the code it must get (or "" for none)."""
    expect: dict[str, str] = {GOOD_FOLDER: ""}
    copy_package(good, inbox / GOOD_FOLDER)
    zipped = inbox / "上海市+压缩包单位+好的压缩包.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("简介.txt", "一个只有简介的压缩包。")
    expect[zipped.name] = "M-VIDEO-MISSING"
    for make, code, _member in hostile.ARCHIVES.values():
        expect[make(inbox).name] = code
    expect[hostile.archive_many_members(inbox, 20_000).name] = "M-UNSAFE-ARCHIVE"
    expect[hostile.archive_bomb(inbox).name] = "M-UNSAFE-ARCHIVE"
    for make_form in (hostile.docx_encrypted_document, hostile.docx_rels_bomb, hostile.docx_main_part_not_xml_bomb):
        pkg = inbox / f"湖北省+表单单位+{make_form.__name__}"
        pkg.mkdir()
        made = make_form(form, pkg)
        made.rename(pkg / "申报表.docx")
        (pkg / "简介.txt").write_text(f"{make_form.__name__} 的简介", encoding="utf-8")
        expect[pkg.name] = "M-UNREADABLE"
    bomb = inbox / "湖南省+封面单位+封面解压炸弹"
    bomb.mkdir()
    hostile.png_decompression_bomb(bomb / "封面.png")
    expect[bomb.name] = "M-COVER-FORMAT"
    synopsis = inbox / "湖南省+简介单位+四百兆简介"
    synopsis.mkdir()
    hostile.sparse_file(synopsis / "简介.txt", 400 * 2**20)
    expect[synopsis.name] = "M-UNREADABLE"
    for name in (
        "北京市+控制\x0b字符\x1b单位+标题\x07响铃",
        '=HYPERLINK("http:\\\\x","点我")',
        "北京市+=1+1+cmd|' -C calc'!A0",
        "＠SUM(1)+全角单位+全角公式",
        "-2+3+减号开头",
    ):
        pkg = inbox / name
        pkg.mkdir()
        (pkg / "简介.txt").write_text(f"第 {len(expect)} 个简介", encoding="utf-8")
        expect[name] = ""
    hostile.sheet_random_bytes(inbox)
    return expect


def _assert_neutral(value: object, where: str) -> None:
    if isinstance(value, str):
        assert not _ILLEGAL.search(value), (where, value)
        assert not value.startswith(_FORMULA), (where, value)


def test_a_run_over_every_hostile_input_completes_in_bounded_memory(
    tmp_path: Path, small_campaign: Path, good_package: Path
) -> None:
    inbox = tmp_path / "inbox"
    home = tmp_path / "kepu"
    expect = _hostile_inbox(inbox, good_package, good_package / "申报表.docx")
    inbox_before = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in inbox.rglob("*")}
    outside_before = tree(tmp_path.parent)
    env = {"KEPU_HOME": str(home), "KEPU_INBOX": str(inbox), "KEPU_CAMPAIGN_FILE": str(small_campaign)}

    result = run_kepu(["intake", "run"], env)

    assert result.returncode == 0, result.stderr[-3000:]
    assert result.peak_mb < MEMORY_LIMIT_MB, result.peak_mb
    # Nothing written in the inbox or beside the test's folder; nothing escaped an archive.
    assert {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in inbox.rglob("*")} == inbox_before
    assert {p for p in tree(tmp_path.parent) - outside_before if not p.startswith(tmp_path.name)} == set()
    assert not Path("/tmp/kepu-hostile-absolute.txt").exists() and not (tmp_path / "escaped.txt").exists()

    ctx = open_context(load_settings(env))
    subs = {s.source_name: s for s in ctx.records.list_submissions(ctx.campaign.id)}
    assert set(subs) == set(expect)
    assert {s.status for s in subs.values()} == {"checked"}
    good = subs[GOOD_FOLDER]
    good_codes = {f.code for f in ctx.records.list_findings(submission_id=good.id)}
    # Its video was checked and its own checks are clean; without a readable summary sheet its
    # receipt time and channel are unknown, which the campaign-wide rules report.
    assert ctx.records.get_media_metrics(good.id) and good.verdict is not None
    assert good_codes <= {"D-LATE", "Q-CHANNEL"}, good_codes
    for name, code in expect.items():
        if code:
            codes = {f.code for f in ctx.records.list_findings(submission_id=subs[name].id)}
            assert code in codes, (name, codes)

    exports = f"campaigns/{ctx.campaign.id}/exports/"
    with ctx.store.open_local(exports + "eligibility.csv") as path:
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    assert len(rows) == len(expect) + 1 or len(rows) > len(expect)  # messages may span lines
    for row in rows:
        for value in row:
            _assert_neutral(value, "csv")
    assert any(v.startswith("'=HYPERLINK") for row in rows for v in row)
    with ctx.store.open_local(exports + "eligibility.xlsx") as path:
        wb = load_workbook(path)
        for ws in wb.worksheets:
            for line in ws.iter_rows():
                for cell in line:
                    assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                    _assert_neutral(cell.value, ws.title)
        run_sheet = [r for r in wb["运行问题 Run findings"].iter_rows(values_only=True)][1:]
        assert run_sheet and run_sheet[0][0] == "M-UNREADABLE" and "汇总表" in run_sheet[0][3]
        review = list(wb["人工复核 Review checklist"].iter_rows(values_only=True))
        assert "不会被读回" in review[0][0] and "never read back" in review[0][0]
    with ctx.store.open_local(exports + "eligibility-report.html") as path:
        page = path.read_text(encoding="utf-8")
    assert not _ILLEGAL.search(page) and "运行问题 Run findings" in page
    assert "<script" not in page.lower()


def test_the_certificate_register_neutralises_titles_units_and_holders(tmp_path: Path, campaign: Campaign) -> None:
    import datetime as dt
    from types import SimpleNamespace

    from kepu.certificates.steps import register_workbook
    from kepu.db.award_records import CertificateRecord

    cert = CertificateRecord(
        number="KP2022-0001",
        campaign_id=campaign.id,
        type=campaign.certificates.types[0].key,
        award="一等奖",
        submission_id="s1",
        generation=1,
        holder="@作者\x07",
        title='=HYPERLINK("http://x")',
        unit="＋单位\x1b",
        province="北京市",
        issued_at=dt.datetime(2022, 12, 1, tzinfo=dt.UTC),
    )
    ctx = SimpleNamespace(campaign=campaign, settings=SimpleNamespace(public_base_url="https://kepu.example"))
    (tmp_path / "register.xlsx").write_bytes(register_workbook(ctx, [cert]))
    ws = load_workbook(tmp_path / "register.xlsx").active
    row = [c for c in ws[2]]
    assert all(c.data_type != "f" for c in row)
    for c in row:
        _assert_neutral(c.value, "register")
    assert [row[2].value, row[3].value, row[4].value] == ["'@作者\ufffd", '\'=HYPERLINK("http://x")', "'＋单位\ufffd"]


@pytest.mark.parametrize(
    "make",
    [hostile.archive_bad_crc, hostile.archive_deflate64, hostile.archive_bomb],
    ids=["bad-crc", "deflate64", "bomb"],
)
def test_kepu_check_reports_a_damaged_archive_without_a_traceback(
    make: object, tmp_path: Path, small_campaign: Path
) -> None:
    archive = make(tmp_path / "inbox")  # type: ignore[operator]
    env = {"KEPU_HOME": str(tmp_path / "kepu"), "KEPU_CAMPAIGN_FILE": str(small_campaign)}
    result = run_kepu(["check", "--json", str(archive)], env, timeout=300)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.peak_mb < MEMORY_LIMIT_MB
    report = json.loads(result.stdout[result.stdout.index("{") :])
    codes = {f["code"] for f in report["findings"]}
    assert codes & {"M-UNREADABLE", "M-UNSAFE-ARCHIVE"}, codes


# --- media ---------------------------------------------------------------------------------------


def test_an_mp4_with_999_streams_is_refused_before_ffmpeg_opens_it(tmp_path: Path, small_campaign: Path) -> None:
    import os
    import subprocess
    import sys

    from hostile.conftest import REPO

    video = hostile.mp4_many_streams(tmp_path / "inbox")
    limit = load_campaign(small_campaign).video.max_streams
    env = {"KEPU_HOME": str(tmp_path / "kepu"), "KEPU_CAMPAIGN_FILE": str(small_campaign)}
    result = run_kepu(["check", "--json", str(video)], env, timeout=300)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.peak_mb < MEMORY_LIMIT_MB, result.peak_mb
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert [f["code"] for f in report["findings"]] == ["M-UNREADABLE"], report["findings"]
    finding = report["findings"][0]
    assert f"999 路流，超过上限 {limit} 路" in finding["message_zh"], finding
    assert f"999 streams, more than the limit of {limit}" in finding["message_en"], finding
    # The ffprobe/ffmpeg children count too: wait4 reports the largest of the process and its children. A small
    # launcher forks kepu, so the figure is not the test process's own size, which a fork would carry along.
    launcher = (
        "import os, subprocess, sys\n"
        "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "_, status, usage = os.wait4(p.pid, 0)\n"
        "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)\n"
    )
    measured = subprocess.run(
        [sys.executable, "-c", launcher, sys.executable, "-m", "kepu.cli", "check", "--json", str(video)],
        env={**os.environ, **env, "PYTHONPATH": str(REPO / "include")},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    code, maxrss_kb = (int(v) for v in measured.stdout.split())
    assert code == 0
    assert maxrss_kb / 1024 < MEMORY_LIMIT_MB, maxrss_kb / 1024
