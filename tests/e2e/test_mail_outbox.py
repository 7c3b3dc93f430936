"""On the embedded default, the certificates run goes green with no SMTP connection configured: the result e-mails
land in the mail sink's outbox (``$KEPU_HOME/outbox/*.eml``), and the verification links printed on the
certificates and in the mails follow the port the embedded UI listens on."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import openpyxl
import pytest

from award_factory import CID, need_font, seed_release
from kepu.config import load_settings
from kepu.context import open_context
from kepu.dashboard.outbox import list_messages
from kepu.localairflow import LocalAirflow
from kepu.storage import export_key

pytestmark = pytest.mark.e2e

DAG_ID = "kepu_certificates"


def test_certificates_run_mails_land_in_the_outbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need_font()
    for name in ("AIRFLOW_CONN_KEPU_SMTP", "AIRFLOW_CONN_SMTP_DEFAULT", "KEPU_PUBLIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings({"KEPU_HOME": str(tmp_path / "kepu"), "KEPU_CERT_SECRET": "o" * 32})
    ctx = open_context(settings, migrate=True)
    seeded = seed_release(ctx.records, videos=2, accounts=1, best=0, extra=1)

    with LocalAirflow(settings.home / "airflow", extra_env=settings.as_env()) as airflow:
        assert airflow.port != 8080
        airflow.wait_for_dag(DAG_ID)
        airflow.trigger(DAG_ID, "certs-1", {})
        assert airflow.wait_for_run(DAG_ID, "certs-1", timeout=900) == "success", airflow.task_instances(
            DAG_ID, "certs-1"
        )
    base = f"http://127.0.0.1:{airflow.port}/kepu/verify/"

    messages, total = list_messages(settings.outbox_dir)
    assert total == len(seeded.entries), [m.recipients for m in messages]
    assert sorted(r for m in messages for r in m.rcpt) == sorted(e["email"] for e in seeded.entries.values())
    certs = [c for c in ctx.records.find_certificates(CID) if c.valid]
    assert len(certs) == 3
    by_number = {c.number: c for c in certs}
    for m in messages:
        msg = message_from_bytes((settings.outbox_dir / m.name).read_bytes(), policy=default_policy)
        part = msg.get_body(preferencelist=("html",))
        assert part is not None
        html = str(part.get_content())
        assert "评选结果通知" in m.subject
        for a in m.attachments:
            number = a.filename.removesuffix(".pdf")
            assert number in by_number and f"{base}{number}" in html
    assert sum(len(m.attachments) for m in messages) == len(certs)
    # The register of certificates prints the same links.
    with ctx.store.open_local(export_key(CID, "certificates.xlsx")) as path:
        cells = [str(c) for row in openpyxl.load_workbook(path).active.iter_rows(values_only=True) for c in row if c]
    for number in by_number:
        assert f"{base}{number}" in cells
    assert ctx.records.list_notifications(CID) and all(
        r["status"] == "sent" for r in ctx.records.list_notifications(CID)
    )


def test_public_base_url_follows_the_embedded_port_unless_set(tmp_path: Path) -> None:
    settings = load_settings({"KEPU_HOME": str(tmp_path / "kepu")})
    airflow = LocalAirflow(tmp_path / "airflow", port=18123, extra_env=settings.as_env())
    assert load_settings(airflow.env).public_base_url == "http://127.0.0.1:18123"
    chosen = load_settings({"KEPU_HOME": str(tmp_path / "kepu"), "KEPU_PUBLIC_BASE_URL": "https://kepu.example.org/"})
    airflow = LocalAirflow(tmp_path / "airflow", port=18124, extra_env=chosen.as_env())
    assert load_settings(airflow.env).public_base_url == "https://kepu.example.org"
