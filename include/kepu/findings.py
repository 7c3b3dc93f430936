"""Findings: what a check found, with its RULES.md code, and the verdict they add up to."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from kepu.campaign import Campaign
from kepu.rules import Code, Severity

Verdict = Literal["pass", "review", "fail"]


@dataclass(frozen=True)
class Finding:
    code: Code
    severity: Severity
    message_zh: str
    message_en: str
    value: str | None = None
    limit: str | None = None
    at_seconds: float | None = None
    stage: str = "package"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_finding(
    campaign: Campaign,
    code: Code,
    *,
    detail_zh: str = "",
    detail_en: str = "",
    value: object = None,
    limit: object = None,
    at_seconds: float | None = None,
    soft: bool = False,
    stage: str = "package",
) -> Finding:
    """Build a finding whose severity and title come from the campaign file.

    ``soft`` marks a result inside a tolerance band: the code's ``soft_severity`` applies.
    """
    spec = campaign.finding(code)
    severity = spec.soft_severity if soft and spec.soft_severity else spec.severity
    zh = spec.title_zh + (f"：{detail_zh}" if detail_zh else "")
    en = spec.title_en + (f": {detail_en}" if detail_en else "")
    return Finding(
        code=code,
        severity=severity,
        message_zh=zh,
        message_en=en,
        value=None if value is None else str(value),
        limit=None if limit is None else str(limit),
        at_seconds=at_seconds,
        stage=stage,
    )


def verdict(findings: Iterable[Finding | Any]) -> Verdict:
    """``fail`` if any error, ``review`` if any warning, else ``pass``."""
    severities = {f.severity for f in findings}
    if "error" in severities:
        return "fail"
    if "warning" in severities:
        return "review"
    return "pass"


SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "info": 2}


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.code, f.at_seconds or 0.0))
