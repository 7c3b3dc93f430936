"""Verification of a certificate: the URL printed on it (as a QR code) and the public status behind it.

The dashboard serves ``{KEPU_PUBLIC_BASE_URL}/kepu/verify/{number}`` (the lookup: :mod:`kepu.certificates.lookup`): it
says valid, revoked or unknown and shows the award, the title, the holder and the dates, never a contact.
"""

from __future__ import annotations

from urllib.parse import quote

from kepu.certificates.lookup import CertificateStatus, TableCertificateLookup

#: Path of the public verification page under the public base URL (the dashboard's prefix + route).
VERIFY_PATH = "/kepu/verify/"


def verification_url(public_base_url: str, number: str) -> str:
    return f"{public_base_url.rstrip('/')}{VERIFY_PATH}{quote(number, safe='')}"


def public_status(engine: object, number: str) -> CertificateStatus:
    """What the public page shows for ``number`` (the same lookup the page does)."""
    return TableCertificateLookup(engine).lookup(number)  # type: ignore[arg-type]
