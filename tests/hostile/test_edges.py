"""Hostile input at the edges: links into the internal network, contact data in any width, score sheets that
lie, files other users could read, certificate numbers typed by hand. Every case is named by what it is and
ends in a refusal with its reason in Chinese and English, while the rest of the run completes."""

from __future__ import annotations

import hashlib
import socket
import zipfile
from pathlib import Path
from typing import Any

import pytest

from hostile.edges_factory import (
    body,
    endless_slow_body,
    redirect,
    ten_gigabyte_content_length,
    web_server,
)
from kepu.intake.fetch import FetchError, fetch_rows, fetch_url, vet_url
from kepu.intake.sources import SheetRow

pytestmark = pytest.mark.integration

PAYLOAD = b"kepu-video-bytes" * 1000
SECRET = "INTERNAL-SECRET-synopsis-from-the-intranet"
FAST: dict[str, Any] = {"backoff_s": 0.01, "timeout": 5, "retries": 1}


# --- downloads: only public addresses ------------------------------------------------------------------


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``good``: the one server the test admits (as a private mirror); ``internal``: a service on the same
    machine that must never be reached."""
    with web_server({"/secret": body(SECRET.encode())}) as internal:
        routes = {
            "/video.mp4": body(PAYLOAD),
            "/to-internal": redirect(f"{internal.base}/secret"),
            "/hop1": redirect("/hop2"),
            "/hop2": redirect("/hop3"),
            "/hop3": redirect("http://169.254.169.254/latest/meta-data/iam/security-credentials/"),
            "/to-ipv6-metadata": redirect("http://[fd00:ec2::254]/latest/meta-data/"),
            "/huge": ten_gigabyte_content_length(),
            "/slow": endless_slow_body(),
        }
        with web_server(routes) as good:
            monkeypatch.setenv("KEPU_FETCH_ALLOW_HOSTS", f"127.0.0.1:{good.port}")
            yield good, internal


def hostile_links(internal_port: int) -> list[tuple[str, str, str]]:
    """(what it is, link, a word the Chinese reason holds)."""
    p = internal_port
    return [
        ("loopback", f"http://127.0.0.1:{p}/secret", "回环"),
        ("localhost name", f"http://localhost:{p}/secret", "回环"),
        ("userinfo before loopback", f"http://a@127.0.0.1:{p}/secret", "用户名"),
        ("userinfo pretending a public host", f"http://www.example.com@127.0.0.1:{p}/secret", "用户名"),
        ("decimal IPv4 host", f"http://2130706433:{p}/secret", "回环"),
        ("hex IPv4 host", f"http://0x7f000001:{p}/secret", "回环"),
        ("octal IPv4 host", f"http://0177.0.0.1:{p}/secret", "回环"),
        ("short IPv4 host", f"http://127.1:{p}/secret", "回环"),
        ("IPv6 loopback", f"http://[::1]:{p}/secret", "回环"),
        ("IPv4-mapped IPv6 loopback", f"http://[::ffff:127.0.0.1]:{p}/secret", "回环"),
        ("unspecified address", f"http://0.0.0.0:{p}/secret", "未指定"),
        ("cloud metadata", "http://169.254.169.254/latest/meta-data/", "元数据"),
        ("IPv6 cloud metadata", "http://[fd00:ec2::254]/latest/meta-data/", "元数据"),
        ("Alibaba Cloud metadata", "http://100.100.100.200/latest/meta-data/", "元数据"),
        ("private network", "http://10.1.2.3/video.mp4", "内网"),
        ("private network 192.168", "http://192.168.1.1/admin", "内网"),
        ("link-local", "http://169.254.1.1/", "链路本地"),
        ("multicast", "http://224.0.0.1/", "组播"),
        ("IPv4-mapped private", "http://[::ffff:10.0.0.1]/", "内网"),
        ("file scheme", "file:///etc/passwd", "http(s)"),
        ("ftp scheme", f"ftp://127.0.0.1:{p}/secret", "http(s)"),
    ]


def test_links_to_internal_addresses_are_refused_with_their_reason(servers: Any, tmp_path: Path) -> None:
    good, internal = servers
    for what, link, word in hostile_links(internal.port):
        # The address check itself, whatever the link's spelling …
        with pytest.raises(FetchError) as caught:
            vet_url(link)
        assert word in caught.value.reason_zh, (what, caught.value.reason_zh)
        assert caught.value.reason.isascii(), (what, caught.value.reason)
        # … and the download, which may already refuse the spelling (“not a web link”).
        with pytest.raises(FetchError) as caught:
            fetch_url(link, tmp_path / "x.mp4", max_bytes=10_000_000, **FAST)
        assert caught.value.reason_zh and caught.value.reason, what
    assert internal.hits == []  # not one request reached the internal service
    assert not (tmp_path / "x.mp4").exists()
    # The admitted mirror still works; only its own port is admitted, not the whole machine.
    assert fetch_url(f"{good.base}/video.mp4", tmp_path / "ok.mp4", max_bytes=10_000_000, **FAST).size == len(PAYLOAD)


def test_nothing_but_public_addresses_without_an_opt_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KEPU_FETCH_ALLOW_HOSTS", raising=False)
    with web_server({"/video.mp4": body(PAYLOAD)}) as only:
        with pytest.raises(FetchError) as caught:
            fetch_url(f"{only.base}/video.mp4", tmp_path / "x.mp4", max_bytes=10_000_000, **FAST)
        assert only.hits == [] and "本机回环地址" in caught.value.reason_zh and "loopback" in caught.value.reason


def test_redirect_chain_to_cloud_metadata_is_refused(servers: Any, tmp_path: Path) -> None:
    good, _ = servers
    with pytest.raises(FetchError) as caught:
        fetch_url(f"{good.base}/hop1", tmp_path / "x", max_bytes=10_000_000, **FAST)
    assert "169.254.169.254" in caught.value.reason and "元数据" in caught.value.reason_zh
    assert "跳转" in caught.value.reason_zh and "redirects" in caught.value.reason
    assert good.hits == ["/hop1", "/hop2", "/hop3"]
    with pytest.raises(FetchError) as caught:
        fetch_url(f"{good.base}/to-ipv6-metadata", tmp_path / "x", max_bytes=10_000_000, **FAST)
    assert "fd00:ec2::254" in caught.value.reason and "跳转" in caught.value.reason_zh


def test_redirect_to_an_internal_service_is_refused(servers: Any, tmp_path: Path) -> None:
    good, internal = servers
    with pytest.raises(FetchError) as caught:
        fetch_url(f"{good.base}/to-internal", tmp_path / "x", max_bytes=10_000_000, **FAST)
    assert internal.hits == [] and "回环" in caught.value.reason_zh


def test_dns_rebinding_connects_to_the_checked_address(
    servers: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name resolves to the admitted address when checked and to an internal one afterwards: the
    connection still goes to the checked address, and the name is resolved once."""
    good, internal = servers
    real = socket.getaddrinfo
    asked: list[str] = []

    def rebinding(host: str, port: Any, *args: Any, **kw: Any) -> Any:
        if host == "files.rebind.test":
            asked.append(host)
            # First answer: the admitted mirror; any later answer would be another address.
            target = "127.0.0.1" if len(asked) == 1 else "10.66.66.66"
            return real(target, port, *args, **kw)
        return real(host, port, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    result = fetch_url(
        f"http://files.rebind.test:{good.port}/video.mp4", tmp_path / "v.mp4", max_bytes=10_000_000, **FAST
    )
    assert result.sha256 == hashlib.sha256(PAYLOAD).hexdigest() and asked == ["files.rebind.test"]
    assert good.hits == ["/video.mp4"] and internal.hits == []


def test_a_name_with_one_internal_address_among_public_ones_is_refused() -> None:
    def resolver(host: str, port: Any, *args: Any, **kw: Any) -> Any:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in ("93.184.216.34", "127.0.0.1")]

    with pytest.raises(FetchError) as caught:
        vet_url("https://cdn.mixed.test/video.mp4", resolve=resolver)
    assert "127.0.0.1" in caught.value.reason and "回环" in caught.value.reason_zh
    public = vet_url("https://cdn.public.test/v.mp4", resolve=lambda h, p, *a, **k: resolver(h, p)[:1])
    assert public.ip == "93.184.216.34" and public.host == "cdn.public.test" and public.port == 443


