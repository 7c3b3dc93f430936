"""Hostile inputs at the edges of the system: web servers that misbehave, score sheets that lie, contact data
in every width and spelling. Each generator is named after what it makes."""

from __future__ import annotations

import functools
import io
import itertools
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Route = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Server:
    base: str
    port: int
    hits: list[str] = field(default_factory=list)


@contextmanager
def web_server(routes: dict[str, Route]) -> Iterator[Server]:
    """A loopback HTTP server answering ``routes`` (path → handler); every request path is recorded."""
    server_box: list[Server] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server_box[0].hits.append(self.path)
            route = routes.get(self.path.split("?", 1)[0])
            if route is None:
                send(self, 404, b"")
            else:
                route(self)

        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    port = int(httpd.server_address[1])
    server_box.append(Server(f"http://127.0.0.1:{port}", port))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server_box[0]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def send(
    h: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
    length: int | None = None,
) -> None:
    h.send_response(status)
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body) if length is None else length))
    h.end_headers()
    if body:
        h.wfile.write(body)


def body(data: bytes, headers: dict[str, str] | None = None) -> Route:
    return lambda h: send(h, 200, data, headers)


def redirect(location: str) -> Route:
    return lambda h: send(h, 302, b"", {"Location": location})


def ten_gigabyte_content_length() -> Route:
    """Announces 10 GB and sends a few bytes."""
    return lambda h: send(h, 200, b"x" * 100, length=10 * 1024**3)


def endless_slow_body(byte_every_s: float = 0.05) -> Route:
    """A body with no length that drips one byte at a time, never ending (until the client hangs up)."""

    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        try:
            for _ in range(100_000):
                h.wfile.write(b"a")
                h.wfile.flush()
                time.sleep(byte_every_s)
        except (BrokenPipeError, ConnectionResetError):
            pass

    return route


# --- workbooks -------------------------------------------------------------------------------------------


def with_macro_project(xlsx: bytes, *, macro_content_type: bool = True) -> bytes:
    """``xlsx`` turned into a macro-enabled workbook (an .xlsm) that still carries the .xlsx name: a
    ``xl/vbaProject.bin`` member and, optionally, the macroEnabled main content type."""
    src = zipfile.ZipFile(io.BytesIO(xlsx))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "[Content_Types].xml":
                text = data.decode()
                text = text.replace(
                    "</Types>",
                    '<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/></Types>',
                )
                if macro_content_type:
                    text = text.replace(
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
                        "application/vnd.ms-excel.sheet.macroEnabled.main+xml",
                    )
                data = text.encode()
            dst.writestr(info, data)
        # A VBA project stream as Office writes it starts with the OLE compound-file signature.
        dst.writestr(
            "xl/vbaProject.bin", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b'Attribute VB_Name = "Module1"\nShell "calc"'
        )
    return out.getvalue()


def with_extra_rows(xlsx: bytes, rows: int) -> bytes:
    """The first scoring page of ``xlsx`` followed by ``rows`` more filled-in rows (a sheet nobody was issued),
    its XML written directly (no ``<dimension>``, as a streaming writer leaves it) so that making it stays cheap;
    made once per process for the same page head."""
    from openpyxl import load_workbook

    src = load_workbook(io.BytesIO(xlsx))
    page = src.worksheets[1]
    head = tuple(tuple(c.value for c in r) for r in page.iter_rows(min_row=1, max_row=5))
    return _page_with_rows(page.title, head, rows)


@functools.lru_cache(maxsize=4)
def _page_with_rows(title: str, head: tuple[tuple[Any, ...], ...], rows: int) -> bytes:
    from hostile import write_xlsx_to

    width = len(head[2])
    body = ([n + 2, f"X{n:06d}", "伪造", "", "", "", *([5] * (width - 7)), "好"] for n in range(rows))
    out = io.BytesIO()
    write_xlsx_to(out, itertools.chain(head, body), title=title)
    return out.getvalue()


# --- contact data in every form ----------------------------------------------------------------------------

#: (what it is, the text) — each must vanish from every public file.
CONTACT_VARIANTS: tuple[tuple[str, str], ...] = (
    ("mobile", "13912345678"),
    ("mobile with dashes", "139-1234-5678"),
    ("mobile with spaces", "139 1234 5678"),
    ("mobile with +86", "+86 139 1234 5678"),
    ("mobile with 0086", "0086-13912345678"),
    ("full-width mobile", "１３９１２３４５６７８"),
    ("full-width mobile with dashes", "１３９－１２３４－５６７８"),
    ("mobile in brackets +86", "(+86)13912345678"),
    ("landline", "010-62345678"),
    ("landline with brackets", "(010)62345678"),
    ("full-width landline", "０１０－６２３４５６７８"),
    ("e-mail", "zhang.san@example.com"),
    ("full-width e-mail", "ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ"),
    ("e-mail with full-width at", "zhangsan＠example.com"),
    ("e-mail with full-width dot", "zhangsan@example．com"),
    ("e-mail written with at/dot", "zhangsan at example dot com"),
    ("e-mail written with [at]", "zhangsan[at]example[dot]com"),
    ("e-mail written with 艾特", "zhangsan艾特example点com"),
    ("QQ number", "QQ：123456789"),
    ("full-width QQ", "ＱＱ号：１２３４５６７８９"),
    ("QQ mail", "123456789@qq.com"),
    ("WeChat id", "微信：zhangsan_wx2022"),
    ("WeChat id with vx", "vx: kepu-zhang88"),
    ("WeChat id with 微信号", "微信号 wxid_abc123xyz"),
    ("ID number", "110101199003074518"),
    ("full-width ID number", "１１０１０１１９９００３０７４５１８"),
    ("contact person", "联系人：张三丰"),
)


# --- videos ------------------------------------------------------------------------------------------------


def video_black_at_every_fifth(dest: Path, seconds: float = 10.0) -> Path:
    """A 1080p H.264/AAC clip that fades in from black and goes black for half a second at every even second:
    the 20/40/60/80 % marks of a 10 s clip (where evenly spaced thumbnails are taken) are all black, as in a
    looped sample clip that dips through black at every join."""
    from kepu.media.runner import run

    picture = (
        f"testsrc2=size=1920x1080:rate=25:duration={seconds:g},fade=t=in:st=0:d=1.5,"
        "drawbox=c=black:t=fill:enable='lt(mod(t\\,2)\\,0.5)'"
    )
    run(
        [
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            picture,
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:sample_rate=48000:duration={seconds:g}",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-ac",
            "2",
            str(dest),
        ],
        timeout=300,
    )
    return dest
