"""``kepu_certificates`` and ``kepu_publication`` through ``dag.test()`` on the embedded default, with a partner
platform and a mail server on loopback: the first runs issue, push and mail; running them again (a rerun, or the
same release announced twice) issues no certificate, pushes no work and sends no e-mail twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from kepu.config import DEFAULT_CAMPAIGN_FILE

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import json, os, socket, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from aiosmtpd.controller import Controller
    from airflow.dag_processing.dagbag import DagBag
    from award_factory import seed_release
    from kepu.context import open_context
    from platform_server import platform_server
    from kepu.orchestration.metadata import prepare

    prepare()  # Airflow's metadata database, migrated in this process: no `airflow db migrate` process of its own

    class Inbox:
        def __init__(self):
            self.rcpts = []
        async def handle_DATA(self, server, session, envelope):
            self.rcpts.append(list(envelope.rcpt_tos))
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    mail = Controller(inbox, hostname="127.0.0.1", port=port)
    mail.start()
    os.environ["AIRFLOW_CONN_KEPU_SMTP"] = json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port,
        "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "results@kepu.example.org", "retry_limit": 0}})
    out = {}
    with platform_server() as platforms:
        os.environ["AIRFLOW_CONN_KEPU_PLATFORM_KEPU_CHINA"] = platforms.conn("kepu_china")
        platforms.script[("kepu_china", "s0002")] = [502]
        bag = DagBag(dag_folder=sys.argv[1])
        certs, pub = bag.dags["kepu_certificates"], bag.dags["kepu_publication"]
        ctx = open_context(migrate=True)
        seeded = seed_release(ctx.records, videos=3, accounts=1, best=1, no_pledge=(1,), extra=1, store=ctx.store,
                              scratch=Path(sys.argv[3]) / "media")

        def run(dag, conf=None):
            dr = dag.test(run_conf=conf or {})
            return dr.state, sorted({ti.task_id: ti.state for ti in dr.get_task_instances()}.items())

        def counts():
            return {"certificates": len(ctx.records.find_certificates("2022")), "mails": len(inbox.rcpts),
                    "requests": len(platforms.received()),
                    "sent": sum(r["status"] == "sent" for r in ctx.records.list_notifications("2022"))}

        out["certs_1"] = run(certs)
        out["after_certs_1"] = counts()
        out["certs_2"] = run(certs)
        out["after_certs_2"] = counts()
        out["dry"] = run(pub, {"dry_run": True})
        out["after_dry"] = counts()
        out["pub_1"] = run(pub, {"dry_run": False})  # dag.test keeps the last run_conf's params otherwise
        out["after_pub_1"] = counts()
        out["pub_2"] = run(pub, {"dry_run": False})
        out["after_pub_2"] = counts()
        out["pushes"] = sorted((p["submission_id"], p["status"], p["attempts"]) for p in ctx.records.list_pushes("2022"))
        out["catalog"] = ctx.store.exists("campaigns/2022/publication/catalog.json")
        out["expected"] = {"awards": sum(len(e["awards"]) for e in seeded.entries.values()),
                           "entries": len(seeded.entries)}
    mail.stop()
    print("RESULT " + json.dumps(out, ensure_ascii=False, default=str))
    """
)


def test_certificate_and_publication_dags_do_nothing_twice(tmp_path: Path) -> None:
    home = tmp_path / "airflow"
    data = yaml.safe_load(DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8"))
    data["publication"]["push"].update(backoff_s=0.01, max_backoff_s=0.05)
    campaign = tmp_path / "campaign.yaml"
    campaign.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "KEPU_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "KEPU_HOME": str(tmp_path / "kepu"),
            "KEPU_CAMPAIGN_FILE": str(campaign),
            "KEPU_CERT_SECRET": "e2e-secret-" + "x" * 20,
        }
    )
    home.mkdir(parents=True)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(REPO / "dags"), str(REPO / "tests"), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    out = json.loads(line.removeprefix("RESULT "))

    for run in ("certs_1", "certs_2", "dry", "pub_1", "pub_2"):
        state, tasks = out[run]
        assert state == "success", (run, tasks)
        assert dict(tasks)["fail_if_a_step_failed"] == "skipped", (run, tasks)
    # 3 excellent videos and 1 account: 4 certificates (创作之星 waits for its title); one mail per entry.
    first = out["after_certs_1"]
    assert first["certificates"] == 4 and first["mails"] == first["sent"] == out["expected"]["entries"]
    assert out["after_certs_2"] == first
    # The dry run pushes nothing; the real run pushes the two pledged works (one after a 502); the rerun nothing.
    assert out["after_dry"]["requests"] == 0 and out["catalog"]
    assert out["after_pub_1"]["requests"] == 3, (out["pub_1"], out["after_pub_1"])
    assert out["after_pub_2"] == out["after_pub_1"]
    assert out["pushes"] == [["s0000", "accepted", 1], ["s0002", "accepted", 2]]