def test_ten_gigabyte_content_length_is_refused_before_download(servers: Any, tmp_path: Path) -> None:
    good, _ = servers
    with pytest.raises(FetchError) as caught:
        fetch_url(f"{good.base}/huge", tmp_path / "h.mp4", max_bytes=314_572_800, **FAST)
    assert "10737418240" in caught.value.reason and "超过上限" in caught.value.reason_zh
    assert not list(tmp_path.iterdir())


def test_endless_slow_response_is_stopped_by_the_time_limit(servers: Any, tmp_path: Path) -> None:
    good, _ = servers
    with pytest.raises(FetchError) as caught:
        fetch_url(f"{good.base}/slow", tmp_path / "s.mp4", max_bytes=10_000_000, max_seconds=1.0, **FAST)
    assert "longer than 1 s" in caught.value.reason and "秒仍未完成" in caught.value.reason_zh
    assert not list(tmp_path.iterdir())


def test_sheet_rows_with_hostile_links_wait_with_their_reason_and_the_others_download(
    servers: Any, tmp_path: Path
) -> None:
    good, internal = servers

    def row(n: int, title: str, link: str) -> SheetRow:
        return SheetRow(
            row_number=n, kind="video", channel="省级推荐", unit="北京科技馆", province="北京市", title=title, link=link
        )

    rows = [
        row(2, "内网服务", f"http://127.0.0.1:{internal.port}/secret"),
        row(3, "元数据跳转", f"{good.base}/hop1"),
        row(4, "正常作品", f"{good.base}/video.mp4"),
        row(5, "十进制地址", f"http://2130706433:{internal.port}/secret"),
    ]
    outcome = fetch_rows(rows, tmp_path / "dl", max_bytes=10_000_000, **FAST)
    assert [(r.title, res.sha256) for r, res in outcome.fetched] == [("正常作品", hashlib.sha256(PAYLOAD).hexdigest())]
    reasons = {p.title: (p.reason_zh, p.reason_en) for p in outcome.pending}
    assert set(reasons) == {"内网服务", "元数据跳转", "十进制地址"}
    for zh, en in reasons.values():
        assert zh and en and en.isascii()
    assert "回环" in reasons["内网服务"][0] and "loopback" in reasons["内网服务"][1]
    assert "元数据" in reasons["元数据跳转"][0] and "metadata" in reasons["元数据跳转"][1]
    assert internal.hits == []
    assert not any(SECRET.encode() in p.read_bytes() for p in (tmp_path / "dl").rglob("*") if p.is_file())


