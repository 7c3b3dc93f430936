"""Campaign-wide data quality: one frame of every submission, checked by Great Expectations suites.

The frame (:data:`SUBMISSION_COLUMNS`, built by :func:`build_frame`) holds one row per submission with
what the package and form checks extracted. :func:`build_suites` turns the campaign file into
Great Expectations suites, every expectation tagged in its ``meta`` with the RULES.md code it stands
for; :func:`validate` runs them in an ephemeral context and maps each unexpected row back to a
:class:`~kepu.findings.Finding` of that submission.

Great Expectations is imported inside functions only: DAG parsing imports this module and must stay
light. The context is always ephemeral (nothing is written to disk) and analytics are switched off
before the import.

Rules that compare rows with one another in time (quotas, deadlines) live in
:mod:`kepu.intake.eligibility_rules`.
"""

from __future__ import annotations

import logging
import math
import os
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from time import perf_counter
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

from kepu.campaign import Campaign, Kind
from kepu.errors import KepuError
from kepu.findings import Finding, make_finding, sort_findings
from kepu.intake.form_signoff import is_signature_block
from kepu.intake.package_checks import synopsis_length
from kepu.provinces import match_province
from kepu.rules import Code

if TYPE_CHECKING:
    from types import ModuleType

    from great_expectations import ExpectationSuite
    from great_expectations.expectations.expectation import Expectation

log = logging.getLogger(__name__)

STAGE = "quality"
KINDS: tuple[Kind, ...] = ("video", "account")

#: Prefix of the flattened form-field columns: ``field__联系电话`` holds the form's 联系电话.
FIELD_PREFIX = "field__"

#: The fixed columns of the submission frame, in order. Form fields follow as ``field__<name>``.
SUBMISSION_COLUMNS: tuple[str, ...] = (
    "submission_id",  # str, unique
    "kind",  # "video" | "account"
    "channel",  # campaign channel key, or None
    "entity",  # submitting unit or person, normalised (see normalise_entity)
    "province",  # full province name when recognised (see canonical_province)
    "title_folder",  # title parsed from the folder name
    "title_form",  # title on the application form
    "title_file",  # video file stem
    "synopsis",  # text or None
    "synopsis_chars",  # characters of the synopsis, whitespace not counted
    "phone",
    "email",
    "received_at",  # timezone-aware, stored in UTC
    "works",  # published works of an account
    "followers",  # followers of an account
    "video_sha256",  # lower-case hex digest of the video file
    "has_form",  # an application form was read: its required fields are checked
)

#: Columns a row mapping may carry besides SUBMISSION_COLUMNS and ``field__*``.
_EXTRA_INPUT_KEYS = frozenset({"form_fields"})
_REQUIRED_INPUT_KEYS = ("submission_id", "kind", "received_at")
_STRING_COLUMNS = ("title_folder", "title_form", "title_file", "phone", "email")
_INT_COLUMNS = ("synopsis_chars", "works", "followers")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

# --- contact formats (M-FORM-CONTACT) ---------------------------------------------------------------
# The one place the contact formats are defined. Values are NFKC-normalised before matching, so
# full-width digits, ＠, （） and ， arrive as ASCII. Several numbers may be given, separated by
# / , 、 or ;.
#: Mainland mobile number, optionally with +86 / 86, digits grouped 3-4-4 by spaces or hyphens.
MOBILE_PATTERN = r"(?:\+?86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}"
#: Landline: optional area code (0 + 2–3 digits, bare or in brackets), a 7–8 digit local number, an
#: optional extension (转 / ext / -).
LANDLINE_PATTERN = r"(?:\(0\d{2,3}\)[ -]?|0\d{2,3}[ -]?)?[2-9]\d{6,7}(?:[ -]?(?:转|ext\.?|-)[ -]?\d{1,6})?"
_ONE_PHONE = rf"(?:{MOBILE_PATTERN}|{LANDLINE_PATTERN})"
#: A whole phone cell: one or more numbers.
PHONE_PATTERN = rf"^{_ONE_PHONE}(?:\s*[/,、;]\s*{_ONE_PHONE})*$"
#: A single e-mail address: local part, @, dotted domain ending in a 2+ letter top-level label.
EMAIL_PATTERN = (
    r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}$"
)

