"""Webhook signatures verify with the standardwebhooks package, for every rotated secret."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from app.dispatch.signing import is_valid_secret, new_secret, signed_headers

BODY = b'{"id":"01J","type":"email.send","payload":{"to":"ada@example.com"},"attempt":1}'


def test_each_secret_verifies_the_same_delivery() -> None:
    old, new = new_secret(), new_secret()
    headers = signed_headers([old, new], "01JTASKID-1", datetime.now(tz=UTC), BODY)
    assert headers["webhook-id"] == "01JTASKID-1"
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_a_changed_body_or_a_stale_timestamp_fails_verification() -> None:
    secret = new_secret()
    headers = signed_headers([secret], "msg", datetime.now(tz=UTC), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"ada", b"eve"), headers)
    stale = signed_headers([secret], "msg", datetime(2020, 1, 1, tzinfo=UTC), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, stale)


def test_secret_format() -> None:
    assert is_valid_secret(new_secret())
    assert not is_valid_secret("whsec_short")
    assert not is_valid_secret("sk_" + new_secret())
    assert not is_valid_secret("whsec_!!!not-base64!!!")
    with pytest.raises(ValueError, match="signing secret"):
        signed_headers([], "msg", datetime.now(tz=UTC), BODY)
