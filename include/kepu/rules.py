"""The rule registry: every finding code of RULES.md, declared once.

Each rule names its default severity (what RULES.md says; a campaign file sets the severity it
applies), the stages whose records may hold it, the checks that emit it and its RULES.md section.
The ``Code`` type, the stage lists, the lists ``kepu check`` prints and the documentation table are
derived from it, and ``tests/unit/test_rules.py`` keeps it equal to RULES.md and to the code:
``grep -rn '"V-TRUNCATED"'`` finds the declaration and the checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, get_args

Severity = Literal["error", "warning", "info"]

#: Where a finding is recorded. The intake's fetch step owns ``package`` and ``form``, the video
#: check owns ``probe`` and ``media``, the campaign-wide checks own ``campaign``; ``run`` findings are
#: about a whole intake run (the summary sheet), not about one entry.
Stage = Literal["package", "form", "probe", "media", "campaign", "run"]
STAGES: Final[tuple[Stage, ...]] = get_args(Stage)

#: What a rule needs to be judged: the entry alone, the entry's channel (the summary sheet gives it),
#: or the other entries and the calendar (quotas, deadline, duplicates): ``kepu check`` says which
#: rules it could not judge.
Scope = Literal["entry", "channel", "campaign"]

#: Every finding code, in RULES.md order; ``RULES`` below declares each one (a test keeps them equal).
Code = Literal[
    "Q-QUOTA",
    "Q-CHANNEL",
    "D-LATE",
    "D-EXTENDED",
    "M-FOLDER-NAME",
    "M-TITLE-MISMATCH",
    "M-VIDEO-MISSING",
    "M-VIDEO-AMBIGUOUS",
    "M-COVER-MISSING",
    "M-COVER-FORMAT",
    "M-SUMMARY-MISSING",
    "M-SUMMARY-LENGTH",
    "M-FORM-MISSING",
    "M-FORM-FIELD",
    "M-FORM-CONTACT",
    "M-FORM-PLEDGE",
    "M-FORM-SEAL",
    "M-UNSAFE-ARCHIVE",
    "M-UNREADABLE",
    "K-WORKS",
    "K-FANS",
    "K-FORM-FIELD",
    "K-SEAL",
    "V-CONTAINER",
    "V-DURATION",
    "V-ASPECT",
    "V-RESOLUTION",
    "V-SIZE",
    "V-NO-VIDEO",
    "V-TRUNCATED",
    "V-NO-AUDIO",
    "V-FRAME-DROP",
    "V-FREEZE",
    "V-BLACK",
    "V-CLARITY",
    "V-LEVELS",
    "V-INTERLACED",
    "V-CODEC",
    "A-LOUDNESS",
    "A-TRUE-PEAK",
    "A-CLIPPING",
    "A-LRA",
    "A-NOISE",
    "A-SILENCE",
    "A-SYNC",
    "L-SUBTITLE",
    "S-STRUCTURE",
    "O-DUPLICATE-FILE",
    "O-DUPLICATE-CONTENT",
]


@dataclass(frozen=True)
class Rule:
    code: Code
    #: The severity RULES.md gives; ``soft`` the one it gives inside a tolerance band, if any.
    severity: Severity
    soft: Severity | None
    #: The stages whose records may hold the code, the owning one first.
    stages: tuple[Stage, ...]
    #: ``module:function`` (or ``module:Class``) of each check that emits the code, as a finding or as the code of a
    #: ``MaterialError`` its caller records; the one that records the finding first.
    checks: tuple[str, ...]
    #: The RULES.md section (its ``##`` heading without the notice's paragraph number).
    section: str
    scope: Scope = "entry"

    @property
    def severities(self) -> frozenset[Severity]:
        return frozenset({self.severity, *((self.soft,) if self.soft else ())})


_Q, _D, _M = "Channels and quotas", "Deadline", "Submission package"
_K, _V, _O = "Accounts 科普号", "Video technical rules", "Originality"
_ELIG, _QUAL, _PKG, _FORMS, _FORM_TABLES = (
    "kepu.intake.eligibility_rules",
    "kepu.intake.quality",
    "kepu.intake.package_checks",
    "kepu.intake.forms",
    "kepu.intake.form_tables",
)
_PROBE, _MEDIA = "kepu.media.checks:probe_findings", "kepu.media.quality_checks"
_BUILD = f"{_QUAL}:build_suites"
_FORM = "kepu.intake.form_checks:form_findings"

RULES: Final[tuple[Rule, ...]] = (
    Rule("Q-QUOTA", "error", None, ("campaign",), (f"{_ELIG}:apply_quotas",), _Q, "campaign"),
    Rule("Q-CHANNEL", "warning", None, ("campaign",), (f"{_ELIG}:channel_findings",), _Q, "campaign"),
    Rule("D-LATE", "error", None, ("campaign",), (f"{_ELIG}:deadline_findings",), _D, "campaign"),
    Rule("D-EXTENDED", "info", None, ("campaign",), (f"{_ELIG}:deadline_findings",), _D, "campaign"),
    Rule("M-FOLDER-NAME", "warning", None, ("package",), (f"{_PKG}:read_package",), _M),
    Rule("M-TITLE-MISMATCH", "warning", None, ("campaign",), (_BUILD, f"{_QUAL}:_title_finding"), _M),
    Rule("M-VIDEO-MISSING", "error", None, ("package",), (f"{_PKG}:read_package",), _M),
    Rule("M-VIDEO-AMBIGUOUS", "error", None, ("package",), (f"{_PKG}:read_package",), _M),
    Rule("M-COVER-MISSING", "error", None, ("package",), (f"{_PKG}:read_package",), _M),
    Rule("M-COVER-FORMAT", "warning", None, ("package",), (f"{_PKG}:_cover_findings",), _M),
    Rule("M-SUMMARY-MISSING", "error", None, ("package",), (f"{_PKG}:_synopsis",), _M),
    Rule("M-SUMMARY-LENGTH", "error", None, ("campaign",), (_BUILD,), _M),
    Rule(
        "M-FORM-MISSING", "error", None, ("package", "form"), (f"{_PKG}:_read_form", f"{_FORMS}:read_form", _FORM), _M
    ),
    Rule("M-FORM-FIELD", "error", None, ("campaign",), (_BUILD, _FORM), _M),
    Rule("M-FORM-CONTACT", "warning", None, ("campaign",), (_BUILD, _FORM), _M),
    Rule("M-FORM-PLEDGE", "warning", None, ("form",), (_FORM,), _M),
    Rule("M-FORM-SEAL", "warning", None, ("form",), (_FORM,), _M, "channel"),
    Rule("M-UNSAFE-ARCHIVE", "error", None, ("package",), ("kepu.intake.packages:safe_extract",), _M),
    Rule(
        "M-UNREADABLE",
        "error",
        None,
        ("package", "probe", "media", "run"),
        (
            "kepu.intake.packages:safe_extract",
            f"{_PKG}:_synopsis",
            "kepu.intake.steps:_fetch_one",
            "kepu.intake.steps:_record_broken",
            "kepu.intake.steps:_sheet_rows",
            "kepu.intake.steps:cover_size",
            f"{_FORM_TABLES}:_sniff",
            f"{_FORM_TABLES}:_unreadable",
            "kepu.intake.images:normalise_cover",
            "kepu.media.inspect:inspect_video",
            "kepu.media.inspect:_unreadable",
            "kepu.media.probe:probe_file",
            "kepu.media.timing:packet_timing",
            "kepu.media.analysis:analyse",
            "kepu.publication.package:CoverUnreadable",
        ),
        _M,
    ),
    Rule("K-WORKS", "error", None, ("campaign",), (_BUILD,), _K),
    Rule("K-FANS", "error", None, ("campaign",), (_BUILD,), _K),
    Rule("K-FORM-FIELD", "error", None, ("campaign",), (_BUILD, _FORM), _K),
    Rule("K-SEAL", "warning", None, ("form",), (_FORM,), _K),
    Rule("V-CONTAINER", "error", None, ("probe",), (_PROBE,), _V),
    Rule("V-DURATION", "error", None, ("probe",), (_PROBE,), _V),
    Rule("V-ASPECT", "error", None, ("probe",), (_PROBE,), _V),
    Rule("V-RESOLUTION", "error", None, ("probe",), (_PROBE, "kepu.media.rendition:plan_rendition"), _V),
    Rule("V-SIZE", "error", "warning", ("probe",), (_PROBE,), _V),
    Rule("V-NO-VIDEO", "error", None, ("probe",), (_PROBE, "kepu.media.rendition:plan_rendition"), _V),
    Rule("V-TRUNCATED", "error", None, ("media",), (f"{_MEDIA}:_truncation",), _V),
    Rule("V-NO-AUDIO", "error", None, ("probe",), (_PROBE,), _V),
    Rule("V-FRAME-DROP", "error", "warning", ("media",), (f"{_MEDIA}:_frame_timing",), _V),
    Rule("V-FREEZE", "warning", None, ("media",), (f"{_MEDIA}:_segments",), _V),
    Rule("V-BLACK", "warning", None, ("media",), (f"{_MEDIA}:_segments", f"{_MEDIA}:_longest"), _V),
    Rule("V-CLARITY", "warning", None, ("media",), (f"{_MEDIA}:_clarity",), _V),
    Rule("V-LEVELS", "warning", None, ("media",), (f"{_MEDIA}:_levels",), _V),
    Rule("V-INTERLACED", "warning", None, ("media",), (f"{_MEDIA}:_interlace",), _V),
    Rule("V-CODEC", "info", None, ("media",), (f"{_MEDIA}:_codecs",), _V),
    Rule("A-LOUDNESS", "error", "warning", ("media",), (f"{_MEDIA}:_loudness",), _V),
    Rule("A-TRUE-PEAK", "warning", None, ("media",), (f"{_MEDIA}:_loudness",), _V),
    Rule("A-CLIPPING", "warning", None, ("media",), (f"{_MEDIA}:_loudness",), _V),
    Rule("A-LRA", "warning", None, ("media",), (f"{_MEDIA}:_loudness",), _V),
    Rule("A-NOISE", "warning", None, ("media",), (f"{_MEDIA}:_noise",), _V),
    Rule("A-SILENCE", "warning", None, ("media",), (f"{_MEDIA}:_silence",), _V),
    Rule("A-SYNC", "error", "warning", ("media",), (f"{_MEDIA}:_sync",), _V),
    Rule("L-SUBTITLE", "warning", None, ("media",), (f"{_MEDIA}:_subtitle",), _V),
    Rule("S-STRUCTURE", "warning", None, ("media",), (f"{_MEDIA}:_structure",), _V),
    Rule("O-DUPLICATE-FILE", "error", None, ("campaign",), (_BUILD,), _O, "campaign"),
    Rule(
        "O-DUPLICATE-CONTENT",
        "warning",
        None,
        ("campaign",),
        ("kepu.media.fingerprint:duplicate_findings",),
        _O,
        "campaign",
    ),
)

#: Modules that name codes without emitting them: the sample and scale generators plant the defect a
#: code reports, the export reads which entries are over quota.
READERS: Final[tuple[str, ...]] = ("kepu.devtools.sample", "kepu.devtools.scale", "kepu.intake.export")

BY_CODE: Final[dict[Code, Rule]] = {r.code: r for r in RULES}
CODES: Final[tuple[Code, ...]] = tuple(BY_CODE)


def stage_codes(*stages: Stage) -> frozenset[Code]:
    """The codes the records of ``stages`` may hold."""
    return frozenset(r.code for r in RULES if set(r.stages) & set(stages))


#: The codes each stage's records may hold.
STAGE_CODES: Final[Mapping[str, frozenset[Code]]] = {s: stage_codes(s) for s in STAGES}


def scope_codes(scope: Scope) -> tuple[Code, ...]:
    """The codes of ``scope``, in RULES.md order."""
    return tuple(r.code for r in RULES if r.scope == scope)


def markdown_table() -> str:
    """The registry as a Markdown table, for the documentation (``kepu rules``)."""
    lines = [
        "| code | severity | stage | judged on | check | RULES.md section |",
        "|---|---|---|---|---|---|",
    ]
    for r in RULES:
        severity = f"{r.severity} / {r.soft}" if r.soft else r.severity
        checks = "<br>".join(f"`{c}`" for c in r.checks)
        lines.append(f"| `{r.code}` | {severity} | {', '.join(r.stages)} | {r.scope} | {checks} | {r.section} |")
    return "\n".join(lines) + "\n"


#: The markers of a generated table in a Markdown file (``kepu rules --update FILE``).
TABLE_START = "<!-- finding codes: generated from kepu/rules.py by `kepu rules --update` -->"
TABLE_END = "<!-- end of finding codes -->"


def with_table(text: str) -> str:
    """``text`` with the block between the table markers replaced by the current table."""
    start, end = text.find(TABLE_START), text.find(TABLE_END)
    if start < 0 or end < start:
        raise ValueError(f"no block between {TABLE_START!r} and {TABLE_END!r}")
    head = text[: start + len(TABLE_START)]
    return f"{head}\n{markdown_table()}{text[end:]}"
