"""Encoding presets of the publication copy, as data.

Campaign rules (what is playable, the loudness band, the true-peak limit) come from the campaign file;
this module holds only the engineering choices of *how* kepu encodes: picture sizes, x264 settings,
audio settings, the loudness normalisation targets and the poster/thumbnail geometry. A different
trade-off (e.g. a slower x264 preset on bigger workers) is a different :class:`RenditionPresets`
value handed to :func:`kepu.media.rendition.plan_rendition`, never a code change.

Choices and why:

* **x264 ``faster``, CRF 20, capped at 8 Mbit/s (1080p) / 4 Mbit/s (720p).** A submission lasts up to
  8 minutes. ``bench/bench_rendition.py`` measured both sizes of a 1080p25 source at 0.31× real time
  on a 2-core machine under a load average of 5–11, i.e. under half an hour for 8 minutes in the
  worst case; ``medium`` takes about 1.4× as long as ``faster`` (short 1080p trial) for a few percent
  of bitrate at equal quality. Capped CRF keeps simple pictures small and bounds the peaks that
  platforms and phones choke on. ``faster`` keeps CABAC and 8x8 transforms, so the stream really is
  High profile.
* **Level from the frame rate**: 4.1 for 1080p up to 30 fps, 4.2 up to 60 fps (3.1/3.2 for 720p).
* **Keyframe every 2 s**, so a player can seek and a platform can cut segments anywhere.
* **AAC-LC 160 kbit/s, 48 kHz, stereo**: narration-friendly, accepted by every platform.
* **Loudness**: the target integrated loudness is the centre of the campaign's warning band (−19 LUFS
  for the 2022 band −24…−14), so the copy sits inside the band with margin on both sides after the
  platform's own processing. The true-peak target is 0.5 dB under the campaign's limit (−1.5 dBTP
  under −1 dBTP). The loudness range target is 11 LU (EBU R128 s1 guidance for general programmes),
  raised to the measured range when that is wider but still inside the campaign's ``lra_max_lu``, so
  that loudnorm can stay in its linear mode (one gain for the whole file, no pumping).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class VideoPreset:
    """One encoded picture size of the publication copy."""

    #: Short name used in file names and results, e.g. ``1080p``.
    name: str
    width: int
    height: int
    #: x264 speed preset (``ultrafast`` … ``placebo``).
    x264_preset: str
    profile: str
    #: ``(max frame rate, H.264 level)`` pairs, smallest first; the first that fits is used.
    levels: tuple[tuple[float, str], ...]
    crf: float
    maxrate_kbps: int
    bufsize_kbps: int
    gop_seconds: float

    def level_for(self, fps: Fraction) -> str:
        """The H.264 level for this size at ``fps``; the highest listed one above the last bound."""
        for max_fps, level in self.levels:
            if float(fps) <= max_fps + 1e-6:
                return level
        return self.levels[-1][1]


@dataclass(frozen=True)
class AudioPreset:
    codec: str
    bitrate_kbps: int
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class LoudnessPreset:
    """How far under the campaign's limits the normalised copy aims."""

    #: The target true peak is this many dB under ``audio.true_peak_max_dbtp`` of the campaign.
    true_peak_margin_db: float
    #: Loudness range target (LU) when the measured range is narrower.
    lra_target_lu: float


@dataclass(frozen=True)
class StillPreset:
    """Poster and thumbnail geometry and JPEG quality (ffmpeg ``-q:v``, 2 = best … 31)."""

    poster_width: int
    poster_height: int
    poster_quality: int
    #: Where the poster is looked for, as a fraction of the duration.
    poster_at: float
    #: Length of the window searched for a representative, non-black poster frame.
    poster_window_s: float
    #: A frame whose average luma (0–255) is at or below this counts as black for the poster.
    poster_min_luma: float
    thumbnail_width: int
    thumbnail_height: int
    thumbnail_quality: int
    thumbnail_count: int


