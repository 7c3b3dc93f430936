"""外发邮件 Outbox: the e-mails the embedded default's mail sink kept (``$KEPU_HOME/outbox/*.eml``, see
:mod:`kepu.mailsink`), listed newest first; one message opens with its headers, its body (in a sandboxed
frame, no script, nothing loaded from elsewhere) and its attachments. Behind the same login as every page.

Only files named as the sink names them are opened, so no path from a request reaches the file system.
"""

from __future__ import annotations

import datetime as dt
import email
import email.utils
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from fastapi.routing import APIRouter

from kepu.clock import BEIJING
from kepu.dashboard.auth import Viewer, require_viewer
from kepu.mailsink import EML_NAME

#: Most messages listed on the page (the newest).
MAX_LISTED = 500

router = APIRouter(dependencies=[Depends(require_viewer)])
ViewerDep = Annotated[Viewer, Depends(require_viewer)]
NameParam = Annotated[str, PathParam(pattern=EML_NAME.pattern)]


@dataclass(frozen=True)
class Attachment:
    index: int
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class OutboxMessage:
    name: str
    subject: str
    sender: str
    to: list[str]
    #: Envelope recipients, as the mail server was given them.
    rcpt: list[str]
    sent_at: dt.datetime | None
    size: int
    message_id: str = ""
    reply_to: str = ""
    attachments: list[Attachment] = field(default_factory=list)

    @property
    def sent_at_beijing(self) -> str:
        return self.sent_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S") if self.sent_at else ""

    @property
    def recipients(self) -> list[str]:
        return self.rcpt or self.to


def _parse(path: Path) -> EmailMessage:
    with path.open("rb") as fh:
        msg = email.message_from_binary_file(fh, policy=default_policy)
    assert isinstance(msg, EmailMessage)
    return msg


def _when(msg: EmailMessage, path: Path) -> dt.datetime | None:
    received = msg.get("X-Kepu-Received-At")
    if received:
        try:
            return dt.datetime.fromisoformat(str(received).strip())
        except ValueError:
            pass
    if msg.get("Date"):
        try:
            sent = email.utils.parsedate_to_datetime(str(msg["Date"]))
            return sent if sent.tzinfo else sent.replace(tzinfo=dt.UTC)
        except (TypeError, ValueError):
            pass
    try:
        return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    except OSError:
        return None


def _addresses(msg: EmailMessage, header: str) -> list[str]:
    values = [str(v) for v in msg.get_all(header, [])]
    return [f"{n} <{a}>" if n else a for n, a in email.utils.getaddresses(values) if a]


def summarize(path: Path) -> OutboxMessage:
    msg = _parse(path)
    attachments = [
        Attachment(
            i,
            str(part.get_filename() or f"attachment-{i}"),
            part.get_content_type(),
            len(part.get_payload(decode=True) or b""),
        )
        for i, part in enumerate(msg.iter_attachments())
    ]
    return OutboxMessage(
        name=path.name,
        subject=str(msg.get("Subject", "")),
        sender=str(msg.get("From", "")),
        to=_addresses(msg, "To"),
        rcpt=_addresses(msg, "X-Kepu-Envelope-To"),
        sent_at=_when(msg, path),
        size=path.stat().st_size,
        message_id=str(msg.get("Message-ID", "")),
        reply_to=str(msg.get("Reply-To", "")),
        attachments=attachments,
    )


def message_path(folder: Path, name: str) -> Path | None:
    """The file of message ``name`` in ``folder``, or None (a name the sink never writes, or no such file)."""
    if not EML_NAME.fullmatch(name):
        return None
    path = folder / name
    return path if path.is_file() else None


def list_messages(folder: Path, limit: int = MAX_LISTED) -> tuple[list[OutboxMessage], int]:
    """The newest ``limit`` messages of ``folder`` and how many there are in all."""
    if not folder.is_dir():
        return [], 0
    names = sorted((p for p in folder.iterdir() if EML_NAME.fullmatch(p.name)), key=lambda p: p.name, reverse=True)
    out = []
    for path in names[:limit]:
        try:
            out.append(summarize(path))
        except OSError:  # removed meanwhile
            continue
    return out, len(names)


def html_body(path: Path) -> str:
    """The message's HTML part, else its text part escaped into a <pre>."""
    from markupsafe import escape

    msg = _parse(path)
    part = msg.get_body(preferencelist=("html", "plain"))
    if part is None:
        return ""
    content = str(part.get_content())
    if part.get_content_type() == "text/html":
        return content
    return f"<pre>{escape(content)}</pre>"


# --- routes ------------------------------------------------------------------------------------------------


def _folder(request: Request) -> Path:
    folder: Path = request.app.state.services.settings.outbox_dir
    return folder


def _not_found(request: Request, viewer: Viewer, name: str) -> HTMLResponse:
    from kepu.dashboard.app import render

    return render(
        request,
        "error.html",
        viewer=viewer,
        status_code=404,
        message_zh="没有这封邮件",
        message_en=f"no message {name!r} in the outbox",
        nav="outbox",
    )


@router.get("/outbox", response_class=HTMLResponse)
def outbox(request: Request, viewer: ViewerDep) -> HTMLResponse:
    from kepu.dashboard.app import render

    folder = _folder(request)
    messages, total = list_messages(folder)
    return render(
        request, "outbox.html", viewer=viewer, messages=messages, total=total, folder=str(folder), nav="outbox"
    )


@router.get("/outbox/{name}", response_class=HTMLResponse)
def outbox_message(request: Request, name: NameParam, viewer: ViewerDep) -> HTMLResponse:
    from kepu.dashboard.app import CSP_TEMPLATE, render

    path = message_path(_folder(request), name)
    if path is None:
        return _not_found(request, viewer, name)
    response = render(request, "outbox_message.html", viewer=viewer, m=summarize(path), nav="outbox")
    # The body is shown in a frame of this origin (sandboxed, see outbox_body).
    response.headers["content-security-policy"] = CSP_TEMPLATE.format(extra="") + "; frame-src 'self'"
    return response


@router.get("/outbox/{name}/body", response_class=HTMLResponse)
def outbox_body(request: Request, name: NameParam, viewer: ViewerDep) -> Response:
    path = message_path(_folder(request), name)
    if path is None:
        return PlainTextResponse("not found", status_code=404)
    # No script, no form, nothing fetched from anywhere: the mail's own inline styles and embedded images only.
    csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
    return HTMLResponse(html_body(path), headers={"content-security-policy": csp})


@router.get("/outbox/{name}/raw")
def outbox_raw(request: Request, name: NameParam, viewer: ViewerDep) -> Response:
    path = message_path(_folder(request), name)
    if path is None:
        return PlainTextResponse("not found", status_code=404)
    return Response(
        path.read_bytes(),
        media_type="message/rfc822",
        headers={
            "content-disposition": f'attachment; filename="{name}"',
            "content-security-policy": "default-src 'none'; sandbox",
        },
    )


@router.get("/outbox/{name}/attachments/{index}")
def outbox_attachment(request: Request, name: NameParam, index: int, viewer: ViewerDep) -> Response:
    from urllib.parse import quote

    path = message_path(_folder(request), name)
    parts = list(_parse(path).iter_attachments()) if path is not None else []
    if not 0 <= index < len(parts):
        return PlainTextResponse("not found", status_code=404)
    part = parts[index]
    filename = str(part.get_filename() or f"attachment-{index}")
    return Response(
        part.get_payload(decode=True) or b"",
        media_type="application/octet-stream",
        headers={
            "content-disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "content-security-policy": "default-src 'none'; sandbox",
        },
    )
