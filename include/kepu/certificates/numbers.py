"""Certificate numbers: ``KP2022-XXXX-XXXX-XXXX``, an HMAC, never a sequence.

The number is HMAC-SHA256 of campaign, certificate type, submission and generation under a secret key,
cut to 60 bits and written in Crockford's base32 (no I, L, O, U: nothing to misread on paper). Without the
key nobody can derive a valid number from another, and the same inputs always give the same number, so a
rerun issues nothing new. A reissue is the next generation, hence a new number.

The key is ``KEPU_CERT_SECRET``; without it a random key is made once and kept in ``$KEPU_HOME/cert-secret``
(readable by its owner only). Issued numbers are stored with their certificate, so a changed key changes
only the numbers issued afterwards.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from pathlib import Path

from kepu.config import Settings
from kepu.errors import ConfigError

log = logging.getLogger(__name__)

#: Crockford's base32 alphabet.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
GROUPS = 3
GROUP_LENGTH = 4
SECRET_FILE = "cert-secret"
MIN_SECRET_LENGTH = 16


def certificate_number(
    secret: bytes, prefix: str, campaign_id: str, cert_type: str, submission_id: str, generation: int
) -> str:
    """The number of one certificate: ``{prefix}-XXXX-XXXX-XXXX``."""
    if generation < 0:
        raise ValueError("generation must be 0 or more")
    message = "\x1f".join((campaign_id, cert_type, submission_id, str(generation))).encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    bits = int.from_bytes(digest[:8], "big") >> (64 - 5 * GROUPS * GROUP_LENGTH)
    chars = []
    for _ in range(GROUPS * GROUP_LENGTH):
        chars.append(ALPHABET[bits & 31])
        bits >>= 5
    body = "".join(reversed(chars))
    groups = [body[i : i + GROUP_LENGTH] for i in range(0, len(body), GROUP_LENGTH)]
    return "-".join([prefix, *groups])


def number_pattern(prefix: str) -> re.Pattern[str]:
    group = f"[{ALPHABET}]{{{GROUP_LENGTH}}}"
    return re.compile(rf"{re.escape(prefix)}(?:-{group}){{{GROUPS}}}")


def normalise_number(text: str) -> str:
    """A number as typed (lower case, spaces, O for 0, I/L for 1) in its printed form."""
    cleaned = re.sub(r"\s+", "", text).upper()
    head, sep, tail = cleaned.partition("-")
    return head + sep + tail.replace("O", "0").replace("I", "1").replace("L", "1")


def load_secret(settings: Settings) -> bytes:
    """The key of the numbers: ``KEPU_CERT_SECRET``, or the one kept under ``KEPU_HOME`` (made on first use)."""
    if settings.cert_secret:
        if len(settings.cert_secret) < MIN_SECRET_LENGTH:
            raise ConfigError(f"KEPU_CERT_SECRET is shorter than {MIN_SECRET_LENGTH} characters")
        return settings.cert_secret.encode()
    path = Path(settings.home) / SECRET_FILE
    if not path.exists():
        from kepu.storage import private_dir

        private_dir(path.parent)
        try:
            # O_EXCL: two workers starting at once agree on the first key written.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
            log.warning("KEPU_CERT_SECRET is not set: made a certificate key in %s", path)
    secret = path.read_text().strip()
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(f"the certificate key in {path} is empty or too short; remove it or set KEPU_CERT_SECRET")
    return secret.encode()
