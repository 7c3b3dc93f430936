"""E-mails to the submitters once the results are released: their result and, for awardees, their certificates
(attached as PDF, with the verification link). Chinese, with English beside.

Sent through Airflow's SMTP provider (``SmtpHook``) on the first connection of the campaign's
``notifications.smtp_conn_ids`` that is defined (``kepu_smtp``, then ``smtp_default``). The sent-log (table
``notifications``, keyed by submission, result and release) makes sure nobody is mailed twice for the same
result: a rerun, a retried task or a second release of the same ranking sends nothing new. A changed result
(an award added by a re-release) is a new message; so is the 创作之星 certificate once it is issued.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypedDict

from kepu.campaign import Campaign
from kepu.certificates.holders import Entry, entries
from kepu.certificates.release import Release
from kepu.certificates.verify import verification_url
from kepu.clock import BEIJING
from kepu.db.award_records import CertificateRecord
from kepu.db.schema import AWARD_KINDS
from kepu.errors import AwardError
from kepu.publication.package import AWARD_LABELS

log = logging.getLogger(__name__)

NOT_AWARDED = "not_awarded"
CREATION_STAR = "creation_star"


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    html: str
    message_id: str
    files: list[Path] = field(default_factory=list)


class Mailer(Protocol):
    def send(self, mail: Mail) -> None: ...


def result_key(kinds: list[str]) -> str:
    """``excellent_video+best_video``: the awards of a submission in a release, in the schema's order."""
    order = {k: i for i, k in enumerate(AWARD_KINDS)}
    return "+".join(sorted(set(kinds), key=lambda k: order.get(k, 99))) if kinds else NOT_AWARDED


def results(ctx: Any, release: Release) -> dict[str, list[str]]:
    """What each submitter is to be told: their awards (or not awarded), and 创作之星 once its certificate exists."""
    c: Campaign = ctx.campaign
    by_sub = release.by_submission()
    out: dict[str, list[str]] = {}
    for sub in ctx.records.list_submissions(c.id):
        if sub.id in by_sub:
            out[sub.id] = [result_key([a.award for a in by_sub[sub.id]])]
        elif c.notifications.notify_not_awarded and sub.status == "checked":
            out[sub.id] = [NOT_AWARDED]
    star_types = {t.key for t in c.certificates.types if t.record == CREATION_STAR}
    for cert in ctx.records.find_certificates(c.id):
        if cert.type in star_types and cert.valid and cert.object_key and cert.submission_id in out:
            out[cert.submission_id].append(CREATION_STAR)
    return out


def plan_notifications(ctx: Any, release: Release) -> list[str]:
    """Submissions with a result not yet sent (nor being sent) to them."""
    done = {
        (r["submission_id"], r["result"])
        for r in ctx.records.list_notifications(ctx.campaign.id)
        if r["status"] in ("sending", "sent")
    }
    return sorted(sid for sid, keys in results(ctx, release).items() if any((sid, k) not in done for k in keys))


def _certs_for(ctx: Any, e: Entry, result: str) -> list[CertificateRecord]:
    c: Campaign = ctx.campaign
    if result == CREATION_STAR:
        types = {t.key for t in c.certificates.types if t.record == CREATION_STAR}
    elif result == NOT_AWARDED:
        return []
    else:
        kinds = set(result.split("+"))
        types = {t.key for t in c.certificates.types if t.issue_on == "award" and t.award in kinds}
    certs = ctx.records.find_certificates(c.id, submission_id=e.submission_id)
    return [x for x in certs if x.type in types and x.valid and x.object_key]


