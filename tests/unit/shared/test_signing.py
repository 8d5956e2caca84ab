"""Our Standard Webhooks signatures interoperate with the reference `standardwebhooks` package."""

from __future__ import annotations

import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from shared.signing import SignatureError, generate_secret, sign, verify

BODY = b'{"type":"message.received","data":{"text":"ol\xc3\xa1"}}'


def test_reference_verifier_accepts_our_signature() -> None:
    # Given a secret and a body signed by us
    secret = generate_secret()
    headers = sign([secret], "evt_1", BODY)
    # When the reference package verifies it
    payload = Webhook(secret).verify(BODY, headers.as_dict())
    # Then it accepts it and returns the payload
    assert payload["type"] == "message.received"


def test_we_accept_the_reference_signature() -> None:
    # Given a signature made by the reference package
    secret = generate_secret()
    now = int(time.time())
    from datetime import UTC, datetime

    signature = Webhook(secret).sign("msg_9", datetime.fromtimestamp(now, UTC), BODY.decode())
    headers = {"webhook-id": "msg_9", "webhook-timestamp": str(now), "webhook-signature": signature}
    # When we verify it among several keys
    matched = verify({"old": generate_secret(), "new": secret}, headers, BODY)
    # Then the key that signed it is named
    assert matched == "new"


def test_rotation_signs_with_every_secret_and_either_verifies() -> None:
    old, new = generate_secret(), generate_secret()
    headers = sign([old, new], "evt_2", BODY).as_dict()
    assert headers["webhook-signature"].count("v1,") == 2
    assert verify({"only-old": old}, headers, BODY) == "only-old"
    assert Webhook(new).verify(BODY, headers)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda h: h.pop("webhook-signature"), "missing"),
        (lambda h: h.update({"webhook-timestamp": str(int(time.time()) - 301)}), "too far"),
        (lambda h: h.update({"webhook-timestamp": str(int(time.time()) + 301)}), "too far"),
        (lambda h: h.update({"webhook-timestamp": "soon"}), "not an integer"),
        (lambda h: h.update({"webhook-id": "evt_other"}), "no signature matches"),
    ],
)
def test_bad_headers_are_refused(mutate, message: str) -> None:
    secret = generate_secret()
    headers = sign([secret], "evt_3", BODY).as_dict()
    mutate(headers)
    with pytest.raises(SignatureError, match=message):
        verify({"k": secret}, headers, BODY)


def test_tampered_body_is_refused_by_both() -> None:
    secret = generate_secret()
    headers = sign([secret], "evt_4", BODY).as_dict()
    with pytest.raises(SignatureError):
        verify({"k": secret}, headers, BODY + b" ")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b" ", headers)


def test_producer_signs_with_every_key_so_ingest_holding_either_accepts(env: pytest.MonkeyPatch) -> None:
    import json

    from shared.events import parse_event
    from shared.producer import signed_request
    from shared.settings import get_settings
    from tests.fixtures import load_event

    # Given a producer holding the old and the new key, in either order
    old, new = generate_secret(), generate_secret()
    for held in ({"2026-10": old, "2026-11": new}, {"2026-11": new, "2026-10": old}):
        env.setenv("WAGW_PRODUCER_KEYS", json.dumps(held))
        get_settings.cache_clear()
        # When it signs a batch
        body, headers = signed_request([parse_event(load_event("typing"))])
        # Then an ingest holding only the old key, only the new one, or both accepts it
        assert verify({"old": old}, headers, body) == "old"
        assert verify({"new": new}, headers, body) == "new"
        assert len(headers["webhook-signature"].split()) == 2