#: Suite keys of :func:`build_suites`: (kind or None for every row, rows with a form only).
SUITE_SCOPES: dict[str, tuple[Kind | None, bool]] = {
    "campaign": (None, False),
    "video": ("video", False),
    "video.form": ("video", True),
    "account": ("account", False),
    "account.form": ("account", True),
}

_TITLE_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("title_folder", "文件夹", "folder"),
    ("title_form", "申报表", "form"),
    ("title_file", "文件", "file"),
)
_TITLE_PAIRS: tuple[tuple[str, str], ...] = (
    ("title_folder", "title_form"),
    ("title_folder", "title_file"),
    ("title_form", "title_file"),
)

RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": ["submission_id"],
}


class FrameError(KepuError, ValueError):
    """Rows or a frame handed to the quality or eligibility checks are not a valid submission frame."""


class QualityRunError(KepuError):
    """Great Expectations could not evaluate an expectation (not a finding: the run itself failed)."""


# --- normalisation ---------------------------------------------------------------------------------


def normalise_text(value: object) -> str | None:
    """NFKC, trimmed, inner whitespace runs collapsed to one space; blank becomes None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if not isinstance(value, str):
        raise FrameError(f"expected text, got {type(value).__name__} {value!r}")
    text = " ".join(unicodedata.normalize("NFKC", value).split())
    return text or None


def normalise_entity(value: object) -> str | None:
    """Key of a submitting unit or person: NFKC with all whitespace removed.

    ``北京市 青少年科技中心`` and ``北京市青少年科技中心`` are the same unit; use the same function on
    a member roster before comparing.
    """
    text = normalise_text(value)
    return re.sub(r"\s+", "", text) if text else None


def canonical_province(value: object) -> str | None:
    """The full name of a province-level division (``广东`` → ``广东省``); other text is kept as is."""
    text = normalise_entity(value)
    if text is None:
        return None
    head = match_province(text)
    if head is not None and not head[1]:
        return head[0]
    return text


def normalise_title(value: object) -> str | None:
    """Title key for comparison: NFKC, case-folded, punctuation, symbols, spaces and 《》 removed."""
    text = normalise_text(value)
    if text is None:
        return None
    key = re.sub(r"[\W_]+", "", text.casefold())
    return key or None


# --- the frame -------------------------------------------------------------------------------------


def _as_int(name: str, value: object) -> int | None:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        raise FrameError(f"{name} must be a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip().replace(",", "")
        if not text:
            return None
        if text.isdigit():
            return int(text)
    raise FrameError(f"{name} must be a whole number, got {value!r}")


def _as_aware(value: object) -> pd.Timestamp:
    if value is None or value is pd.NaT:
        raise FrameError("received_at is missing")
    if isinstance(value, str):
        try:
            ts = pd.Timestamp(value)
        except ValueError as exc:
            raise FrameError(f"received_at {value!r} is not an ISO date-time") from exc
    elif isinstance(value, datetime):
        ts = pd.Timestamp(value)
    else:
        raise FrameError(f"received_at must be a date-time, got {type(value).__name__}")
    if ts.tzinfo is None:
        raise FrameError(f"received_at {value!s} has no time zone: give an offset, e.g. 2022-10-31T23:59:59+08:00")
    return ts.tz_convert("UTC")


def _field_text(value: object) -> str | None:
    """A form cell as text: numbers (a 粉丝量 typed as a number) become their text, blanks None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return None if isinstance(value, float) and math.isnan(value) else str(_number(value))
    return normalise_text(value)