def compose(ctx: Any, e: Entry, result: str, release: Release, certs: list[CertificateRecord]) -> tuple[str, str]:
    """Subject and HTML body of one message."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    c: Campaign = ctx.campaign
    values = {
        "campaign": c.campaign.name_zh,
        "campaign_en": c.campaign.name_en,
        "holder": e.holder,
        "title": e.title,
        "unit": e.unit or "",
        "organiser": c.campaign.organiser_zh,
        "organiser_en": c.campaign.organiser_en,
    }
    subject = f"{c.notifications.subject_zh.format(**values)} · {c.notifications.subject_en.format(**values)}"
    kinds = [] if result in (NOT_AWARDED, CREATION_STAR) else result.split("+")
    env = Environment(loader=PackageLoader("kepu.publication", "templates"), autoescape=select_autoescape(["html"]))
    html = env.get_template("result_mail.html").render(
        c=c,
        e=e,
        result=result,
        awards=[{"zh": AWARD_LABELS[k][0], "en": AWARD_LABELS[k][1]} for k in kinds],
        best="best_video" in kinds,
        star=result == CREATION_STAR,
        certs=[
            {"number": x.number, "award": x.award, "url": verification_url(ctx.settings.public_base_url, x.number)}
            for x in certs
        ],
        kind_zh="科普号" if e.kind == "account" else "科普微视频",
        reply_to=c.notifications.reply_to,
        released=release.released_at.astimezone(BEIJING).date().isoformat(),
    )
    return subject, str(html)


def _message_id(campaign_id: str, sid: str, result: str, release_id: int, domain: str) -> str:
    return f"<kepu.{campaign_id}.{sid}.{result}.r{release_id}@{domain}>"


class NotificationsSent(TypedDict):
    """What :func:`send_notifications` did: how many messages went, were sent before, had no address, failed;
    and the ones sent (``submission:result``)."""

    sent: int
    skipped: int
    no_address: int
    failed: int
    sent_to: list[str]


def send_notifications(
    ctx: Any, submission_ids: list[str], mailer: Mailer, release: Release, *, domain: str = "kepu.invalid"
) -> NotificationsSent:
    """Send each submitter the results not yet sent to them; record every message in the sent-log.

    A message is claimed in the sent-log before it goes, so a crash can never send it twice; a failed one is
    recorded and sent by the next run. Raises :class:`AwardError` at the end when some failed (Airflow retries).
    """
    from kepu.intake.form_values import is_valid_email

    c: Campaign = ctx.campaign
    wanted = results(ctx, release)
    people = entries(ctx.records, c.id, [s for s in submission_ids if s in wanted])
    out: dict[str, list[str]] = {"sent": [], "skipped": [], "no_address": [], "failed": []}
    scratch = ctx.settings.scratch_dir / f"mail-r{release.release_id}"
    for sid in submission_ids:
        e = people.get(sid)
        if e is None:
            continue
        address = e.email if e.email and is_valid_email(e.email) else None
        for result in wanted[sid]:
            label = f"{sid}:{result}"
            if not ctx.records.claim_notification(c.id, sid, result, release.release_id, address):
                out["skipped" if address else "no_address"].append(label)
                continue
            assert address is not None
            certs = _certs_for(ctx, e, result)
            subject, html = compose(ctx, e, result, release, certs)
            message_id = _message_id(c.id, sid, result, release.release_id, domain)
            try:
                with _attachments(ctx, certs, scratch / sid) as files:
                    mailer.send(Mail(address, subject, html, message_id, files))
            except Exception as exc:  # the mail server's reasons are many; each is recorded and retried
                log.warning("mail to %s (%s) failed: %s", sid, result, exc)
                ctx.records.finish_notification(sid, result, release.release_id, status="failed", error=str(exc)[:500])
                out["failed"].append(label)
                continue
            ctx.records.finish_notification(sid, result, release.release_id, status="sent", message_id=message_id)
            out["sent"].append(label)
    shutil.rmtree(scratch, ignore_errors=True)
    summary = {k: len(v) for k, v in out.items()}
    log.info("notifications: %s", summary)
    if out["failed"]:
        raise AwardError(
            f"{len(out['failed'])} 封邮件发送失败，将在重试时再发 · {len(out['failed'])} message(s) failed "
            "and will be sent when the task is retried",
            out["failed"],
        )
    return {
        "sent": summary["sent"],
        "skipped": summary["skipped"],
        "no_address": summary["no_address"],
        "failed": summary["failed"],
        "sent_to": out["sent"],
    }


@contextmanager
def _attachments(ctx: Any, certs: list[CertificateRecord], folder: Path) -> Iterator[list[Path]]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    try:
        for cert in certs:
            assert cert.object_key is not None
            files.append(ctx.store.download(cert.object_key, folder / f"{cert.number}.pdf"))
        yield files
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class SmtpMailer:
    """Messages through Airflow's SMTP provider, on the first defined connection of ``conn_ids``.

    The connection's extra ``from_email`` is the sender (default: ``reply_to``); answers go to ``reply_to``.
    """

    def __init__(self, conn_ids: list[str], reply_to: str) -> None:
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        self.reply_to = reply_to
        for cid in conn_ids:
            try:
                BaseHook.get_connection(cid)
            except AirflowNotFoundException:
                continue
            self.conn_id = cid
            break
        else:
            raise AwardError(
                f"未配置发信连接（{'、'.join(conn_ids)}）· no SMTP connection defined ({', '.join(conn_ids)})"
            )
        self.hook: Any = None

    @property
    def domain(self) -> str:
        sender = str((self.hook.from_email if self.hook else None) or self.reply_to)
        return sender.rpartition("@")[2] or "kepu.invalid"

    def __enter__(self) -> SmtpMailer:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        self.hook = SmtpHook(smtp_conn_id=self.conn_id)
        self.hook.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.hook is not None:
            self.hook.__exit__(*exc)
            self.hook = None

    def send(self, mail: Mail) -> None:
        from email.header import Header

        assert self.hook is not None, "use SmtpMailer as a context manager"
        self.hook.send_email_smtp(
            to=[mail.to],
            subject=Header(mail.subject, "utf-8"),
            html_content=mail.html,
            from_email=self.hook.from_email or self.reply_to,
            files=[str(p) for p in mail.files],
            custom_headers={"Message-ID": mail.message_id, "Reply-To": self.reply_to},
        )


# --- the DAG's tasks ------------------------------------------------------------------------------------------------


def mailer_for(c: Campaign) -> SmtpMailer:
    return SmtpMailer(list(c.notifications.smtp_conn_ids), c.notifications.reply_to)


def plan_notification_batches(ctx: Any, *, event: Any = None, max_tasks: int = 32) -> list[list[str]]:
    """Batches of the submitters with a result still to send; an error when no SMTP connection is defined."""
    from kepu.batches import plan_batches
    from kepu.certificates.release import current_release

    release = current_release(ctx, event)
    ids = plan_notifications(ctx, release)
    if ids:
        mailer_for(ctx.campaign)  # fails early, with the connection ids, when none is defined
    return plan_batches(ids, max_tasks)


def notify_batch(ctx: Any, batch: list[str]) -> NotificationsSent:
    from kepu.certificates.release import current_release

    release = current_release(ctx)
    with mailer_for(ctx.campaign) as mailer:
        return send_notifications(ctx, batch, mailer, release, domain=mailer.domain)
