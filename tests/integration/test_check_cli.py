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
    inbox, expected = small_inbox
    for name, (verdict, codes) in expected.items():
        report = _json(capsys, str(inbox / name), "--campaign", str(small_campaign))
        assert report["verdict"] == verdict, (name, report["findings"])
        got = {f["code"] for f in report["findings"]}
        assert codes <= got, (name, got)
        assert all({"code", "severity", "message_zh", "message_en"} <= set(f) for f in report["findings"])
        assert not got & set(report["not_checked"])


def test_check_zip_and_lone_video(tmp_path: Path, small_inbox: tuple[Path, dict], small_campaign: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
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


def test_check_table_strict_and_missing_path(small_inbox: tuple[Path, dict], small_campaign: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    inbox, expected = small_inbox
    bad = next(n for n, (_, c) in expected.items() if "V-ASPECT" in c)
    assert main(["check", str(inbox / bad), "--campaign", str(small_campaign)]) == 0
    captured = capsys.readouterr()
    assert "不合格 fail" in captured.out and "V-ASPECT" in captured.out
    assert "4/4" in captured.err  # the progress bar went to stderr
    assert main(["check", "--strict", str(inbox / bad), "--campaign", str(small_campaign)]) == 1
    assert main(["check", str(inbox / "no-such-package")]) == 2
