"""One exception hierarchy for the whole package.

Errors that concern a submitter's material carry the RULES.md finding code so the pipeline can
turn them into a finding instead of failing the run.
"""

from __future__ import annotations

from kepu.rules import Code


class KepuError(Exception):
    """Base of every error raised on purpose by kepu."""


class ConfigError(KepuError):
    """The environment or settings are wrong (operator's problem, not a submitter's)."""


class CampaignError(KepuError):
    """A campaign file is invalid. ``problems`` lists each one with its line."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


class StorageError(KepuError):
    """The object store refused or lost an operation."""


class MaterialError(KepuError):
    """A submitted file cannot be used; ``code`` is its RULES.md finding code."""

    def __init__(self, code: Code, message: str) -> None:
        self.code: Code = code
        super().__init__(f"[{code}] {message}")


class MediaToolError(KepuError):
    """ffmpeg/ffprobe failed, crashed or timed out."""

    def __init__(self, argv: list[str], message: str, *, timed_out: bool = False) -> None:
        self.argv = argv
        self.timed_out = timed_out
        super().__init__(message)


class JudgingError(KepuError):
    """A judging step cannot go ahead as asked: a wrong round, a bad roster, a release not confirmed.

    The message is Chinese with English beside it, for the operator; ``problems`` lists the entries,
    judges or rows concerned, one item each.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = list(problems or [])
        shown = self.problems[:20] + ([f"… 等共 {len(self.problems)} 项 and more"] if len(self.problems) > 20 else [])
        super().__init__(message + (":\n  - " + "\n  - ".join(shown) if shown else ""))


class AwardError(KepuError):
    """Certificates, publication or notifications cannot go ahead as asked: results not released, an unknown
    certificate, a pledge or title recorded for a work that does not qualify. Chinese with English beside."""
