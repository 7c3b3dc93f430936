"""Who scores what: a balanced, conflict-free assignment, random but reproducible from a seed.

Rules, in order of strength:

1. never a conflict: an entry goes to no judge of its unit or province (as the campaign's ``conflicts``
   say);
2. coverage: every entry gets ``per_entry`` judges (or every judge without a conflict, for a round the
   whole panel scores); an entry that cannot is an error naming it;
3. a linking set: ``linking_set`` entries of each kind are scored by every judge without a conflict, so
   that each judge's severity can be measured on common ground;
4. balance: judges' loads (linking entries included) differ by at most one; when conflicts make that
   impossible it is an error naming the judges;
5. expertise: among the least loaded judges, those whose expertise names the entry's category (类别) or
   kind are preferred;
6. chance: the remaining ties are broken by a :class:`random.Random` seeded from the round's seed, and each
   judge's sheet lists their entries in a seeded random order. The same entries, roster and seed always
   give the same assignment.

The greedy pass hands out the most constrained entries first; a repair pass then moves entries along
chains of judges (A gives one to B, B one to C …) until no judge carries two more than another, or proves
that no such chain exists.
"""

from __future__ import annotations

import hashlib
import json
import random
import unicodedata
from collections import Counter, defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from kepu.campaign import Conflicts
from kepu.db.judging_records import AssignmentRow, AssignmentSummary, JudgeLoad, JudgeRecord
from kepu.errors import JudgingError
from kepu.judging.review import Entry
from kepu.judging.roster import conflict_of

#: Words in a judge's expertise that name a kind of entry.
KIND_WORDS: dict[str, tuple[str, ...]] = {
    "video": ("video", "视频", "微视频", "科普微视频", "影视", "视听"),
    "account": ("account", "科普号", "新媒体", "自媒体", "账号"),
}


@dataclass(frozen=True)
class Plan:
    rows: list[AssignmentRow]
    linking: dict[str, list[str]]
    loads: dict[str, int]
    judges_per_entry: dict[str, int]
    expertise_matches: int
    conflicts_avoided: int
    seed: int
    notes: list[str] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        """Checksum of the assignment (who scores what, in which order): the same inputs give the same."""
        canon = [[r.judge_id, r.submission_id, r.position, r.linking] for r in self.rows]
        return hashlib.sha256(json.dumps(canon, separators=(",", ":")).encode()).hexdigest()

    def summary(self) -> AssignmentSummary:
        loads = list(self.loads.values())
        per = list(self.judges_per_entry.values())
        return {
            "seed": self.seed,
            "judges": len(self.loads),
            "entries": len(self.judges_per_entry),
            "assignments": len(self.rows),
            "load_min": min(loads, default=0),
            "load_max": max(loads, default=0),
            "judges_per_entry_min": min(per, default=0),
            "judges_per_entry_max": max(per, default=0),
            "linking": self.linking,
            "expertise_matches": self.expertise_matches,
            "conflicts_avoided": self.conflicts_avoided,
            "assignment_sha256": self.sha256,
            "notes": self.notes,
        }


