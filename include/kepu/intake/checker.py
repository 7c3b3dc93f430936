"""``kepu check``: the intake's checks on one local package folder, zip archive or video.

For operators looking at one entry and for submitters before they send: the same rules as the
pipeline, without records, object store or Airflow. Rules that need the whole campaign (quotas,
deadline, duplicates across entries) are left out and said so.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kepu.campaign import Campaign
from kepu.errors import KepuError
from kepu.findings import Finding, sort_findings, verdict
from kepu.intake.packages import FolderName, classify, package_files, parse_folder_name, safe_extract
from kepu.rules import scope_codes

#: Called with (step number, number of steps, what is being done).
Progress = Callable[[int, int, str], None]

#: Rules that compare an entry with the others or with the calendar: not judged for one package.
CAMPAIGN_ONLY = scope_codes("campaign")
#: Rules that need the entry's channel (the summary sheet gives it; ``kepu check --channel`` may).
CHANNEL_ONLY = scope_codes("channel")


class CheckFailed(KepuError):
    """The check itself broke on a file (an error kepu did not foresee), as opposed to finding problems in it.

    Names the file and the step in Chinese and English; the original error is the ``__cause__``, kept for the
    log (``kepu -v check``) rather than shown to the submitter as a traceback.
    """

    def __init__(self, file: Path, step_zh: str, step_en: str, exc: BaseException) -> None:
        self.file = file
        self.step_zh, self.step_en = step_zh, step_en
        self.message_zh = f"{step_zh}时出现意外错误，检查未完成：{file}（{type(exc).__name__}）"
        self.message_en = (
            f"an unexpected error stopped the check while {step_en}: {file} ({type(exc).__name__}: {str(exc)[:300]})"
        )
        super().__init__(f"{self.message_zh} / {self.message_en}")


@dataclass
class CheckReport:
    path: str
    kind: str
    findings: list[Finding] = field(default_factory=list)
    video: str | None = None
    notes: list[str] = field(default_factory=list)
    #: The channel the entry was checked under; None leaves the channel's rules unchecked.
    channel: str | None = None

    @property
    def not_checked(self) -> list[str]:
        return [*CAMPAIGN_ONLY, *(CHANNEL_ONLY if self.channel is None else ())]

    @property
    def verdict(self) -> str:
        return verdict(self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "verdict": self.verdict,
            "video": self.video,
            "findings": [f.to_dict() for f in sort_findings(self.findings)],
            "channel": self.channel,
            "not_checked": self.not_checked,
            "notes": self.notes,
        }


def check_path(
    path: Path, campaign: Campaign, *, progress: Progress | None = None, channel: str | None = None
) -> CheckReport:
    """Run the package, form, probe and media checks on a folder, a zip or a single video.

    ``channel`` (a key of the campaign's channels) checks what the channel asks of the package, such as
    the recommending unit's seal; without it those rules are listed as not checked.
    """
    from kepu.intake import quality
    from kepu.intake.package_checks import read_package
    from kepu.intake.steps import cover_size, package_details, title_from_file

    steps = 4
    tick = progress or (lambda n, total, what: None)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    scratch = Path(tempfile.mkdtemp(prefix="kepu-check-"))
    if channel is not None:
        from kepu.intake.sources import parse_channel

        key = parse_channel(channel, campaign)  # as the summary sheet writes it: 省级推荐, or the key
        if key is None:
            names = ", ".join(f"{c.label_zh} ({k})" for k, c in campaign.channels.items())
            raise ValueError(f"未知的报送渠道 unknown channel {channel!r}; one of {names}")
        channel = key
    report = CheckReport(path=str(path), kind="video", channel=channel)
    #: What is being read, for the message when something breaks: the package, then its video.
    doing: tuple[Path, str, str] = (path, "读取报送包", "reading the package")
    try:
        tick(1, steps, "读取报送包 reading the package")
        findings: list[Finding] = []
        if path.is_dir():
            root, files = path, package_files(path)
            folder = parse_folder_name(path.name, campaign)
        elif path.suffix.lower() in campaign.package.archive_extensions:
            root, arc = safe_extract(path, scratch / "package", campaign)
            findings.extend(arc)
            files = package_files(root)
            folder = parse_folder_name(path.name, campaign)
        else:
            root, files = path.parent, [path]
            # A lone video is judged as a video only: its package (folder name, form, cover) is not.
            folder = FolderName(path.name, "-", "-", path.stem)
        contents = classify(files, campaign, folder.title)
        if path.is_file() and path.suffix.lower() not in campaign.package.archive_extensions:
            contents.video, contents.video_candidates = path, [path]
            report.notes.append("只检查了视频本身 only the video itself was checked (no folder, form or cover)")
        else:
            probe_image = functools.partial(cover_size, max_streams=campaign.video.max_streams)
            reading = read_package(campaign, folder, contents, probe_image=probe_image, channel=channel)
            findings.extend(reading.findings)
            report.kind = reading.kind
            doing = (path, "检查申报表与简介", "checking the form and synopsis")
            tick(2, steps, "检查申报表与简介 checking the form and synopsis")
            details = package_details(folder, contents, reading)
            row = {
                "submission_id": "local",
                "kind": reading.kind,
                "received_at": datetime.now(UTC),
                "title_folder": details["title_folder"],
                "title_form": details["title_form"],
                "title_file": title_from_file(details["title_file"], campaign),
                "synopsis": details["synopsis"] if reading.kind == "video" else None,
                "phone": details["phone"],
                "email": details["email"],
                "works": details["works"],
                "followers": details["followers"],
                **({"form_fields": details["form"]} if details["form_source"] else {"has_form": False}),
            }
            result = quality.validate(campaign, quality.build_frame([row]))
            findings.extend(f for f in result.findings.get("local", []) if f.code not in CAMPAIGN_ONLY)
        if contents.video is not None:
            report.video = str(contents.video)
            doing = (contents.video, "分析视频", "analysing the video")
            tick(3, steps, "探测视频 probing the video")
            findings.extend(_video_findings(contents.video, campaign, [*contents.subtitles], tick, steps))
        tick(steps, steps, "完成 done")
        report.findings = findings
        return report
    except Exception as exc:
        # Foreseen problems are findings; anything else must still reach the submitter as a message, not a
        # traceback (the CLI logs the traceback at -v).
        raise CheckFailed(doing[0], doing[1], doing[2], exc) from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _video_findings(video: Path, campaign: Campaign, sidecars: list[Path], tick: Progress, steps: int) -> list[Finding]:
    from kepu.config import load_settings
    from kepu.media.inspect import inspect_video

    tick(3, steps, "分析画面与声音（一次解码）analysing picture and sound in one decode")
    findings, _ = inspect_video(
        video, campaign, name=video.name, sidecars=sidecars, timeout_factor=load_settings().ffmpeg_timeout_factor
    )
    return findings
