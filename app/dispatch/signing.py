"""Standard Webhooks signing: secrets and the webhook-id / -timestamp / -signature headers."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format prefix, not a secret


def new_secret() -> str:
    """A fresh signing secret (`whsec_` + 32 random bytes, base64)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def is_valid_secret(secret: str) -> bool:
    """Whether `secret` is a `whsec_` secret of at least 16 random bytes."""
    if not secret.startswith(SECRET_PREFIX):
        return False
    try:
        raw = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except ValueError:
        return False
    return len(raw) >= 16


def signed_headers(
    signing_secrets: Sequence[str], message_id: str, sent_at: datetime, body: bytes
) -> dict[str, str]:
    """The Standard Webhooks headers, one signature per secret (so keys can rotate).

    Raises:
        ValueError: no secret given.
    """
    if not signing_secrets:
        raise ValueError("at least one signing secret is needed")
    signatures = " ".join(
        Webhook(secret).sign(message_id, sent_at, body) for secret in signing_secrets
    )
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signatures,
    }
