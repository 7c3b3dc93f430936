"""A compact perceptual fingerprint of a whole video, and finding the same video among entries.

The analysis pass (:mod:`kepu.media.analysis`) already writes a 32×32 grey thumbnail of every
low-rate frame to a pipe, so the fingerprint costs no extra decode. :func:`video_hash` splits those
thumbnails into :data:`SEGMENTS` equal stretches of time, averages each stretch into one picture,
and keeps :data:`BITS_PER_SEGMENT` bits of its low-frequency DCT (each coefficient above or below
their median, as pHash does for images): 64 bits in all. Re-encoding, resizing, bitrate and small
colour changes move none of that; a different programme changes about half of the bits.

:func:`duplicate_pairs` compares every pair of entries by Hamming distance against the campaign's
``originality.perceptual_hash_max_distance``; :func:`duplicate_findings` turns the pairs of one entry
into ``O-DUPLICATE-CONTENT`` warnings that name the other submission.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from kepu.campaign import Campaign
from kepu.findings import Finding, make_finding

#: Side of the grey thumbnails the analysis pass writes.
THUMB_SIZE = 32
SEGMENTS = 8
BITS_PER_SEGMENT = 8
HASH_BITS = SEGMENTS * BITS_PER_SEGMENT
# The eight lowest AC frequencies in zig-zag order (the DC term only says how bright a stretch is).
_ZIGZAG_AC = ((0, 1), (1, 0), (2, 0), (1, 1), (0, 2), (0, 3), (1, 2), (2, 1))

STAGE = "media"


@dataclass(frozen=True)
class VideoHash:
    """A 64-bit video fingerprint; ``frames`` is how many thumbnails it was made from."""

    bits: int
    frames: int
    nbits: int = HASH_BITS

    def hex(self) -> str:
        return f"{self.bits:0{self.nbits // 4}x}"

    @classmethod
    def from_hex(cls, text: str, *, frames: int = 0) -> VideoHash:
        return cls(bits=int(text, 16), frames=frames, nbits=len(text) * 4)


def hamming(a: VideoHash, b: VideoHash) -> int:
    """Number of differing bits; hashes of different lengths cannot be compared."""
    if a.nbits != b.nbits:
        raise ValueError(f"cannot compare a {a.nbits}-bit hash with a {b.nbits}-bit hash")
    return (a.bits ^ b.bits).bit_count()


def thumbnails_from_raw(data: bytes, size: int = THUMB_SIZE) -> npt.NDArray[np.uint8]:
    """The ``gray`` rawvideo bytes of the analysis pass as an array of shape (frames, size, size).

    A trailing partial frame (a killed or truncated run) is dropped.
    """
    frame = size * size
    count = len(data) // frame
    return np.frombuffer(data[: count * frame], dtype=np.uint8).reshape(count, size, size)


@lru_cache(maxsize=4)
def _dct_matrix(n: int) -> npt.NDArray[np.float64]:
    # Orthonormal DCT-II basis; numpy has no DCT and this is the only one needed.
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


def video_hash(thumbs: npt.NDArray[np.generic]) -> VideoHash | None:
    """The fingerprint of a video from its thumbnails in time order; None without any thumbnail."""
    n = len(thumbs)
    if n == 0:
        return None
    frames = thumbs.astype(np.float64)
    d = _dct_matrix(frames.shape[1])
    bits = 0
    # Segment bounds by position, so a copy with another frame rate or length of tail still lines up.
    bounds = np.linspace(0, n, SEGMENTS + 1)
    for s in range(SEGMENTS):
        lo = int(bounds[s])
        hi = max(int(bounds[s + 1]), lo + 1)
        mean = frames[lo:hi].mean(axis=0)
        coeffs = d @ mean @ d.T
        ac = np.array([coeffs[r, c] for r, c in _ZIGZAG_AC])
        median = float(np.median(ac))
        for value in ac:
            bits = (bits << 1) | int(value > median)
    return VideoHash(bits=bits, frames=n)


def duplicate_pairs(hashes: Mapping[str, VideoHash], max_distance: int) -> list[tuple[str, str, int]]:
    """Every pair of entries whose fingerprints are at most ``max_distance`` bits apart.

    Each pair appears once, its two ids in sorted order; the list is sorted by distance, then ids.
    """
    pairs = []
    for a, b in itertools.combinations(sorted(hashes), 2):
        ha, hb = hashes[a], hashes[b]
        if ha.nbits != hb.nbits:
            continue  # made by another version of the fingerprint: not comparable
        dist = hamming(ha, hb)
        if dist <= max_distance:
            pairs.append((a, b, dist))
    return sorted(pairs, key=lambda p: (p[2], p[0], p[1]))


def duplicate_findings(
    campaign: Campaign, entry: str, pairs: Iterable[tuple[str, str, int]], *, labels: Mapping[str, str] | None = None
) -> list[Finding]:
    """``O-DUPLICATE-CONTENT`` findings of ``entry``: one per other entry it duplicates.

    ``labels`` maps entry ids to what a reviewer recognises (e.g. the folder name); ids are used
    where there is no label.
    """
    limit = campaign.originality.perceptual_hash_max_distance
    names = labels or {}
    out = []
    for a, b, dist in pairs:
        if entry not in (a, b):
            continue
        other = b if a == entry else a
        shown = names.get(other, other)
        out.append(
            make_finding(
                campaign,
                "O-DUPLICATE-CONTENT",
                detail_zh=f"与作品“{shown}”的画面指纹仅相差 {dist} 位（上限 {limit} 位），疑为同一视频",
                detail_en=f"its picture fingerprint is {dist} bit(s) from that of “{shown}” "
                f"(limit {limit}): likely the same video",
                value=dist,
                limit=limit,
                stage=STAGE,
            )
        )
    return out
