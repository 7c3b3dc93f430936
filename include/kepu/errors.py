"""One exception hierarchy for the whole package.

Errors that concern a submitter's material carry the RULES.md finding code so the pipeline can
turn them into a finding instead of failing the run.
"""

from __future__ import annotations


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

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"[{code}] {message}")


class MediaToolError(KepuError):
    """ffmpeg/ffprobe failed, crashed or timed out."""

    def __init__(self, argv: list[str], message: str, *, timed_out: bool = False) -> None:
        self.argv = argv
        self.timed_out = timed_out
        super().__init__(message)
