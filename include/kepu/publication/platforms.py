"""Pushing works to partner platforms (科普中国, 科创筑梦, 微信, 抖音 …).

Each platform is an Airflow HTTP connection ``kepu_platform_{key}`` (host with scheme and path, e.g.
``https://partner.example/api/v1``; login/password for basic auth, or headers such as ``Authorization`` in the
extra). A work is one ``POST {base}/{endpoint}`` of its public metadata and media links, with the header
``Idempotency-Key``: the same package always sends the same key, so a platform that already took it can say so
instead of taking it twice, and a changed package (a corrected synopsis) gets a new one.

Answers 2xx are accepted (a JSON ``id`` in the answer is kept as the platform's id); 5xx answers, timeouts and
refused connections are tried again after 2 s, 4 s, 8 s … (the campaign's ``publication.push``); 4xx answers
are final and reported, never tried again with the same package.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from kepu.campaign import PushPolicy

log = logging.getLogger(__name__)

CONN_PREFIX = "kepu_platform_"
IDEMPOTENCY_HEADER = "Idempotency-Key"
Outcome = Literal["accepted", "rejected", "failed"]


def conn_id(platform_key: str) -> str:
    return f"{CONN_PREFIX}{platform_key}"


def idempotency_key(campaign_id: str, platform_key: str, submission_id: str, package_sha256: str) -> str:
    digest = hashlib.sha256(f"{campaign_id}\x1f{platform_key}\x1f{submission_id}\x1f{package_sha256}".encode())
    return f"kepu-{campaign_id}-{submission_id}-{digest.hexdigest()[:24]}"


class TransientError(Exception):
    """The platform could not be reached or did not answer in time: worth another try."""


class Transport(Protocol):
    def post(self, endpoint: str, payload: dict[str, Any], headers: dict[str, str], timeout: float) -> tuple[int, str]:
        """POST ``payload`` as JSON; the status and body of the answer. :class:`TransientError` when unreachable."""
        ...


class HttpHookTransport:
    """A platform behind an Airflow HTTP connection, through the HTTP provider's ``HttpHook``."""

    def __init__(self, http_conn_id: str) -> None:
        from airflow.providers.http.hooks.http import HttpHook

        self.conn_id = http_conn_id
        self.hook = HttpHook(method="POST", http_conn_id=http_conn_id)

    def post(self, endpoint: str, payload: dict[str, Any], headers: dict[str, str], timeout: float) -> tuple[int, str]:
        import requests

        try:
            resp = self.hook.run(
                endpoint,
                json=payload,
                headers={"Content-Type": "application/json; charset=utf-8", **headers},
                extra_options={"check_response": False, "timeout": timeout},
            )
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from exc
        return int(resp.status_code), str(resp.text)[:2000]


def connection_defined(http_conn_id: str) -> bool:
    """Whether Airflow knows the connection (environment, secrets backend or metadata database)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(http_conn_id)
    except AirflowNotFoundException:
        return False
    return True


@dataclass(frozen=True)
class PushResult:
    status: Outcome
    attempts: int
    http_status: int | None = None
    remote_id: str | None = None
    detail: str | None = None


def _remote_id(body: str) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict):
        value = data.get("id") or data.get("work_id")
        return None if value is None else str(value)
    return None


def push(
    transport: Transport,
    endpoint: str,
    payload: dict[str, Any],
    key: str,
    policy: PushPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> PushResult:
    """POST one work, trying again on 5xx and timeouts with exponential backoff, never on 4xx."""
    headers = {IDEMPOTENCY_HEADER: key}
    detail = ""
    status: int | None = None
    for attempt in range(1, policy.attempts + 1):
        try:
            status, body = transport.post(endpoint, payload, headers, policy.timeout_s)
        except TransientError as exc:
            status, detail = None, str(exc)
        else:
            if 200 <= status < 300:
                return PushResult("accepted", attempt, status, _remote_id(body), body[:500] or None)
            detail = body[:500]
            if 400 <= status < 500:
                return PushResult("rejected", attempt, status, None, detail)
        if attempt < policy.attempts:
            wait = min(policy.backoff_s * 2 ** (attempt - 1), policy.max_backoff_s)
            log.warning("push %s: try %d failed (%s); again in %.1f s", key, attempt, status or detail, wait)
            sleep(wait)
    return PushResult("failed", policy.attempts, status, None, detail or None)
