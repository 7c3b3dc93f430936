"""Reading forms and validating a 5,000-submission campaign (metadata only), end to end.

Writes a few hundred distinct filled application forms (附件2 and 附件1) on the notice's template,
lays them out as 5,000 package forms (copies, so every read is a real file read), then times:
reading every form with kepu.intake.forms.read_form on all cores (as the mapped intake tasks do), building
the campaign frame, the Great Expectations suites, quotas, channels and deadlines. Target: < 60 s.

Run: ``.venv/bin/python bench/bench_intake_metadata.py [--rows 5000] [--distinct 200]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from time import perf_counter
from typing import Any

from bench_quality import _campaign, synthetic_rows  # the sibling script (bench/ is on sys.path)

from kepu.campaign import load_campaign
from kepu.config import DEFAULT_CAMPAIGN_FILE
from kepu.intake.eligibility_rules import apply_quotas, channel_findings, deadline_findings
from kepu.intake.form_templates import write_filled_account_form, write_filled_video_form
from kepu.intake.forms import read_form
from kepu.intake.quality import build_frame, validate

TARGET_S = 60.0


def _read(path: str) -> tuple[str, dict[str, str]]:
    form = read_form(Path(path), load_campaign(DEFAULT_CAMPAIGN_FILE))
    return form.kind, form.fields


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--distinct", type=int, default=200)
    args = parser.parse_args()
    campaign = _campaign()
    work = Path(tempfile.mkdtemp(prefix="kepu-bench-forms-"))
    try:
        t0 = perf_counter()
        distinct = []
        for i in range(args.distinct):
            path = work / f"form-{i}.docx"
            if i % 5 == 4:
                write_filled_account_form(
                    path, {"科普号名称": f"科普号{i}", "粉丝量": f"{1000 + i * 37}", "联系电话": "13800000000"}
                )
            else:
                write_filled_video_form(
                    path, {"微视频名称": f"科普作品{i}", "联系电话": "010-64522026", "内容简介": "简介" * 40}
                )
            distinct.append(path)
        paths = []
        for n in range(args.rows):
            dest = work / "inbox" / f"package-{n}" / "申报表.docx"
            dest.parent.mkdir(parents=True)
            shutil.copyfile(distinct[n % len(distinct)], dest)
            paths.append(str(dest))
        setup = perf_counter() - t0

        t1 = perf_counter()
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            forms = list(pool.map(_read, paths, chunksize=50))
        read_s = perf_counter() - t1

        t2 = perf_counter()
        rows: list[dict[str, Any]] = synthetic_rows(campaign, args.rows, seed=7)
        for row, (kind, fields) in zip(rows, forms, strict=True):
            row["kind"] = kind
            row["form_fields"] = fields
        df = build_frame(rows)
        frame_s = perf_counter() - t2
        t3 = perf_counter()
        result = validate(campaign, df)
        validate_s = perf_counter() - t3
        t4 = perf_counter()
        quotas = apply_quotas(campaign, df)
        channels = channel_findings(campaign, df)
        deadlines = deadline_findings(campaign, df)
        rules_s = perf_counter() - t4
        total = read_s + frame_s + validate_s + rules_s
        print(f"submissions:                {args.rows} ({args.distinct} distinct forms), {os.cpu_count()} cores")
        print(f"setup (writing forms):      {setup:6.1f} s  (not counted)")
        print(f"reading forms:              {read_s:6.1f} s  ({1000 * read_s / args.rows:.1f} ms a form, all cores)")
        print(f"building the frame:         {frame_s:6.1f} s")
        print(f"expectations (GX):          {validate_s:6.1f} s  ({result.summary.get('timings_s', {})})")
        print(f"quotas/channels/deadlines:  {rules_s:6.1f} s")
        print(
            f"findings: {sum(len(v) for v in result.findings.values())} from GX, {len(quotas)} quota, "
            f"{len(channels)} channel, {len(deadlines)} deadline"
        )
        print(f"TOTAL:                      {total:6.1f} s  (target < {TARGET_S:.0f} s)")
        return 0 if total < TARGET_S else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
