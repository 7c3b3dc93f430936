"""Entries listed in the summary sheet: direct links are fetched, cloud shares wait for a person."""

from __future__ import annotations

import csv
import functools
import json
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from openpyxl import load_workbook

from conftest import outcomes
from kepu.config import load_settings
from kepu.context import open_context
from kepu.intake import steps
from kepu.storage import export_key

pytestmark = pytest.mark.integration


class _CountingHandler(SimpleHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        super().do_GET()

    def log_message(self, *args: object) -> None:  # keep the test output quiet
        pass


@pytest.fixture
def file_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    root = tmp_path / "served"
    root.mkdir()
    _CountingHandler.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_CountingHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # Loopback is never fetched by default: the test admits this one server, port included.
    monkeypatch.setenv("KEPU_FETCH_ALLOW_HOSTS", f"127.0.0.1:{server.server_address[1]}")
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_direct_links_are_fetched_once_and_shares_wait(
    tmp_path: Path, file_server: tuple[Path, str], small_inbox: tuple[Path, dict], small_campaign: Path
) -> None:
    served, base_url = file_server
    src, expected = small_inbox
    name = sorted(n for n, (v, _) in expected.items() if v == "pass")[0]
    province, unit, title = (part.strip() for part in name.replace("＋", "+").split("+"))
    with zipfile.ZipFile(served / "package.zip", "w") as zf:
        for f in sorted((src / name).iterdir()):
            zf.write(f, f"{name}/{f.name}")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with open(inbox / "汇总表.csv", "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["序号", "省份", "报送单位", "报送渠道", "类型", "作品名称", "网盘链接", "接收时间"])
        w.writerow([1, province, unit, "省级推荐", "微视频", title, f"{base_url}/package.zip", "2022-10-20 10:00"])
        w.writerow(
            [
                2,
                "广东省",
                "广州市少年宫",
                "省级推荐",
                "微视频",
                "会飞的种子",
                "链接: https://pan.baidu.com/s/1AbCdEfG 提取码: x7k2",
                "2022-10-21 10:00",
            ]
        )
    settings = load_settings(
        {"KEPU_HOME": str(tmp_path / "kepu"), "KEPU_INBOX": str(inbox), "KEPU_CAMPAIGN_FILE": str(small_campaign)}
    )
    ctx = open_context(settings, migrate=True)
    summary = steps.run_intake(ctx, run_id="d1")
    got = outcomes(settings)
    downloaded = f"{province}+{unit}+{title}.zip"
    assert got == {downloaded: ("pass", set())}
    assert _CountingHandler.hits == ["/package.zip"]

    with ctx.store.open_local(export_key("2022", "pending-downloads.json")) as path:
        pending = json.loads(path.read_text(encoding="utf-8"))
    assert [(p["title"], p["extraction_code"]) for p in pending] == [("会飞的种子", "x7k2")]
    with ctx.store.open_local(summary["exports"]["xlsx"].split("/store/", 1)[1]) as xlsx:
        waiting = list(load_workbook(xlsx)["待下载 Awaiting download"].iter_rows(values_only=True))
    assert waiting[1][0] == "会飞的种子" and waiting[1][3] == "x7k2"

    steps.run_intake(ctx, run_id="d2")
    assert _CountingHandler.hits == ["/package.zip"]  # not downloaded twice
    assert outcomes(settings) == got


def test_a_failed_download_is_listed_with_its_reason(
    tmp_path: Path, file_server: tuple[Path, str], small_campaign: Path
) -> None:
    _, base_url = file_server
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "汇总表.csv").write_text(
        "省份,报送单位,报送渠道,作品名称,网盘链接,接收时间\n"
        f"北京市,北京科技馆,省级推荐,不存在的作品,{base_url}/missing.zip,2022-10-20 10:00\n",
        encoding="utf-8",
    )
    settings = load_settings(
        {"KEPU_HOME": str(tmp_path / "kepu"), "KEPU_INBOX": str(inbox), "KEPU_CAMPAIGN_FILE": str(small_campaign)}
    )
    ctx = open_context(settings, migrate=True)
    steps.run_intake(ctx, run_id="f1")
    with ctx.store.open_local(export_key("2022", "pending-downloads.json")) as path:
        (entry,) = json.loads(path.read_text(encoding="utf-8"))
    assert entry["title"] == "不存在的作品" and "下载失败" in entry["reason_zh"]
    assert not any((tmp_path / "kepu" / "downloads").glob("北京市*"))
