"""Where certificates are kept in the object store.

``campaigns/{campaign}/certificates/{number}.pdf``          one certificate (revoked ones stay, as issued)
``campaigns/{campaign}/certificates/units/{province}{unit}.pdf``  the valid certificates of one unit, for printing
``campaigns/{campaign}/exports/certificates.xlsx``           the register (证书清单)
"""

from __future__ import annotations

from kepu.storage import check_id, export_key, safe_filename

PDF = "application/pdf"
REGISTER = "certificates.xlsx"


def certificates_prefix(campaign_id: str) -> str:
    check_id("campaign", campaign_id)
    return f"campaigns/{campaign_id}/certificates/"


def certificate_key(campaign_id: str, number: str) -> str:
    return f"{certificates_prefix(campaign_id)}{safe_filename(number)}.pdf"


def units_prefix(campaign_id: str) -> str:
    return f"{certificates_prefix(campaign_id)}units/"


def unit_file_key(campaign_id: str, province: str | None, unit: str | None) -> str:
    name = f"{province or ''}{unit or '未注明单位'}"
    return f"{units_prefix(campaign_id)}{safe_filename(name)}.pdf"


def register_key(campaign_id: str) -> str:
    return export_key(campaign_id, REGISTER)
