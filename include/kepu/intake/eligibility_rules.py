"""Eligibility rules that compare submissions with one another or with the calendar.

These are plain pandas/Python over the submission frame of :func:`kepu.intake.quality.build_frame`:

* :func:`apply_quotas` — Q-QUOTA: per (entity, channel, kind) the earliest received entries are kept
  up to the channel's quota (``quota_policy.keep: earliest_received``), ties broken by submission id.
* :func:`channel_findings` — Q-CHANNEL: channel missing or unknown, or membership not in the roster.
* :func:`deadline_findings` — D-LATE / D-EXTENDED against the deadline and its extensions.

Operator overrides of the quota (:class:`QuotaOverride`) are applied on every evaluation, so a
re-run over a grown frame keeps the operator's decisions:

* ``exclude`` — the entry gets Q-QUOTA naming the operator, and it does not take a place: the next
  entry of the same entity moves up into the quota.
* ``keep`` — the entry never gets Q-QUOTA. A keep is *additional*: places are counted as if there were
  no keep, so an operator keep never pushes another entry out nor pulls one in.

When several overrides name the same submission, the one with the latest ``at`` applies.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pandas as pd

from kepu.campaign import Campaign, Extension, Kind
from kepu.findings import Finding, make_finding
from kepu.intake.quality import FrameError, canonical_province, check_frame, normalise_entity
from kepu.rules import Code

log = logging.getLogger(__name__)

STAGE = "eligibility"

_NOUN: dict[Kind, tuple[str, str, str, str]] = {
    # kind: (noun zh, measure word zh, noun en singular, plural)
    "video": ("作品", "部", "work", "works"),
    "account": ("科普号", "个", "account", "accounts"),
}


@dataclass(frozen=True)
class QuotaOverride:
    """An operator's decision on one entry, recorded with who, when and why."""

    submission_id: str
    decision: Literal["keep", "exclude"]
    by: str
    at: datetime
    reason: str

    def __post_init__(self) -> None:
        if self.decision not in ("keep", "exclude"):
            raise ValueError(f"decision must be 'keep' or 'exclude', not {self.decision!r}")
        if not self.submission_id.strip():
            raise ValueError("submission_id is empty")
        if not self.by.strip():
            raise ValueError("an override must name the operator (by)")
        if not self.reason.strip():
            raise ValueError("an override must give a reason")
        if self.at.tzinfo is None:
            raise ValueError("override time (at) needs a time zone")

    def to_dict(self) -> dict[str, Any]:
        return {
            "submission_id": self.submission_id,
            "decision": self.decision,
            "by": self.by,
            "at": self.at.isoformat(),
            "reason": self.reason,
        }


def quota_rule(campaign: Campaign, channel: str, kind: Kind) -> tuple[str, str]:
    """The quota of a channel for a kind, in words: ("省级推荐每单位作品不超过10部", "provincial: …")."""
    ch = campaign.channels[channel]
    quota = ch.quota.for_kind(kind)
    noun_zh, measure, one_en, many_en = _NOUN[kind]
    return (
        f"{ch.label_zh}每单位{noun_zh}不超过{quota}{measure}",
        f"{channel}: at most {quota} {one_en if quota == 1 else many_en} per unit",
    )


def _latest_overrides(overrides: Iterable[QuotaOverride], known: set[str]) -> dict[str, QuotaOverride]:
    latest: dict[str, QuotaOverride] = {}
    for ov in overrides:
        if ov.submission_id not in known:
            log.warning("quota override for unknown submission %s ignored (%s)", ov.submission_id, ov.to_dict())
            continue
        current = latest.get(ov.submission_id)
        if current is None or ov.at >= current.at:
            latest[ov.submission_id] = ov
    return latest


def _local(campaign: Campaign, when: datetime | pd.Timestamp) -> str:
    return str(pd.Timestamp(when).tz_convert(ZoneInfo(campaign.campaign.timezone)).isoformat(timespec="seconds"))


