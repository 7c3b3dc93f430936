"""The media memo: a measuring command's output kept by the bytes it read, the exact command and the tool."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from kepu.config import load_settings, media_memo_dir
from kepu.errors import MediaToolError
from kepu.media import memo
from kepu.media.runner import CompletedRun, ToolExitError

pytestmark = pytest.mark.unit


class Tool:
    """Stands in for kepu.media.runner.run: counts its runs and prints what it was given."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.argvs: list[list[str]] = []
        self.fail = fail

    def __call__(self, argv: list[str], *, timeout: float) -> CompletedRun:
        self.argvs.append(list(argv))
        if self.fail is not None:
            raise self.fail
        data = Path(argv[-1]).read_bytes()
        return CompletedRun(
            argv=argv, returncode=0, stdout=b"measured:" + data, stderr="测量 stderr\n".encode(), elapsed_s=1.5
        )


@pytest.fixture
def tool_path(tmp_path: Path) -> Path:
    tool = tmp_path / "bin" / "ffmeasure"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    tool.chmod(0o755)
    return tool


def _video(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def _run(tool: Tool, tool_path: Path, video: Path, folder: Path | None, *extra: str) -> CompletedRun:
    argv = [str(tool_path), "-v", "info", *extra, str(video)]
    return memo.run_memoised(argv, reads=video, timeout=10, runner=tool, folder=folder)


def test_the_same_command_on_the_same_bytes_runs_once_and_returns_what_it_printed(
    tmp_path: Path, tool_path: Path
) -> None:
    tool, folder = Tool(), tmp_path / "memo"
    video = _video(tmp_path / "a", "v.mp4", b"\x00video bytes")
    first = _run(tool, tool_path, video, folder)
    second = _run(tool, tool_path, video, folder)
    assert len(tool.argvs) == 1
    assert (second.stdout, second.stderr, second.elapsed_s) == (first.stdout, first.stderr, 1.5)
    # What a submission's video showed is its owner's only, as everything under KEPU_HOME.
    (entry,) = folder.rglob("*.json")
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert {stat.S_IMODE(p.stat().st_mode) for p in (entry.parent, folder)} == {0o700}
    assert second.argv == first.argv and second.returncode == 0
    # The same bytes under another name and folder (a rerun's fresh scratch copy) are the same measurement.
    copy = _video(tmp_path / "b", "renamed.mp4", b"\x00video bytes")
    third = _run(tool, tool_path, copy, folder)
    assert len(tool.argvs) == 1 and third.stdout == first.stdout and third.argv[-1] == str(copy)


def test_other_bytes_another_command_or_another_tool_run_again(tmp_path: Path, tool_path: Path) -> None:
    tool, folder = Tool(), tmp_path / "memo"
    video = _video(tmp_path / "a", "v.mp4", b"first version")
    _run(tool, tool_path, video, folder)
    video.write_bytes(b"second version, replaced by the submitter")
    assert _run(tool, tool_path, video, folder).stdout == b"measured:second version, replaced by the submitter"
    _run(tool, tool_path, video, folder, "-af", "ebur128")
    assert len(tool.argvs) == 3
    # An upgraded tool (another file under the same name) measures again.
    tool_path.write_text("#!/bin/sh\n# upgraded\nexit 0\n", encoding="utf-8")
    _run(tool, tool_path, video, folder)
    assert len(tool.argvs) == 4
    _run(tool, tool_path, video, folder)
    assert len(tool.argvs) == 4


@pytest.mark.parametrize(
    "failure",
    [ToolExitError(["ffmeasure"], 1, "Invalid data"), MediaToolError(["ffmeasure"], "timed out", timed_out=True)],
    ids=["exit", "timeout"],
)
def test_a_failed_run_is_not_kept(tmp_path: Path, tool_path: Path, failure: MediaToolError) -> None:
    folder = tmp_path / "memo"
    video = _video(tmp_path / "a", "v.mp4", b"bytes")
    with pytest.raises(type(failure)):
        _run(Tool(fail=failure), tool_path, video, folder)
    assert not list(folder.rglob("*.json"))
    tool = Tool()
    assert _run(tool, tool_path, video, folder).stdout == b"measured:bytes"
    assert len(tool.argvs) == 1


def test_an_unreadable_entry_is_ignored_and_written_again(tmp_path: Path, tool_path: Path) -> None:
    tool, folder = Tool(), tmp_path / "memo"
    video = _video(tmp_path / "a", "v.mp4", b"bytes")
    _run(tool, tool_path, video, folder)
    (entry,) = folder.rglob("*.json")
    entry.write_text('{"stdout": "not base64 of zlib', encoding="utf-8")
    assert _run(tool, tool_path, video, folder).stdout == b"measured:bytes"
    assert len(tool.argvs) == 2
    assert json.loads(entry.read_text("utf-8"))["format"] == memo.MEMO_FORMAT
    assert _run(tool, tool_path, video, folder).stdout == b"measured:bytes"
    assert len(tool.argvs) == 2
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_without_a_folder_every_run_runs(tmp_path: Path, tool_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEPU_MEDIA_MEMO", "off")
    tool = Tool()
    video = _video(tmp_path / "a", "v.mp4", b"bytes")
    argv = [str(tool_path), str(video)]
    for _ in range(2):
        memo.run_memoised(argv, reads=video, timeout=10, runner=tool)
    assert len(tool.argvs) == 2


def test_a_folder_that_cannot_be_written_costs_time_not_the_result(tmp_path: Path, tool_path: Path) -> None:
    folder = tmp_path / "memo"
    folder.write_text("a file where the folder should be", encoding="utf-8")  # refused to root as well
    tool = Tool()
    video = _video(tmp_path / "a", "v.mp4", b"bytes")
    assert _run(tool, tool_path, video, folder).stdout == b"measured:bytes"
    assert _run(tool, tool_path, video, folder).stdout == b"measured:bytes"
    assert len(tool.argvs) == 2


def test_a_tool_that_is_not_installed_is_run_as_asked(tmp_path: Path) -> None:
    tool = Tool()
    video = _video(tmp_path / "a", "v.mp4", b"bytes")
    argv = ["kepu-no-such-measuring-tool", str(video)]
    for _ in range(2):
        memo.run_memoised(argv, reads=video, timeout=10, runner=tool, folder=tmp_path / "memo")
    assert len(tool.argvs) == 2


def test_where_the_memo_is(tmp_path: Path) -> None:
    assert media_memo_dir({"KEPU_MEDIA_MEMO": str(tmp_path / "m")}) == tmp_path / "m"
    assert media_memo_dir({"KEPU_MEDIA_MEMO": " OFF ", "KEPU_HOME": str(tmp_path)}) is None
    assert media_memo_dir({"KEPU_HOME": str(tmp_path / "home")}) == tmp_path / "home" / "cache" / "media"
    assert media_memo_dir({}) is None
    # A known setting: load_settings does not refuse it.
    load_settings({"KEPU_HOME": str(tmp_path), "KEPU_MEDIA_MEMO": "off"})


class Painter:
    """Stands in for a stills command: writes each output named after ``-o`` unless its name says ``dark``."""

    def __init__(self) -> None:
        self.runs = 0

    def __call__(self, argv: list[str], *, timeout: float) -> CompletedRun:
        self.runs += 1
        source = Path(argv[argv.index("-i") + 1]).read_bytes()
        for k, arg in enumerate(argv):
            if arg == "-o" and "dark" not in argv[k + 1]:
                Path(argv[k + 1]).write_bytes(b"JPEG of " + source + argv[k + 1].encode()[-5:])
        return CompletedRun(argv=argv, returncode=0, stdout=b"", stderr=b"pts:1.2", elapsed_s=0.5)


def test_the_files_a_command_writes_are_kept_and_written_again_where_the_next_run_wants_them(
    tmp_path: Path, tool_path: Path
) -> None:
    painter, folder = Painter(), tmp_path / "memo"
    copy = _video(tmp_path / "a", "copy.mp4", b"publication copy")

    def stills(out: Path) -> tuple[list[Path], CompletedRun]:
        out.mkdir(parents=True)
        targets = [out / ".thumb-1.jpg.part", out / ".thumb-2-dark.jpg.part"]
        argv = [str(tool_path), "-i", str(copy), "-o", str(targets[0]), "-o", str(targets[1])]
        return targets, memo.run_memoised(argv, reads=copy, writes=targets, timeout=10, runner=painter, folder=folder)

    (bright, dark), first = stills(tmp_path / "run1")
    assert first.stderr == b"pts:1.2"
    assert bright.read_bytes() == b"JPEG of publication copy.part" and not dark.exists()
    (bright2, dark2), second = stills(tmp_path / "run2")
    assert painter.runs == 1
    assert bright2.read_bytes() == bright.read_bytes() and not dark2.exists()
    assert second.stderr == first.stderr
    # Other bytes to picture: painted again.
    copy.write_bytes(b"another copy")
    (bright3, _), _ = stills(tmp_path / "run3")
    assert painter.runs == 2 and bright3.read_bytes() == b"JPEG of another copy.part"


def test_a_second_process_wanting_the_same_measurement_waits_for_the_first(tmp_path: Path, tool_path: Path) -> None:
    """Two workers on the same video at once: one runs the command, the other takes what it kept."""
    import threading

    started, release = threading.Event(), threading.Event()

    class Slow(Tool):
        calls = 0

        def __call__(self, argv: list[str], *, timeout: float) -> CompletedRun:
            Slow.calls += 1
            started.set()
            assert release.wait(10)
            return super().__call__(argv, timeout=timeout)

    tool, folder = Slow(), tmp_path / "memo"
    video = _video(tmp_path / "a", "v.mp4", b"bytes")
    results: list[CompletedRun] = []
    first = threading.Thread(target=lambda: results.append(_run(tool, tool_path, video, folder)))
    second = threading.Thread(target=lambda: results.append(_run(tool, tool_path, video, folder)))
    first.start()
    try:
        assert started.wait(10)
        second.start()
        second.join(0.3)
        assert second.is_alive() and Slow.calls == 1  # waiting for the first, not running its own
    finally:
        release.set()
        first.join(10)
        if second.is_alive() or second.ident is not None:
            second.join(10)
    assert Slow.calls == 1 and len(tool.argvs) == 1 and [r.stdout for r in results] == [b"measured:bytes"] * 2


def test_a_value_read_from_a_file_is_kept_by_what_it_depends_on(tmp_path: Path) -> None:
    folder, calls = tmp_path / "memo", []

    def read(text: str) -> Callable[[], object]:
        def compute() -> object:
            calls.append(text)
            return [["月亮自己并不发光", 0.97], [text, 0.5]]

        return compute

    first = memo.kept_value("ocr", ["reader 1", "sha256:aa"], read("a"), folder=folder)
    again = memo.kept_value("ocr", ["reader 1", "sha256:aa"], read("b"), folder=folder)
    assert first == again == [["月亮自己并不发光", 0.97], ["a", 0.5]] and calls == ["a"]
    # Another file, another reader or another kind of value is read again.
    memo.kept_value("ocr", ["reader 1", "sha256:bb"], read("c"), folder=folder)
    memo.kept_value("ocr", ["reader 2", "sha256:aa"], read("d"), folder=folder)
    memo.kept_value("other", ["reader 1", "sha256:aa"], read("e"), folder=folder)
    assert calls == ["a", "c", "d", "e"]
    # An entry that cannot be read is read again and written again.
    (entry,) = [p for p in folder.rglob("*.json") if "月亮" in p.read_text("utf-8") and '"a"' in p.read_text("utf-8")]
    entry.write_text("{", encoding="utf-8")
    assert memo.kept_value("ocr", ["reader 1", "sha256:aa"], read("f"), folder=folder)[1] == ["f", 0.5]
    assert memo.kept_value("ocr", ["reader 1", "sha256:aa"], read("g"), folder=folder)[1] == ["f", 0.5]
    assert calls == ["a", "c", "d", "e", "f"]


def test_a_value_whose_reading_fails_is_not_kept_and_without_a_memo_is_always_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "memo"

    def broken() -> object:
        raise RuntimeError("the reader crashed")

    with pytest.raises(RuntimeError):
        memo.kept_value("ocr", ["reader", "sha256:aa"], broken, folder=folder)
    assert not list(folder.rglob("*.json"))
    assert memo.kept_value("ocr", ["reader", "sha256:aa"], lambda: 1, folder=folder) == 1
    monkeypatch.setenv("KEPU_MEDIA_MEMO", "off")
    calls: list[int] = []
    for _ in range(2):
        memo.kept_value("ocr", ["reader", "sha256:aa"], lambda: calls.append(1), folder=None)
    assert calls == [1, 1]


def test_a_second_process_reading_the_same_file_waits_for_the_first(tmp_path: Path) -> None:
    """Two workers OCR the same crop at once: one reads it, the other takes what it kept."""
    import threading

    started, release = threading.Event(), threading.Event()
    calls: list[str] = []
    folder, results = tmp_path / "memo", []

    def slow() -> object:
        calls.append("read")
        started.set()
        assert release.wait(10)
        return [["月亮自己并不发光", 0.97]]

    def keep() -> None:
        results.append(memo.kept_value("ocr", ["reader 1", "sha256:aa"], slow, folder=folder))

    first, second = threading.Thread(target=keep), threading.Thread(target=keep)
    first.start()
    try:
        assert started.wait(10)
        second.start()
        second.join(0.3)
        assert second.is_alive() and calls == ["read"]  # waiting for the first, not reading on its own
    finally:
        release.set()
        first.join(10)
        if second.ident is not None:
            second.join(10)
    assert calls == ["read"] and results == [[["月亮自己并不发光", 0.97]]] * 2
