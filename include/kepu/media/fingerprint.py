"""A perceptual fingerprint of a video, one small hash a second, and finding the same video among entries.

The analysis pass (:mod:`kepu.media.analysis`) already writes a :data:`THUMB_SIZE`-square grey
thumbnail of every low-rate frame to a pipe, so the fingerprint costs no extra decode.
:func:`video_hash` then

1. finds black bars (letterbox, pillarbox): flat dark rows and columns at the edges that stay dark
   in every frame and end in a step to the picture, and leaves them out, so a letterboxed copy is
   hashed on the same picture as its original (a picture that darkens towards its edge keeps it);
2. averages the thumbnails of each second (:data:`FRAME_STEP_S`) into one picture, resampled to
   :data:`HASH_SIDE` squared from the picture area left;
3. keeps :data:`HASH_BITS` bits of each picture's low-frequency DCT (the 64 lowest frequencies
   after the DC term, each above or below their median, as pHash does for images), with two bytes
   beside them: the mean brightness and how much the picture holds (the strength of those
   frequencies, so that a black or flat picture is not taken for evidence);
4. hashes the same way nine windows of 90 % of each side (:data:`WINDOWS`: the centre, the four
   corners, the middles of the four edges), so that a copy cropped by about 10 %, in the middle or
   off it, shows the picture one of its original's windows saw;
5. codes a picture of stripes (colour bars, a striped field: :data:`STRIPE_SHARE` of its detail
   varies along one axis only) by its profile across the stripes instead (:func:`stripe_codes`):
   its square DCT keeps only a handful of bits that are not noise, its profile keeps the width
   and brightness of every stripe. Two pictures of which one is stripes match only when both are
   stripes and their codes are within :data:`STRIPE_MAX_DISTANCE` bits.

A still layout (a tabletop experiment, a lecture from a fixed camera, a slide) keeps its 64 bits
of the picture itself, where the former whole-video hash of eight averaged stretches kept about 6.

:func:`match` compares two fingerprints the way vPDQ does (a frame matches when a frame of the
other video is within ``max_distance`` bits), but counts only matches at one consistent time
offset and in one way of comparing for the whole video (whole against whole, or the whole of one
against one window of the other): two videos are the same when most seconds of one of them
(:data:`MIN_MATCH_SHARE`) are found in the other in the same order, so a copy trimmed at either end
is still found in its source.
:func:`duplicate_pairs` finds the candidate pairs of a whole campaign through an index of hash
bands (locality-sensitive hashing on sampled bits) and verifies each with :func:`match`;
:func:`duplicate_findings` turns the pairs of one entry into ``O-DUPLICATE-CONTENT`` warnings.

The stored form (:meth:`VideoHash.to_text`) starts with the format version :data:`VERSION`; a
fingerprint stored by an earlier version reads as ``None`` and is recomputed, never compared.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from kepu.campaign import Campaign
from kepu.findings import Finding, make_finding

log = logging.getLogger(__name__)

_T = TypeVar("_T", bound=np.generic)

#: Side of the grey thumbnails the analysis pass writes (the whole frame, squeezed to a square).
THUMB_SIZE = 64
#: One hashed picture per this many seconds of video.
FRAME_STEP_S = 1.0
#: Side of the picture the DCT is taken of, after black bars are left out.
HASH_SIDE = 32
HASH_BITS = 64
#: Share of each side a window hash keeps: a copy cropped by about 10 % shows the picture one of
#: its original's windows saw.
INNER_SHARE = 0.9
#: Where the windows lie, as the share of the cut-off margin left of and above each: the centre,
#: then a 3×3 grid over the margin (the four corners, the middles of the four edges). A crop of
#: 10 % taken anywhere is then within 2.5 % of a window, which the low frequencies of the hash
#: shrug off; with the corners alone a crop from the middle of an edge would be 5 % from the
#: nearest window.
WINDOWS: tuple[tuple[float, float], ...] = (
    (0.5, 0.5),
    (0.0, 0.0),
    (1.0, 0.0),
    (0.0, 1.0),
    (1.0, 1.0),
    (0.5, 0.0),
    (0.5, 1.0),
    (0.0, 0.5),
    (1.0, 0.5),
)
#: Bytes stored per hashed second: the 64 bits of the whole picture and of each window, the mean
#: brightness of the whole picture and of each window, the detail level, and which of the pictures
#: (bit 0 the whole, bit k window k) are stripes (:data:`STRIPE_SHARE`), in two bytes.
RECORD_BYTES = (1 + len(WINDOWS)) * (HASH_BITS // 8 + 1) + 3
#: Format version of the stored text; any other version is stale and gets recomputed.
VERSION = 4
_PREFIX = f"v{VERSION}:"
#: A bar row or column stays at or below this grey level (of 255) in every frame.
BAR_LEVEL = 28
#: Bars are never taken to cover more than this share of a side (a dark video is not all bars).
MAX_BAR_SHARE = 0.35
#: A bar is flat: its lines differ by at most this many grey levels (a dark gradient at the edge of
#: a picture is not a bar) ...
BAR_FLAT = 6
#: ... and ends in a step: the picture next to it gets at least this much brighter than the bar at
#: some moment of the video. Content that fades into the edge is left to the picture.
BAR_STEP = 24
#: Detail is stored in steps of 1/DETAIL_SCALE grey level.
DETAIL_SCALE = 8
#: Below this detail level (:func:`_detail`, in steps) a picture is flat (black, a fade, a plain
#: field): its bits are noise and it counts neither for nor against a match.
MIN_DETAIL = 4
#: Two videos are the same when at least this share of the informative seconds of one of them
#: match the other at one time offset, and at least :data:`MIN_MATCH_SECONDS` seconds do.
MIN_MATCH_SHARE = 0.6
MIN_MATCH_SECONDS = 5
#: Seconds of slack around the offset (frame-rate phase, a trim inside a second).
OFFSET_SLACK = 1
#: At most this many equally voted alignments are judged (:func:`match`).
MAX_TIES = 64
#: Two pictures more than this many grey levels apart in mean brightness never match.
MAX_BRIGHTNESS_GAP = 40
#: A picture is stripes when at least this share of its detail (the energy of its DCT terms after
#: the DC one) lies in the terms that vary along one axis only: colour bars, a striped field. Such a
#: picture leaves the square DCT a few bits that are not noise, so it is coded by its profile.
STRIPE_SHARE = 0.99
#: Points of the profile across the stripes that are coded, evenly spread over the picture (times
#: the levels below: :data:`HASH_BITS`) ...
STRIPE_SAMPLES = 16
#: ... each in a thermometer code: one bit per level (grey levels from the profile's mean) it lies
#: above. A point that moves by a level flips one bit, so the Hamming distance of two codes adds up
#: how far their profiles lie apart, point by point.
STRIPE_LEVELS = (-40.0, -12.0, 12.0, 40.0)
#: Two stripe pictures match within this many bits (the campaign's limit is for the square hash, of
#: which about half the bits are noise; in a profile code every bit says where a stripe is) ...
STRIPE_MAX_DISTANCE = 3
#: ... and within this many grey levels of mean brightness, each picture's own (a window's, when a
#: window is compared): the code is counted from the profile's mean, so two staircases of grey of
#: the same shape, one darker, would otherwise meet. A 10 % crop of a card of bright and dark bars
#: moves the mean of the whole picture by up to 10 levels, but not that of the window it matches.
STRIPE_BRIGHTNESS_GAP = 8
#: Stripes across the rows (horizontal) are coded with this mask XORed in, so that the profile of
#: horizontal stripes never meets the same profile of vertical ones.
ROWS_MASK = 0x9E3779B97F4A7C15

STAGE = "media"


def _coefficient_order() -> tuple[tuple[int, int], ...]:
    # The 64 lowest frequencies after the DC term, by diagonal (u+v), then row.
    cells = [(u, v) for u in range(HASH_SIDE) for v in range(HASH_SIDE) if 0 < u + v <= 11]
    cells.sort(key=lambda c: (c[0] + c[1], c[0]))
    return tuple(cells[:HASH_BITS])


_COEFFS = _coefficient_order()
_ROWS = np.array([c[0] for c in _COEFFS])
_COLS = np.array([c[1] for c in _COEFFS])


@dataclass(frozen=True)
class VideoHash:
    """A video's fingerprint: one record of :data:`RECORD_BYTES` bytes per second.

    ``hashes`` holds the 64-bit hashes of the whole pictures (uint64), ``windows`` those of their
    :data:`WINDOWS` (shape (seconds, windows)), ``brightness`` and ``detail`` one byte each per
    second, ``window_brightness`` the mean brightness of each window (shape (seconds, windows)),
    ``stripes`` which of the pictures are coded as stripes (shape (seconds, 1 + windows): the whole
    picture, then each window); ``frames`` is how many thumbnails it was made from.
    """

    hashes: npt.NDArray[np.uint64]
    windows: npt.NDArray[np.uint64]
    brightness: npt.NDArray[np.uint8]
    detail: npt.NDArray[np.uint8]
    window_brightness: npt.NDArray[np.uint8]
    stripes: npt.NDArray[np.bool_]
    frames: int

    def __len__(self) -> int:
        return len(self.hashes)

    @property
    def inner(self) -> npt.NDArray[np.uint64]:
        """The hashes of the centre windows."""
        return self.windows[:, 0]

    @property
    def informative(self) -> npt.NDArray[np.bool_]:
        """Seconds whose picture holds enough detail to be compared."""
        return self.detail >= MIN_DETAIL

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VideoHash):
            return NotImplemented
        return self.to_text() == other.to_text()

    def __hash__(self) -> int:
        return hash(self.to_text())

    def to_bytes(self) -> bytes:
        n, k = len(self), len(WINDOWS)
        records = np.zeros((n, RECORD_BYTES), dtype=np.uint8)
        both = np.concatenate([self.hashes.reshape(n, 1), self.windows.reshape(n, k)], axis=1)
        records[:, : 8 * (k + 1)] = both.astype(">u8").view(np.uint8).reshape(n, -1)
        records[:, 8 * (k + 1) : 9 * (k + 1)] = np.concatenate(
            [self.brightness.reshape(n, 1), self.window_brightness.reshape(n, k)], axis=1
        )
        records[:, -3] = self.detail
        flags = (self.stripes.astype(np.uint16) << np.arange(k + 1, dtype=np.uint16)).sum(axis=1, dtype=np.uint16)
        records[:, -2:] = flags.astype(">u2").view(np.uint8).reshape(n, 2)
        return records.tobytes()

    def to_text(self) -> str:
        """The stored form: ``v4:<frames>:<base64 of the records>``."""
        return f"{_PREFIX}{self.frames}:{base64.b64encode(self.to_bytes()).decode('ascii')}"

    @classmethod
    def from_records(cls, data: bytes, *, frames: int = 0) -> VideoHash:
        if len(data) % RECORD_BYTES:
            raise ValueError(f"{len(data)} bytes is not a whole number of {RECORD_BYTES}-byte records")
        records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD_BYTES)
        k = len(WINDOWS)
        both = np.ascontiguousarray(records[:, : 8 * (k + 1)]).view(">u8").astype(np.uint64)
        flags = np.ascontiguousarray(records[:, -2:]).view(">u2").astype(np.uint16).reshape(-1)
        stripes = (flags[:, None] >> np.arange(k + 1, dtype=np.uint16)) & 1 == 1
        lit = records[:, 8 * (k + 1) : 9 * (k + 1)]
        return cls(
            both[:, 0].copy(),
            both[:, 1:].copy(),
            lit[:, 0].copy(),
            records[:, -3].copy(),
            lit[:, 1:].copy(),
            stripes,
            frames,
        )

    @classmethod
    def from_text(cls, text: str | None) -> VideoHash | None:
        """The fingerprint stored as ``text``; None when absent or made by another version."""
        if not text or not text.startswith(_PREFIX):
            return None
        frames, _, payload = text[len(_PREFIX) :].partition(":")
        try:
            return cls.from_records(base64.b64decode(payload, validate=True), frames=int(frames))
        except (ValueError, binascii.Error):
            log.warning("unreadable stored fingerprint %.40r", text)
            return None


def is_current(text: object) -> bool:
    """Whether a stored fingerprint was made by this version (a missing one needs nothing)."""
    return text is None or (isinstance(text, str) and text.startswith(_PREFIX))


def thumbnails_from_raw(data: bytes, size: int = THUMB_SIZE) -> npt.NDArray[np.uint8]:
    """The ``gray`` rawvideo bytes of the analysis pass as an array of shape (frames, size, size).

    A trailing partial frame (a killed or truncated run) is dropped.
    """
    frame = size * size
    count = len(data) // frame
    return np.frombuffer(data[: count * frame], dtype=np.uint8).reshape(count, size, size)


@lru_cache(maxsize=4)
def _dct_matrix(n: int) -> npt.NDArray[np.float64]:
    # Orthonormal DCT-II basis.
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m: npt.NDArray[np.float64] = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


def _sandwich(
    left: npt.NDArray[np.float64], pictures: npt.NDArray[np.float64], right: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """``left @ picture @ right.T`` for each picture, in numpy's own loops.

    The matrices are a few dozen wide: handing them to the threaded BLAS costs more than the sums,
    and on a busy machine its threads waiting for each other made a fingerprint take 20 times
    as long.
    """
    half = np.einsum("ij,fjk->fik", left, pictures)
    result: npt.NDArray[np.float64] = np.einsum("fik,lk->fil", half, right)
    return result


def _area_matrix(lo: float, hi: float, n_in: int, n_out: int) -> npt.NDArray[np.float64]:
    """Rows that average the input cells [lo, hi) of ``n_in`` into ``n_out`` equal cells (area resampling)."""
    edges = np.linspace(lo, hi, n_out + 1)
    cells = np.arange(n_in)
    left = np.maximum(edges[:-1, None], cells[None, :])
    right = np.minimum(edges[1:, None], cells[None, :] + 1)
    weights = np.clip(right - left, 0.0, None)
    result: npt.NDArray[np.float64] = weights / weights.sum(axis=1, keepdims=True)
    return result


def picture_area(thumbs: npt.NDArray[np.generic]) -> tuple[float, float, float, float]:
    """(top, bottom, left, right) of the picture inside black bars, in thumbnail pixels.

    A bar is a run of edge rows (columns) whose every pixel stays at or below :data:`BAR_LEVEL` in
    every frame. The edge row of the picture, partly bar after scaling, counts by its brightness
    against its neighbour, so the area is found to a fraction of a pixel.
    """
    brightest = thumbs.max(axis=0).astype(np.float64)
    darkest = thumbs.min(axis=0).astype(np.float64)
    mean = thumbs.mean(axis=0).astype(np.float64)

    def run(peak: npt.NDArray[np.float64], floor: npt.NDArray[np.float64]) -> int:
        # How many edge lines (from index 0 on) are a bar: dark, flat, and followed by a step.
        limit = int(len(peak) * MAX_BAR_SHARE)
        k = 0
        while k < limit and peak[k] <= BAR_LEVEL and max(peak[: k + 1]) - min(floor[: k + 1]) <= BAR_FLAT:
            k += 1
        # The line after the bar may be partly bar (scaling): the step shows on it or the next.
        if k and max(peak[k : k + 2], default=0.0) < max(peak[:k]) + BAR_STEP:
            return 0
        return k

    def bounds(
        peak: npt.NDArray[np.float64], floor: npt.NDArray[np.float64], level: npt.NDArray[np.float64]
    ) -> tuple[float, float]:
        n = len(peak)
        lo = run(peak, floor)
        hi = n - run(peak[::-1], floor[::-1])
        top, bottom = float(lo), float(hi)
        # A partly covered edge line: its brightness against the next line inside tells how much.
        if 0 < lo < n - 1 and level[lo + 1] > 0:
            top = lo + 1 - min(1.0, level[lo] / level[lo + 1])
        if hi < n and hi >= 2 and level[hi - 2] > 0:
            bottom = hi - 1 + min(1.0, level[hi - 1] / level[hi - 2])
        return top, bottom

    top, bottom = bounds(brightest.max(axis=1), darkest.min(axis=1), mean.mean(axis=1))
    # Pillars are judged inside the picture's rows: the black of a letterbox would make a dark
    # edge stripe of the picture (a blue bar) look uneven in a letterboxed copy and flat in its
    # original, and the two would be hashed on different areas.
    inside = slice(int(np.ceil(top)), max(int(np.ceil(top)) + 1, int(bottom)))
    left, right = bounds(brightest[inside].max(axis=0), darkest[inside].min(axis=0), mean[inside].mean(axis=0))
    return top, bottom, left, right


def _detail(ac: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    # RMS of the 64 coefficients, in grey levels of a full-picture pattern (orthonormal DCT of a
    # HASH_SIDE square: a pattern of amplitude a gives a coefficient of about a * HASH_SIDE / 2).
    result: npt.NDArray[np.float64] = np.sqrt((ac**2).mean(axis=-1)) / (HASH_SIDE / 2)
    return result


def stripe_codes(pictures: npt.NDArray[np.float64], rows: npt.NDArray[np.bool_]) -> npt.NDArray[np.uint64]:
    """The 64-bit profile codes of pictures of stripes (``rows``: stripes across the rows).

    The profile across the stripes (the mean of each column, or of each row) is averaged into
    :data:`STRIPE_SAMPLES` points; each point gives one bit per level of :data:`STRIPE_LEVELS` it
    lies above, counted from the profile's own mean (the brightness itself is compared apart, see
    :data:`STRIPE_BRIGHTNESS_GAP`): :data:`HASH_BITS` bits in all. Stripes across the rows get
    :data:`ROWS_MASK` XORed in.
    """
    profiles = np.where(rows[:, None], pictures.mean(axis=2), pictures.mean(axis=1))
    resample = _area_matrix(0.0, float(profiles.shape[1]), profiles.shape[1], STRIPE_SAMPLES)
    points = np.einsum("ij,fj->fi", resample, profiles)  # numpy's loops, not BLAS: see _sandwich
    centred = points - profiles.mean(axis=1, keepdims=True)
    bits = centred[:, :, None] > np.asarray(STRIPE_LEVELS)[None, None, :]
    packed = np.ascontiguousarray(np.packbits(bits.reshape(len(pictures), -1), axis=1))
    codes = packed.view(">u8").reshape(-1).astype(np.uint64)
    result: npt.NDArray[np.uint64] = np.where(rows, codes ^ np.uint64(ROWS_MASK), codes)
    return result


def picture_hashes(
    pictures: npt.NDArray[np.generic],
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
    """The 64-bit hash, mean brightness, detail level and stripe flag of each :data:`HASH_SIDE`-square
    picture (a picture of stripes gets its profile code, :func:`stripe_codes`, as its hash)."""
    d = _dct_matrix(HASH_SIDE)
    pics = pictures.astype(np.float64)
    coeffs = _sandwich(d, pics, d)
    ac = coeffs[:, _ROWS, _COLS]
    bits = ac > np.median(ac, axis=1, keepdims=True)
    packed = np.ascontiguousarray(np.packbits(bits, axis=1))  # (n, 8) bytes, first coefficient in the top bit
    hashes = packed.view(">u8").reshape(-1).astype(np.uint64)
    brightness = np.clip(np.rint(pics.mean(axis=(1, 2))), 0, 255).astype(np.uint8)
    detail = np.clip(np.rint(_detail(ac) * DETAIL_SCALE), 0, 255).astype(np.uint8)
    # coeffs[u, v]: u varies down the rows, v along them. Terms with u == 0 are vertical stripes.
    energy = coeffs**2
    total = energy.sum(axis=(1, 2)) - energy[:, 0, 0]
    along = energy[:, 0, 1:].sum(axis=1)
    across = energy[:, 1:, 0].sum(axis=1)
    cols, rows = along >= STRIPE_SHARE * total, across >= STRIPE_SHARE * total
    stripes = (cols | rows) & (total > 0)
    if stripes.any():
        hashes = np.where(stripes, stripe_codes(pics, rows & ~cols), hashes)
    return hashes, brightness, detail, stripes


def video_hash(thumbs: npt.NDArray[np.generic], fps: float | None = None) -> VideoHash | None:
    """The fingerprint of a video from its thumbnails in time order; None without any thumbnail.

    ``fps`` is the thumbnails' frame rate (the analysis pass's, by default).
    """
    n = len(thumbs)
    if n == 0:
        return None
    if fps is None:
        from kepu.media.analysis import ANALYSIS_FPS

        fps = float(ANALYSIS_FPS)
    per_step = max(1, round(fps * FRAME_STEP_S))
    top, bottom, left, right = picture_area(thumbs)
    steps = -(-n // per_step)
    means = np.stack([thumbs[s * per_step : (s + 1) * per_step].astype(np.float64).mean(axis=0) for s in range(steps)])

    def hashed(
        share: float, sx: float = 0.5, sy: float = 0.5
    ) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
        # The window of ``share`` of each side, with ``sx``/``sy`` of the margin left of/above it.
        dy, dx = (bottom - top) * (1 - share), (right - left) * (1 - share)
        rows = _area_matrix(top + dy * sy, bottom - dy * (1 - sy), thumbs.shape[1], HASH_SIDE)
        cols = _area_matrix(left + dx * sx, right - dx * (1 - sx), thumbs.shape[2], HASH_SIDE)
        return picture_hashes(_sandwich(rows, means, cols))

    hashes, brightness, detail, stripes = hashed(1.0)
    inner = [hashed(INNER_SHARE, sx, sy) for sx, sy in WINDOWS]
    windows = np.stack([w[0] for w in inner], axis=1)
    lit = np.stack([w[1] for w in inner], axis=1)
    flags = np.stack([stripes, *(w[3] for w in inner)], axis=1)
    return VideoHash(hashes, windows, brightness, detail, lit, flags, n)


# --- comparing two fingerprints ------------------------------------------------------------------


def distances(a: npt.NDArray[np.uint64], b: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    """Hamming distance of every hash of ``a`` to every hash of ``b``: shape (len(a), len(b))."""
    result: npt.NDArray[np.uint8] = np.bitwise_count(a[:, None] ^ b[None, :])
    return result


@dataclass(frozen=True)
class Match:
    """How two fingerprints line up at their best time offset (seconds of ``b`` after ``a``).

    ``matched_a`` of the ``informative_a`` informative seconds of ``a`` find a picture of ``b``
    within the distance at that offset (and likewise for ``b``); ``distance`` is the median
    Hamming distance of those matches.
    """

    offset_s: int
    matched_a: int
    informative_a: int
    matched_b: int
    informative_b: int
    distance: int

    @property
    def share(self) -> float:
        """The larger share of either video found in the other: 1.0 when one contains the other."""
        shares = [m / n for m, n in ((self.matched_a, self.informative_a), (self.matched_b, self.informative_b)) if n]
        return max(shares, default=0.0)

    @property
    def seconds(self) -> int:
        return min(self.matched_a, self.matched_b)

    @property
    def duplicate(self) -> bool:
        return self.share >= MIN_MATCH_SHARE and self.seconds >= MIN_MATCH_SECONDS


def _ways(whole: npt.NDArray[_T], windows: npt.NDArray[_T], *, first: bool = False) -> npt.NDArray[_T]:
    """One side's value of each picture :func:`match` compares, way by way: shape (1 + 2 × windows, seconds).

    The ways are whole against whole, then the whole of the first video against each window of the
    second, then each window of the first against the whole of the second; ``first`` says which side
    ``whole`` (per second) and ``windows`` (per second and window) belong to.
    """
    k = windows.shape[1]
    repeated = np.broadcast_to(whole, (k, len(whole)))
    parts = (whole[None], repeated, windows.T) if first else (whole[None], windows.T, repeated)
    return np.concatenate(parts)


def match(a: VideoHash, b: VideoHash, max_distance: int) -> Match | None:
    """The best consistent alignment of ``a`` and ``b``; None when no two pictures match at all.

    The pictures are compared in one way for the whole video: whole against whole, or the whole of
    one against one window of the other (the other cropped, by the same crop throughout). Letting
    each second pick its own window would give every second of a still layout
    ``1 + 2 × len(WINDOWS)`` chances to look like an unrelated one.
    """
    ia, ib = a.informative, b.informative
    if not ia.any() or not ib.any():
        return None
    n, m = len(a), len(b)
    # (ways, n, m): whole/whole, whole of a/window of b, window of a/whole of b.
    dist = np.bitwise_count(_ways(a.hashes, a.windows, first=True)[:, :, None] ^ _ways(b.hashes, b.windows)[:, None, :])
    # Which pictures each way compares are stripes: both must be, or neither, and stripes match within their
    # limit and within a closer brightness, each picture's own.
    striped_a = _ways(a.stripes[:, 0], a.stripes[:, 1:], first=True)[:, :, None]
    striped_b = _ways(b.stripes[:, 0], b.stripes[:, 1:])[:, None, :]
    both = striped_a & striped_b
    lit_a = _ways(a.brightness, a.window_brightness, first=True).astype(np.int16)[:, :, None]
    lit_b = _ways(b.brightness, b.window_brightness).astype(np.int16)[:, None, :]
    limit = np.where(both, min(max_distance, STRIPE_MAX_DISTANCE), max_distance)
    allowed = np.where(both, STRIPE_BRIGHTNESS_GAP, MAX_BRIGHTNESS_GAP)
    close = (dist <= limit) & (striped_a == striped_b) & (np.abs(lit_a - lit_b) <= allowed)
    close &= (ia[:, None] & ib[None, :])[None]
    way, i, j = np.nonzero(close)
    if len(i) == 0:
        return None
    # Vote for the offset j - i in each way of comparing; a frame pair votes once.
    span = n + m - 1
    votes = np.bincount(way * span + (j - i + n - 1), minlength=len(dist) * span).reshape(len(dist), span)
    kernel = np.ones(2 * OFFSET_SLACK + 1)
    window = np.stack([np.convolve(v.astype(np.float64), kernel, mode="same") for v in votes])

    def at(w: int, o: int) -> Match:
        near = (way == w) & (np.abs((j - i) - o) <= OFFSET_SLACK)
        return Match(
            offset_s=o,
            matched_a=len(np.unique(i[near])),
            informative_a=int(ia.sum()),
            matched_b=len(np.unique(j[near])),
            informative_b=int(ib.sum()),
            distance=int(np.median(dist[w, i[near], j[near]])),
        )

    # Every alignment with the most votes (a still picture ties many) is judged, so that the verdict
    # does not depend on which of the two videos is ``a``.
    ties = np.argwhere(window == window.max())[:MAX_TIES]
    found = [at(int(w), int(o) - (n - 1)) for w, o in ties]
    return max(found, key=lambda f: (f.duplicate, f.share, f.seconds, -f.distance))


# --- a whole campaign ----------------------------------------------------------------------------

#: Bands of the index: windows of :data:`BAND_BITS` consecutive bits of the hash, turned by
#: 64/BANDS bits from one band to the next. Two pictures a few bits apart agree on a whole band
#: with fair odds; unrelated pictures on a 28-bit band about once in 268 million.
BANDS = 24
BAND_BITS = 28
#: A band value shared by more entries than this says nothing about any of them (a common title
#: card, a logo, a test pattern: like a stop-word in a text index): it proposes no pair. At 5,000
#: entries a chance 28-bit collision puts 2 or 3 entries in a bucket; a copy and its original 2,
#: and since the windows of one picture are indexed too, a source with seven copies and a
#: look-alike or two (the bench's families) up to about 20.
MAX_BUCKET = 32
#: Two entries become a candidate pair when at least this many distinct indexed hashes of one of
#: them share a band value with the other (or all of its hashes, when it has fewer). A chance
#: collision of two unrelated pictures involves one hash; a copy shares one a second.
MIN_SHARED = 2
#: ... or when one hash of one of them meets the other in at least this many bands: the two
#: pictures agree on a long run of bits, as a still picture and its copy do (a still layout has
#: one picture, and often one hash of it, to share). A chance agreement on one 28-bit band reaches
#: into the next band in about one case of six.
MIN_BANDS = 6
#: A second within this many bits of the second before it adds nothing to the index (a still
#: picture gives one or two hashes).
KEYFRAME_BITS = 3


def _band_values(hashes: npt.NDArray[np.uint64]) -> list[npt.NDArray[np.uint64]]:
    """For each band, each hash's window of bits as one integer."""
    mask = np.uint64((1 << BAND_BITS) - 1)
    out = []
    for k in range(BANDS):
        r = np.uint64(k * 64 // BANDS)
        turned = (hashes >> r) | (hashes << np.uint64(64 - int(r))) if r else hashes
        out.append(turned & mask)
    return out


def keyframes(h: VideoHash) -> npt.NDArray[np.uint64]:
    """The distinct hashes (whole picture and each window) of the informative seconds of ``h`` that
    differ by more than :data:`KEYFRAME_BITS` from the informative second before: flat pictures
    (black, fades, plain fields) and the repeats of a still picture are left out of the index."""
    kept = []
    for seq in (h.hashes[h.informative], *h.windows[h.informative].T):
        if len(seq):
            moved = np.r_[True, np.bitwise_count(seq[1:] ^ seq[:-1]) > KEYFRAME_BITS]
            kept.append(seq[moved])
    return np.unique(np.concatenate(kept)) if kept else np.zeros(0, dtype=np.uint64)


def candidate_pairs(hashes: Mapping[str, VideoHash]) -> set[tuple[int, int]]:
    """Pairs of entry positions (in sorted id order) worth comparing with :func:`match`.

    Every key picture (:func:`keyframes`) goes in :data:`BANDS` buckets, one per band value.
    Buckets of more than :data:`MAX_BUCKET` entries are dropped; two entries in one of the others
    share that hash. A pair is kept when one of the two entries has at least :data:`MIN_SHARED`
    distinct hashes shared with the other (all of them when either has fewer), or one hash that
    meets the other in :data:`MIN_BANDS` bands (a still picture and its copy): a single chance
    collision proposes nothing. All of it is sorting and counting of numpy arrays.
    """
    names = sorted(hashes)
    if len(names) < 2:
        return set()
    parts = [keyframes(hashes[name]) for name in names]
    sizes_per_entry = np.array([len(p) for p in parts], dtype=np.int64)
    all_hashes = np.concatenate(parts)
    total = np.uint64(max(1, len(all_hashes)))
    owner = np.repeat(np.arange(len(names), dtype=np.uint64), sizes_per_entry)
    count = np.uint64(len(names))
    # (band value, entry, hash) packed in one integer when they fit, so that one plain sort of
    # integers does what np.unique's argsort did five times slower.
    owner_bits = int(count - np.uint64(1)).bit_length() or 1
    id_bits = int(total - np.uint64(1)).bit_length() or 1
    packed_ok = BAND_BITS + owner_bits + id_bits <= 64
    ids = np.arange(len(all_hashes), dtype=np.uint64)
    found: list[npt.NDArray[np.uint64]] = []
    for values in _band_values(all_hashes):
        # One key per distinct (band value, entry), sorted by value: runs of equal values are
        # buckets; the first hash of the entry with that value stands for it.
        if packed_ok:
            packed = np.sort((values << np.uint64(owner_bits + id_bits)) | (owner << np.uint64(id_bits)) | ids)
            entry_keys = packed >> np.uint64(id_bits)
            firsts = np.r_[True, entry_keys[1:] != entry_keys[:-1]]
            hash_id = packed[firsts] & np.uint64((1 << id_bits) - 1)
            keys = entry_keys[firsts]
            vals, ents = keys >> np.uint64(owner_bits), keys & np.uint64((1 << owner_bits) - 1)
        else:
            keys, first = np.unique(values * count + owner, return_index=True)
            vals, ents = keys // count, keys % count
            hash_id = first.astype(np.uint64)
        starts = np.flatnonzero(np.r_[True, vals[1:] != vals[:-1]])
        sizes = np.diff(np.r_[starts, len(vals)])
        for size in np.unique(sizes[(sizes > 1) & (sizes <= MAX_BUCKET)]).tolist():
            at = starts[sizes == size][:, None] + np.arange(size)  # (buckets, size), entries ascending
            x, y = np.triu_indices(size, k=1)
            pair = ents[at[:, x]] * count + ents[at[:, y]]
            # (pair, side, hash of that side's entry), for both sides: the same hash found again
            # in another band counts once, and which entry is the lower one does not matter.
            found.append(((pair * np.uint64(2)) * total + hash_id[at[:, x]]).ravel())
            found.append(((pair * np.uint64(2) + np.uint64(1)) * total + hash_id[at[:, y]]).ravel())
    if not found:
        return set()
    # How many bands each (pair, side, hash) met in, then per pair and side: how many distinct
    # hashes, and the most bands one hash met in; a pair is kept when either side shows enough.
    keys, bands = np.unique(np.concatenate(found), return_counts=True)
    sided, first, shared = np.unique(keys // total, return_index=True, return_counts=True)
    most = np.maximum.reduceat(bands, first)
    pair = sided // np.uint64(2)
    lower = (pair // count).astype(np.int64)
    upper = (pair % count).astype(np.int64)
    need = np.minimum(MIN_SHARED, np.minimum(sizes_per_entry[lower], sizes_per_entry[upper]))
    keep = (shared >= need) | (most >= MIN_BANDS)
    return set(zip(lower[keep].tolist(), upper[keep].tolist(), strict=True))


def duplicate_pairs(hashes: Mapping[str, VideoHash], max_distance: int) -> list[tuple[str, str, Match]]:
    """Every pair of entries that are the same video (:attr:`Match.duplicate`).

    Each pair appears once, its two ids in sorted order; the list is sorted by ids.
    """
    names = sorted(hashes)
    pairs = []
    for x, y in sorted(candidate_pairs(hashes)):
        a, b = names[x], names[y]
        found = match(hashes[a], hashes[b], max_distance)
        if found is not None and found.duplicate:
            pairs.append((a, b, found))
    return pairs


def duplicate_findings(
    campaign: Campaign, entry: str, pairs: Iterable[tuple[str, str, Match]], *, labels: Mapping[str, str] | None = None
) -> list[Finding]:
    """``O-DUPLICATE-CONTENT`` findings of ``entry``: one per other entry it duplicates.

    ``labels`` maps entry ids to what a reviewer recognises (e.g. the folder name); ids are used
    where there is no label. The value is the share of seconds found in the other video.
    """
    limit = campaign.originality.perceptual_hash_max_distance
    names = labels or {}
    out = []
    for a, b, found in pairs:
        if entry not in (a, b):
            continue
        other = b if a == entry else a
        shown = names.get(other, other)
        offset = found.offset_s if a == entry else -found.offset_s
        where = f"，对方晚 {offset} 秒" if offset > 0 else f"，对方早 {-offset} 秒" if offset < 0 else ""
        where_en = f", {abs(offset)} s {'later' if offset > 0 else 'earlier'} in it" if offset else ""
        out.append(
            make_finding(
                campaign,
                "O-DUPLICATE-CONTENT",
                detail_zh=f"与作品“{shown}”有 {found.seconds} 秒画面相同（占 {found.share:.0%}{where}，"
                f"逐秒画面指纹相差不超过 {limit} 位），疑为同一视频",
                detail_en=f"{found.seconds} s of its picture match “{shown}” ({found.share:.0%} of the shorter"
                f"{where_en}; per-second fingerprints within {limit} bits): likely the same video",
                value=f"{found.share:.2f}",
                limit=f"{MIN_MATCH_SHARE:.2f}",
                stage=STAGE,
            )
        )
    return out
