"""Duplicate detection (O-DUPLICATE-CONTENT) on generated videos: no false pairs, every copy found, fast.

Makes 318 distinct short videos (320×180, 10 fps, 24 s: the fingerprint sees 64-pixel thumbnails at
5 frames a second, so more pixels or seconds test nothing more), most of them still layouts of the
kind that defeated the former whole-video hash: test cards (testsrc, testsrc2, smptebars,
rgbtestsrc, …) as they are, mirrored, zoomed, turned, inset on a grey field and folded; Mandelbrot
views; ``life`` under several rules and seeds; ``cellauto`` rules; rotating gradients; slides (a
colour field with Chinese and English titles drawn with the CJK font, changing every 8 s or held
for the whole video); fixed scenes where only a small shape moves. A quarter of them also get the
copies a unit's re-export makes: re-encoded at a low bitrate, rescaled up or down, cropped by 10 %
at the centre and off it (a corner or the middle of an edge, scaled back or not), letterboxed or
pillarboxed, trimmed by 10 s at the start or at the end.

Fingerprints are made from the same thumbnails the analysis pass writes (same filter chain, see
:func:`thumbnail_argv`). Then every pair is judged with :func:`kepu.media.fingerprint.duplicate_pairs`
and the report prints the number of videos, false pairs (two distinct videos paired; two cuts of one
picture in grey, :data:`SAME_IN_GREY`, are listed apart), recall per
kind of copy, the time of the campaign-wide comparison at 5,000 entries (the real fingerprints plus
made-up ones of the same shape, every real pair to be found again), the time spent making the
videos and their fingerprints, and the machine's load. Exits non-zero when a target is missed: a
false pair, a copy not found, or more than 30 s for the comparison.

Videos and their thumbnails are cached under ``$KEPU_BENCH_CACHE`` (default: the temp folder) in
files named by the hash of the command that makes them, so a second run only hashes and compares.
At most ``--workers`` ffmpeg processes run at once; the script lowers its own priority (``nice``).

    PYTHONPATH=include python bench/bench_fingerprint.py [--entries 5000] [--workers 2]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import os
import sys
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

import numpy as np
import numpy.typing as npt

from kepu.campaign import load_campaign
from kepu.config import DEFAULT_CAMPAIGN_FILE
from kepu.media.analysis import ANALYSIS_FPS, ANALYSIS_WIDTH
from kepu.media.fingerprint import (
    RECORD_BYTES,
    THUMB_SIZE,
    WINDOWS,
    VideoHash,
    duplicate_pairs,
    thumbnails_from_raw,
    video_hash,
)
from kepu.media.runner import run

#: Small and short: the fingerprint sees 64-pixel thumbnails at 5 frames a second, so a larger or
#: longer picture costs time and tests nothing more. 10 fps makes the analysis pick frames.
W, H, FPS, SECONDS = 320, 180, 10, 24
#: Generations a second of the cellular patterns, drawn with cells of 5 pixels: at one generation a
#: frame in cells of 2 pixels their grain averages to a flat grey within each second, nothing the
#: fingerprint could tell apart (nor a person watching the thumbnails), copy or not.
STEPS = 5
TRIM_S = 10
COMPARE_LIMIT_S = 30.0
#: Originals that are, in grey, two cuts of one picture. The SMPTE card's top row is, but for its
#: first bar, the PAL card's bars without the black one, stretched: the zooms into their middles show one strip of cyan, green, magenta and red bars, cut 7 % apart (a sliver of yellow
#: and of red at the SMPTE zoom's edges). A copy of one cropped by 10 % then shares 90 % of its
#: picture with the other, which is the copy model itself (a 10 % crop is a copy). A pair of them
#: (or of their copies) is reported apart, and not counted as false.
SAME_IN_GREY = (frozenset({"card-pal75bars-zoomed", "card-smptebars-zoomed"}),)
#: A CJK font, so the slides' Chinese titles are drawn (the Makefile installs it).
FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
FFMPEG = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y"]
ENCODE = ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "20", "-pix_fmt", "yuv420p", "-an"]


@dataclass(frozen=True)
class Video:
    name: str
    group: str  # the distinct video it shows; copies share their original's group
    kind: str  # "original" or the transform
    argv: tuple[str, ...]  # ffmpeg arguments after the common ones, the output file last
    source: Video | None = None


def _lavfi(graph: str) -> tuple[str, ...]:
    return ("-f", "lavfi", "-i", graph, "-t", str(SECONDS), "-r", str(FPS), *ENCODE)


def _fit(chain: str) -> str:
    return f"{chain},scale={W}:{H},setsar=1,format=yuv420p"


def _rand(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_cards() -> list[tuple[str, str]]:
    sources = [
        "testsrc",
        "testsrc2",
        "smptebars",
        "smptehdbars",
        "rgbtestsrc",
        "pal75bars",
        "yuvtestsrc",
        "colorspectrum",
        "colorchart",
    ]
    variants = {
        "plain": "null",
        "mirrored": "hflip",
        "zoomed": "crop=iw/2:ih/2:iw/4:0,scale=iw*2:ih*2",
        "turned": "transpose=1",
        "inset": "scale=iw*0.6:ih*0.6,pad=iw/0.6:ih/0.6:iw*0.1:ih*0.2:color=0x404040",
        "folded": "crop=iw/2:ih:0:0,split[l][r];[r]hflip[f];[l][f]hstack",
    }
    out = []
    for src in sources:
        for vname, vf in variants.items():
            size = "s=320x180:" if src not in ("colorchart",) else ""
            out.append((f"card-{src}-{vname}", _fit(f"{src}={size}r={FPS},{vf}")))
    return out


def fractals(count: int) -> list[tuple[str, str]]:
    spots = [
        (-0.743643887, 0.131825904),
        (-0.75, 0.1),
        (-1.25066, 0.02012),
        (-0.1011, 0.9563),
        (0.285, 0.01),
        (-0.7269, 0.1889),
        (-1.768778833, -0.001738996),
        (-0.8, 0.156),
        (0.3245, 0.04855),
        (-0.16, 1.0405),
    ]
    out = []
    for k in range(count):
        x, y = spots[k % len(spots)]
        # Each view zooms in by 2 over the video, and the views into one spot are 6 times apart: around
        # many points the set looks alike at every scale, and zooms that met would be one picture
        # twice. For the same reason the deepest views are turned a quarter.
        depth = k // len(spots) % 4
        scale = [0.3, 0.05, 0.008, 0.0013][depth]
        turn = ",transpose=1" if depth == 3 else ""
        out.append(
            (
                f"fractal-{k}",
                _fit(
                    f"mandelbrot=s={W}x{H}:r={FPS}:maxiter=300:start_x={x}:start_y={y}:start_scale={scale}"
                    f":end_scale={scale / 2}:outer=normalized_iteration_count{turn}"
                ),
            )
        )
    return out


def lives(count: int) -> list[tuple[str, str]]:
    rules = ["B3/S23", "B36/S23", "B3678/S34678", "B35678/S5678", "B368/S245", "B34/S34", "B3/S12345", "B37/S23"]
    out = []
    for k in range(count):
        rule = rules[k % len(rules)]
        ratio = [0.3, 0.5, 0.62][k % 3]
        out.append(
            (
                f"life-{k}",
                _fit(
                    f"life=s={W // 5}x{H // 5}:r={STEPS}:rule={rule}:seed={1000 + k}:ratio={ratio}"
                    f":mold=8:life_color=#e0e0e0:death_color=#202020:mold_color=#806040"
                ),
            )
        )
    return out


def automata(count: int) -> list[tuple[str, str]]:
    rules = [30, 45, 73, 90, 105, 110, 150, 18, 22, 54, 124, 102, 126, 137, 169, 193, 225, 57, 62, 75]
    out = []
    for k in range(count):
        rule = rules[k % len(rules)]
        ratio = [0.5, 0.15][k // len(rules) % 2]
        out.append(
            (
                f"cellauto-{k}",
                _fit(f"cellauto=s={W // 5}x{H // 5}:r={STEPS}:rule={rule}:seed={k}:random_fill_ratio={ratio}:scroll=1"),
            )
        )
    return out


def gradients(count: int) -> list[tuple[str, str]]:
    out = []
    for k in range(count):
        r = _rand(500 + k)
        x0, y0, x1, y1 = (int(v) for v in r.integers(0, [W, H, W, H]))
        colours = ":".join(f"c{i}=0x{int(r.integers(0, 1 << 24)):06x}" for i in range(3))
        kind, speed = k % 4, 0.015 * (1 + k // 4)  # no two alike in both
        out.append(
            (
                f"gradient-{k}",
                _fit(
                    f"gradients=s={W}x{H}:r={FPS}:{colours}:nb_colors=3:x0={x0}:y0={y0}"
                    f":x1={x1}:y1={y1}:speed={speed:g}:type={kind}:seed={k}"
                ),
            )
        )
    return out


_WORDS = [
    "光的折射",
    "Photosynthesis",
    "声音的传播",
    "Newton's laws",
    "Cell division",
    "火山是怎样形成的",
    "The water cycle",
    "Magnetism",
    "Plate tectonics",
    "DNA replication",
    "电路与电流",
    "Gravity",
    "Enzymes at work",
    "Black holes",
    "Friction",
    "Rainbows",
    "Sound waves",
    "Acids and bases",
]


def slides(count: int) -> list[tuple[str, str]]:
    """Title slides: a colour field with three lines of text. Even ones change slide every 8 s, odd
    ones hold one slide for the whole video (the stillest layout there is)."""
    out = []
    for k in range(count):
        r = _rand(900 + k)
        colour = f"0x{int(r.integers(0, 1 << 24)):06x}"
        hold = 8 if k % 2 == 0 else SECONDS
        parts = []
        for s in range(-(-SECONDS // hold)):
            words = [_WORDS[int(i)] for i in r.integers(0, len(_WORDS), 3)]
            for line, text in enumerate(words):
                size = int(r.integers(14, 34))
                x, y = int(r.integers(5, W // 2)), int(r.integers(5, H - 40))
                text = text.replace("'", "")
                parts.append(
                    f"drawtext=fontfile={FONT}:text='{text}':fontsize={size}:fontcolor=0x{int(r.integers(0, 1 << 24)):06x}"
                    f":x={x}:y={y}:box={line % 2}:boxcolor=0x{int(r.integers(0, 1 << 24)):06x}:enable='between(t,{s * hold},{s * hold + hold})'"
                )
        out.append((f"slides-{k}", _fit(f"color=c={colour}:s={W}x{H}:r={FPS}," + ",".join(parts))))
    return out


def still_scenes(count: int) -> list[tuple[str, str]]:
    out = []
    for k in range(count):
        r = _rand(1300 + k)
        terms = "+".join(
            f"{float(r.uniform(-1, 1)):.3f}*cos(PI*{int(p)}*(Y+0.5)/H)*cos(PI*{int(q)}*(X+0.5)/W)"
            for p, q in r.integers(0, 5, (8, 2))
        )
        bx, by, size = int(r.integers(20, W - 80)), int(r.integers(20, H - 60)), int(r.integers(12, 28))
        background = f"color=c=gray:s={W}x{H}:r=1,format=gray,geq=lum='128+12*({terms})',format=yuv420p,fps={FPS}"
        hand = f"color=c=0x{int(r.integers(0, 1 << 24)):06x}:s={size}x{size}:r={FPS}"
        move = f"overlay=x='{bx}+25*sin(t*{float(r.uniform(0.5, 2)):.2f})':y='{by}+15*cos(t*1.3)'"
        out.append((f"still-{k}", _fit(f"{background}[bg];{hand}[hand];[bg][hand]{move}")))
    return out


def originals() -> list[Video]:
    specs = [*test_cards(), *fractals(40), *lives(40), *automata(40), *gradients(32), *slides(56), *still_scenes(56)]
    return [Video(name, name, "original", _lavfi(graph)) for name, graph in specs]


TRANSFORMS = (
    "re-encoded",
    "rescaled",
    "cropped 10% centre",
    "cropped 10% off-centre",
    "letterboxed",
    "trimmed start",
    "trimmed end",
)
#: Where an off-centre crop keeps its 90 % window, as a share of the 10 % left over: the four
#: corners, then the middles of the four edges (between two corners).
CROP_SPOTS = ((0, 0), (1, 0), (0, 1), (1, 1), (0.5, 0), (0.5, 1), (0, 0.5), (1, 0.5))


def copies(of: Video, index: int) -> list[Video]:
    """The copies a unit's re-export would make of ``of`` (``index`` varies sizes and positions)."""
    box = "scale=320:180,pad=320:240:0:30" if index % 2 == 0 else "scale=240:136,pad=320:136:40:0"
    size = "480:270" if index % 2 == 0 else "256:144"
    sx, sy = CROP_SPOTS[index % len(CROP_SPOTS)]
    back = ",scale=320:180" if index % 3 else ""  # some re-exports keep the cropped size
    argvs = {
        "re-encoded": ("-c:v", "libx264", "-preset", "ultrafast", "-b:v", "60k", "-pix_fmt", "yuv420p", "-an"),
        "rescaled": (
            "-vf",
            f"scale={size}",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "30",
            "-pix_fmt",
            "yuv420p",
            "-an",
        ),
        "cropped 10% centre": ("-vf", f"crop=iw*0.9:ih*0.9{back}", *ENCODE),
        "cropped 10% off-centre": ("-vf", f"crop=iw*0.9:ih*0.9:iw*0.1*{sx}:ih*0.1*{sy}{back}", *ENCODE),
        "letterboxed": ("-vf", f"{box},setsar=1", *ENCODE),
        "trimmed start": ("-ss", str(TRIM_S), *ENCODE),
        "trimmed end": ("-t", str(SECONDS - TRIM_S), *ENCODE),
    }
    return [Video(f"{of.name}~{kind}", of.group, kind, argvs[kind], of) for kind in TRANSFORMS]


