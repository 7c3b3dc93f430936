"""The embedded default's mail sink: an SMTP server on loopback that keeps every message it receives as an
``.eml`` file in ``$KEPU_HOME/outbox/`` instead of delivering it.

The embedded Airflow (:class:`kepu.localairflow.LocalAirflow`) starts one beside its components and points the
``smtp_default`` connection at it, so the result e-mails of the certificates run need no mail server; the
dashboard lists them (外发邮件 Outbox). A ``kepu_smtp`` connection, as production defines it, comes first in the
campaign's ``notifications.smtp_conn_ids`` and takes the mails to a real server instead.

Each file is the message as the client sent it, preceded by three headers a delivering server would add::

    X-Kepu-Received-At: 2026-12-05T04:10:00.123456+00:00
    X-Kepu-Envelope-From: xhhd@cacsi.org.cn
    X-Kepu-Envelope-To: someone@example.org
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import socket
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The connection the sink is offered as; ``kepu_smtp`` (production's) is looked up before it.
SINK_CONN_ID = "smtp_default"
#: File names the sink writes (and the only ones the dashboard opens).
EML_NAME = re.compile(r"^[0-9]{8}T[0-9]{12}-[0-9a-f]{12}\.eml$")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def conn_env_var(conn_id: str = SINK_CONN_ID) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def connection_json(port: int, host: str = "127.0.0.1") -> str:
    """Airflow's SMTP connection (JSON form, for ``AIRFLOW_CONN_…``) to a sink on ``host:port``: no TLS, no login."""
    return json.dumps(
        {
            "conn_type": "smtp",
            "host": host,
            "port": port,
            "extra": {"disable_tls": True, "disable_ssl": True, "retry_limit": 2, "timeout": 30},
        }
    )


class OutboxHandler:
    """aiosmtpd handler: one ``.eml`` per message in ``folder``, written whole (temporary name, then rename)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def store(self, content: bytes, mail_from: str, rcpt_tos: list[str], *, now: dt.datetime | None = None) -> Path:
        now = now or dt.datetime.now(dt.UTC)
        self.folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(content + now.isoformat().encode()).hexdigest()[:12]
        path = self.folder / f"{now:%Y%m%dT%H%M%S%f}-{digest}.eml"
        head = [f"X-Kepu-Received-At: {now.isoformat()}", f"X-Kepu-Envelope-From: {_one_line(mail_from)}"]
        head += [f"X-Kepu-Envelope-To: {_one_line(r)}" for r in rcpt_tos]
        tmp = path.with_name(f".{path.name}.part")
        tmp.write_bytes(("\r\n".join(head) + "\r\n").encode("utf-8") + content)
        os.replace(tmp, path)
        return path

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        path = self.store(bytes(content), str(envelope.mail_from or ""), [str(r) for r in envelope.rcpt_tos])
        log.info("mail sink: kept a message to %s as %s", ", ".join(envelope.rcpt_tos), path.name)
        return "250 Message accepted for delivery"


def _one_line(text: str) -> str:
    return " ".join(text.split())


class MailSink:
    """An SMTP server on ``host:port`` (loopback; a free port by default) storing messages in ``folder``.

    ``start()`` serves it from a thread of this process, ``stop()`` ends it; it lives as long as the process
    that runs the embedded Airflow, and never outlives it.
    """

    def __init__(self, folder: Path, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.folder = folder
        self.host = host
        self.port = port or _free_port()
        self._controller: Any = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> MailSink:
        from aiosmtpd.controller import Controller

        if self._controller is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            controller = Controller(
                OutboxHandler(self.folder), hostname=self.host, port=self.port, data_size_limit=64 * 1024 * 1024
            )
            controller.start()
            self._controller = controller
            log.info("mail sink on %s:%d, messages kept in %s", self.host, self.port, self.folder)
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
