"""Where judging objects live in the store.

``campaigns/{campaign}/judging/{stage}/`` holds one round: ``sheets/`` (issued, one per judge, named
``{stage}-{judge id}-{name}.xlsx``), ``returned/`` (where operators put the judges' returned sheets, under
any name), ``received/{sha256}.xlsx`` (every returned sheet exactly as received, kept under its checksum),
``portal/`` (the sheet each submit in the judges' portal made, ``{judge id}-{sha256[:16]}.xlsx``).
The roster files are kept under ``campaigns/{campaign}/judging/roster/``.
"""

from __future__ import annotations

import re

from kepu.errors import JudgingError
from kepu.storage import safe_filename

_ID = re.compile(r"[A-Za-z0-9_-]+")


def _check(what: str, value: str) -> str:
    if not _ID.fullmatch(value):
        raise JudgingError(
            f"{what} {value!r} 含有不允许的字符 · {what} {value!r} may only hold letters, digits, _ and -"
        )
    return value


def round_prefix(campaign_id: str, stage: str) -> str:
    return f"campaigns/{_check('campaign', campaign_id)}/judging/{_check('stage', stage)}/"


def sheet_name(stage: str, judge_id: str, judge_name: str) -> str:
    return safe_filename(f"{stage}-{judge_id}-{judge_name}.xlsx")


def sheet_key(campaign_id: str, stage: str, judge_id: str, judge_name: str) -> str:
    return f"{round_prefix(campaign_id, stage)}sheets/{sheet_name(stage, _check('judge', judge_id), judge_name)}"


def returned_prefix(campaign_id: str, stage: str) -> str:
    return f"{round_prefix(campaign_id, stage)}returned/"


def portal_prefix(campaign_id: str, stage: str) -> str:
    return f"{round_prefix(campaign_id, stage)}portal/"


def portal_sheet_key(campaign_id: str, stage: str, judge_id: str, sha256: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError(f"not a sha256 digest: {sha256!r}")
    return f"{portal_prefix(campaign_id, stage)}{_check('judge', judge_id)}-{sha256[:16]}.xlsx"


def archive_key(campaign_id: str, stage: str, sha256: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError(f"not a sha256 digest: {sha256!r}")
    return f"{round_prefix(campaign_id, stage)}received/{sha256}.xlsx"


def roster_key(campaign_id: str, sha256: str, filename: str) -> str:
    return f"campaigns/{_check('campaign', campaign_id)}/judging/roster/{sha256[:12]}-{safe_filename(filename)}"
