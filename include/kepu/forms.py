"""Application forms (附件1/附件2) read from the tables of a filled Word file.

Labels are matched after removing spaces and explanatory brackets, because units retype them
(``类  别（专业领域）``, ``电子 邮箱``); merged cells, which python-docx repeats, count once.
"""

from __future__ import annotations

import re
import unicodedata
import zipfile
from pathlib import Path
from typing import Any

from kepu.errors import MaterialError

_BRACKETS = re.compile(r"[（(][^）)]*[）)]")


def normalise_label(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = _BRACKETS.sub("", text)
    return re.sub(r"[\s:：*＊]", "", text)


def read_docx_fields(path: Path, labels: list[str]) -> dict[str, str]:
    """Map each wanted label to the text of the cell right of it (empty string when blank).

    Labels not present in the form are left out of the result.
    """
    import docx  # python-docx; imported here so parsing a DAG never loads it

    if not zipfile.is_zipfile(path):
        raise MaterialError("M-UNREADABLE", f"{path.name} is not a .docx file (old .doc or damaged)")
    try:
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises assorted errors on damaged files
        raise MaterialError("M-UNREADABLE", f"{path.name} cannot be read as a Word form: {exc}") from exc
    wanted = {normalise_label(lab): lab for lab in labels}
    found: dict[str, str] = {}
    for table in document.tables:
        for row in table.rows:
            cells: list[Any] = []
            for cell in row.cells:
                if not cells or cell._tc is not cells[-1]._tc:
                    cells.append(cell)
            for i, cell in enumerate(cells):
                key = normalise_label(cell.text)
                if key in wanted and wanted[key] not in found:
                    value = cells[i + 1].text.strip() if i + 1 < len(cells) else ""
                    if normalise_label(value) in wanted:
                        value = ""
                    found[wanted[key]] = value
    return found
