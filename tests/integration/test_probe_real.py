"""probe_file and the runner against real ffprobe/ffmpeg processes and real (bad) files."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from kepu.errors import MaterialError, MediaToolError
from kepu.media.probe import probe_file
from kepu.media.runner import MemoryLimitError, ToolExitError, media_timeout, run

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg and ffprobe"),
]

FFMPEG = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y"]
AV = ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=2"]
AV += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2"]
ENCODE = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2"]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("media")
    run([*FFMPEG, *AV, *ENCODE, str(d / "ok.mp4")], timeout=60)
    run([*FFMPEG, "-i", str(d / "ok.mp4"), "-c", "copy", str(d / "ok.mkv")], timeout=60)
    run([*FFMPEG, "-i", str(d / "ok.mp4"), "-c", "copy", "-f", "mov", str(d / "ok.mov")], timeout=60)
    run([*FFMPEG, "-i", str(d / "ok.mp4"), "-vn", "-c", "copy", str(d / "voice.m4a")], timeout=60)
    # Without +faststart the index (moov) is written last, so cutting the file loses it.
    whole = (d / "ok.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    (d / "empty.mp4").write_bytes(b"")
    (d / "text.mp4").write_text("这不是视频，只是一段文字。\n" * 50, encoding="utf-8")
    return d


def test_probe_a_real_mp4(media: Path) -> None:
    r = probe_file(media / "ok.mp4")
    assert r.is_mp4 and r.major_brand == "isom"
    assert r.size_bytes == (media / "ok.mp4").stat().st_size
    assert r.duration_s == pytest.approx(2.0, abs=0.1)
    assert r.video is not None and (r.video.display_width, r.video.display_height) == (640, 360)
    assert r.audio is not None and (r.audio.codec, r.audio.channels) == ("aac", 2)


@pytest.mark.parametrize(("name", "format_name"), [("ok.mkv", "matroska,webm"), ("ok.mov", None)])
def test_other_containers_probe_but_are_not_mp4(media: Path, name: str, format_name: str | None) -> None:
    r = probe_file(media / name)
    assert r.is_mp4 is False
    assert r.video is not None
    if format_name:
        assert r.format_name == format_name
    else:
        assert r.major_brand == "qt"


def test_audio_only_file_is_not_an_error(media: Path) -> None:
    r = probe_file(media / "voice.m4a")
    assert r.video is None
    assert r.audio is not None


def test_zero_byte_file_is_unreadable(media: Path) -> None:
    with pytest.raises(MaterialError, match="empty") as info:
        probe_file(media / "empty.mp4")
    assert info.value.code == "M-UNREADABLE"


def test_text_file_named_mp4_is_unreadable_with_ffprobes_reason(media: Path) -> None:
    with pytest.raises(MaterialError, match="Invalid data found") as info:
        probe_file(media / "text.mp4")
    assert info.value.code == "M-UNREADABLE"
    assert "text.mp4" in str(info.value)


def test_truncated_mp4_without_index_is_unreadable(media: Path) -> None:
    with pytest.raises(MaterialError, match="moov atom not found") as info:
        probe_file(media / "truncated.mp4")
    assert info.value.code == "M-UNREADABLE"


def test_missing_file_and_folder_are_unreadable(media: Path) -> None:
    with pytest.raises(MaterialError, match="cannot be read") as info:
        probe_file(media / "absent.mp4")
    assert info.value.code == "M-UNREADABLE"
    with pytest.raises(MaterialError, match="not a regular file"):
        probe_file(media)


def test_run_returns_output_and_timing() -> None:
    done = run(["ffprobe", "-version"], timeout=30)
    assert done.returncode == 0
    assert done.stdout.startswith(b"ffprobe version")
    assert done.elapsed_s > 0


def test_run_passes_input_on_stdin() -> None:
    done = run(
        ["ffprobe", "-v", "error", "-show_format", "-of", "json", "-f", "s16le", "-"],
        timeout=30,
        input=b"\0" * 4000,
    )
    assert b'"format_name": "s16le"' in done.stdout


def test_nonzero_exit_carries_the_end_of_stderr() -> None:
    with pytest.raises(ToolExitError) as info:
        run(["ffprobe", "-v", "error", "/nonexistent/kepu.mp4"], timeout=30)
    assert info.value.returncode == 1
    assert "No such file or directory" in info.value.stderr_tail
    assert "ffprobe exited with status 1" in str(info.value)
    assert info.value.timed_out is False


def test_timeout_kills_the_whole_process_group() -> None:
    # The shell's background child keeps stdout open: if only the shell were killed, collecting the
    # output would wait the full 30 s.
    started = time.monotonic()
    with pytest.raises(MediaToolError) as info:
        run(["sh", "-c", "sleep 30 & sleep 30; wait"], timeout=0.5)
    assert info.value.timed_out is True
    assert not isinstance(info.value, ToolExitError)
    assert "timed out" in str(info.value)
    assert time.monotonic() - started < 10


def test_missing_tool_is_a_tool_error_not_an_exit() -> None:
    with pytest.raises(MediaToolError, match="cannot start") as info:
        run(["kepu-no-such-tool"], timeout=5)
    assert not isinstance(info.value, ToolExitError)


def test_media_timeout_scales_with_floor_and_cap() -> None:
    assert media_timeout(240, 4.0) == 960
    assert media_timeout(2, 4.0) == 60  # floor
    assert media_timeout(10 * 3600, 4.0) == 3 * 3600  # cap
    assert media_timeout(None, 4.0) == 3 * 3600
    assert media_timeout(5, 2.0, floor_s=1, cap_s=100) == 10
    with pytest.raises(ValueError, match="positive"):
        media_timeout(10, 0)


# An 8000×8000 picture is 96 MB a frame: more than a 300 MiB address space leaves once ffmpeg's libraries are mapped.
_BIG_FRAME = [
    "ffmpeg",
    "-nostdin",
    "-v",
    "error",
    "-f",
    "lavfi",
    "-i",
    "color=s=16x16:d=0.04",
    "-vf",
    "scale=8000:8000",
    "-frames:v",
    "1",
    "-f",
    "null",
    "-",
]


def test_a_tool_over_its_memory_limit_raises_memory_limit_error_saying_so() -> None:
    with pytest.raises(MemoryLimitError) as info:
        run(_BIG_FRAME, timeout=60, memory_limit_mb=300)
    assert isinstance(info.value, ToolExitError)  # so every caller makes it the file's M-UNREADABLE
    assert info.value.limit_mb == 300 and info.value.timed_out is False
    assert info.value.stderr_tail.startswith("所需内存超过上限 300 MiB needed more memory than the limit of 300 MiB")
    assert "needed more memory than the limit of 300 MiB" in str(info.value)
    # Without a limit the same command runs: the limit, not the command, made it fail.
    assert run(_BIG_FRAME, timeout=60, memory_limit_mb=0).returncode == 0


def test_the_memory_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEPU_FFMPEG_MEMORY_LIMIT_MB", "300")
    with pytest.raises(MemoryLimitError):
        run(_BIG_FRAME, timeout=60)
    monkeypatch.setenv("KEPU_FFMPEG_MEMORY_LIMIT_MB", "0")
    assert run(_BIG_FRAME, timeout=60).returncode == 0


def test_the_memory_limit_setting_is_checked() -> None:
    from kepu.config import default_memory_limit_mb, ffmpeg_memory_limit_mb, load_settings
    from kepu.errors import ConfigError

    assert ffmpeg_memory_limit_mb({}) == default_memory_limit_mb() >= 4096 + 512
    assert ffmpeg_memory_limit_mb({"KEPU_FFMPEG_MEMORY_LIMIT_MB": "0"}) == 0
    assert ffmpeg_memory_limit_mb({"KEPU_FFMPEG_MEMORY_LIMIT_MB": " 8192 "}) == 8192
    for bad in ("lots", "1.5", "100", "-1"):
        with pytest.raises(ConfigError, match="KEPU_FFMPEG_MEMORY_LIMIT_MB"):
            ffmpeg_memory_limit_mb({"KEPU_FFMPEG_MEMORY_LIMIT_MB": bad})
    settings = load_settings({"KEPU_HOME": "/tmp/kepu-x", "KEPU_FFMPEG_MEMORY_LIMIT_MB": "6000"})
    assert settings.ffmpeg_memory_limit_mb == 6000
    assert settings.as_env()["KEPU_FFMPEG_MEMORY_LIMIT_MB"] == "6000"
    assert "KEPU_FFMPEG_MEMORY_LIMIT_MB" not in load_settings({"KEPU_HOME": "/tmp/kepu-x"}).as_env()