def corpus(copy_every: int) -> list[Video]:
    base = originals()
    out = list(base)
    for i, v in enumerate(base):
        if i % copy_every == 0:
            out += copies(v, i // copy_every)
    return out


def _load() -> str:
    """The machine's load averages (1, 5, 15 min): the figures depend on what else runs."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def cache_root() -> Path:
    root = Path(os.environ.get("KEPU_BENCH_CACHE") or tempfile.gettempdir()) / "kepu-bench-fingerprint"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _key(video: Video) -> str:
    parts = [*video.argv, _key(video.source) if video.source else ""]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:24]


def make(video: Video, root: Path) -> Path:
    """The video's file, made once: named by the hash of what makes it (its source's included)."""
    out = root / f"{_key(video)}.mp4"
    if out.exists():
        return out
    tmp = out.with_suffix(".part.mp4")
    if video.source is None:
        argv = [*FFMPEG, *video.argv, str(tmp)]
    else:
        src = make(video.source, root)
        head, tail = (list(video.argv[:2]), list(video.argv[2:])) if video.argv[0] == "-ss" else ([], list(video.argv))
        argv = [*FFMPEG, *head, "-i", str(src), *tail, str(tmp)]
    run(argv, timeout=600)
    tmp.rename(out)
    return out


def thumbnail_argv(path: Path) -> list[str]:
    """The analysis pass's thumbnail branch (:func:`kepu.media.analysis.analysis_command`) on its own."""
    chain = (
        f"fps={ANALYSIS_FPS},scale={ANALYSIS_WIDTH}:-2:flags=bilinear,format=gray,"
        f"scale={THUMB_SIZE}:{THUMB_SIZE}:flags=area,format=gray"
    )
    return [*FFMPEG, "-i", str(path), "-vf", chain, "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"]