def _row_record(row: Mapping[str, Any]) -> dict[str, Any]:
    unknown = [
        k
        for k in row
        if k not in SUBMISSION_COLUMNS and k not in _EXTRA_INPUT_KEYS and not str(k).startswith(FIELD_PREFIX)
    ]
    if unknown:
        raise FrameError(f"unknown key(s) {', '.join(map(repr, unknown))}")
    missing = [k for k in _REQUIRED_INPUT_KEYS if row.get(k) in (None, "")]
    if missing:
        raise FrameError(f"missing {', '.join(missing)}")
    sid = row["submission_id"]
    if not isinstance(sid, str) or not sid.strip():
        raise FrameError(f"submission_id must be non-empty text, got {sid!r}")
    kind = row["kind"]
    if kind not in KINDS:
        raise FrameError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")

    rec: dict[str, Any] = {
        "submission_id": sid.strip(),
        "kind": kind,
        "channel": normalise_text(row.get("channel")),
        "entity": normalise_entity(row.get("entity")),
        "province": canonical_province(row.get("province")),
        "received_at": _as_aware(row["received_at"]),
    }
    for col in _STRING_COLUMNS:
        try:
            rec[col] = _field_text(row.get(col))  # a phone typed into a spreadsheet arrives as a number
        except FrameError as exc:
            raise FrameError(f"{col}: {exc}") from None

    synopsis = row.get("synopsis")
    if synopsis is not None and not isinstance(synopsis, str):
        raise FrameError(f"synopsis must be text, got {type(synopsis).__name__}")
    synopsis = synopsis if synopsis and synopsis.strip() else None
    rec["synopsis"] = synopsis
    counted = synopsis_length(synopsis) if synopsis else None
    given = _as_int("synopsis_chars", row.get("synopsis_chars"))
    if given is not None and counted is not None and given != counted:
        raise FrameError(f"synopsis_chars {given} disagrees with the synopsis ({counted} characters)")
    rec["synopsis_chars"] = counted if counted is not None else given

    rec["works"] = _as_int("works", row.get("works"))
    rec["followers"] = _as_int("followers", row.get("followers"))

    sha = row.get("video_sha256")
    if sha is not None:
        sha = str(sha).strip().lower() or None
        if sha is not None and not _SHA256.match(sha):
            raise FrameError(f"video_sha256 {row.get('video_sha256')!r} is not a SHA-256 hex digest")
    rec["video_sha256"] = sha

    fields: dict[str, Any] = {}
    form_fields = row.get("form_fields")
    if form_fields is not None:
        if not isinstance(form_fields, Mapping):
            raise FrameError(f"form_fields must be a mapping, got {type(form_fields).__name__}")
        fields.update({f"{FIELD_PREFIX}{name}": v for name, v in form_fields.items()})
    fields.update({k: v for k, v in row.items() if str(k).startswith(FIELD_PREFIX)})
    for col, v in fields.items():
        try:
            rec[col] = _field_text(v)
        except FrameError as exc:
            raise FrameError(f"{col}: {exc}") from None
    has_form = row.get("has_form")
    read = form_fields is not None or bool(fields)
    rec["has_form"] = read if has_form is None else bool(has_form)
    return rec