def apply_quotas(campaign: Campaign, df: pd.DataFrame, overrides: Iterable[QuotaOverride] = ()) -> dict[str, Finding]:
    """Q-QUOTA for every entry beyond its channel's quota, and for every entry an operator excluded.

    Entries are grouped by (entity, channel, kind) and ordered by received time then submission id.
    Entries without an entity or with a channel the campaign does not know are not counted (they
    get Q-CHANNEL from :func:`channel_findings`), unless an operator excluded them.
    """
    check_frame(df)
    if campaign.quota_policy.keep != "earliest_received":  # the only policy the schema allows today
        raise FrameError(f"quota policy {campaign.quota_policy.keep!r} is not implemented")
    chosen = _latest_overrides(overrides, set(df["submission_id"]))
    decision = df["submission_id"].map(lambda s: chosen[s].decision if s in chosen else None)

    frame = df.loc[:, ["submission_id", "kind", "channel", "entity", "received_at"]].assign(decision=decision)
    frame = frame.sort_values(["received_at", "submission_id"], kind="mergesort")
    in_scope = frame["channel"].isin(list(campaign.channels)) & frame["entity"].notna()
    scoped = frame.loc[in_scope]
    keys = ["entity", "channel", "kind"]
    position = scoped.groupby(keys, sort=False).cumcount() + 1
    candidates = scoped.loc[scoped["decision"] != "exclude"]
    rank = candidates.groupby(keys, sort=False).cumcount() + 1
    total = candidates.groupby(keys, sort=False)["submission_id"].transform("size")
    quotas = {(key, kind): ch.quota.for_kind(kind) for key, ch in campaign.channels.items() for kind in _NOUN}
    quota = pd.Series(
        [quotas[(c, k)] for c, k in zip(candidates["channel"], candidates["kind"], strict=True)],
        index=candidates.index,
        dtype="int64",
    )

    out: dict[str, Finding] = {}
    if len(candidates):
        excess = candidates.loc[(rank > quota) & (candidates["decision"] != "keep")]
        for row in excess.itertuples(index=True):
            r, n, q = int(rank[row.Index]), int(total[row.Index]), int(quota[row.Index])
            rule_zh, rule_en = quota_rule(campaign, str(row.channel), row.kind)
            out[str(row.submission_id)] = make_finding(
                campaign,
                "Q-QUOTA",
                detail_zh=f"{rule_zh}；“{row.entity}”的第 {r} 件（共 {n} 件，按接收时间）",
                detail_en=f"{rule_en}; entry {r} of {n} from “{row.entity}” by time received",
                value=r,
                limit=q,
                stage=STAGE,
            )
    for row in frame.loc[frame["decision"] == "exclude"].itertuples(index=True):
        ov = chosen[str(row.submission_id)]
        if in_scope[row.Index]:
            rule_zh, rule_en = quota_rule(campaign, str(row.channel), row.kind)
            value: object = int(position[row.Index])
            limit: object = campaign.channels[str(row.channel)].quota.for_kind(row.kind)
        else:
            rule_zh, rule_en, value, limit = "报送渠道或单位未知", "channel or unit unknown", None, None
        out[str(row.submission_id)] = make_finding(
            campaign,
            "Q-QUOTA",
            detail_zh=f"{rule_zh}；经办人 {ov.by} 于 {_local(campaign, ov.at)} 排除：{ov.reason}",
            detail_en=f"{rule_en}; excluded by operator {ov.by} at {_local(campaign, ov.at)}: {ov.reason}",
            value=value,
            limit=limit,
            stage=STAGE,
        )
    log.info(
        "quotas of campaign %s: %d entries counted, %d over quota or excluded, %d overrides applied",
        campaign.id,
        len(scoped),
        len(out),
        len(chosen),
    )
    return dict(sorted(out.items()))


def channel_findings(campaign: Campaign, df: pd.DataFrame, roster: Collection[str] | None = None) -> dict[str, Finding]:
    """Q-CHANNEL when the channel is missing or unknown, or membership cannot be confirmed.

    ``roster`` is the member roster (unit or person names, normalised like the frame's ``entity``).
    Without a roster, membership is not judged: only missing or unknown channels are reported.
    """
    check_frame(df)
    members = None if roster is None else {normalise_entity(m) for m in roster} - {None}
    out: dict[str, Finding] = {}
    for row in df.loc[:, ["submission_id", "channel", "entity"]].itertuples(index=False):
        sid, channel, entity = str(row.submission_id), row.channel, row.entity
        if channel is None or pd.isna(channel):
            zh, en, value, limit = "未注明报送渠道", "no channel given", None, ", ".join(campaign.channels)
        elif channel not in campaign.channels:
            zh, en = f"未知的报送渠道“{channel}”", f"unknown channel “{channel}”"
            value, limit = channel, ", ".join(campaign.channels)
        elif members is not None and campaign.channels[channel].membership_required and entity not in members:
            label = campaign.channels[channel].label_zh
            who = entity if isinstance(entity, str) else "（未注明）"
            zh = f"以“{label}”报送，但“{who}”不在会员名录中"
            en = f"sent as {channel}, but “{who}” is not in the member roster"
            value, limit = who, "会员名录 member roster"
        else:
            continue
        out[sid] = make_finding(
            campaign, "Q-CHANNEL", detail_zh=zh, detail_en=en, value=value, limit=limit, stage=STAGE
        )
    return out


