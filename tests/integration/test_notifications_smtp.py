"""Result e-mails through Airflow's SMTP provider to a local SMTP server (aiosmtpd on loopback), read back as they
arrived: one message per submitter and result, certificates attached, never sent twice."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from award_factory import CID, need_font, seed_release
from kepu.certificates import steps
from kepu.config import load_settings
from kepu.context import Context, open_context
from kepu.errors import AwardError
from kepu.publication import notify
from mail_support import Inbox, smtp_inbox

pytestmark = pytest.mark.integration


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with smtp_inbox(monkeypatch, "results@kepu.example.org") as inbox:
        yield inbox


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    settings = load_settings(
        {
            "KEPU_HOME": str(tmp_path / "kepu"),
            "KEPU_CERT_SECRET": "s" * 32,
            "KEPU_PUBLIC_BASE_URL": "https://kepu.example.org",
        }
    )
    return open_context(settings, migrate=True)


def issue_and_notify(ctx: Context) -> list[notify.NotificationsSent]:
    plan = steps.plan_certificates(ctx)
    steps.render_certificates(ctx, plan["to_render"])
    steps.write_unit_files(ctx)
    return [notify.notify_batch(ctx, b) for b in notify.plan_notification_batches(ctx, max_tasks=3)]


def body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def pdfs(msg: EmailMessage) -> dict[str, bytes]:
    return {str(p.get_filename()): bytes(p.get_content()) for p in msg.iter_attachments()}


def test_each_submitter_gets_their_result_once(ctx: Context, smtp: Inbox) -> None:
    need_font()
    seeded = seed_release(ctx.records, videos=3, accounts=1, best=1, extra=2)
    bad = "s0005"
    ctx.records.set_details(bad, {"email": "不是邮箱"})
    issue_and_notify(ctx)

    entries = seeded.entries
    assert len(smtp.messages) == len(entries) - 1
    for sid, e in entries.items():
        got = smtp.to(e["email"])
        if sid == bad:
            assert got == []
            continue
        (msg,) = got
        text = body(msg)
        assert "评选结果通知" in str(msg["Subject"]) and "Results of the" in str(msg["Subject"])
        assert e["holder"] in text and e["title"] in text and "xhhd@cacsi.org.cn" in text
        assert msg["Reply-To"] == "xhhd@cacsi.org.cn" and msg["From"] == "results@kepu.example.org"
        assert str(msg["Message-ID"]).startswith(f"<kepu.{CID}.{sid}.")
        certs = [c for c in ctx.records.find_certificates(CID, submission_id=sid) if c.valid]
        attached = pdfs(msg)
        assert sorted(attached) == sorted(f"{c.number}.pdf" for c in certs)
        for c in certs:
            assert attached[f"{c.number}.pdf"].startswith(b"%PDF")
            assert c.number in text and f"https://kepu.example.org/kepu/verify/{c.number}" in text
        if e["awards"]:
            assert "获评" in text and "selected as" in text
        else:
            assert "未入选" in text and "not among the selected" in text
        if "best_video" in e["awards"]:
            assert "创作之星" in text
        # Nobody else's contact data in a message.
        others = [x for o, x2 in entries.items() if o != sid for x in (x2["email"], x2["phone"])]
        assert not any(o in msg.as_string() for o in others)

    log = {(r["submission_id"], r["result"]): r for r in ctx.records.list_notifications(CID)}
    assert log[(bad, "not_awarded")]["status"] == "no_address"
    assert sum(r["status"] == "sent" for r in log.values()) == len(entries) - 1

    # Again (a rerun, a retried task, the same release announced twice): nothing more is sent.
    issue_and_notify(ctx)
    issue_and_notify(ctx)
    assert len(smtp.messages) == len(entries) - 1

    # 科普中国 gives the best work the 创作之星 title: one more message, to that submitter, with that certificate.
    best = seeded.with_award("best_video")[0]
    steps.record_star(ctx, best, actor="王老师", reason="科普中国公布创作之星名单")
    issue_and_notify(ctx)
    assert len(smtp.messages) == len(entries)
    star_mail = smtp.to(entries[best]["email"])[-1]
    (star,) = [c for c in ctx.records.find_certificates(CID, submission_id=best, type="creation_star")]
    assert "创作之星" in body(star_mail) and list(pdfs(star_mail)) == [f"{star.number}.pdf"]
    issue_and_notify(ctx)
    assert len(smtp.messages) == len(entries)


class BrokenMailer:
    def __init__(self) -> None:
        self.tries = 0

    def send(self, mail: notify.Mail) -> None:
        self.tries += 1
        raise ConnectionRefusedError("mail server down")


def test_a_failed_message_is_recorded_and_sent_by_the_next_run(ctx: Context, smtp: Inbox) -> None:
    need_font()
    seeded = seed_release(ctx.records, videos=1, accounts=0, best=0, extra=0)
    steps.render_certificates(ctx, steps.plan_certificates(ctx)["to_render"])
    release = steps.current_release(ctx)
    broken = BrokenMailer()
    with pytest.raises(AwardError, match="发送失败"):
        notify.send_notifications(ctx, ["s0000"], broken, release)
    assert ctx.records.list_notifications(CID)[0]["status"] == "failed"
    assert notify.plan_notifications(ctx, release) == ["s0000"]
    issue_and_notify(ctx)
    assert len(smtp.to(seeded.entries["s0000"]["email"])) == 1
    (row,) = ctx.records.list_notifications(CID)
    assert (row["status"], row["attempts"]) == ("sent", 2)


def test_without_an_smtp_connection_the_plan_says_so(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_KEPU_SMTP", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    seed_release(ctx.records, videos=1, accounts=0, best=0, extra=0)
    with pytest.raises(AwardError, match="kepu_smtp"):
        notify.plan_notification_batches(ctx)