def build_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per submission, columns :data:`SUBMISSION_COLUMNS` then the ``field__*`` columns.

    Each row is a mapping with keys from :data:`SUBMISSION_COLUMNS`, optionally ``form_fields`` (a
    mapping of form label to value, flattened into ``field__<label>`` columns) or ``field__*`` keys
    directly. ``submission_id``, ``kind`` and a timezone-aware ``received_at`` (datetime or ISO text
    with an offset) are required. Short text is NFKC-normalised and blanks become None (the synopsis
    is kept as written), ``synopsis_chars`` is counted from the synopsis, and ``has_form`` defaults to
    whether ``form_fields`` (even empty) or any ``field__*`` key was given.
    Raises :class:`FrameError` listing every bad row.
    """
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(rows):
        try:
            rec = _row_record(row)
        except FrameError as exc:
            problems.append(f"row {i} ({row.get('submission_id', '?')}): {exc}")
            continue
        sid = rec["submission_id"]
        if sid in seen:
            problems.append(f"row {i}: submission_id {sid!r} already on row {seen[sid]}")
            continue
        seen[sid] = i
        records.append(rec)
    if problems:
        shown = problems[:20] + ([f"… and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise FrameError("bad submission rows: " + "; ".join(shown))

    field_cols = sorted({k for rec in records for k in rec if k.startswith(FIELD_PREFIX)})
    columns = [*SUBMISSION_COLUMNS, *field_cols]
    data: dict[str, Any] = {}
    for col in columns:
        values = [rec.get(col) for rec in records]
        if col == "received_at":
            data[col] = pd.to_datetime(pd.Series(values, dtype=object), utc=True).astype("datetime64[ns, UTC]")
        elif col in _INT_COLUMNS:
            data[col] = pd.array(values, dtype="Int64")
        elif col == "has_form":
            data[col] = pd.array(values, dtype=bool)
        else:
            data[col] = pd.Series(values, dtype=object)
    frame = pd.DataFrame(data, columns=columns)
    log.debug("built a submission frame of %d rows and %d form-field columns", len(frame), len(field_cols))
    return frame


def check_frame(df: pd.DataFrame) -> None:
    """Raise :class:`FrameError` unless ``df`` has the submission columns, unique ids and aware times."""
    missing = [c for c in SUBMISSION_COLUMNS if c not in df.columns]
    if missing:
        raise FrameError(f"the frame lacks column(s) {', '.join(missing)}: build it with build_frame")
    received = df["received_at"]
    if not isinstance(received.dtype, pd.DatetimeTZDtype):
        if pd.api.types.is_datetime64_dtype(received.dtype):
            raise FrameError(
                "received_at holds naive date-times: every time needs its offset (e.g. +08:00), "
                "a naive time cannot be compared with the deadline"
            )
        raise FrameError(f"received_at must be timezone-aware date-times, not {received.dtype}")
    if received.isna().any():
        bad = df.loc[received.isna(), "submission_id"].tolist()[:10]
        raise FrameError(f"received_at is missing for {', '.join(map(str, bad))}")
    dupes = df["submission_id"][df["submission_id"].duplicated()].tolist()
    if dupes:
        raise FrameError(f"submission_id not unique: {', '.join(map(str, dupes[:10]))}")


# --- Great Expectations ----------------------------------------------------------------------------


def import_gx() -> ModuleType:
    """Import Great Expectations with analytics switched off before the import (the context config
    switches them off again)."""
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    import great_expectations

    return great_expectations


def ephemeral_context(gx: ModuleType) -> Any:
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def field_column(name: str) -> str:
    return f"{FIELD_PREFIX}{name}"


def _norm_column(col: str) -> str:
    return f"{col}_norm"


def build_suites(campaign: Campaign) -> dict[str, ExpectationSuite]:
    """Great Expectations suites made from the campaign file, keyed as :data:`SUITE_SCOPES`.

    Every expectation's ``meta`` names its RULES.md ``code``, the ``check`` that maps its unexpected
    rows to findings, and the ``limit`` it enforces. Suite ``meta`` says which rows it applies to.
    """
    gx = import_gx()
    exp = gx.expectations
    min_works = campaign.accounts.min_works
    min_followers = campaign.accounts.min_followers
    synopsis_max = campaign.package.synopsis_max_chars

    def contact() -> list[Expectation]:
        return [
            exp.ExpectColumnValuesToMatchRegex(
                column="phone", regex=PHONE_PATTERN, meta={"code": "M-FORM-CONTACT", "check": "phone"}
            ),
            exp.ExpectColumnValuesToMatchRegex(
                column="email", regex=EMAIL_PATTERN, meta={"code": "M-FORM-CONTACT", "check": "email"}
            ),
        ]

    def titles() -> list[Expectation]:
        return [
            exp.ExpectColumnPairValuesToBeEqual(
                column_A=_norm_column(a),
                column_B=_norm_column(b),
                ignore_row_if="either_value_is_missing",
                meta={"code": "M-TITLE-MISMATCH", "check": "title", "pair": [a, b]},
            )
            for a, b in _TITLE_PAIRS
        ]

    def form(kind: Kind) -> list[Expectation]:
        code = "M-FORM-FIELD" if kind == "video" else "K-FORM-FIELD"
        names = campaign.package.video_form_fields if kind == "video" else campaign.package.account_form_fields
        # Signature and seal blocks are signed on paper: the scanned page is their evidence, not a field.
        names = [n for n in names if not is_signature_block(n)]
        return [
            exp.ExpectColumnValuesToNotBeNull(
                column=field_column(name), meta={"code": code, "check": "form_field", "field": name}
            )
            for name in names
        ]

    expectations: dict[str, list[Expectation]] = {
        "campaign": [
            exp.ExpectColumnValuesToBeUnique(
                column="video_sha256", meta={"code": "O-DUPLICATE-FILE", "check": "duplicate_file"}
            )
        ],
        "video": [
            exp.ExpectColumnValuesToBeBetween(
                column="synopsis_chars",
                max_value=synopsis_max,
                meta={"code": "M-SUMMARY-LENGTH", "check": "synopsis_length", "limit": synopsis_max},
            ),
            *contact(),
            *titles(),
        ],
        "video.form": form("video"),
        "account": [
            exp.ExpectColumnValuesToBeBetween(
                column="works",
                min_value=min_works,
                meta={"code": "K-WORKS", "check": "works", "limit": min_works},
            ),
            exp.ExpectColumnValuesToBeBetween(
                column="followers",
                min_value=min_followers,
                meta={"code": "K-FANS", "check": "followers", "limit": min_followers},
            ),
            *contact(),
            *titles(),
        ],
        "account.form": form("account"),
    }
    suites: dict[str, ExpectationSuite] = {}
    for key, (kind, with_form) in SUITE_SCOPES.items():
        suites[key] = gx.ExpectationSuite(
            name=f"kepu.{campaign.id}.{key}",
            expectations=expectations[key],
            meta={"campaign": campaign.id, "kind": kind, "with_form": with_form},
        )
    return suites


@dataclass(frozen=True)
class QualityResult:
    """What :func:`validate` found.

    ``findings`` maps a submission id to its findings (only submissions with findings appear);
    ``raw`` holds each suite's Great Expectations validation result as JSON-ready dicts, for audit;
    ``summary`` counts rows, expectations and findings and times the phases (``timings_s``).
    """

    findings: dict[str, list[Finding]]
    raw: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)


def _prepare(campaign: Campaign, df: pd.DataFrame) -> pd.DataFrame:
    """The frame as the suites see it: helper title columns and every required field column."""
    out = df.reset_index(drop=True).copy()
    for col, _, _ in _TITLE_SOURCES:
        out[_norm_column(col)] = out[col].map(normalise_title).astype(object)
    for name in (*campaign.package.video_form_fields, *campaign.package.account_form_fields):
        col = field_column(name)
        if col not in out.columns:
            out[col] = pd.Series([None] * len(out), dtype=object)
    # Nullable integers go to GX as floats with NaN: its pandas metrics handle those everywhere.
    for col in _INT_COLUMNS:
        out[col] = out[col].astype("Float64").astype(float)
    return out


def _rows_for(prepared: pd.DataFrame, suite: ExpectationSuite) -> pd.DataFrame:
    kind = suite.meta.get("kind")
    mask = pd.Series(True, index=prepared.index)
    if kind is not None:
        mask &= prepared["kind"] == kind
    if suite.meta.get("with_form"):
        mask &= prepared["has_form"]
    return prepared.loc[mask].reset_index(drop=True)


def raised_message(exception_info: Any) -> str | None:
    """The message of an exception GX caught while evaluating an expectation, if any."""
    if not isinstance(exception_info, Mapping):
        return None
    if "raised_exception" in exception_info:
        if exception_info.get("raised_exception"):
            return str(exception_info.get("exception_message") or "unknown error")
        return None
    for inner in exception_info.values():
        msg = raised_message(inner)
        if msg:
            return msg
    return None


class FailedExpectation(NamedTuple):
    """An expectation Great Expectations evaluated and found unmet (:func:`failed_expectations`)."""

    #: The expectation as configured: its ``type``, ``kwargs`` and ``meta``.
    config: Mapping[str, Any]
    #: What the check that made it put in ``meta`` (a finding's code, the check's name …).
    meta: Mapping[str, Any]
    #: The rows it flagged, by the result format's index columns (with the column's value).
    unexpected: list[Mapping[str, Any]]


def failed_expectations(
    result: Mapping[str, Any], describe: Callable[[Mapping[str, Any], Mapping[str, Any]], str]
) -> Iterator[FailedExpectation]:
    """The failed expectations of one validation result (``to_json_dict()``), in order; the met ones are skipped.

    An expectation GX could not evaluate raises :class:`QualityRunError`, named by ``describe(config, meta)``.
    """
    for res in result.get("results", []):
        config = res.get("expectation_config") or {}
        meta = config.get("meta") or {}
        message = raised_message(res.get("exception_info"))
        if message:
            raise QualityRunError(f"{describe(config, meta)}: {message}")
        if res.get("success"):
            continue
        yield FailedExpectation(config, meta, (res.get("result") or {}).get("unexpected_index_list") or [])


def _number(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _title_finding(campaign: Campaign, row: Mapping[str, Any]) -> Finding:
    present = [(zh, en, row[col]) for col, zh, en in _TITLE_SOURCES if row.get(col)]
    return make_finding(
        campaign,
        "M-TITLE-MISMATCH",
        detail_zh="、".join(f"{zh}《{t}》" for zh, _, t in present),
        detail_en=", ".join(f"{en} “{t}”" for _, en, t in present),
        value=" | ".join(str(t) for _, _, t in present),
        stage=STAGE,
    )


def _in_suite(key: str) -> Callable[[Mapping[str, Any], Mapping[str, Any]], str]:
    """How a :class:`QualityRunError` names an expectation of the suite ``key``."""
    return lambda config, _meta: f"suite {key}: {config.get('type')} on {config.get('kwargs')}"


def _map_results(
    campaign: Campaign, results: Mapping[str, Mapping[str, Any]], prepared: pd.DataFrame
) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = defaultdict(list)
    title_rows: set[str] = set()
    for key, result in results.items():
        for config, meta, items in failed_expectations(result, _in_suite(key)):
            code, check = meta.get("code"), meta.get("check")
            if not code or not check:
                raise QualityRunError(f"suite {key}: expectation {config.get('type')} has no code/check in meta")
            column = (config.get("kwargs") or {}).get("column")
            for sid, finding in _findings_for(campaign, check, code, meta, column, items, title_rows):
                out[sid].append(finding)
    if title_rows:
        by_id = prepared.set_index("submission_id")
        for sid in sorted(title_rows):
            out[sid].append(_title_finding(campaign, by_id.loc[sid].to_dict()))
    return {sid: sort_findings(fs) for sid, fs in sorted(out.items())}


def _findings_for(
    campaign: Campaign,
    check: str,
    code: Code,
    meta: Mapping[str, Any],
    column: str | None,
    items: list[Mapping[str, Any]],
    title_rows: set[str],
) -> list[tuple[str, Finding]]:
    """Findings for the unexpected rows of one failed expectation, as (submission id, finding)."""
    out: list[tuple[str, Finding]] = []

    def add(sid: str, **kw: Any) -> None:
        out.append((sid, make_finding(campaign, code, stage=STAGE, **kw)))

    if check == "title":
        # Several pair expectations may flag one row: one finding per row, built after all results.
        title_rows.update(str(item["submission_id"]) for item in items)
        return out
    if check == "duplicate_file":
        by_sha: dict[str, list[str]] = defaultdict(list)
        for item in items:
            by_sha[str(item[column or "video_sha256"])].append(str(item["submission_id"]))
        for sha, sids in by_sha.items():
            for sid in sids:
                others = ", ".join(sorted(s for s in sids if s != sid))
                add(
                    sid,
                    detail_zh=f"视频文件与 {others} 字节完全相同（SHA-256 {sha[:12]}…）",
                    detail_en=f"the video file is byte-identical to {others} (SHA-256 {sha[:12]}…)",
                    value=others,
                )
        return out
    limit = meta.get("limit")
    for item in items:
        sid = str(item["submission_id"])
        value = _number(item.get(column)) if column else None
        if check == "synopsis_length":
            zh = f"简介 {value} 字，限 {limit} 字（不计空白）"
            en = f"synopsis has {value} characters, at most {limit} (whitespace not counted)"
        elif check == "phone":
            zh = f"联系电话“{value}”不是有效的手机或固定电话号码"
            en = f"phone “{value}” is not a valid mobile or landline number"
            limit = "手机或固定电话 mobile or landline number"
        elif check == "email":
            zh = f"电子邮箱“{value}”格式有误"
            en = f"e-mail “{value}” is not a valid address"
            limit = "name@domain"
        elif check == "works":
            zh = f"发布作品 {value} 部，须不少于 {limit} 部"
            en = f"{value} published works, at least {limit} required"
        elif check == "followers":
            zh = f"粉丝 {value} 人，须不少于 {limit} 人"
            en = f"{value} followers, at least {limit} required"
        elif check == "form_field":
            name = meta["field"]
            zh = f"“{name}”未填写"
            en = f"required field “{name}” is empty"
            value, limit = name, "必填 required"
        else:
            raise QualityRunError(f"no mapping for check {check!r} ({code})")
        add(sid, detail_zh=zh, detail_en=en, value=value, limit=limit)
    return out


def validate(campaign: Campaign, df: pd.DataFrame) -> QualityResult:
    """Run the campaign's suites over the submission frame and map failures to findings.

    Each suite sees only its rows (by kind; form suites only rows with a form). Findings carry the
    campaign file's severity, the measured value, the limit and a Chinese + English message.
    Raises :class:`FrameError` for a malformed frame and :class:`QualityRunError` when GX could not
    evaluate an expectation.
    """
    check_frame(df)
    timings: dict[str, float] = {}
    t0 = perf_counter()
    gx = import_gx()
    timings["import"] = perf_counter() - t0

    t0 = perf_counter()
    suites = build_suites(campaign)
    prepared = _prepare(campaign, df)
    context = ephemeral_context(gx)
    source = context.data_sources.add_pandas(name=f"kepu-{campaign.id}")
    runs: list[tuple[str, Any, pd.DataFrame]] = []
    for key, suite in suites.items():
        batch_definition = source.add_dataframe_asset(name=key).add_batch_definition_whole_dataframe(
            name=f"{key}-whole"
        )
        saved = context.suites.add(suite)
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"kepu.{campaign.id}.{key}", data=batch_definition, suite=saved)
        )
        runs.append((key, definition, _rows_for(prepared, suite)))
    timings["setup"] = perf_counter() - t0

    t0 = perf_counter()
    raw: dict[str, Any] = {}
    suite_stats: dict[str, Any] = {}
    for key, definition, rows in runs:
        result = definition.run(batch_parameters={"dataframe": rows}, result_format=RESULT_FORMAT)
        raw[key] = result.to_json_dict()
        stats = raw[key].get("statistics") or {}
        suite_stats[key] = {
            "rows": len(rows),
            "evaluated": stats.get("evaluated_expectations", 0),
            "failed": stats.get("unsuccessful_expectations", 0),
            "success": bool(raw[key].get("success")),
        }
        log.info("suite %s: %d rows, %s", key, len(rows), suite_stats[key])
    timings["validation"] = perf_counter() - t0

    t0 = perf_counter()
    findings = _map_results(campaign, raw, prepared)
    timings["mapping"] = perf_counter() - t0

    by_code = Counter(f.code for fs in findings.values() for f in fs)
    summary = {
        "campaign": campaign.id,
        "rows": len(df),
        "rows_by_kind": {k: int((df["kind"] == k).sum()) for k in KINDS},
        "suites": suite_stats,
        "findings_by_code": dict(sorted(by_code.items())),
        "submissions_with_findings": len(findings),
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
    }
    log.info(
        "quality checks of campaign %s: %d submissions, %d with findings, %s",
        campaign.id,
        len(df),
        len(findings),
        summary["findings_by_code"],
    )
    return QualityResult(findings=findings, raw=raw, summary=summary)
