"""Application forms (附件1 科普号申报表, 附件2 微视频申报表) read from Word or Excel files.

Units fill the notice's forms in Word or WPS and change them as they go: labels are retyped with
spaces, full-width characters and line breaks (``类  别\\n（专业领域）``), values are typed into the
label cell (``联系电话：010-1234``) or spread over unmerged cells, cells are merged both ways, tables
are nested, pictures of signatures and seals are pasted in, and the template's own hints
(``（300字以内）``, the pledge text) are left in place. The reader therefore works on a grid of
distinct cells (a merged cell is one cell however many grid positions it covers), finds label cells
by a normalised key, and takes the value from the same cell, the cells to its right or the cell
below. Template hints are removed from values, so a blank template reads as all fields empty.

This module puts a form together (:func:`read_form`) from its parts, each a module of its own: the files read
as grids of cells (:mod:`~kepu.intake.form_tables`), the labels and their values in a grid
(:mod:`~kepu.intake.form_fields`), the signature and seal blocks (:mod:`~kepu.intake.form_signoff`). What the
values mean is :mod:`~kepu.intake.form_values`; the findings of a form and what a person checks on it are
:mod:`~kepu.intake.form_checks`.

Old binary Word/WPS files, PDFs and damaged files raise :class:`MaterialError` ``M-UNREADABLE``;
a readable file with no form in it raises ``M-FORM-MISSING``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from kepu.campaign import Campaign, Kind
from kepu.errors import MaterialError
from kepu.intake.form_fields import (
    EXTRA_LABELS,
    Occurrence,
    Segment,
    clean_value,
    field_keys,
    find_labels,
    label_key,
    vocabulary,
)
from kepu.intake.form_signoff import (
    OWNER,
    OWNER_SIGNATURE,
    PLEDGE,
    RECOMMENDER_BLOCKS,
    SIGNOFF_FIELDS,
    SignOff,
    parse_signoff,
)
from kepu.intake.form_tables import FormFormat, read_tables

log = logging.getLogger(__name__)

#: The title of each kind of form.
FORM_TITLES: dict[Kind, str] = {"video": "微视频申报表", "account": "科普号申报表"}
_KINDS: tuple[Kind, ...] = ("video", "account")


# --- reading a form -----------------------------------------------------------------------------------


@dataclass
class FormData:
    """What an application form says, keyed by the campaign's field names.

    Every field of the kind is present; an empty string means the submitter left it blank (the
    template's hints do not count as a value). ``signature_name``/``pledge_date`` come from the
    pledge (作者承诺, video) or the person in charge's signature (负责人（签名）, account).
    """

    kind: Kind
    fields: dict[str, str]
    source: str
    format: FormFormat
    path: Path | None = None
    title: str = ""
    signature_name: str = ""
    pledge_date: date | None = None
    pledge_date_text: str = ""
    seal_mentioned: bool = False
    seal_text: str = ""
    images_count: int = 0
    pledge_images: int = 0
    recommender_images: int = 0
    missing_labels: list[str] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def has_signature_text(self) -> bool:
        return bool(self.signature_name)

    @property
    def recommender(self) -> str:
        """What the recommending unit's block (推荐单位, 推荐单位意见) says beyond its template."""
        return next((v for name, v in self.fields.items() if label_key(name) in RECOMMENDER_BLOCKS and v), "")

    @property
    def recommender_filled(self) -> bool:
        """The recommending unit named (or its opinion written) in its block, or a seal picture pasted there."""
        return bool(self.recommender) or self.recommender_images > 0

    @property
    def pledge_signed(self) -> bool:
        """A name and a filled date, or a picture pasted into the signature block."""
        return (self.has_signature_text and self.pledge_date is not None) or self.pledge_images > 0


def _detect(segment: Segment, vocabs: dict[Kind, dict[str, str]], unique: dict[Kind, set[str]]) -> Kind | None:
    squeezed = re.sub(r"\s", "", segment.text())
    titled = [k for k, t in FORM_TITLES.items() if t in squeezed]
    if len(titled) == 1:
        return titled[0]
    scores: dict[Kind, int] = {}
    for kind, vocab in vocabs.items():
        keys = {o.label for o in find_labels(segment.rows, vocab, join_run=segment.join_run)}
        scores[kind] = len(keys & unique[kind])
    best = max(scores.values())
    if best == 0:
        return None
    winners = [k for k, s in scores.items() if s == best]
    return winners[0] if len(winners) == 1 else None


def form_field_names(campaign: Campaign, kind: Kind) -> list[str]:
    """The campaign's field names of the ``kind`` form."""
    p = campaign.package
    return list(p.video_form_fields if kind == "video" else p.account_form_fields)


def read_form(path: Path, campaign: Campaign) -> FormData:
    """Read a 科普号申报表 or 微视频申报表 from a .docx or .xlsx file.

    Raises MaterialError ``M-UNREADABLE`` for anything that is not a readable .docx/.xlsx (old .doc,
    .wps, PDF, picture, damaged file) and ``M-FORM-MISSING`` for a readable file with no form in it.
    """
    path = Path(path)
    names: dict[Kind, list[str]] = {k: form_field_names(campaign, k) for k in _KINDS}
    vocabs: dict[Kind, dict[str, str]] = {k: vocabulary(v) for k, v in names.items()}
    union = {**vocabs["account"], **vocabs["video"]}
    unique: dict[Kind, set[str]] = {
        "video": set(vocabs["video"]) - set(vocabs["account"]),
        "account": set(vocabs["account"]) - set(vocabs["video"]),
    }
    fmt, segments, images = read_tables(path, union)

    by_kind: dict[Kind, list[Segment]] = {"video": [], "account": []}
    for seg in segments:
        detected = _detect(seg, vocabs, unique)
        if detected is not None:
            by_kind[detected].append(seg)
    raw: dict[Kind, list[Occurrence]] = {
        k: [o for s in segs for o in find_labels(s.rows, vocabs[k], join_run=s.join_run)] for k, segs in by_kind.items()
    }
    present = [k for k in _KINDS if raw[k]]
    if not present:
        raise MaterialError(
            "M-FORM-MISSING",
            f"{path.name}：文件中没有找到申报表栏目 / {path.name} holds no application form fields",
        )
    notes: list[str] = []
    kind: Kind
    if len(present) == 2:
        # One file holding both attachments: the one actually filled in is the form.
        filled = {k: sum(1 for o in raw[k] if clean_value(o.value)) for k in present}
        kind = max(present, key=lambda k: (filled[k], len(raw[k]), k == "video"))
        other: Kind = "account" if kind == "video" else "video"
        notes.append(
            f"文件中同时含有{FORM_TITLES[other]}（已填写 {filled[other]} 项），按{FORM_TITLES[kind]}读取 / "
            f"the file also holds the {other} form ({filled[other]} fields filled); read as the {kind} form"
        )
        log.info("%s holds both forms; read as %s", path.name, kind)
    else:
        kind = present[0]

    form = _assemble(kind, names[kind], raw[kind], campaign.deadline.at.year)
    form.source, form.format, form.path, form.images_count = path.name, fmt, path, images
    form.notes.extend(notes)
    form.title = _title(by_kind[kind], kind)
    log.debug("read %s form %s: %d fields filled", kind, path.name, sum(1 for v in form.fields.values() if v))
    return form


def _title(segments: list[Segment], kind: Kind) -> str:
    for seg in segments:
        for line in seg.text().split("\n"):
            if FORM_TITLES[kind] in re.sub(r"\s", "", line):
                return line.strip()
    return ""


def _assemble(kind: Kind, names: list[str], occurrences: list[Occurrence], year: int) -> FormData:
    first: dict[str, Occurrence] = {}
    for o in occurrences:
        # The first occurrence with a value wins; a label repeated further down stays a fallback.
        if o.label not in first or (not first[o.label].value.strip() and o.value.strip()):
            first[o.label] = o
    form = FormData(kind=kind, fields={}, source="", format="docx")

    def lookup(name: str) -> Occurrence | None:
        hits = [first[k] for k in field_keys(name) if k in first]
        filled = [h for h in hits if h.value.strip()]
        best = filled or hits
        return best[0] if best else None

    for name in names:
        occ = lookup(name)
        k = label_key(name)
        if occ is None:
            form.fields[name] = ""
            if k != OWNER_SIGNATURE:  # it lives inside the 所属单位 cell in the notice's layout
                form.missing_labels.append(name)
            continue
        if k in SIGNOFF_FIELDS:
            signoff = parse_signoff(occ.value, year, pledge=k == PLEDGE)
            form.fields[name] = _apply_signoff(form, k, signoff, occ.images)
        elif k == OWNER_SIGNATURE:
            signoff = parse_signoff(occ.value, year)
            form.fields[name] = signoff.name or signoff.text
        else:
            form.fields[name] = clean_value(occ.value)
    for k, alias in ((k, a) for k, als in EXTRA_LABELS.items() for a in als):
        if label_key(alias) in first and k not in form.extra:
            form.extra[k] = clean_value(first[label_key(alias)].value)
    for name in names:
        if label_key(name) == OWNER_SIGNATURE and not form.fields[name]:
            form.fields[name] = form.signature_name
        if label_key(name) == OWNER_SIGNATURE and form.fields[name] and not form.signature_name:
            form.signature_name = form.fields[name]
    return form


def _apply_signoff(form: FormData, k: str, s: SignOff, images: int) -> str:
    """Record what a sign-off cell says on ``form`` and return the field's value."""
    if s.seal:
        form.seal_mentioned = True
        form.seal_text = form.seal_text or s.seal
    if k in (PLEDGE, OWNER):
        form.signature_name = form.signature_name or s.name
        if form.pledge_date is None and s.day is not None:
            form.pledge_date, form.pledge_date_text = s.day, s.date_text
        form.pledge_images += images
    if k in RECOMMENDER_BLOCKS:
        form.recommender_images += images
    if k == PLEDGE:
        return s.name
    if k == OWNER:
        return s.text or s.seal
    return "\n".join(dict.fromkeys(p for p in (s.text, s.seal) if p))