def _applies(ext: Extension, channel: str | None, province: str | None) -> bool:
    if ext.channels and channel not in ext.channels:
        return False
    return not ext.provinces or (province is not None and province in {canonical_province(p) for p in ext.provinces})


def applicable_extensions(campaign: Campaign, channel: str | None, province: str | None) -> list[Extension]:
    """Extensions that apply to an entry of ``channel`` from ``province``, earliest end first.

    An extension applies when its channel list is empty or holds the channel, and its province list is
    empty or holds the province (province names compared as full names: 广东 = 广东省).
    """
    province = canonical_province(province)
    found = [e for e in campaign.deadline.extensions if _applies(e, channel, province)]
    return sorted(found, key=lambda e: e.until)


def applicable_deadline(campaign: Campaign, channel: str | None, province: str | None) -> datetime:
    """The last moment an entry of ``channel`` from ``province`` is on time (timezone-aware)."""
    ends = [campaign.deadline.at, *(e.until for e in applicable_extensions(campaign, channel, province))]
    return max(ends)


def deadline_findings(campaign: Campaign, df: pd.DataFrame) -> dict[str, Finding]:
    """D-LATE after the deadline and every extension that applies; D-EXTENDED inside an extension.

    Times are compared as absolute instants, at whole-second resolution: an entry received at
    23:59:59.6 is on time for a 23:59:59 deadline. A frame with naive times is refused
    (:class:`FrameError`): without an offset the moment of receipt is unknown.
    """
    check_frame(df)
    original = pd.Timestamp(campaign.deadline.at)
    received = df["received_at"].dt.floor("s")
    late_for_original = received > original
    out: dict[str, Finding] = {}
    if not late_for_original.any():
        return out
    cache: dict[tuple[Any, Any], tuple[pd.Timestamp, list[Extension]]] = {}
    subset = df.loc[late_for_original, ["submission_id", "channel", "province"]].assign(
        received=received[late_for_original]
    )
    for row in subset.itertuples(index=False):
        channel = row.channel if isinstance(row.channel, str) else None
        province = row.province if isinstance(row.province, str) else None
        key = (channel, province)
        if key not in cache:
            cache[key] = (
                pd.Timestamp(applicable_deadline(campaign, channel, province)),
                applicable_extensions(campaign, channel, province),
            )
        deadline, extensions = cache[key]
        at = _local(campaign, row.received)
        code: Code
        if row.received > deadline:
            extended = deadline > original
            zh = f"{at} 收到，截止时间为 {_local(campaign, deadline)}" + ("（含延期）" if extended else "")
            en = f"received {at}, deadline {_local(campaign, deadline)}" + (" (extended)" if extended else "")
            code, limit = "D-LATE", _local(campaign, deadline)
        else:
            ext = next(e for e in extensions if row.received <= pd.Timestamp(e.until))
            why_zh = f"（{ext.reason}）" if ext.reason else ""
            why_en = f" ({ext.reason})" if ext.reason else ""
            until = _local(campaign, ext.until)
            zh = f"{at} 收到，晚于原截止时间 {_local(campaign, original)}，在延期{why_zh}至 {until} 之内"
            en = f"received {at}, after the original deadline {_local(campaign, original)}, "
            en += f"inside the extension{why_en} until {until}"
            code, limit = "D-EXTENDED", until
        out[str(row.submission_id)] = make_finding(
            campaign, code, detail_zh=zh, detail_en=en, value=at, limit=limit, stage=STAGE
        )
    log.info("deadline of campaign %s: %d entries late for the original deadline", campaign.id, len(out))
    return dict(sorted(out.items()))