def test_a_summary_sheet_link_to_an_internal_service_is_never_fetched_nor_shown(
    servers: Any, tmp_path: Path, small_campaign: Path
) -> None:
    """The reported case: a 汇总表 row linking to a service on the operator's own machine. Its body must not
    become anyone's synopsis; the row waits for a person with the reason, and the run completes."""
    import json

    from kepu.config import load_settings
    from kepu.context import open_context
    from kepu.intake import steps
    from kepu.storage import export_key

    _, internal = servers
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "汇总表.csv").write_text(
        "省份,报送单位,报送渠道,作品名称,网盘链接,接收时间\n"
        f"北京市,北京科技馆,省级推荐,内网作品,http://127.0.0.1:{internal.port}/secret,2022-10-20 10:00\n"
        "上海市,上海科技馆,省级推荐,元数据作品,http://169.254.169.254/latest/user-data,2022-10-20 11:00\n",
        encoding="utf-8",
    )
    home = tmp_path / "kepu"
    settings = load_settings(
        {"KEPU_HOME": str(home), "KEPU_INBOX": str(inbox), "KEPU_CAMPAIGN_FILE": str(small_campaign)}
    )
    ctx = open_context(settings, migrate=True)
    steps.run_intake(ctx, run_id="ssrf")
    with ctx.store.open_local(export_key("2022", "pending-downloads.json")) as path:
        pending = {e["title"]: e for e in json.loads(path.read_text(encoding="utf-8"))}
    assert set(pending) == {"内网作品", "元数据作品"}
    assert "本机回环地址" in pending["内网作品"]["reason_zh"] and "loopback" in pending["内网作品"]["reason_en"]
    assert "元数据" in pending["元数据作品"]["reason_zh"] and "metadata" in pending["元数据作品"]["reason_en"]
    assert internal.hits == []
    leaked = [p for p in home.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert leaked == []


# --- public files: no contact data in any width or form -------------------------------------------------


def _digits(text: str) -> str:
    import re
    import unicodedata

    return re.sub(r"\D", "", unicodedata.normalize("NFKC", text))


def _number_runs(text: str) -> list[str]:
    """The digits of every run of digits, spaces, dashes and brackets in ``text`` (NFKC)."""
    import re
    import unicodedata

    return [_digits(m.group()) for m in re.finditer(r"[\d][\d\s\-()+]*", unicodedata.normalize("NFKC", text))]


def test_contact_data_in_every_width_and_form_never_reaches_a_public_file(tmp_path: Path) -> None:
    """Each variant sits in the title, the synopsis, the credits, the unit and a form field of published works;
    catalog.json, each metadata.json, the gallery pages, subtitles and the video and cover bytes are searched
    for it in its own form, in NFKC form and (for numbers) as bare digits. Every work is still published."""
    import json
    import unicodedata

    from award_factory import need_ffmpeg, seed_release
    from hostile.edges_factory import CONTACT_VARIANTS
    from kepu.config import load_settings
    from kepu.context import open_context
    from kepu.publication import steps as pub
    from kepu.publication.package import public_prefix
    from kepu.publication.privacy import find_contacts

    need_ffmpeg()
    settings = load_settings({"KEPU_HOME": str(tmp_path / "kepu"), "KEPU_CERT_SECRET": "x" * 32})
    ctx = open_context(settings, migrate=True)
    seeded = seed_release(
        ctx.records, videos=3, accounts=1, best=1, no_pledge=(), extra=0, store=ctx.store, scratch=tmp_path / "media"
    )
    videos = [sid for sid, e in seeded.entries.items() if e["kind"] == "video"]
    hostile = videos[0]
    variants = [v for _, v in CONTACT_VARIANTS]
    form = dict(ctx.records.get_details(hostile)["form"])
    form.update(
        {
            "微视频名称": f"会飞的种子（{variants[0]}）",
            "主创人员（或单位）": "张老师、李同学；" + "；".join(variants),
            "内容简介": "用纸飞机讲解空气动力学。" + "。".join(f"{what}：{v}" for what, v in CONTACT_VARIANTS),
            "播出时间": f"2022-09-01 {variants[5]}",
            "联系人": "张三丰",
        }
    )
    ctx.records.set_details(hostile, {"form": form, "synopsis": form["内容简介"]})

    plan = pub.plan_publication(ctx)
    for batch in plan["batches"]:
        pub.build_packages(ctx, batch)
    result = pub.write_catalog(ctx)
    assert result["published"] == len(videos) and not result["withheld"]  # accounts have no package

    prefix = public_prefix("2022")
    keys = sorted(ctx.store.list_keys(prefix))
    assert any(k.endswith("catalog.json") for k in keys) and any(k.endswith(f"{hostile}/metadata.json") for k in keys)
    numbers = {_digits(v) for v in [*variants, *seeded.contacts] if len(_digits(v)) >= 9}
    texts = 0
    for key in keys:
        with ctx.store.open_local(key) as path:
            data = path.read_bytes()
        for v in [*variants, *seeded.contacts, "张三丰"]:
            for form_ in {v, unicodedata.normalize("NFKC", v)}:
                assert form_.encode() not in data, (key, v)
        if key.endswith((".json", ".html", ".srt", ".vtt")):
            texts += 1
            text = data.decode()
            assert find_contacts(text.replace("［联系方式已隐去］", " ")) == [], key
            assert not [r for r in _number_runs(text) for n in numbers if n in r], key
    assert texts >= 5
    with ctx.store.open_local(prefix + "catalog.json") as path:
        listed = {w["id"]: w for w in json.loads(path.read_text(encoding="utf-8"))["works"]}
    # The text around the contacts survives.
    assert "用纸飞机讲解空气动力学" in listed[hostile]["synopsis"] and "会飞的种子" in listed[hostile]["title"]


# --- score sheets: finite numbers only, no macros, formulas with their results -----------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    return url


def test_hostile_score_sheets_are_rejected_alone_and_a_rerun_does_not_crash(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hostile.edges_factory import with_extra_rows, with_macro_project
    from judging_factory import (
        cell_of,
        edit_sheet,
        fill_sheet,
        make_judges,
        pass_gates,
        seed_entries,
        settings_for,
        truthful,
        write_campaign,
        write_roster,
    )
    from kepu.context import open_context
    from kepu.judging import keys, steps

    cid, r1 = "2022", "first_round"
    settings = settings_for(tmp_path, write_campaign(tmp_path / "campaign.yaml"), {"KEPU_DATABASE_URL": db_url})
    ctx = open_context(settings, migrate=True)
    entries = seed_entries(ctx.records, cid, videos=12, accounts=4)
    steps.load_roster(ctx, str(write_roster(tmp_path / "评委名单.csv", make_judges(8))))
    pass_gates(ctx.records, cid, entries)
    steps.prepare_round(ctx, r1)
    steps.write_sheets(ctx, r1)
    issued = {}
    for jid in steps.round_judges(ctx, r1):
        key = next(k for k in ctx.store.list_keys(keys.round_prefix(cid, r1) + "sheets/") if f"-{jid}-" in k)
        with ctx.store.open_local(key) as path:
            issued[jid] = fill_sheet(path.read_bytes(), truthful({sid: 6.0 for sid in entries}))
    assert sorted(issued) == [f"J{j:02d}" for j in range(8)]

    def score_cell(text: Any) -> Any:
        def edit(wb: Any) -> None:
            ws = wb["微视频评分 Video scores"]
            cell_of(ws, ws.cell(row=5, column=2).value, "scientific").value = text

        return edit

    hostile = {
        "J00-nan文本.xlsx": edit_sheet(issued["J00"], score_cell("nan")),
        "J01-宏工作簿改名.xlsx": with_macro_project(issued["J01"]),
        "J02-公式无结果.xlsx": edit_sheet(issued["J02"], score_cell("=4+4")),
        "J03-1e999.xlsx": edit_sheet(issued["J03"], score_cell("1e999")),
        "J04-超长字符串.xlsx": edit_sheet(issued["J04"], score_cell("9" * 30000)),
        "J05-十万行.xlsx": with_extra_rows(issued["J05"], 100_000),
        "J06-记录失败.xlsx": issued["J06"],
        "J07.xlsx": issued["J07"],
        "J05.xlsx": issued["J05"],
    }
    for name, data in hostile.items():
        ctx.store.put_bytes(keys.returned_prefix(cid, r1) + name, data)

    # The records refuse J06's sheet once (as a database refuses a value it cannot store).
    real = ctx.records.record_sheet
    refused: list[str] = []

    def flaky(*args: Any, **kw: Any) -> Any:
        if kw["object_key"].endswith("J06-记录失败.xlsx") and kw.get("rows") is not None and not refused:
            refused.append(kw["object_key"])
            raise ValueError("out of range float values are not JSON compliant")
        return real(*args, **kw)

    monkeypatch.setattr(ctx.records, "record_sheet", flaky)
    summary = steps.ingest_sheets(ctx, r1)
    assert sorted(a["judge"] for a in summary["accepted"]) == ["J05", "J07"]
    assert len(summary["rejected"]) == 7 and refused

    sheets = {s.object_key.rsplit("/", 1)[-1]: s for s in ctx.records.list_sheets(cid, r1)}
    reasons = {name: s.problems for name, s in sheets.items()}

    def only(name: str) -> dict[str, Any]:
        (p,) = reasons[name]
        assert p["zh"] and p["en"], name
        return p

    p = only("J00-nan文本.xlsx")
    assert (p["check"], p["value"]) == ("not_a_number", "nan") and "不是有效数字" in p["zh"] and "finite" in p["en"]
    p = only("J01-宏工作簿改名.xlsx")
    assert p["check"] == "macro" and "宏" in p["zh"] and "macros" in p["en"]
    p = only("J02-公式无结果.xlsx")
    assert p["check"] == "formula_no_value" and "=4+4" in p["zh"] and "没有保存计算结果" in p["zh"]
    assert "no stored result" in p["en"] and "no score" not in p["en"]
    p = only("J03-1e999.xlsx")
    assert (p["check"], p["value"]) == ("not_a_number", "1e999")
    p = only("J04-超长字符串.xlsx")
    assert p["check"] == "not_a_number" and len(p["zh"]) < 200 and "30000" in p["value"]
    p = only("J05-十万行.xlsx")
    assert p["check"] == "too_many_rows" and "5000" in p["zh"] and "5000" in p["en"]
    p = only("J06-记录失败.xlsx")
    assert p["check"] == "record_failed" and "无法写入记录" in p["zh"] and "could not be recorded" in p["en"]

    # The macro workbook is kept as evidence under a name no spreadsheet program opens; no .xlsx copy.
    macro = sheets["J01-宏工作簿改名.xlsx"]
    assert macro.archive_key.endswith(".macro-quarantined.bin")
    assert not ctx.store.exists(keys.archive_key(cid, r1, macro.sha256))

    # No score that is not a finite number reached the records; the accepted judges' scores did.
    scores = ctx.records.list_scores(cid, r1)
    assert {s.judge_id for s in scores} == {"J05", "J07"}
    assert all(0 <= v <= 10 for s in scores for v in s.criteria.values())

    # Every later ingest: nothing new, no crash, nothing written.
    counts = ctx.records.table_counts()
    again = steps.ingest_sheets(ctx, r1)
    assert again["unchanged"] == len(hostile) and again["accepted"] == [] and again["rejected"] == []
    assert ctx.records.table_counts() == counts


#: The scoring page of :func:`page_broken_at_its_end`.
BROKEN_PAGE = "微视频评分 Video scores"


def page_broken_at_its_end(dest: Path, data_rows: int) -> Path:
    """A returned sheet whose scoring page, written without a ``<dimension>`` (as a streaming writer leaves it),
    holds ``data_rows`` entries and then a row of broken XML."""
    from hostile import rewrite_zip, write_xlsx
    from kepu.judging.sheets import MARKER

    head: list[list[object]] = [
        ["评分表"],
        ["评委", "J00"],
        [f"{MARKER}:video", "submission_id", "scientific", "comment"],
        ["#", "作品", "科学性", "评语"],
    ]
    body = ([n, f"V{n:05d}", 5, "好"] for n in range(1, data_rows + 1))
    whole = write_xlsx(dest / "whole.xlsx", [*head, *body], title=BROKEN_PAGE)
    with zipfile.ZipFile(whole) as zf:
        xml = zf.read("xl/worksheets/sheet1.xml")
    assert b"<dimension" not in xml
    broken = xml.replace(b"</sheetData>", b'<row r="999999"><c r="A999999"><v>1</c></row></sheetData>')
    return rewrite_zip(whole, dest / "broken.xlsx", {"xl/worksheets/sheet1.xml": broken})


@pytest.mark.parametrize(
    ("rows", "check"),
    [("past the cap", "too_many_rows"), ("within the cap", "unreadable")],
)
def test_a_returned_page_is_read_no_further_than_its_row_cap(tmp_path: Path, rows: str, check: str) -> None:
    """With more rows than any judge is given, a page broken at its end is refused for its rows, read only up to
    the cap (opening it does not read it to its end, where the break is); with fewer, the break makes it
    unreadable, said as a problem."""
    from kepu.judging.sheets import MAX_ROWS, parse_sheet

    sheet = page_broken_at_its_end(tmp_path, MAX_ROWS + 10 if rows == "past the cap" else 20)
    parsed = parse_sheet(sheet.read_bytes())
    assert parsed.tables == []
    (p,) = parsed.problems
    assert p["check"] == check and p["zh"] and p["en"]
    if check == "too_many_rows":
        assert p["value"] == str(MAX_ROWS) and BROKEN_PAGE in p["zh"] and str(MAX_ROWS) in p["en"]


def test_a_bounded_opening_holds_in_its_thread_while_another_thread_s_ends(tmp_path: Path) -> None:
    """Two judges handing in at once: the first judge's block of ``bounded_dimensions`` ends while the second's is
    open, and the second still opens its sheet bounded; after both, openpyxl reads a sheet as it always does."""
    import threading
    from xml.etree.ElementTree import ParseError

    from openpyxl import load_workbook

    from kepu.judging.sheets import MAX_ROWS
    from kepu.xlsx_read import bounded_dimensions

    sheet = page_broken_at_its_end(tmp_path, MAX_ROWS + 10)
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first_judge() -> None:
        with bounded_dimensions():
            first_in.set()
            second_in.wait(30)
        first_out.set()

    first = threading.Thread(target=first_judge)
    first.start()
    assert first_in.wait(30)
    with bounded_dimensions():
        second_in.set()
        assert first_out.wait(30)
        try:
            load_workbook(sheet, read_only=True).close()
            opened = "without reading the page"
        except ParseError:
            opened = "reading the page to its broken end"
    first.join(30)
    assert opened == "without reading the page"
    with pytest.raises(ParseError):
        load_workbook(sheet, read_only=True)


# --- files under KEPU_HOME: owner only -------------------------------------------------------------------


def _loose(home: Path) -> list[str]:
    """Everything under ``home`` (and ``home`` itself) that anyone but its owner can read or enter."""
    import stat

    out = []
    for path in [home, *home.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077:
            out.append(f"{path.relative_to(home.parent)} {mode:o}")
    return out


def test_records_store_exports_and_the_certificate_key_are_owner_only(tmp_path: Path) -> None:
    import os

    from kepu.certificates.numbers import load_secret
    from kepu.config import load_settings
    from kepu.context import open_context
    from kepu.storage import export_key

    old = os.umask(0o022)  # the usual umask: new files 0644, folders 0755
    try:
        home = tmp_path / "kepu"
        settings = load_settings({"KEPU_HOME": str(home)})
        ctx = open_context(settings, migrate=True)
        ctx.records.upsert_campaign("2022", "征集", "sha")  # the records file and its WAL
        ctx.store.put_bytes(export_key("2022", "submissions.xlsx"), b"names, phones, e-mail addresses")
        ctx.store.put_bytes("campaigns/2022/outbox/mail-1.eml", b"To: author@example.cn")
        load_secret(settings)
        files = {p.name for p in home.rglob("*") if p.is_file()}
        assert {"records.db", "submissions.xlsx", "mail-1.eml", "cert-secret"} <= files
        assert _loose(home) == []

        # An existing installation: a world-readable records file in a 0755 home is tightened on open.
        old_home = tmp_path / "old"
        old_home.mkdir(mode=0o755)
        (old_home / "records.db").touch(mode=0o644)
        os.chmod(old_home / "records.db", 0o644)
        from kepu.db import dispose_engine

        url = f"sqlite:///{old_home / 'records.db'}"
        open_context(load_settings({"KEPU_HOME": str(old_home), "KEPU_DATABASE_URL": url}), migrate=True)
        assert oct((old_home / "records.db").stat().st_mode & 0o777) == oct(0o600)
        dispose_engine(url)
    finally:
        os.umask(old)
        from kepu.db import dispose_engine

        dispose_engine(settings.database_url)


# --- certificate numbers as people type them -------------------------------------------------------------


def test_a_certificate_number_is_found_whatever_its_case_spacing_or_width(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from kepu.certificates.verify import public_status

    number = "KP2022-7F3K-9QXM-2B8D"
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE certificates (number TEXT, status TEXT, award TEXT, title TEXT, "
            "holder TEXT, issued_at TEXT, revoked_at TEXT, phone TEXT)"
        )
        conn.exec_driver_sql(
            "INSERT INTO certificates VALUES (?, 'valid', '优秀作品', '会飞的种子', '广东少年宫', "
            "'2022-12-01', NULL, '13800138000')",
            (number,),
        )
    typed = {
        "lower case": number.lower(),
        "spaces around": f"  {number}\t",
        "ideographic spaces": f"\u3000{number}\u3000",
        "full-width": "ＫＰ２０２２－７Ｆ３Ｋ－９ＱＸＭ－２Ｂ８Ｄ",
        "full-width lower case": "ｋｐ２０２２－７ｆ３ｋ－９ｑｘｍ－２ｂ８ｄ",
        "typographic dashes": "KP2022–7F3K—9QXM‐2B8D",
        "spaces inside groups": "KP2022 - 7F3K - 9QXM - 2B8D",
    }
    for what, text in typed.items():
        status = public_status(engine, text)
        assert (status.state, status.number, status.holder) == ("valid", number, "广东少年宫"), what
    assert public_status(engine, "kp2022-7f3k-9qxm-2b8e").state == "unknown"
    assert public_status(engine, "<script>").state == "unknown"
    engine.dispose()


# --- small things an operator sees ------------------------------------------------------------------------


def _bar_fills(svg_html: str) -> dict[str, str]:
    """label → fill colour of its bar, in the verdicts chart of ``svg_html``."""
    import re

    section = svg_html[svg_html.index("结论 Verdicts") :]
    section = section[: section.index("</svg>")]
    return dict(re.findall(r'text-anchor="end">([^<]+)</text><rect [^>]*fill="([^"]+)"', section))


def test_verdict_charts_colour_fail_red_and_pass_green() -> None:
    from datetime import UTC, datetime

    from kepu.campaign import load_campaign
    from kepu.config import DEFAULT_CAMPAIGN_FILE
    from kepu.intake.report import VERDICT_LABELS, ReportData, render_html, verdict_chart

    rows = [
        {
            "source_name": f"北京市+科技馆+作品{i}",
            "province": "北京市",
            "unit": "科技馆",
            "title": f"作品{i}",
            "verdict": v,
            "codes": "",
            "channel": "provincial",
        }
        for i, v in enumerate(["fail", "fail", "fail", "pass", "review", None])
    ]
    data = ReportData(load_campaign(DEFAULT_CAMPAIGN_FILE), rows, [], [], [], [], datetime(2022, 11, 1, tzinfo=UTC))
    fills = _bar_fills(render_html(data))
    assert fills == {
        "不合格 fail": "#c0392b",
        "通过 pass": "#2e7d32",
        "待复核 review": "#d4a017",
        "未完成 pending": "#9e9e9e",
    }
    # The dashboard's chart (its keys say pending for an unfinished entry).
    from kepu.dashboard.app import VERDICT_LABELS as DASH_LABELS

    fills = _bar_fills(verdict_chart([("pass", 2), ("fail", 2), ("review", 1), ("pending", 1)], DASH_LABELS))
    assert (
        fills["不合格 fail"] == "#c0392b" and fills["通过 pass"] == "#2e7d32" and fills["未完成 pending"] == "#9e9e9e"
    )
    assert VERDICT_LABELS["fail"] == "不合格 fail"


def test_judging_status_prints_readable_tables_and_json_on_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse
    import json

    from judging_factory import make_judges, pass_gates, seed_entries, settings_for, write_campaign, write_roster
    from kepu.context import open_context
    from kepu.judging import commands, steps

    settings = settings_for(tmp_path, write_campaign(tmp_path / "campaign.yaml"))
    for k, v in settings.as_env().items():
        monkeypatch.setenv(k, v)
    ctx = open_context(settings, migrate=True)
    entries = seed_entries(ctx.records, "2022", videos=8, accounts=2, review=(1,))
    steps.load_roster(ctx, str(write_roster(tmp_path / "评委名单.csv", make_judges(6))))
    pass_gates(ctx.records, "2022", [sid for sid in entries if sid != "E001"])
    commands.cmd_status(argparse.Namespace(json=False))
    text = capsys.readouterr().out
    assert not text.lstrip().startswith("{") and "评审状态 Judging status" in text
    assert "审查关口 Gates" in text and "待决定 pending" in text and "通过 pass" in text
    assert "评委 Judges: 6" in text and "尚未开始 not started" in text and "尚未发布 none" in text
    header = next(line for line in text.splitlines() if line.startswith("关口 gate"))
    rule = text.splitlines()[text.splitlines().index(header) + 1]
    assert set(rule.replace(" ", "")) == {"-"}  # a table: a header over a rule
    commands.cmd_status(argparse.Namespace(json=True))
    data = json.loads(capsys.readouterr().out)
    assert data["judges"] == 6 and data["rounds"] == {} and data["releases"] == []


def test_thumbnails_of_a_video_black_at_every_mark_are_not_black(tmp_path: Path) -> None:
    import shutil

    from hostile.edges_factory import video_black_at_every_fifth
    from kepu.campaign import load_campaign
    from kepu.config import DEFAULT_CAMPAIGN_FILE
    from kepu.media.presets import DEFAULT_PRESETS
    from kepu.media.probe import probe_file
    from kepu.media.rendition import make_rendition, plain_thumbnails_command, plan_rendition, thumbnail_times
    from kepu.media.runner import run

    if shutil.which("ffmpeg") is None:
        pytest.skip("needs ffmpeg")

    def luma(path: Path) -> float:
        raw = run(
            [
                "ffmpeg",
                "-nostdin",
                "-v",
                "error",
                "-i",
                str(path),
                "-frames:v",
                "1",
                "-vf",
                "scale=64:36,format=gray",
                "-f",
                "rawvideo",
                "-",
            ],
            timeout=60,
        ).stdout
        return sum(raw) / len(raw)

    src = video_black_at_every_fifth(tmp_path / "fade-in-and-black-joins.mp4")
    # The frames at the marks really are black: what evenly spaced thumbnails used to show.
    marks = thumbnail_times(10.0, 4)
    naive = [(tmp_path / f"naive-{k}.jpg", t) for k, t in enumerate(marks)]
    run(plain_thumbnails_command(src, naive, DEFAULT_PRESETS), timeout=120)
    assert all(luma(p) < 25 for p, _ in naive)

    plan = plan_rendition(
        probe_file(src), load_campaign(DEFAULT_CAMPAIGN_FILE), loudness_lufs=None, presets=DEFAULT_PRESETS
    )
    result = make_rendition(src, tmp_path / "out", plan, timeout=300)
    thumbs = result.thumbnails
    assert len(thumbs) == 4 and all(luma(t.path) > 60 for t in thumbs), [luma(t.path) for t in thumbs]
    assert len({t.sha256 for t in thumbs}) == 4  # four different moments, not four copies of one
    assert luma(result.poster.path) > 60
