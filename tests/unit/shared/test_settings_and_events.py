"""Settings refuse development secrets outside dev; events parse strictly and map to throttle classes."""

from __future__ import annotations

import json
import re

import pytest
from pydantic import ValidationError

from shared.events import ID_PATTERN, Ack, ack_from_wa, parse_event, throttle_class, whatsapp_event_id
from shared.settings import Settings
from shared.signing import generate_secret
from tests.fixtures import load_event


@pytest.mark.parametrize("env_name", ["staging", "prod"])
def test_default_secrets_are_refused_outside_dev(env_name: str, env: pytest.MonkeyPatch) -> None:
    env.setenv("WAGW_ENV", env_name)
    with pytest.raises(ValidationError, match="development default"):
        Settings()


def test_real_secrets_are_accepted_in_prod(env: pytest.MonkeyPatch) -> None:
    env.setenv("WAGW_ENV", "prod")
    env.setenv("WAGW_ADMIN_API_KEY", "a-real-admin-key-from-the-vault")
    env.setenv("WAGW_PRODUCER_KEYS", json.dumps({"workers": generate_secret()}))
    settings = Settings()
    assert settings.env == "prod"


def test_secret_names_stand_in_for_values_in_prod(env: pytest.MonkeyPatch) -> None:
    env.setenv("WAGW_ENV", "prod")
    env.setenv("WAGW_ADMIN_API_KEY_SECRET_NAME", "wagw/prod/admin")
    env.setenv("WAGW_PRODUCER_KEYS_SECRET_NAME", "wagw/prod/producers")
    assert Settings().producer_keys_secret_name == "wagw/prod/producers"


def test_bad_cidr_is_refused_at_start(env: pytest.MonkeyPatch) -> None:
    env.setenv("WAGW_TRUSTED_CIDRS", '["10.0.0.0/33"]')
    with pytest.raises(ValidationError, match="trusted_cidrs"):
        Settings()


def test_zero_burst_is_refused(env: pytest.MonkeyPatch) -> None:
    env.setenv("WAGW_THROTTLE_LIMITS", '{"default": {"per_minute": 10, "burst": 0}}')
    with pytest.raises(ValidationError, match="burst"):
        Settings()


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("message_received", "message"),
        ("message_sent", "message"),
        ("message_ack", "message"),
        ("session_status_ready", "session_ready"),
        ("session_qr", "session_qr"),
        ("typing", "low_value"),
        ("presence", "low_value"),
    ],
)
def test_event_classes(fixture: str, expected: str) -> None:
    assert throttle_class(parse_event(load_event(fixture))) == expected


def test_non_ready_status_is_default_class() -> None:
    raw = load_event("session_status_ready")
    raw["data"] = {"status": "disconnected", "reason": "phone offline"}
    assert throttle_class(parse_event(raw)) == "default"


def test_message_received_uses_from_on_the_wire() -> None:
    event = parse_event(load_event("message_received"))
    assert event.model_dump(mode="json", by_alias=True)["data"]["from"] == "6281234567890@c.us"


def test_ids_sort_by_creation_time() -> None:
    first, second = load_event("typing")["id"], load_event("typing")["id"]
    assert first.startswith("evt_") and first < second


def test_every_ack_wa_js_reports_is_accepted() -> None:
    # whatsapp/enums/ACK.ts runs -7..5: every error kind is a failure, 5 is a peer ack
    assert [ack_from_wa(v) for v in (-7, -2, -1)] == [Ack.FAILED] * 3
    assert [ack_from_wa(v) for v in range(0, 6)] == [Ack.CLOCK, Ack.SENT, Ack.RECEIVED, Ack.READ, Ack.PLAYED, Ack.PEER]


def test_event_ids_derived_from_a_whatsapp_message_repeat_for_the_same_message_only() -> None:
    first = whatsapp_event_id("ses_1", "received", "false_123@lid_ABC")
    assert first == whatsapp_event_id("ses_1", "received", "false_123@lid_ABC")
    assert re.fullmatch(ID_PATTERN, first)
    others = {
        whatsapp_event_id("ses_2", "received", "false_123@lid_ABC"),
        whatsapp_event_id("ses_1", "sent", "false_123@lid_ABC"),
        whatsapp_event_id("ses_1", "received", "false_123@lid_ABD"),
    }
    assert first not in others and len(others) == 3