@dataclass(frozen=True)
class RenditionPresets:
    """Everything :mod:`kepu.media.rendition` needs besides the campaign."""

    #: Sizes written by an encode, the main (largest) first.
    encode_outputs: tuple[VideoPreset, ...]
    audio: AudioPreset
    loudness: LoudnessPreset
    stills: StillPreset
    #: Frame rates an encode may write; a source's rate is snapped to the nearest one.
    standard_frame_rates: tuple[Fraction, ...]
    #: Used when a source states no usable frame rate at all.
    fallback_frame_rate: Fraction
    #: A source counts as constant frame rate when its average and base rates differ by at most
    #: this fraction.
    cfr_tolerance: float
    #: Subtitle codecs that can be carried into MP4 as ``mov_text``; bitmap subtitles cannot.
    text_subtitle_codecs: tuple[str, ...]

    @property
    def main(self) -> VideoPreset:
        return self.encode_outputs[0]


MAIN_1080P = VideoPreset(
    name="1080p",
    width=1920,
    height=1080,
    x264_preset="faster",
    profile="high",
    levels=((30.0, "4.1"), (60.0, "4.2")),
    crf=20.0,
    maxrate_kbps=8000,
    bufsize_kbps=16000,
    gop_seconds=2.0,
)

SD_720P = VideoPreset(
    name="720p",
    width=1280,
    height=720,
    x264_preset="faster",
    profile="high",
    levels=((30.0, "3.1"), (60.0, "3.2")),
    crf=21.0,
    maxrate_kbps=4000,
    bufsize_kbps=8000,
    gop_seconds=2.0,
)

AAC_STEREO = AudioPreset(codec="aac", bitrate_kbps=160, sample_rate=48000, channels=2)

LOUDNESS = LoudnessPreset(true_peak_margin_db=0.5, lra_target_lu=11.0)

STILLS = StillPreset(
    poster_width=1920,
    poster_height=1080,
    poster_quality=2,
    poster_at=0.10,
    poster_window_s=3.0,
    poster_min_luma=32.0,
    thumbnail_width=320,
    thumbnail_height=180,
    thumbnail_quality=4,
    thumbnail_count=4,
)

STANDARD_FRAME_RATES: tuple[Fraction, ...] = (
    Fraction(24000, 1001),
    Fraction(24),
    Fraction(25),
    Fraction(30000, 1001),
    Fraction(30),
    Fraction(50),
    Fraction(60000, 1001),
    Fraction(60),
)

DEFAULT_PRESETS = RenditionPresets(
    encode_outputs=(MAIN_1080P, SD_720P),
    audio=AAC_STEREO,
    loudness=LOUDNESS,
    stills=STILLS,
    standard_frame_rates=STANDARD_FRAME_RATES,
    # China's broadcast rate (PAL heritage).
    fallback_frame_rate=Fraction(25),
    cfr_tolerance=0.002,
    text_subtitle_codecs=("mov_text", "subrip", "srt", "ass", "ssa", "webvtt", "text"),
)


@dataclass(frozen=True)
class CoverPreset:
    """The normalised cover image (:func:`kepu.intake.images.normalise_cover`)."""

    width: int
    height: int
    #: ffmpeg ``-q:v`` of the MJPEG encoder; 3 is about libjpeg quality 90.
    jpeg_q: int
    #: A picture within this fraction of the frame's shape is scaled and trimmed, not padded.
    aspect_tolerance: float
    #: Size of the blurred background before it is scaled up (small: cheap and very soft).
    background_width: int
    background_height: int
    background_blur: int
    #: Decoding refuses pictures above this many pixels (a decompression bomb, not a cover).
    max_source_pixels: int


COVER = CoverPreset(
    width=1920,
    height=1080,
    jpeg_q=3,
    aspect_tolerance=0.01,
    background_width=192,
    background_height=108,
    background_blur=6,
    max_source_pixels=100_000_000,
)
