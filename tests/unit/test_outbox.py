"""The embedded default's mail sink (a real SMTP server on loopback) and the dashboard's 外发邮件 Outbox page that
lists what it kept; the embedded Airflow's environment points ``smtp_default`` at the sink."""

from __future__ import annotations

import datetime as dt
import json
import smtplib
from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from dashboard_seed import XSS, settings_for
from kepu.config import load_settings
from kepu.dashboard import URL_PREFIX
from kepu.dashboard.app import Services, create_app
from kepu.dashboard.auth import Access, Viewer
from kepu.dashboard.outbox import list_messages
from kepu.localairflow import LocalAirflow
from kepu.mailsink import EML_NAME, MailSink, OutboxHandler

pytestmark = pytest.mark.unit


class Login(Access):
    def __init__(self, user: str | None) -> None:
        self.user = user

    async def authenticate(self, request: Request) -> Viewer | None:
        return Viewer(self.user) if self.user else None

    def authorize(self, viewer: Viewer) -> bool:
        return True

    def login_url(self, next_url: str) -> str | None:
        return f"/auth/login?next={next_url}"


def client(home: Path, user: str | None = "tester") -> TestClient:
    outer = FastAPI()
    outer.mount(URL_PREFIX, create_app(services=Services(settings_for(home)), access=Login(user)))
    return TestClient(outer, follow_redirects=False)


def message(to: str, subject: str, *, pdf: bytes | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "xhhd@cacsi.org.cn"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = "<kepu.2022.s0001.excellent_video.r1@cacsi.org.cn>"
    msg.set_content("纯文本 plain")
    msg.add_alternative(f"<p>{XSS}恭喜 <b>获评</b></p>", subtype="html")
    if pdf is not None:
        msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="KP2022-ABCD.pdf")
    return msg


def test_the_sink_keeps_each_message_as_an_eml(tmp_path: Path) -> None:
    outbox = tmp_path / "kepu" / "outbox"
    with MailSink(outbox) as sink, smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as smtp:
        smtp.send_message(
            message("张老师 <zhang@example.org>", "评选结果通知 · Results"), to_addrs=["zhang@example.org"]
        )
        smtp.send_message(message("li@example.org", "第二封 second", pdf=b"%PDF-1.4 x"))
    files = sorted(outbox.iterdir())
    assert len(files) == 2 and all(EML_NAME.fullmatch(f.name) for f in files)
    listed, total = list_messages(outbox)
    assert total == 2
    by_subject = {m.subject: m for m in listed}
    first = by_subject["评选结果通知 · Results"]
    assert first.rcpt == ["zhang@example.org"] and first.to == ["张老师 <zhang@example.org>"]
    assert first.sent_at is not None and first.attachments == []
    (pdf,) = by_subject["第二封 second"].attachments
    assert pdf.filename == "KP2022-ABCD.pdf" and pdf.size == len(b"%PDF-1.4 x")
    # A stopped sink takes no more mail.
    with pytest.raises(OSError):
        smtplib.SMTP("127.0.0.1", sink.port, timeout=5)


def test_outbox_page_lists_and_opens_messages_escaped_in_beijing_time(tmp_path: Path) -> None:
    home = tmp_path / "kepu"
    handler = OutboxHandler(home / "outbox")
    at = dt.datetime(2022, 12, 1, 2, 30, 5, tzinfo=dt.UTC)  # 10:30:05 in Beijing
    raw = message(f"{XSS} <x@example.org>", f"通知 {XSS}", pdf=b"%PDF-1.4 y").as_bytes()
    name = handler.store(raw, "xhhd@cacsi.org.cn", ["x@example.org"], now=at).name

    c = client(home)
    page = c.get(f"{URL_PREFIX}/outbox")
    assert page.status_code == 200
    assert "外发邮件" in page.text and "2022-12-01 10:30:05" in page.text
    assert XSS not in page.text and "&lt;script&gt;" in page.text
    assert f"{URL_PREFIX}/outbox/{name}" in page.text

    one = c.get(f"{URL_PREFIX}/outbox/{name}")
    assert one.status_code == 200 and XSS not in one.text and "2022-12-01 10:30:05" in one.text
    assert "x@example.org" in one.text and "KP2022-ABCD.pdf" in one.text
    assert "frame-src 'self'" in one.headers["content-security-policy"]
    body = c.get(f"{URL_PREFIX}/outbox/{name}/body")
    assert body.status_code == 200 and "获评" in body.text
    assert (
        "sandbox" in body.headers["content-security-policy"]
        and "script-src" not in body.headers["content-security-policy"]
    )
    assert c.get(f"{URL_PREFIX}/outbox/{name}/attachments/0").content == b"%PDF-1.4 y"
    assert c.get(f"{URL_PREFIX}/outbox/{name}/attachments/1").status_code == 404
    assert c.get(f"{URL_PREFIX}/outbox/{name}/raw").content == (home / "outbox" / name).read_bytes()
    # Names the sink never writes are not looked up at all.
    assert c.get(f"{URL_PREFIX}/outbox/..%2Frecords.db").status_code in (404, 422)
    assert c.get(f"{URL_PREFIX}/outbox/20221201T023005000000-000000000000.eml").status_code == 404


def test_outbox_needs_the_login(tmp_path: Path) -> None:
    home = tmp_path / "kepu"
    name = (
        OutboxHandler(home / "outbox")
        .store(message("a@example.org", "s").as_bytes(), "f@x.org", ["a@example.org"])
        .name
    )
    anonymous = client(home, user=None)
    for path in ("/outbox", f"/outbox/{name}", f"/outbox/{name}/body", f"/outbox/{name}/raw"):
        response = anonymous.get(URL_PREFIX + path, headers={"accept": "text/html"})
        assert response.status_code in (303, 401), path
        assert "a@example.org" not in response.text


def test_embedded_airflow_offers_the_sink_unless_a_connection_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    settings = load_settings({"KEPU_HOME": str(tmp_path / "kepu")})
    airflow = LocalAirflow(tmp_path / "kepu" / "airflow", extra_env=settings.as_env())
    conn = json.loads(airflow.env["AIRFLOW_CONN_SMTP_DEFAULT"])
    assert conn["host"] == "127.0.0.1" and conn["port"] == airflow.mail_port
    assert airflow.outbox == settings.outbox_dir
    assert airflow.env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "False"
    given = LocalAirflow(tmp_path / "a2", extra_env={**settings.as_env(), "AIRFLOW_CONN_SMTP_DEFAULT": "smtp://mx:25"})
    assert given.env["AIRFLOW_CONN_SMTP_DEFAULT"] == "smtp://mx:25"
    assert "AIRFLOW_CONN_SMTP_DEFAULT" not in LocalAirflow(tmp_path / "a3", mail_sink=False).env