def thumbnails(path: Path) -> Path:
    """The analysis pass's thumbnails of the video at ``path``, made once (beside the video)."""
    cached = path.with_suffix(".fp.npy")
    if not cached.exists():
        tmp = path.with_suffix(".part.npy")
        np.save(tmp, thumbnails_from_raw(run(thumbnail_argv(path), timeout=600).stdout))
        tmp.rename(cached)
    return cached


def fingerprint(thumbs: Path) -> VideoHash:
    h = video_hash(np.load(thumbs))
    if h is None:
        raise RuntimeError(f"{thumbs}: no thumbnails")
    return h


def synthetic(real: Sequence[VideoHash], total: int, seed: int = 7) -> list[VideoHash]:
    """``total`` fingerprints: the real ones, then made-up ones of the same shape.

    A made-up video is 1–6 minutes of shots held 2–12 s, a bit or two of the hash changing each
    second. A shot is a random picture, or (three in ten) a real picture with 20 of its 64 bits
    changed: alike in parts, as pictures of one genre are, but no copy of anything.
    """
    rng = np.random.default_rng(seed)
    pool = np.concatenate([h.hashes[h.informative] for h in real])
    bit = np.uint64(1) << np.arange(64, dtype=np.uint64)
    out = list(real)
    while len(out) < total:
        seconds = int(rng.integers(60, 360))
        holds = rng.integers(2, 13, seconds)
        shot = np.repeat(np.arange(seconds), holds)[:seconds]  # shot number of each second
        shots = int(shot[-1]) + 1
        base = rng.integers(0, 2**63, shots, dtype=np.uint64) | (rng.integers(0, 2, shots, dtype=np.uint64) << 63)
        from_real = rng.random(shots) < 0.3

        def scatter(count: int) -> npt.NDArray[np.uint64]:
            # ``count`` masks of 20 random bits each.
            picked = bit[np.argsort(rng.random((count, 64)), axis=1)[:, :20]]
            result: npt.NDArray[np.uint64] = np.bitwise_or.reduce(picked, axis=1)
            return result

        changed = scatter(shots)
        base[from_real] = pool[rng.integers(len(pool), size=int(from_real.sum()))] ^ changed[from_real]
        flips = np.where(rng.random((seconds, 2)) < 0.5, bit[rng.integers(0, 64, (seconds, 2))], np.uint64(0))
        drift = np.bitwise_xor.accumulate(flips[:, 0] ^ flips[:, 1])
        # The flips accumulate within a shot: undo what accumulated before the shot began.
        first = np.r_[0, np.flatnonzero(np.diff(shot)) + 1]
        before = np.r_[np.uint64(0), drift][first][shot]
        hashes = base[shot] ^ drift ^ before
        # Each window differs from the whole picture by 20 other bits (not by the same 20: that
        # would make the windows of every borrowed shot the real picture itself).
        offsets = scatter(shots * len(WINDOWS)).reshape(shots, len(WINDOWS))
        windows = hashes[:, None] ^ offsets[shot]
        brightness = rng.integers(30, 220, seconds).astype(np.uint8)
        detail = rng.integers(0, 200, seconds).astype(np.uint8)
        lit = np.repeat(brightness[:, None], len(WINDOWS), axis=1)
        stripes = np.zeros((seconds, 1 + len(WINDOWS)), dtype=bool)
        out.append(VideoHash(hashes, windows, brightness, detail, lit, stripes, seconds * ANALYSIS_FPS))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=5000, help="entries of the timed comparison")
    parser.add_argument("--copy-every", type=int, default=4, help="copies of one original in this many")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with contextlib.suppress(OSError):
        os.nice(10)
    campaign = load_campaign(DEFAULT_CAMPAIGN_FILE)
    limit = campaign.originality.perceptual_hash_max_distance
    videos = corpus(args.copy_every)
    root = cache_root()
    print(f"making {len(videos)} videos under {root} (cached); load {_load()}", flush=True)
    start = perf_counter()
    # Originals first: copies are made from them.
    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(lambda v: make(v, root), [v for v in videos if v.source is None]))
        paths = dict(zip([v.name for v in videos], pool.map(lambda v: make(v, root), videos), strict=True))
        made = perf_counter() - start
        start = perf_counter()
        thumbs = list(pool.map(thumbnails, paths.values()))
    # The hashes in this thread only: numpy's BLAS called from several threads at once has hung here.
    hashes = dict(zip(paths, map(fingerprint, thumbs), strict=True))
    hashed = perf_counter() - start
    print(
        f"generation {made:.0f} s, thumbnails and fingerprints {hashed:.0f} s ({args.workers} workers, "
        f"cached files are not made again); load {_load()}"
    )

    by_name = {v.name: v for v in videos}
    pairs = duplicate_pairs(hashes, limit)
    found = {(a, b) for a, b, _ in pairs}
    apart = [(a, b, m) for a, b, m in pairs if by_name[a].group != by_name[b].group]
    alike = [(a, b, m) for a, b, m in apart if frozenset({by_name[a].group, by_name[b].group}) in SAME_IN_GREY]
    false = [p for p in apart if p not in alike]
    distinct = sum(v.kind == "original" for v in videos)
    print(f"videos: {len(videos)} ({distinct} distinct, {len(videos) - distinct} copies)")
    print(f"per-second frame distance limit: {limit} bits of 64")
    print(f"false pairs: {len(false)}")
    for a, b, m in false[:20]:
        print(f"  FALSE {a} ~ {b}: share {m.share:.2f}, {m.seconds} s, distance {m.distance}, offset {m.offset_s} s")
    print(f"pairs of two cuts of one picture in grey (SAME_IN_GREY, not false): {len(alike)}")
    for a, b, m in alike:
        print(f"  ALIKE {a} ~ {b}: share {m.share:.2f}, {m.seconds} s, distance {m.distance}, offset {m.offset_s} s")
    recall: dict[str, list[bool]] = defaultdict(list)
    for v in videos:
        if v.source is not None:
            ok = tuple(sorted((v.name, v.source.name))) in found
            recall[v.kind].append(ok)
            if not ok:
                print(f"  MISSED {v.name}")
    missed = 0
    for kind in TRANSFORMS:
        got = recall[kind]
        missed += got.count(False)
        print(f"recall {kind:24s} {sum(got)}/{len(got)} = {sum(got) / max(1, len(got)):.0%}")
    within = sum(
        1
        for a, b in itertools.combinations(sorted(hashes), 2)
        if by_name[a].group == by_name[b].group and (a, b) in found
    )
    print(f"pairs found among copies of one original: {within}")

    entries = synthetic(list(hashes.values()), args.entries)
    many = {f"e{i:05d}": h for i, h in enumerate(entries)}
    frames = sum(len(h) for h in entries)
    start = perf_counter()
    big = duplicate_pairs(many, limit)
    elapsed = perf_counter() - start
    extra = len(big) - len(pairs)
    # The real fingerprints are the first entries, in the same order: their pairs must all be found again.
    real_ids = {f"e{i:05d}": name for i, name in enumerate(hashes)}
    again = {(real_ids[a], real_ids[b]) for a, b, _ in big if a in real_ids and b in real_ids}
    lost = [(a, b) for a, b, _ in pairs if (a, b) not in again and (b, a) not in again]
    for a, b in lost[:10]:
        print(f"  LOST among 5,000: {a} ~ {b}")
    print(
        f"comparison of {len(many)} entries ({frames} hashed seconds): {elapsed:.1f} s "
        f"(limit {COMPARE_LIMIT_S:.0f} s), {len(big)} pair(s), {extra} beyond the real set"
    )
    print(f"stored fingerprint: {RECORD_BYTES} bytes a second; the 5,000 take {frames * RECORD_BYTES / 1e6:.1f} MB")
    failed = bool(false) or missed > 0 or elapsed > COMPARE_LIMIT_S or extra != 0 or bool(lost)
    print(f"load {_load()}")
    print("FAIL" if failed else "OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
