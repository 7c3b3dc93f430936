"""The campaign file: every rule of a call as data, loaded by a strict model.

An unknown or misspelt key, a duplicate key, a missing value or a value of the wrong type is an
error that names the key and its line, so next year's call is a new file and never a code change.
"""

from __future__ import annotations

import hashlib
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kepu.errors import CampaignError
from kepu.rules import CODES, Severity

log = logging.getLogger(__name__)

Kind = Literal["video", "account"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class CampaignInfo(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    name_zh: str
    name_en: str
    organiser_zh: str
    organiser_en: str
    notice: str
    timezone: str


class KindInfo(_Strict):
    label_zh: str
    label_en: str


class Quota(_Strict):
    account: int = Field(ge=0)
    video: int = Field(ge=0)

    def for_kind(self, kind: Kind) -> int:
        return self.account if kind == "account" else self.video


class Channel(_Strict):
    label_zh: str
    label_en: str
    quota: Quota
    membership_required: bool
    # Entries are sent by a recommending unit that seals the form's 推荐单位 block (M-FORM-SEAL).
    recommender_seal: bool = False


class QuotaPolicy(_Strict):
    keep: Literal["earliest_received"]


class Extension(_Strict):
    # Times carry their UTC offset (e.g. +08:00): a deadline without one is ambiguous.
    until: AwareDatetime
    channels: list[str] = Field(default_factory=list)
    provinces: list[str] = Field(default_factory=list)
    reason: str = ""


class Deadline(_Strict):
    at: AwareDatetime
    extensions: list[Extension] = Field(default_factory=list)


class CoverRules(_Strict):
    min_width: int = Field(gt=0)
    min_height: int = Field(gt=0)
    aspect_ratio: tuple[int, int]
    aspect_tolerance: float = Field(ge=0, lt=1)


class ArchiveLimits(_Strict):
    max_total_bytes: int = Field(gt=0)
    max_members: int = Field(gt=0)
    max_expansion_ratio: float = Field(gt=1)


class PackageRules(_Strict):
    folder_name_pattern: str
    folder_name_separators: list[str]
    synopsis_max_chars: int = Field(gt=0)
    cover: CoverRules
    video_extensions: list[str]
    image_extensions: list[str]
    text_extensions: list[str]
    form_extensions: list[str]
    subtitle_extensions: list[str]
    archive_extensions: list[str]
    archive_limits: ArchiveLimits
    video_form_fields: list[str]
    account_form_fields: list[str]

    @field_validator(
        "video_extensions",
        "image_extensions",
        "text_extensions",
        "form_extensions",
        "subtitle_extensions",
        "archive_extensions",
    )
    @classmethod
    def _dotted_lower(cls, v: list[str]) -> list[str]:
        bad = [e for e in v if not e.startswith(".") or e != e.lower()]
        if bad:
            raise ValueError(f"extensions must be lower case and start with a dot: {bad}")
        return v


class AccountRules(_Strict):
    min_works: int = Field(ge=0)
    min_followers: int = Field(ge=0)


class Range(_Strict):
    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class SizeBand(_Strict):
    error_min: int = Field(gt=0)
    error_max: int = Field(gt=0)
    warn_min: int = Field(gt=0)
    warn_max: int = Field(gt=0)

    @model_validator(mode="after")
    def _nested(self) -> SizeBand:
        if not self.error_min <= self.warn_min <= self.warn_max <= self.error_max:
            raise ValueError("need error_min <= warn_min <= warn_max <= error_max")
        return self


class FrameTiming(_Strict):
    gap_factor: float = Field(gt=1)
    error_drop_ratio: float = Field(gt=0, lt=1)
    error_gap_s: float = Field(gt=0)


class Segment(_Strict):
    min_s: float = Field(gt=0)
    edge_s: float = Field(ge=0)


class Clarity(_Strict):
    min_bits_per_pixel: dict[str, float]
    max_blur: float = Field(gt=0)


class Levels(_Strict):
    max_out_of_range_ratio: float = Field(gt=0, lt=1)
    max_saturation: float = Field(gt=0)


class VideoRules(_Strict):
    container: Literal["mp4"]
    duration_s: Range
    aspect_ratio: tuple[int, int]
    aspect_tolerance: float = Field(ge=0, lt=1)
    min_width: int = Field(gt=0)
    min_height: int = Field(gt=0)
    size_bytes: SizeBand
    frame_timing: FrameTiming
    freeze: Segment
    black: Segment
    clarity: Clarity
    levels: Levels
    playable_video_codecs: list[str]
    playable_audio_codecs: list[str]
    #: V-TRUNCATED: how far (s) before the header's duration the decoded picture or sound may end.
    truncation_tolerance_s: float = Field(gt=0)
    #: M-UNREADABLE: a video file with more streams than this is not analysed (opening each costs memory).
    max_streams: int = Field(gt=0)

    @property
    def aspect(self) -> float:
        return self.aspect_ratio[0] / self.aspect_ratio[1]


class LoudnessBand(_Strict):
    warn_min: float
    warn_max: float
    error_min: float
    error_max: float

    @model_validator(mode="after")
    def _nested(self) -> LoudnessBand:
        if not self.error_min <= self.warn_min <= self.warn_max <= self.error_max:
            raise ValueError("need error_min <= warn_min <= warn_max <= error_max")
        return self


class SyncLimits(_Strict):
    warn_audio_lead: float = Field(gt=0)
    warn_audio_lag: float = Field(gt=0)
    error: float = Field(gt=0)


class NoiseRules(_Strict):
    """A-NOISE: the level of the quietest windows of the body, when they hold noise and not a tone or music."""

    #: The quietest share of the body's windows taken as the pauses; the floor is the top of that share.
    quiet_share: float = Field(gt=0, lt=1)
    #: Spectral flatness (0–1) at or above which the pauses hold broadband noise.
    min_flatness: float = Field(gt=0, le=1)
    #: Share of the pauses' power at the mains harmonics at or above which they hold hum.
    min_hum_share: float = Field(gt=0, le=1)
    #: Mains frequencies (Hz) whose harmonics are hum.
    mains_hz: list[float] = Field(min_length=1)


class AudioRules(_Strict):
    loudness_lufs: LoudnessBand
    true_peak_max_dbtp: float
    clipping_max_runs: int = Field(ge=0)
    lra_max_lu: float = Field(gt=0)
    noise_floor_max_dbfs: float
    noise: NoiseRules
    silence_min_s: float = Field(gt=0)
    sync_ms: SyncLimits


class LanguageRules(_Strict):
    subtitle_languages: list[str]
    #: Burned-in subtitles: moments of speech read by OCR (0: none), the share of them that must show
    #: Chinese text, and what counts as Chinese text (Han characters in a line, OCR confidence).
    ocr_sample_frames: int = Field(ge=0)
    ocr_min_coverage: float = Field(gt=0, le=1)
    ocr_min_chars: int = Field(ge=1)
    ocr_min_confidence: float = Field(ge=0, le=1)


class StructureRules(_Strict):
    edge_window_s: float = Field(gt=0)


class OriginalityRules(_Strict):
    perceptual_hash_max_distance: int = Field(ge=0)


class FindingSpec(_Strict):
    severity: Severity
    soft_severity: Severity | None = None
    title_zh: str
    title_en: str


class ChecklistItem(_Strict):
    key: str
    zh: str
    en: str


class Criterion(_Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    zh: str
    en: str
    weight: float = Field(gt=0)
    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> Criterion:
        if self.min >= self.max:
            raise ValueError(f"criterion {self.key}: min {self.min:g} must be below max {self.max:g}")
        return self


#: How a stage decides: the automated verdicts plus a person's decision on every ``review`` item, a
#: reviewer's pass/fail on every entry, or judges' scores.
StageType = Literal["formal_review", "decision", "scoring"]
AwardKind = Literal["excellent_video", "excellent_account", "best_video"]

#: Each award: the kind of entry it goes to, the field of :class:`Awards` counting it, and the award an
#: entry must already hold (the 10 best videos are chosen among the 200 excellent ones).
AWARD_SPECS: dict[str, tuple[Kind, str, str | None]] = {
    "excellent_video": ("video", "excellent_videos", None),
    "excellent_account": ("account", "excellent_accounts", None),
    "best_video": ("video", "best_videos", "excellent_video"),
}


class Stage(_Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    zh: str
    en: str
    type: StageType
    #: Kinds of entry the stage handles.
    kinds: list[Kind] = Field(default_factory=lambda: list[Kind](("video", "account")), min_length=1)
    #: Scoring: judges per entry; absent means the whole panel (every judge without a conflict).
    min_judges_per_entry: int | None = Field(default=None, ge=1)
    #: Scoring: entries of each kind scored by every judge, so that judges can be calibrated.
    linking_set: int = Field(default=0, ge=0)
    #: Scoring: an entry with fewer accepted scores is listed, not ranked.
    min_scores: int | None = Field(default=None, ge=1)
    #: Scoring: the best N entries of each kind of the previous scoring stage; absent means every
    #: entry that passed the formal review and the compliance decision.
    entrants: dict[Kind, int] | None = None
    #: Scoring: the awards this stage's ranking decides.
    awards: list[AwardKind] = Field(default_factory=list)

    @model_validator(mode="after")
    def _fields_fit_type(self) -> Stage:
        if self.type == "scoring":
            if self.min_scores is None:
                raise ValueError(f"scoring stage {self.key} needs min_scores")
            if self.min_judges_per_entry is not None and self.min_scores > self.min_judges_per_entry:
                raise ValueError(
                    f"stage {self.key}: min_scores {self.min_scores} exceeds min_judges_per_entry "
                    f"{self.min_judges_per_entry}: no entry could be ranked"
                )
            for award in self.awards:
                if AWARD_SPECS[award][0] not in self.kinds:
                    raise ValueError(f"stage {self.key} awards {award} but does not judge {AWARD_SPECS[award][0]}")
            bad = [k for k in (self.entrants or {}) if k not in self.kinds]
            if bad:
                raise ValueError(f"stage {self.key} takes entrants of kind(s) it does not judge: {bad}")
        else:
            given = [
                name
                for name, value in (
                    ("min_judges_per_entry", self.min_judges_per_entry),
                    ("min_scores", self.min_scores),
                    ("entrants", self.entrants),
                    ("linking_set", self.linking_set or None),
                    ("awards", self.awards or None),
                )
                if value is not None
            ]
            if given:
                raise ValueError(f"stage {self.key} ({self.type}) is not scored: {', '.join(given)} do not apply")
        return self


class Awards(_Strict):
    excellent_videos: int = Field(ge=0)
    excellent_accounts: int = Field(ge=0)
    best_videos: int = Field(ge=0)

    def count(self, award: str) -> int:
        return int(getattr(self, AWARD_SPECS[award][1]))


class Conflicts(_Strict):
    same_unit: bool
    same_province: bool


class Aggregation(_Strict):
    #: How an entry's score is estimated: ``offsets`` (default) fits score = quality + judge offset by
    #: robust least squares; ``trimmed_mean`` takes the trimmed mean of the normalised scores.
    estimator: Literal["offsets", "trimmed_mean"] = "offsets"
    #: Per-judge normalisation of the weighted scores before they are combined (``trimmed_mean``).
    normalise: Literal["zscore", "none"]
    #: Fraction cut from each end when an entry has at least ``trim_min_scores`` scores.
    trim_fraction: float = Field(ge=0, lt=0.5)
    trim_min_scores: int = Field(ge=3)


class AssignmentRules(_Strict):
    #: Default seed of the random but reproducible assignment (a DAG run may give another).
    seed: int = Field(ge=0)
    #: Give an entry to judges whose expertise names its category (类别（专业领域）) when balance allows.
    prefer_expertise: bool


class PortalRules(_Strict):
    """The judges' portal (kepu.judging.portal): how long a judge's link lives, and what a judge sees."""

    #: A link of a round without a deadline expires this many days after it is issued.
    valid_days: int = Field(default=45, ge=1)
    #: A link of a round with a deadline expires this many days after the deadline.
    grace_days: int = Field(default=7, ge=0)
    #: Blind judging: judges do not see an entry's unit and province.
    blind: bool = False


class Judging(_Strict):
    criteria: dict[Kind, list[Criterion]]
    stages: list[Stage]
    awards: Awards
    tie_break: list[Literal["higher_median", "more_scores", "earlier_received"]]
    conflicts: Conflicts
    aggregation: Aggregation
    assignment: AssignmentRules
    #: Ranks either side of each cut-off (rank 200, 20, 10) listed for a second look.
    cutoff_band: int = Field(ge=0)
    portal: PortalRules = Field(default_factory=PortalRules)

    @model_validator(mode="after")
    def _weights(self) -> Judging:
        for kind, crits in self.criteria.items():
            total = sum(c.weight for c in crits)
            if abs(total - 1.0) > 1e-6:
                raise ValueError(f"weights of the {kind} criteria add up to {total:g}, not 1")
            keys = [c.key for c in crits]
            if len(set(keys)) != len(keys):
                raise ValueError(f"the {kind} criteria repeat a key: {keys}")
        if self.awards.best_videos > self.awards.excellent_videos:
            raise ValueError("best_videos are chosen among the excellent videos: it cannot be larger")
        if len(set(self.tie_break)) != len(self.tie_break):
            raise ValueError(f"tie_break repeats a rule: {self.tie_break}")
        keys = [s.key for s in self.stages]
        if len(set(keys)) != len(keys):
            raise ValueError(f"stage keys repeat: {keys}")
        order = {"formal_review": 0, "decision": 1, "scoring": 2}
        if [order[s.type] for s in self.stages] != sorted(order[s.type] for s in self.stages):
            raise ValueError("stages must run formal review first, then decisions, then scoring rounds")
        if [s.type for s in self.stages].count("formal_review") != 1:
            raise ValueError("exactly one stage of type formal_review is needed")
        awarded: dict[str, str] = {}
        scoring = [s for s in self.stages if s.type == "scoring"]
        if scoring and scoring[0].entrants is not None:
            raise ValueError(f"the first scoring stage {scoring[0].key} has no previous stage to take entrants from")
        for stage in scoring:
            for award in stage.awards:
                if award in awarded:
                    raise ValueError(f"award {award} is given by both {awarded[award]} and {stage.key}")
                needs = AWARD_SPECS[award][2]
                if needs is not None and needs not in awarded:
                    raise ValueError(f"{award} is chosen among {needs}, which must be awarded by an earlier stage")
                awarded[award] = stage.key
        missing = [a for a in AWARD_SPECS if self.awards.count(a) and a not in awarded]
        if missing:
            raise ValueError(f"no scoring stage awards {', '.join(missing)}")
        for kind in {k for s in scoring for k in s.kinds}:
            if kind not in self.criteria:
                raise ValueError(f"a scoring stage judges {kind} entries but there are no {kind} criteria")
        return self

    def stage(self, key: str) -> Stage:
        for s in self.stages:
            if s.key == key:
                return s
        known = ", ".join(s.key for s in self.stages)
        raise CampaignError(
            "<campaign>",
            [f"没有评审阶段 {key!r}（活动文件中有 {known}）· no judging stage {key!r}; the campaign has {known}"],
        )

    @property
    def scoring_stages(self) -> list[Stage]:
        return [s for s in self.stages if s.type == "scoring"]

    def previous_scoring(self, key: str) -> Stage | None:
        """The scoring stage before ``key``, or None for the first one."""
        keys = [s.key for s in self.scoring_stages]
        i = keys.index(key)
        return self.scoring_stages[i - 1] if i else None

    def award_stage(self, award: str) -> Stage | None:
        return next((s for s in self.scoring_stages if award in s.awards), None)


# --- certificates, publication, notifications -----------------------------------------------------------

#: Placeholders a certificate's or a message's text may use.
TEXT_FIELDS: tuple[str, ...] = ("holder", "title", "unit", "campaign", "campaign_en", "organiser", "organiser_en")


def _check_placeholders(text: str, where: str) -> None:
    import string

    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    unknown = sorted(n for n in names if n not in TEXT_FIELDS)
    if unknown:
        raise ValueError(f"{where} uses unknown placeholder(s) {unknown}; known: {', '.join(TEXT_FIELDS)}")


class CertificateType(_Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    #: The award whose holders get this certificate.
    award: AwardKind
    #: ``award``: issued with the released award; ``recorded``: only once a person records the title
    #: (``record``), e.g. 创作之星 given by 科普中国 to some of the 10 best works.
    issue_on: Literal["award", "recorded"]
    record: Literal["creation_star"] | None = None
    heading_zh: str
    heading_en: str
    #: The award's public name (certificate, verification page, e-mail).
    award_zh: str
    award_en: str
    body_zh: str
    body_en: str

    @model_validator(mode="after")
    def _texts(self) -> CertificateType:
        if (self.issue_on == "recorded") != (self.record is not None):
            raise ValueError(f"certificate {self.key}: `record` is needed exactly when issue_on is recorded")
        _check_placeholders(self.body_zh, f"certificate {self.key} body_zh")
        _check_placeholders(self.body_en, f"certificate {self.key} body_en")
        return self


class Certificates(_Strict):
    #: Numbers read ``{number_prefix}-XXXX-XXXX-XXXX``.
    number_prefix: str = Field(pattern=r"^[A-Z][A-Z0-9]{1,11}$")
    issuer_zh: str
    issuer_en: str
    types: list[CertificateType] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Certificates:
        keys = [t.key for t in self.types]
        if len(set(keys)) != len(keys):
            raise ValueError(f"certificate type keys repeat: {keys}")
        return self

    def type(self, key: str) -> CertificateType:
        for t in self.types:
            if t.key == key:
                return t
        raise CampaignError(
            "<campaign>", [f"no certificate type {key!r}; the campaign has {[t.key for t in self.types]}"]
        )


class Platform(_Strict):
    #: Also names the platform's Airflow connection: ``kepu_platform_{key}``.
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    zh: str
    en: str
    #: Path under the connection's base URL that takes one work per POST.
    endpoint: str = "works"


class PushPolicy(_Strict):
    #: Tries per work and platform; answers 5xx and timeouts are tried again, 4xx never.
    attempts: int = Field(ge=1, le=10)
    #: First wait between tries, doubled each time up to ``max_backoff_s``.
    backoff_s: float = Field(ge=0)
    max_backoff_s: float = Field(ge=0)
    timeout_s: float = Field(gt=0)


class Publication(_Strict):
    requires_pledge: bool
    #: Works holding one of these awards are published.
    awards: list[AwardKind] = Field(min_length=1)
    platforms: list[Platform]
    push: PushPolicy

    @model_validator(mode="after")
    def _unique(self) -> Publication:
        keys = [p.key for p in self.platforms]
        if len(set(keys)) != len(keys):
            raise ValueError(f"platform keys repeat: {keys}")
        return self


class Notifications(_Strict):
    #: Airflow SMTP connections, the first one defined is used.
    smtp_conn_ids: list[str] = Field(min_length=1)
    #: Where answers go (the notice's contact address).
    reply_to: str
    #: Entries without an award are told so too.
    notify_not_awarded: bool
    subject_zh: str
    subject_en: str

    @model_validator(mode="after")
    def _texts(self) -> Notifications:
        _check_placeholders(self.subject_zh, "notifications subject_zh")
        _check_placeholders(self.subject_en, "notifications subject_en")
        return self


class Campaign(_Strict):
    schema_version: Literal[1]
    campaign: CampaignInfo
    kinds: dict[Kind, KindInfo]
    channels: dict[str, Channel]
    quota_policy: QuotaPolicy
    deadline: Deadline
    package: PackageRules
    accounts: AccountRules
    video: VideoRules
    audio: AudioRules
    language: LanguageRules
    structure: StructureRules
    originality: OriginalityRules
    findings: dict[str, FindingSpec]
    human_checklist: list[ChecklistItem]
    judging: Judging
    publication: Publication
    certificates: Certificates
    notifications: Notifications

    @model_validator(mode="after")
    def _codes(self) -> Campaign:
        missing = [c for c in CODES if c not in self.findings]
        unknown = [c for c in self.findings if c not in CODES]
        problems = []
        if missing:
            problems.append(f"findings lacks code(s) {', '.join(missing)}")
        if unknown:
            problems.append(f"findings has unknown code(s) {', '.join(unknown)}")
        for ext in self.deadline.extensions:
            bad = [c for c in ext.channels if c not in self.channels]
            if bad:
                problems.append(f"extension names unknown channel(s) {', '.join(bad)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def id(self) -> str:
        return self.campaign.id

    def finding(self, code: str) -> FindingSpec:
        try:
            return self.findings[code]
        except KeyError:
            raise CampaignError("<campaign>", [f"no finding code {code!r} in the campaign file"]) from None


# --- loading with line numbers -------------------------------------------------------------------


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and remembers the line of every key and value."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key]})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line + 1
    return dict(loader.construct_pairs(node, deep=deep))


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _line_index(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*path, key)] = key_node.start_mark.line + 1
            _line_index(value_node, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, (*path, i), out)


def _line_of(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def parse_campaign(text: str, source: str = "<campaign>") -> Campaign:
    """Parse and validate campaign YAML ``text``; raise :class:`CampaignError` listing every problem."""
    try:
        root = yaml.compose(text, Loader=_LineLoader)
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise CampaignError(source, [f"{where}{problem}"]) from exc
    if not isinstance(data, dict) or root is None:
        raise CampaignError(source, ["the file is not a YAML mapping"])
    lines: dict[tuple[Any, ...], int] = {}
    _line_index(root, (), lines)
    try:
        return Campaign.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            dotted = ".".join(str(p) for p in loc) or "(top level)"
            line = _line_of(loc, lines)
            where = f"line {line}: " if line else ""
            if err["type"] == "extra_forbidden":
                problems.append(f"{where}unknown key {loc[-1]!r} at {dotted}")
            elif err["type"] == "missing":
                problems.append(f"{where}missing key {dotted}")
            else:
                problems.append(f"{where}{dotted}: {err['msg']}")
        raise CampaignError(source, problems) from None


def load_campaign(path: str | Path) -> Campaign:
    """Load a campaign file (cached by path and content)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise CampaignError(str(p), [f"cannot read: {exc.strerror or exc}"]) from exc
    return _parse_cached(text, str(p))


@lru_cache(maxsize=8)
def _parse_cached(text: str, source: str) -> Campaign:
    return parse_campaign(text, source)


def campaign_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
