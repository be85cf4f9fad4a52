"""What a webhook's answer means for its task: delivered, failed (retry or not), or refused."""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus

import orjson

from app.core.models import ErrorReport

# Answers that say "not now": retried, honouring Retry-After.
RETRY_LATER_STATUSES = frozenset({408, 429, 502, 503, 504})
# A Retry-After further out than this is taken as this (a task is not parked for days).
MAX_RETRY_AFTER_S = 3600.0
MAX_DETAIL_CHARS = 300


@dataclass(frozen=True, slots=True)
class Delivered:
    """2xx: the task succeeded with this result (JSON text)."""

    result_json: str


@dataclass(frozen=True, slots=True)
class Failed:
    """The attempt failed; retried with backoff (or after `retry_after_s`) when `retry`."""

    error: ErrorReport
    retry: bool
    retry_after_s: float | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """The target refuses work for now (410 Gone, or the SSRF guard): pause the queue and
    hand the task back without using up its attempt."""

    reason: str


Outcome = Delivered | Failed | Refused


def retry_after_seconds(value: str | None, now_s: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), capped; None if absent
    or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return min(max(when.timestamp() - now_s, 0.0), MAX_RETRY_AFTER_S)


def result_from_body(body: bytes | None, content_type: str) -> str:
    """The task's result: the body when it is JSON, else null."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if body is None or not (media_type == "application/json" or media_type.endswith("+json")):
        return "null"
    try:
        return orjson.dumps(orjson.loads(body)).decode()
    except orjson.JSONDecodeError:
        return "null"


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "unknown status"


def _excerpt(body: bytes | None) -> str:
    if not body:
        return ""
    text = body[:MAX_DETAIL_CHARS].decode("utf-8", "replace").strip()
    return f": {text}" if text else ""


def classify_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes | None,
    *,
    retry_client_errors: bool,
    now_s: float,
) -> Outcome:
    """What an HTTP answer means (`headers` with lower-case names; `body` None when too big)."""
    if 200 <= status < 300:
        return Delivered(result_from_body(body, headers.get("content-type", "")))
    summary = f"the webhook answered {status} {_reason(status)}{_excerpt(body)}"
    error = ErrorReport(type=f"webhook.http_{status}", message=summary)
    if status == 410:
        return Refused(f"{summary}; the queue was paused — resume it once the target is fixed")
    retry_after = retry_after_seconds(headers.get("retry-after"), now_s)
    if status in RETRY_LATER_STATUSES or status >= 500:
        return Failed(error, retry=True, retry_after_s=retry_after)
    if 300 <= status < 400:
        location = headers.get("location", "")
        error = ErrorReport(
            type=error.type, message=f"{summary} (redirects are not followed; location {location})"
        )
    return Failed(error, retry=retry_client_errors, retry_after_s=retry_after)


def transport_failure(kind: str, message: str) -> Failed:
    """A timeout or connection error: retried with backoff."""
    return Failed(ErrorReport(type=f"webhook.{kind}", message=message), retry=True)