def _norm(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def expertise_match(judge: JudgeRecord, entry: Entry) -> bool:
    """The judge's expertise names the entry's category (either contains the other) or its kind."""
    terms = [_norm(t) for t in judge.expertise if _norm(t)]
    if not terms:
        return False
    category = _norm(entry.category or "")
    if category and any(t in category or category in t for t in terms):
        return True
    return any(t in {_norm(w) for w in KIND_WORDS.get(entry.kind, ())} for t in terms)


def plan_assignment(
    entries: Sequence[Entry],
    judges: Sequence[JudgeRecord],
    *,
    per_entry: int | None,
    min_cover: int,
    linking_set: int,
    seed: int,
    conflicts: Conflicts,
    prefer_expertise: bool = True,
) -> Plan:
    """Assign ``entries`` to ``judges``; see the module's rules. Raises :class:`JudgingError`.

    ``per_entry`` None means the whole panel scores every entry (save conflicts); then an entry needs at
    least ``min_cover`` judges without a conflict.
    """
    if not judges:
        raise JudgingError("评委名单为空 · the roster has no judge")
    if not entries:
        raise JudgingError("没有参评作品 · there is no entry to assign")
    judges = sorted(judges, key=lambda j: j.id)
    entries = sorted(entries, key=lambda e: e.id)
    if len({e.id for e in entries}) != len(entries):
        raise ValueError("entry ids repeat")
    rng = random.Random(seed)
    by_id = {j.id: j for j in judges}
    eligible: dict[str, list[str]] = {}
    conflicted = 0
    for e in entries:
        ok = [j.id for j in judges if conflict_of(j, e.unit, e.province, conflicts) is None]
        conflicted += len(judges) - len(ok)
        eligible[e.id] = ok

    need = per_entry if per_entry is not None else min_cover
    short = [e for e in entries if len(eligible[e.id]) < need]
    if short:
        raise JudgingError(
            f"{len(short)} 件作品没有足够的无回避评委（每件需 {need} 位）· {len(short)} entries cannot be covered "
            f"by {need} judges without a conflict of interest",
            [
                f"{e.id} {e.source_name}（{e.province or '—'} {e.unit or '—'}）: "
                f"{len(eligible[e.id])} 位可评 judges without a conflict"
                for e in short
            ],
        )

    assigned: dict[str, set[str]] = defaultdict(set)  # judge -> entries
    covering: dict[str, list[str]] = {}  # entry -> judges
    fixed: set[str] = set()  # entries that may not move (linking set, whole-panel rounds)
    linking: dict[str, list[str]] = {}
    notes: list[str] = []

    def give(entry_id: str, judge_ids: Sequence[str]) -> None:
        covering[entry_id] = list(judge_ids)
        for jid in judge_ids:
            assigned[jid].add(entry_id)

    if per_entry is None:
        for e in entries:
            give(e.id, eligible[e.id])
            fixed.add(e.id)
    else:
        # The linking set: per kind, the entries fewest judges must stay away from (chance decides ties).
        for kind in sorted({e.kind for e in entries}):
            pool = [e for e in entries if e.kind == kind]
            keyed = sorted(pool, key=lambda e: (len(judges) - len(eligible[e.id]), rng.random()))
            chosen = sorted(e.id for e in keyed[: min(linking_set, len(pool))])
            linking[kind] = chosen
            for sid in chosen:
                give(sid, eligible[sid])
                fixed.add(sid)
                missing = len(judges) - len(eligible[sid])
                if missing:
                    notes.append(f"linking entry {sid} is not scored by {missing} judge(s) with a conflict")
        # Most constrained first, so that an entry few judges may score still finds them free.
        rest = [e for e in entries if e.id not in fixed]
        order = sorted(rest, key=lambda e: (len(eligible[e.id]), rng.random()))
        entry_by_id = {e.id: e for e in entries}
        for e in order:
            candidates = eligible[e.id]
            keys = {
                jid: (
                    len(assigned[jid]),
                    0 if prefer_expertise and expertise_match(by_id[jid], entry_by_id[e.id]) else 1,
                    rng.random(),
                )
                for jid in candidates
            }
            give(e.id, sorted(candidates, key=keys.__getitem__)[:per_entry])
        _balance(assigned, covering, eligible, fixed, [j.id for j in judges])

    loads = {j.id: len(assigned[j.id]) for j in judges}
    if per_entry is not None and max(loads.values()) - min(loads.values()) > 1:
        low = min(loads.values())
        raise JudgingError(
            "回避规则使评委工作量无法均衡（相差不超过 1）· conflicts of interest make balanced loads (±1) impossible",
            [
                f"{jid} {by_id[jid].name}（{by_id[jid].province} {by_id[jid].unit}）: {n} 件 entries, "
                f"可评 {sum(1 for e in entries if jid in eligible[e.id])} 件 without a conflict"
                for jid, n in sorted(loads.items())
                if n == low
            ],
        )

    entry_by_id = {e.id: e for e in entries}
    linking_ids = {sid for ids in linking.values() for sid in ids}
    rows: list[AssignmentRow] = []
    for j in judges:
        mine = sorted(assigned[j.id])
        rng.shuffle(mine)
        rows.extend(AssignmentRow(j.id, sid, pos, sid in linking_ids) for pos, sid in enumerate(mine, start=1))
    matches = sum(1 for r in rows if expertise_match(by_id[r.judge_id], entry_by_id[r.submission_id]))
    return Plan(
        rows=rows,
        linking=linking,
        loads=loads,
        judges_per_entry={sid: len(js) for sid, js in sorted(covering.items())},
        expertise_matches=matches,
        conflicts_avoided=conflicted,
        seed=seed,
        notes=notes,
    )


def _balance(
    assigned: dict[str, set[str]],
    covering: dict[str, list[str]],
    eligible: dict[str, list[str]],
    fixed: set[str],
    judge_ids: list[str],
) -> None:
    """Move entries along chains of judges until no judge has two more than another (when possible).

    A chain A → B → … → Z moves one entry from A to B, another from B to C, and so on: A loses one, Z gains
    one, the others keep their load. Every move keeps the entry away from a conflicted judge and from a
    judge who already has it.
    """
    eligible_sets = {sid: set(js) for sid, js in eligible.items()}
    while True:
        loads = {j: len(assigned[j]) for j in judge_ids}
        high, low = max(loads.values()), min(loads.values())
        if high - low <= 1:
            return
        path = _chain(assigned, eligible_sets, fixed, judge_ids, loads, high)
        if path is None:
            return
        for giver, taker, sid in path:
            assigned[giver].remove(sid)
            assigned[taker].add(sid)
            covering[sid] = [taker if j == giver else j for j in covering[sid]]


def _chain(
    assigned: dict[str, set[str]],
    eligible: dict[str, set[str]],
    fixed: set[str],
    judge_ids: list[str],
    loads: dict[str, int],
    high: int,
) -> list[tuple[str, str, str]] | None:
    """A shortest chain from a judge at ``high`` load to one at ``high - 2`` or less (breadth first)."""
    starts = [j for j in judge_ids if loads[j] == high]
    parent: dict[str, tuple[str, str] | None] = dict.fromkeys(starts)
    queue = deque(starts)
    while queue:
        giver = queue.popleft()
        for sid in sorted(assigned[giver] - fixed):
            for taker in judge_ids:
                if taker in parent or taker not in eligible[sid] or sid in assigned[taker]:
                    continue
                parent[taker] = (giver, sid)
                if loads[taker] <= high - 2:
                    path: list[tuple[str, str, str]] = []
                    node = taker
                    while (step := parent[node]) is not None:
                        path.append((step[0], node, step[1]))
                        node = step[0]
                    return list(reversed(path))
                queue.append(taker)
    return None


def load_table(plan: Plan, judges: Sequence[JudgeRecord]) -> list[JudgeLoad]:
    """Per judge: load, linking entries and expertise matches (for the round summary and report)."""
    counts = Counter(r.judge_id for r in plan.rows)
    linking = Counter(r.judge_id for r in plan.rows if r.linking)
    return [
        {"judge_id": j.id, "name": j.name, "load": counts[j.id], "linking": linking[j.id]}
        for j in sorted(judges, key=lambda j: j.id)
    ]
