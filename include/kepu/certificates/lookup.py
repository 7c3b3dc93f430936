"""Certificate verification: is the certificate with this number valid, revoked or unknown?

The public page ``/verify/{number}`` asks a :class:`CertificateLookup`. The default one,
:class:`TableCertificateLookup`, reads a ``certificates`` table once one exists and answers
"unknown" until then, so the page works before any certificate is issued. The contract for that table
(kept small on purpose): a ``number`` column, and either a ``status`` column (``valid`` / ``revoked``)
or a ``revoked_at`` column. Only the columns in :data:`PUBLIC_FIELDS` are ever read, so a phone
number or an e-mail address stored beside a certificate can never reach the public page.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

State = Literal["valid", "revoked", "unknown"]

#: A certificate number as printed: letters, digits and hyphens. Anything else is "unknown" without
#: a query.
NUMBER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{3,63}")

#: The only columns the public page may show, besides the state.
PUBLIC_FIELDS: tuple[str, ...] = ("award", "title", "holder", "issued_at", "revoked_at")

TABLE = "certificates"


@dataclass(frozen=True)
class CertificateStatus:
    number: str
    state: State
    award: str | None = None
    title: str | None = None
    holder: str | None = None
    issued_at: dt.date | dt.datetime | None = None
    revoked_at: dt.date | dt.datetime | None = None


class CertificateLookup(Protocol):
    def lookup(self, number: str) -> CertificateStatus: ...


_DASHES = re.compile(r"[\u2010-\u2015\u2212\ufe58\ufe63\uff0d]")


def canonical_number(text: str) -> str:
    """A number as typed or pasted — any case, spaces around or inside, full-width characters, typographic
    dashes, O for 0 and I/L for 1 after the prefix — in its printed form."""
    from kepu.certificates.numbers import normalise_number

    text = _DASHES.sub("-", unicodedata.normalize("NFKC", text or ""))
    return normalise_number(text)


def valid_number(number: str) -> bool:
    return NUMBER_RE.fullmatch(canonical_number(number)) is not None


def unknown(number: str) -> CertificateStatus:
    return CertificateStatus(number=number, state="unknown")


class TableCertificateLookup:
    """Looks a number up in the ``certificates`` table of the app records, when that table exists."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._table: sa.Table | None = None

    def _reflect(self) -> sa.Table | None:
        # Reflected until found (the table appears with a later migration while the server runs), then kept.
        if self._table is None:
            if not sa.inspect(self.engine).has_table(TABLE):
                return None
            self._table = sa.Table(TABLE, sa.MetaData(), autoload_with=self.engine)
        return self._table

    def lookup(self, number: str) -> CertificateStatus:
        number = canonical_number(number)
        if not valid_number(number):
            return unknown(number)
        table = self._reflect()
        if table is None or "number" not in table.c:
            return unknown(number)
        wanted = [c for c in (*PUBLIC_FIELDS, "status") if c in table.c]
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(*(table.c[c] for c in wanted)).where(table.c.number == number)).first()
        if row is None:
            return unknown(number)
        data: dict[str, Any] = dict(zip(wanted, row, strict=True))
        return status_from_row(number, data)


def status_from_row(number: str, data: dict[str, Any]) -> CertificateStatus:
    """The public status of one certificate row: revoked when its status says so or it has a revocation date."""
    status = str(data.get("status") or "").lower()
    if status not in ("", "valid", "revoked", "issued"):
        log.warning("certificate %s has an unexpected status %r; shown as unknown", number, status)
        return unknown(number)
    revoked = status == "revoked" or data.get("revoked_at") is not None
    return CertificateStatus(
        number=number,
        state="revoked" if revoked else "valid",
        **{k: _text_or_date(data.get(k)) for k in PUBLIC_FIELDS},
    )


def _text_or_date(value: Any) -> Any:
    if value is None or isinstance(value, dt.date | dt.datetime):
        return value
    return str(value)
