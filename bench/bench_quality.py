"""Time the campaign-wide checks on a synthetic 5,000-submission campaign.

Builds rows of mixed kinds and channels with a share of defects (long synopses, bad phones and
e-mails, empty form fields, too few works or followers, title disagreements, byte duplicates, late and
extended entries, units over quota), then times build_frame, validate (split into GX import, context
setup, validation and mapping), apply_quotas and deadline_findings.

Run: ``.venv/bin/python bench/bench_quality.py [--rows 5000] [--seed 7]``
"""

from __future__ import annotations

import argparse
import logging
import random
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from time import perf_counter
from typing import Any

from kepu.campaign import Campaign, load_campaign, parse_campaign
from kepu.config import DEFAULT_CAMPAIGN_FILE
from kepu.intake.eligibility_rules import QuotaOverride, apply_quotas, channel_findings, deadline_findings
from kepu.intake.quality import build_frame, validate
from kepu.provinces import PROVINCES

log = logging.getLogger("bench_quality")

BJ = timezone(timedelta(hours=8))
START = datetime(2022, 9, 1, 8, 0, tzinfo=BJ)
EXTENSION = (
    "  extensions:\n"
    '    - {until: "2022-11-10T23:59:59+08:00", provinces: [四川省], reason: 疫情延期}\n'
    '    - {until: "2022-11-03T23:59:59+08:00", channels: [unit_member], reason: 会员单位补报}\n'
)


def _campaign() -> Campaign:
    text = DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8").replace("  extensions: []\n", EXTENSION)
    return parse_campaign(text, str(DEFAULT_CAMPAIGN_FILE))


def synthetic_rows(campaign: Campaign, n: int, seed: int) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    provinces = [full for full, _ in PROVINCES]
    channels = list(campaign.channels)
    units = [f"{p}第{i}科技教育单位" for p in provinces for i in range(1, 6)]
    shas = [f"{i:064x}" for i in range(n)]
    rows: list[dict[str, Any]] = []
    for i in range(n):
        kind = "video" if rnd.random() < 0.8 else "account"
        channel: str | None = rnd.choice(channels)
        if rnd.random() < 0.01:
            channel = rnd.choice([None, "vip"])
        province = rnd.choice(provinces)
        entity = rnd.choice(units) if channel in ("provincial", "unit_member") else f"个人{rnd.randrange(n)}"
        title = f"科普作品{i}"
        received = START + timedelta(minutes=rnd.randrange(0, 62 * 24 * 60))
        if rnd.random() < 0.2:  # some arrive in UTC
            received = received.astimezone(UTC)
        names = campaign.package.video_form_fields if kind == "video" else campaign.package.account_form_fields
        fields = {name: f"{name}{i}" for name in names}
        if rnd.random() < 0.05:
            fields[rnd.choice(names)] = ""
        row: dict[str, Any] = {
            "submission_id": f"s{i:05d}",
            "kind": kind,
            "channel": channel,
            "entity": entity,
            "province": province,
            "title_folder": title,
            "title_form": f"《{title}》" if rnd.random() > 0.03 else f"另一个{title}",
            "phone": "13912345678" if rnd.random() > 0.03 else "139-abc-5678",
            "email": f"u{i}@example.org" if rnd.random() > 0.03 else f"u{i}@example",
            "received_at": received,
            "form_fields": fields if rnd.random() > 0.02 else None,
        }
        if kind == "video":
            row["title_file"] = title
            row["synopsis"] = "字" * rnd.choice([120, 299, 300, 301, 420])
            row["video_sha256"] = shas[i] if rnd.random() > 0.01 else shas[0]
        else:
            row["works"] = rnd.choice([12, 49, 50, 300])
            row["followers"] = rnd.choice([500, 999, 1000, 25000])
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("kepu", "great_expectations"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    campaign = _campaign()
    load_campaign(DEFAULT_CAMPAIGN_FILE)  # warm the loader like the pipeline does
    rows = synthetic_rows(campaign, args.rows, args.seed)
    overrides = [
        QuotaOverride("s00003", "exclude", by="bench", at=datetime(2022, 11, 20, tzinfo=BJ), reason="synthetic"),
        QuotaOverride("s00004", "keep", by="bench", at=datetime(2022, 11, 20, tzinfo=BJ), reason="synthetic"),
    ]

    total0 = perf_counter()
    t0 = perf_counter()
    df = build_frame(rows)
    t_frame = perf_counter() - t0

    t0 = perf_counter()
    result = validate(campaign, df)
    t_validate = perf_counter() - t0

    t0 = perf_counter()
    quotas = apply_quotas(campaign, df, overrides)
    channels = channel_findings(campaign, df)
    t_quotas = perf_counter() - t0

    t0 = perf_counter()
    deadlines = deadline_findings(campaign, df)
    t_deadline = perf_counter() - t0
    total = perf_counter() - total0

    phases = result.summary["timings_s"]
    log.info("rows: %d (%s)", len(df), result.summary["rows_by_kind"])
    log.info("build_frame:                 %7.3f s", t_frame)
    log.info("validate:                    %7.3f s", t_validate)
    log.info("  GX import:                 %7.3f s", phases["import"])
    log.info("  GX context/suites setup:   %7.3f s", phases["setup"])
    log.info("  GX validation:             %7.3f s", phases["validation"])
    log.info("  mapping to findings:       %7.3f s", phases["mapping"])
    log.info("apply_quotas + channels:     %7.3f s", t_quotas)
    log.info("deadline_findings:           %7.3f s", t_deadline)
    log.info("total:                       %7.3f s", total)
    counts = Counter(result.summary["findings_by_code"])
    counts.update(f.code for f in quotas.values())
    counts.update(f.code for f in channels.values())
    counts.update(f.code for f in deadlines.values())
    log.info("findings by code: %s", dict(sorted(counts.items())))


if __name__ == "__main__":
    main()
