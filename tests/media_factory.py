"""Short generated clips for the media checks: one conformant, one per picture/sound/language defect.

Clips are 12 s at 640×360 and 25 fps: small enough that the whole set is made in seconds, and
judged against :func:`scaled_campaign`, the 2022 campaign with its time windows scaled to 12 s
(nothing in the media rules depends on the picture size; bits per pixel do not either).

The conformant clip has the shape of a real entry: an opening (fade-in from black, then a cut at
3 s), a body, and a closing (a cut at 9 s, then a fade-out to black); narration-like sound at about
-19 LUFS with short pauses of digital silence; a Chinese ``mov_text`` subtitle track. Every defect
clip changes one thing. Clips whose defect is in the sound copy the conformant picture, so only the
sound is encoded again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kepu.devtools.sample import cached_file
from kepu.media.memo import file_digest, tool_identity
from kepu.media.runner import run

log = logging.getLogger(__name__)


def _test_media() -> Path:
    # Not a KEPU_* variable: kepu refuses settings it does not know, and the tests' processes pass theirs on.
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kepu" / "test-media"


#: The tests' generated media, kept by content for this machine's test runs, whichever checkout they run from (as
#: pip keeps the packages it downloaded): ``kepu/test-media`` in the user's cache folder (``XDG_CACHE_HOME``).
#: Every file in it is named by what made it (the command, the files it read, the tool), so a changed generator or
#: check makes its files again and nothing kept is ever taken for something else; removing it only costs time.
TEST_MEDIA = _test_media()
#: The media factory's clips: a command that made a file before is not run again.
GENERATED = TEST_MEDIA / "generated"

WIDTH, HEIGHT, FPS = 640, 360, 25
DURATION_S = 12.0
#: Where the defects of the body are put: well inside it under the scaled campaign.
DEFECT_AT_S = (5.0, 7.5)
FFMPEG = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y"]
_TIMEOUT = 120.0

#: The scaled campaign's windows, chosen for 12 s clips: body = 2–10 s for freeze/black, 4–8 s for
#: silence and structure; defects last 2.5–3 s, the opening and closing cuts are at 3 s and 9 s.
SCALED = {
    ("video", "freeze"): {"min_s": 1.5, "edge_s": 2.0},
    ("video", "black"): {"min_s": 1.5, "edge_s": 2.0},
    ("audio", "silence_min_s"): 1.5,
    ("structure", "edge_window_s"): 4.0,
}

SUBTITLE_CUES = (
    "月亮自己并不发光。",
    "我们看到的是它反射的太阳光。",
    "月球绕地球公转时，被照亮的一面时而朝向我们，时而背离我们。",
)


def scaled_campaign(dest: Path) -> Path:
    """The 2022 campaign with the time windows of :data:`SCALED`, written to ``dest`` and validated."""
    from kepu.campaign import load_campaign
    from kepu.config import DEFAULT_CAMPAIGN_FILE

    data: dict[str, Any] = yaml.safe_load(DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8"))
    for (section, key), value in SCALED.items():
        data[section][key] = value
    dest.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    load_campaign(dest)
    return dest


@dataclass(frozen=True)
class Clip:
    """A generated clip, the finding code it is made to produce (None: none), and its sidecar files."""

    name: str
    path: Path
    expected: str | None
    severity: str | None = None
    sidecars: tuple[Path, ...] = ()


def generate(argv: list[str], out: Path, *, timeout: float = 120.0) -> None:
    """Run the ffmpeg command ``argv``, which writes the one file ``out``, or copy what the same command wrote before.

    The command is known by the ffmpeg that runs it (:func:`kepu.media.memo.tool_identity`) and its words, in which
    ``out`` stands as ``output`` and every other existing file (a clip made from another, a subtitle file) as the
    SHA-256 of its bytes. Test processes making the same clip at once make it once
    (:func:`kepu.devtools.sample.cached_file`, as the sample clips are kept).
    """
    tool = tool_identity(argv[0])
    if tool is None:
        run(argv, timeout=timeout)  # raises the runner's "not installed" error
        return
    words = [
        "output" if arg == str(out) else f"sha256:{file_digest(Path(arg))}" if os.path.isfile(arg) else arg
        for arg in argv[1:]
    ]
    key = hashlib.sha256(json.dumps([tool, words, out.suffix]).encode("utf-8")).hexdigest()
    kept = GENERATED / key[:2] / f"{key}{out.suffix}"
    made: list[bool] = []

    def make(tmp: Path) -> None:
        run(argv, timeout=timeout)
        shutil.copyfile(out, tmp)
        made.append(True)

    cached_file(kept, make)  # as the sample clips are kept: one process makes it, the others wait for it
    if not made:
        shutil.copyfile(kept, out)


# --- graphs ---------------------------------------------------------------------------------------


def _picture(body: str = "", every: str = "", *, rate: int = FPS, opening: bool = True, closing: bool = True) -> str:
    """A lavfi graph of the picture: opening 0–3 s, body 3–9 s, closing 9–12 s.

    The graph ends in ``[out0]``, the name the lavfi device reads its output from.

    ``body`` is a filter chain applied to the body only (times local to it, starting at 0);
    ``every`` one applied to the whole picture. Colours are desaturated (hue s=0.6) because
    testsrc's fully saturated bars leave the legal range once compressed.
    """
    src = f"testsrc=size={WIDTH}x{HEIGHT}:rate={rate}"
    after = f",{every}" if every else ""
    if not (opening or closing):
        # Another picture, drawn at half size: testsrc2's one-pixel detail in motion looks combed to idet.
        half = f"size={WIDTH // 2}x{HEIGHT // 2}:rate={rate}:duration={DURATION_S}"
        return f"testsrc2={half},scale={WIDTH}:{HEIGHT},hue=s=0.5{after}[out0]"
    parts = [
        f"{src}:duration=3,hue=s=0.6:H=0.5*t" + (",fade=t=in:st=0:d=0.6" if opening else "") + "[p0]",
        f"{src}:duration=6,hflip,hue=s=0.6:H=2" + (f",{body}" if body else "") + "[p1]",
        f"{src}:duration=3,vflip,hue=s=0.6:H=4" + (",fade=t=out:st=2.4:d=0.6" if closing else "") + "[p2]",
        f"[p0][p1][p2]concat=n=3:v=1:a=0{after}[out0]",
    ]
    return ";".join(parts)


def _narration(extra: str = "", *, duration: float = DURATION_S) -> str:
    """Narration-like sound: a voiced tone with syllable tremolo and a 0.8 s pause every 5 s.

    The pauses are digital silence (no noise floor) and shorter than the silence rule; the level is
    about -19 LUFS. ``extra`` is a filter chain appended to it.
    """
    graph = (
        f"sine=frequency=220:sample_rate=48000:duration={duration},"
        "tremolo=f=3.7:d=0.6,volume=0:enable='gte(mod(t,5),4.2)',volume=2"
    )
    return graph + (f",{extra}" if extra else "") + ",aformat=channel_layouts=stereo"


def _srt() -> str:
    cues = []
    step = DURATION_S / len(SUBTITLE_CUES)
    for i, text in enumerate(SUBTITLE_CUES):
        cues.append(f"{i + 1}\n{_srt_time(i * step)} --> {_srt_time((i + 1) * step)}\n{text}\n")
    return "\n".join(cues)


def _srt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


_X264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "50", "-b:v", "1200k"]
_AAC = ["-c:a", "aac", "-b:a", "128k"]
_SUBS = ["-c:s", "mov_text", "-metadata:s:s:0", "language=chi"]


def _encode(
    out: Path,
    srt: Path,
    *,
    picture: str,
    sound: str | None = None,
    video: list[str] | None = None,
    audio: list[str] | None = None,
    subtitles: bool = True,
    muxer: str = "mp4",
) -> None:
    argv = [*FFMPEG, "-f", "lavfi", "-i", picture]
    argv += ["-f", "lavfi", "-i", sound or _narration()]
    maps = ["-map", "0:v", "-map", "1:a"]
    if subtitles:
        argv += ["-i", str(srt)]
        maps += ["-map", "2:s", *_SUBS]
    argv += [*maps, *(video or _X264), *(audio or _AAC), "-t", f"{DURATION_S}", "-f", muxer, str(out)]
    generate(argv, out, timeout=_TIMEOUT)


def _resound(out: Path, base: Path, sound: str) -> None:
    """The picture and subtitles of ``base`` with another sound track."""
    argv = [*FFMPEG, "-i", str(base), "-f", "lavfi", "-i", sound, "-map", "0:v", "-map", "1:a", "-map", "0:s"]
    argv += ["-c:v", "copy", "-c:s", "copy", *_AAC, "-t", f"{DURATION_S}", "-f", "mp4", str(out)]
    generate(argv, out, timeout=_TIMEOUT)


# --- the clips ------------------------------------------------------------------------------------

Maker = Callable[[Path, Path, Path], None]  # (out, conformant, srt)
_a, _b = DEFECT_AT_S
# Frame numbers inside the body segment (which starts at 3 s) covering DEFECT_AT_S.
_FREEZE_FIRST, _FREEZE_LAST = round((_a - 3) * FPS), round((_b - 3) * FPS)


def _make_freeze(out: Path, base: Path, srt: Path) -> None:
    body = f"split[f0][f1];[f0][f1]freezeframes=first={_FREEZE_FIRST}:last={_FREEZE_LAST}:replace={_FREEZE_FIRST}"
    _encode(out, srt, picture=_picture(body))


def _make_black(out: Path, base: Path, srt: Path) -> None:
    _encode(out, srt, picture=_picture(f"drawbox=t=fill:c=black:enable='between(t,{_a - 3},{_b - 3})'"))


def _make_blurred(out: Path, base: Path, srt: Path) -> None:
    # Both halves of V-CLARITY: about 0.01 bits per pixel, and a soft picture.
    video = [*_X264[:-1], "60k", "-maxrate", "60k", "-bufsize", "120k"]
    _encode(out, srt, picture=_picture(every="boxblur=6"), video=video)


def _make_levels(out: Path, base: Path, srt: Path) -> None:
    _encode(out, srt, picture=_picture(every="eq=contrast=1.8:saturation=2.5"))


def _make_interlaced(out: Path, base: Path, srt: Path) -> None:
    # 50 progressive pictures a second woven into 25 top-field-first frames, coded as interlaced.
    video = [*_X264, "-flags", "+ildct+ilme", "-x264-params", "tff=1"]
    _encode(out, srt, picture=_picture(rate=2 * FPS, every="tinterlace=mode=interleave_top"), video=video)


def _make_codec(out: Path, base: Path, srt: Path) -> None:
    video = ["-c:v", "mpeg4", "-q:v", "4"]
    _encode(out, srt, picture=_picture(), video=video, audio=["-c:a", "pcm_s16le"], muxer="mov")


def _make_no_structure(out: Path, base: Path, srt: Path) -> None:
    _encode(out, srt, picture=_picture(opening=False, closing=False))


def _make_frame_drop(out: Path, base: Path, srt: Path) -> None:
    # 22 frames (0.88 s) taken out at 5 s and the others kept at their times: a gap, as from a
    # camera or capture card that lost frames.
    first, last = round(_a * FPS), round(_a * FPS) + 21
    _drop_frames(out, base, f"select='not(between(n\\,{first}\\,{last}))'")


def _make_single_drop(out: Path, base: Path, srt: Path) -> None:
    n = round(_a * FPS)
    _drop_frames(out, base, f"select='not(eq(n\\,{n}))'")


def _drop_frames(out: Path, base: Path, select: str) -> None:
    argv = [*FFMPEG, "-i", str(base), "-map", "0:v", "-map", "0:a", "-map", "0:s", "-vf", select]
    argv += ["-vsync", "passthrough", *_X264, "-c:a", "copy", "-c:s", "copy", "-f", "mp4", str(out)]
    generate(argv, out, timeout=_TIMEOUT)


def _make_loud(out: Path, base: Path, srt: Path) -> None:
    _resound(out, base, _narration("volume=8dB"))


def _make_quiet(out: Path, base: Path, srt: Path) -> None:
    _resound(out, base, _narration("volume=-22dB"))


def _make_clipped(out: Path, base: Path, srt: Path) -> None:
    _resound(out, base, _narration("volume=20dB"))


def _make_wide_lra(out: Path, base: Path, srt: Path) -> None:
    # The first half loud, the second 18 dB quieter: above the R128 relative gate, so both halves
    # count, and each is longer than the 3 s short-term window.
    _resound(out, base, _narration("volume='if(lt(t\\,6)\\,2\\,0.25)':eval=frame"))


def _make_noisy(out: Path, base: Path, srt: Path) -> None:
    noise = f"anoisesrc=color=pink:amplitude=0.05:sample_rate=48000:duration={DURATION_S}"
    sound = f"{_narration()}[n0];{noise},aformat=channel_layouts=stereo[n1];[n0][n1]amix=inputs=2:normalize=0[out0]"
    _resound(out, base, sound)


#: Mains hum at about -45 dBFS: 50 Hz and its first harmonics, as from a ground loop.
HUM = "0.0064*sin(2*PI*50*t)+0.0032*sin(2*PI*100*t)+0.0024*sin(2*PI*150*t)+0.0016*sin(2*PI*200*t)"


def _make_hum(out: Path, base: Path, srt: Path) -> None:
    hum = f"aevalsrc='{HUM}':s=48000:d={DURATION_S}"
    sound = f"{_narration()}[n0];{hum},aformat=channel_layouts=stereo[n1];[n0][n1]amix=inputs=2:normalize=0[out0]"
    _resound(out, base, sound)


def _make_silent_gap(out: Path, base: Path, srt: Path) -> None:
    _resound(out, base, _narration(f"volume=0:enable='between(t,{_a - 0.5},{_b})'"))


def _make_av_offset(out: Path, base: Path, srt: Path) -> None:
    # The sound of the same file, presented 0.4 s late: audio lag beyond BT.1359's 125 ms.
    argv = [*FFMPEG, "-i", str(base), "-itsoffset", "0.4", "-i", str(base)]
    argv += ["-map", "0:v", "-map", "1:a", "-map", "0:s", "-c", "copy", "-f", "mp4", str(out)]
    generate(argv, out, timeout=_TIMEOUT)


def _make_no_subtitles(out: Path, base: Path, srt: Path) -> None:
    generate([*FFMPEG, "-i", str(base), "-map", "0:v", "-map", "0:a", "-c", "copy", "-f", "mp4", str(out)], out)


def _make_duplicate(out: Path, base: Path, srt: Path) -> None:
    # Re-encoded smaller, at another bitrate, with the sound copied: the same programme.
    argv = [*FFMPEG, "-i", str(base), "-map", "0:v", "-map", "0:a", "-map", "0:s", "-vf", "scale=480:270"]
    argv += [*_X264[:-1], "500k", "-c:a", "copy", "-c:s", "copy", "-f", "mp4", str(out)]
    generate(argv, out, timeout=_TIMEOUT)


#: name → (maker, expected code, expected severity). Codes with two clips name both severities.
DEFECTS: dict[str, tuple[Maker, str, str]] = {
    "frozen": (_make_freeze, "V-FREEZE", "warning"),
    "black": (_make_black, "V-BLACK", "warning"),
    "blurred": (_make_blurred, "V-CLARITY", "warning"),
    "levels": (_make_levels, "V-LEVELS", "warning"),
    "interlaced": (_make_interlaced, "V-INTERLACED", "warning"),
    "codec": (_make_codec, "V-CODEC", "info"),
    "no_structure": (_make_no_structure, "S-STRUCTURE", "warning"),
    "frame_drop": (_make_frame_drop, "V-FRAME-DROP", "error"),
    "single_drop": (_make_single_drop, "V-FRAME-DROP", "warning"),
    "loud": (_make_loud, "A-LOUDNESS", "warning"),
    "quiet": (_make_quiet, "A-LOUDNESS", "error"),
    "clipped": (_make_clipped, "A-CLIPPING", "warning"),
    "wide_lra": (_make_wide_lra, "A-LRA", "warning"),
    "noisy": (_make_noisy, "A-NOISE", "warning"),
    "hum": (_make_hum, "A-NOISE", "warning"),
    "silent_gap": (_make_silent_gap, "A-SILENCE", "warning"),
    "av_offset": (_make_av_offset, "A-SYNC", "warning"),
    "no_subtitles": (_make_no_subtitles, "L-SUBTITLE", "warning"),
    "duplicate": (_make_duplicate, "O-DUPLICATE-CONTENT", "warning"),
}


def make_conformant(dest: Path) -> Clip:
    """The conformant clip (and its subtitle file) in ``dest``; kept if it is already there."""
    dest.mkdir(parents=True, exist_ok=True)
    srt = dest / "subtitles.srt"
    if not srt.exists():
        srt.write_text(_srt(), encoding="utf-8")
    out = dest / "conformant.mp4"
    _ensure(out, lambda tmp: _encode(tmp, srt, picture=_picture()))
    return Clip("conformant", out, None)


def make_defect(dest: Path, name: str) -> Clip:
    """The clip ``name`` of :data:`DEFECTS` in ``dest`` (made from the conformant one when needed)."""
    maker, code, severity = DEFECTS[name]
    base = make_conformant(dest)
    suffix = ".mov" if name == "codec" else ".mp4"
    out = dest / f"{name}{suffix}"
    _ensure(out, lambda tmp: maker(tmp, base.path, dest / "subtitles.srt"))
    return Clip(name, out, code, severity)


def make_sidecar_clip(dest: Path) -> Clip:
    """The clip without a subtitle stream, with a GB18030-encoded Chinese .srt beside it."""
    clip = make_defect(dest, "no_subtitles")
    side = dest / "sidecar" / "字幕.srt"
    side.parent.mkdir(exist_ok=True)
    if not side.exists():
        side.write_bytes(_srt().encode("gb18030"))
    video = side.parent / "sidecar.mp4"
    if not video.exists():
        shutil.copyfile(clip.path, video)
    return Clip("sidecar", video, None, sidecars=(side,))


# --- files cut in transfer -------------------------------------------------------------------------

#: Length of the clips cut in transfer: 5 % of the file must be more than the campaign's 1 s tolerance.
LONG_S = 40.0


def make_faststart(dest: Path, name: str = "faststart", *, audio_short_s: float = 0.0) -> Path:
    """A complete ``LONG_S`` s MP4 with its index (moov) at the front, as web uploads are made.

    ``audio_short_s``: the sound ends that much before the picture. The Chinese subtitle track
    spares the subtitle search its OCR.
    """
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / f"{name}.mp4"
    srt = dest / "subtitles.srt"
    if not srt.exists():
        srt.write_text(_srt(), encoding="utf-8")

    def make(tmp: Path) -> None:
        picture = f"testsrc=size={WIDTH}x{HEIGHT}:rate={FPS}:duration={LONG_S},hue=s=0.6"
        argv = [*FFMPEG, "-f", "lavfi", "-i", picture, "-f", "lavfi", "-i", _narration(duration=LONG_S - audio_short_s)]
        argv += ["-i", str(srt), "-map", "0:v", "-map", "1:a", "-map", "2:s", *_SUBS]
        argv += [*_X264, *_AAC, "-movflags", "+faststart", "-f", "mp4", str(tmp)]
        generate(argv, tmp, timeout=_TIMEOUT)

    _ensure(out, make)
    return out


def cut(src: Path, dest: Path, fraction: float) -> Path:
    """The first ``fraction`` of the bytes of ``src``, as left by an interrupted transfer."""
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)  # not left to whichever test made the folder first
        data = src.read_bytes()
        dest.write_bytes(data[: int(len(data) * fraction)])
    return dest


# --- sound beds under narration --------------------------------------------------------------------

SOUND_S = 20.0
#: Speech-like narration: band-limited noise (300–3400 Hz) in syllables, 1.3 s of speech then a
#: 0.7 s pause of digital silence, about -22 LUFS.
SPEECH = (
    f"anoisesrc=color=white:amplitude=0.6:sample_rate=48000:duration={SOUND_S}:seed=3,"
    "highpass=f=300,highpass=f=300,lowpass=f=3400,lowpass=f=3400,tremolo=f=4.3:d=0.9,"
    "volume=0:enable='gte(mod(t\\,2.0)\\,1.3)'"
)
#: A music bed: a decaying two-chord progression (A major, F major) with overtones, about -34 dBFS.
_CHORD = "if(lt(mod(t\\,4)\\,2)\\,{a}\\,{b})"
MUSIC = (
    "aevalsrc='0.03*exp(-2*mod(t\\,0.5))*("
    + "+".join(
        f"{w}*sin({m}*2*PI*{_CHORD.format(a=a, b=b)}*t)"
        for w, m, a, b in ((1, 1, 220, 174.61), (0.5, 2, 220, 174.61), (1, 1, 277.18, 220), (1, 1, 329.63, 261.63))
    )
    + f")':s=48000:d={SOUND_S}"
)
#: name → (graph of the bed, or of the whole sound when it has no narration; narration under it?).
SOUNDS: dict[str, tuple[str, bool]] = {
    "speech": ("", True),
    "speech_pink": (f"anoisesrc=color=pink:amplitude=0.032:sample_rate=48000:duration={SOUND_S}:seed=7", True),
    "speech_hum": (f"aevalsrc='{HUM}':s=48000:d={SOUND_S}", True),
    "speech_room_tone": (f"anoisesrc=color=pink:amplitude=0.005:sample_rate=48000:duration={SOUND_S}:seed=7", True),
    "speech_music": (MUSIC, True),
    "music": (MUSIC, False),
    "tone": (f"sine=frequency=1000:sample_rate=48000:duration={SOUND_S},volume=-14dB", False),
}


def make_sound(dest: Path, name: str) -> Path:
    """The ``SOUND_S`` s AAC sound ``name`` of :data:`SOUNDS` (an .m4a without picture)."""
    bed, narrated = SOUNDS[name]
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / f"{name}.m4a"
    if not bed:
        graph = f"{SPEECH},aformat=channel_layouts=stereo"
    elif narrated:
        graph = f"{SPEECH}[n0];{bed}[n1];[n0][n1]amix=inputs=2:normalize=0,aformat=channel_layouts=stereo"
    else:
        graph = f"{bed},aformat=channel_layouts=stereo"
    argv = [*FFMPEG, "-f", "lavfi", "-i", graph, *_AAC, "-t", f"{SOUND_S}"]
    _ensure(out, lambda tmp: generate([*argv, "-f", "mp4", str(tmp)], tmp, timeout=_TIMEOUT))
    return out


def _ensure(path: Path, make: Callable[[Path], object]) -> None:
    """Create ``path`` through ``make(tmp)`` unless it exists; the rename makes it appear whole."""
    if path.exists():
        return
    tmp = path.with_name(f".{path.stem}.part{path.suffix}")
    try:
        make(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


# --- burned-in subtitles --------------------------------------------------------------------------

#: Burned-in clips: 24 s, narration with a 5 s silent stretch (BURNED_PAUSE) nobody speaks in.
BURNED_DURATION_S = 24.0
BURNED_PAUSE = (10.0, 15.0)
#: Every cue lasts this long: burned-in subtitles change every few seconds.
BURNED_CUE_S = 2.5
CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
BURNED_CUES = (
    "月亮自己并不发光",
    "我们看到的是它反射的太阳光",
    "月球绕地球公转",
    "被照亮的一面时而朝向我们",
    "时而背离我们",
    "这就是月相的变化",
    "新月时我们看不到月亮",
    "满月时它整夜可见",
)
ENGLISH_CUES = ("The moon does not shine", "It reflects sunlight", "Phases change every week")
#: name → what is drawn on the picture.
BURNED_KINDS = ("chinese", "none", "english", "title_card")


def _drawtext(text: str, start: float, end: float, *, size: int = 26, y: str = "h-th-24") -> str:
    return (
        f"drawtext=fontfile={CJK_FONT}:text='{text}':fontsize={size}:fontcolor=white:borderw=2:bordercolor=black:"
        f"x=(w-tw)/2:y={y}:enable='between(t,{start:g},{end:g})'"
    )


def _cues_over_speech(texts: tuple[str, ...]) -> list[tuple[str, float, float]]:
    """Cues of :data:`BURNED_CUE_S` back to back while someone speaks, none during the pause."""
    cues: list[tuple[str, float, float]] = []
    at, i = 0.0, 0
    while at + BURNED_CUE_S <= BURNED_DURATION_S:
        if BURNED_PAUSE[0] - BURNED_CUE_S < at < BURNED_PAUSE[1]:
            at = BURNED_PAUSE[1]
            continue
        cues.append((texts[i % len(texts)], at, at + BURNED_CUE_S - 0.05))
        at, i = at + BURNED_CUE_S, i + 1
    return cues


def _burned_picture(kind: str) -> str:
    half = f"size={WIDTH // 2}x{HEIGHT // 2}:rate={FPS}:duration={BURNED_DURATION_S}"
    texts: list[str] = []
    if kind == "chinese":
        texts = [_drawtext(t, a, b) for t, a, b in _cues_over_speech(BURNED_CUES)]
    elif kind == "english":
        texts = [_drawtext(t, a, b) for t, a, b in _cues_over_speech(ENGLISH_CUES)]
    elif kind == "title_card":
        texts = [_drawtext("月相的秘密", 0, 4, size=40, y="(h-th)/2"), _drawtext("科普微视频", 0, 4, y="h-th-24")]
    elif kind != "none":
        raise ValueError(kind)
    return ",".join([f"testsrc2={half},scale={WIDTH}:{HEIGHT},hue=s=0.5", *texts]) + "[out0]"


def make_burned_in(dest: Path, kind: str) -> Clip:
    """A 24 s clip without subtitle stream whose picture carries ``kind`` of :data:`BURNED_KINDS`.

    ``chinese``: Chinese cues changing every 2.5 s over the speech (none in the pause); ``none``: no
    text; ``english``: English cues over the speech; ``title_card``: a Chinese title in the first
    4 s and no text after it. Only ``chinese`` covers the speech with Chinese subtitles.
    """
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / f"burned-{kind}.mp4"
    a, b = BURNED_PAUSE
    sound = _narration(f"volume=0:enable='between(t,{a:g},{b:g})'", duration=BURNED_DURATION_S)

    def make(tmp: Path) -> None:
        argv = [*FFMPEG, "-f", "lavfi", "-i", _burned_picture(kind), "-f", "lavfi", "-i", sound]
        argv += ["-map", "0:v", "-map", "1:a", *_X264, *_AAC, "-t", f"{BURNED_DURATION_S}", "-f", "mp4", str(tmp)]
        generate(argv, tmp, timeout=_TIMEOUT)

    _ensure(out, make)
    return Clip(
        f"burned-{kind}", out, None if kind == "chinese" else "L-SUBTITLE", None if kind == "chinese" else "warning"
    )


def tone_clip(dest: Path, *, seconds: float = 2, size: str = "320x180", metadata: dict[str, str] | None = None) -> Path:
    """A short test picture (``testsrc2``) with a 440 Hz tone: H.264 + AAC MP4, index up front (a browser plays it
    while it streams); ``metadata`` goes into the container. For tests that need a real, playable video file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tags = [arg for key, value in (metadata or {}).items() for arg in ("-metadata", f"{key}={value}")]
    generate(
        [
            *FFMPEG,
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={size}:rate=25:duration={seconds:g}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={seconds:g}",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            *tags,
            "-movflags",
            "+faststart",
            str(dest),
        ],
        dest,
    )
    return dest
