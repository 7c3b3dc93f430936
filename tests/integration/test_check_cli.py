"""`kepu check` on package folders, a zip and a lone video: table, JSON and exit codes."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from kepu.cli import main

pytestmark = pytest.mark.integration


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["check", "--json", *argv]) == 0
    out = capsys.readouterr().out
    return json.loads(out)


def test_check_json_on_folders(
    small_inbox: tuple[Path, dict], small_campaign: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kepu.campaign import load_campaign

    campaign = load_campaign(small_campaign)
    inbox, expected = small_inbox
    sealed = 0
    for name, (verdict, codes) in expected.items():
        report = _json(capsys, str(inbox / name), "--campaign", str(small_campaign))
        got = {f["code"] for f in report["findings"]}
        assert not got & set(report["not_checked"])
        # Without its channel a package is checked for everything but what the channel asks of it.
        checked = codes - set(report["not_checked"])
        severities = {campaign.finding(c).severity for c in checked}
        alone = "fail" if "error" in severities else "review" if "warning" in severities else "pass"
        assert report["verdict"] == alone, (name, report["findings"])
        assert checked <= got, (name, got)
        assert all({"code", "severity", "message_zh", "message_en"} <= set(f) for f in report["findings"])
        if "M-FORM-SEAL" in codes:
            # The seal a recommending unit owes is checked once the channel is given, and only for such channels.
            sealed += 1
            unit = _json(capsys, str(inbox / name), "--campaign", str(small_campaign), "--channel", "省级推荐")
            assert unit["verdict"] == verdict and codes <= {f["code"] for f in unit["findings"]}, unit["findings"]
            assert "M-FORM-SEAL" not in unit["not_checked"]
            own = _json(capsys, str(inbox / name), "--campaign", str(small_campaign), "--channel", "个人会员")
            assert "M-FORM-SEAL" not in {f["code"] for f in own["findings"]}
    assert sealed, "the sample has a package whose seal block holds only its printed template"


def test_check_zip_and_lone_video(
    tmp_path: Path, small_inbox: tuple[Path, dict], small_campaign: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inbox, expected = small_inbox
    name = next(n for n, (v, _) in expected.items() if v == "pass")
    archive = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted((inbox / name).iterdir()):
            zf.write(f, f"{name}/{f.name}")
    assert _json(capsys, str(archive), "--campaign", str(small_campaign))["verdict"] == "pass"
    video = next((inbox / name).glob("*.mp4"))
    lone = _json(capsys, str(video), "--campaign", str(small_campaign))
    assert lone["verdict"] == "pass" and lone["notes"]
    renamed = tmp_path / "renamed.mp4"
    bad = next(n for n, (_, c) in expected.items() if "V-CONTAINER" in c)
    shutil.copy2(next((inbox / bad).glob("*.mp4")), renamed)
    report = _json(capsys, str(renamed), "--campaign", str(small_campaign))
    assert report["verdict"] == "fail" and "V-CONTAINER" in {f["code"] for f in report["findings"]}


def test_check_table_strict_and_missing_path(
    small_inbox: tuple[Path, dict], small_campaign: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inbox, expected = small_inbox
    bad = next(n for n, (_, c) in expected.items() if "V-ASPECT" in c)
    assert main(["check", str(inbox / bad), "--campaign", str(small_campaign)]) == 0
    captured = capsys.readouterr()
    assert "不合格 fail" in captured.out and "V-ASPECT" in captured.out
    assert "4/4" in captured.err  # the progress bar went to stderr
    assert main(["check", "--strict", str(inbox / bad), "--campaign", str(small_campaign)]) == 1
    assert main(["check", str(inbox / "no-such-package")]) == 2
