"""SQS event shapes, DLQ attributes, redrive budgets and list cursors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from functions.deliver.logic import PoisonMessage, parse_message, webhook_body
from shared.delivery import replay
from shared.delivery.queue import DeliveryMessage, dead_letter_attributes
from wagw_local.sqs_runner import build_event, failed_ids

FIXTURES = Path(__file__).parent / "fixtures"


def test_receive_message_output_becomes_the_lambda_sqs_event() -> None:
    # Given what ReceiveMessage returns, when it is converted for the handler
    received = json.loads((FIXTURES / "sqs_receive_message.json").read_text())
    event = build_event(received["Messages"], "arn:aws:sqs:us-east-1:000000000000:wagw-deliveries", "us-east-1")
    # Then it is exactly Lambda's SQS event shape
    assert event == json.loads((FIXTURES / "sqs_lambda_event.json").read_text())


def test_batch_item_failures_are_read_from_the_response() -> None:
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "b"}]}) == {"a", "b"}
    assert failed_ids({"batchItemFailures": []}) == set()
    assert failed_ids(None) == set()


def test_a_body_that_is_not_a_delivery_is_poison() -> None:
    with pytest.raises(PoisonMessage):
        parse_message("{not json")
    with pytest.raises(PoisonMessage):
        parse_message('{"delivery_id": "x"}')


def test_redrive_gives_the_next_attempt_a_fresh_budget() -> None:
    # Given the dead-lettered message of the Lambda event fixture (attempt 6, budget from 4)
    event = json.loads((FIXTURES / "sqs_lambda_event.json").read_text())
    message = parse_message(event["Records"][0]["body"])
    # When it is given a fresh budget
    fresh = replay.fresh_budget(message)
    # Then the next attempt is 7, its budget starts at 7, and it is no longer marked dead
    assert (fresh.attempt, fresh.budget_start, fresh.dead_lettered_at) == (7, 7, None)
    assert fresh.first_attempt_at == message.first_attempt_at


def test_dead_letter_attributes_carry_reason_status_attempts_and_times() -> None:
    message = DeliveryMessage(
        delivery_id="dlv_1",
        workspace_id="ws_1",
        endpoint_id="ep_1",
        event={"id": "evt_1", "type": "message.received"},
        attempt=3,
        first_attempt_at=datetime(2026, 11, 27, 10, tzinfo=UTC),
        dead_lettered_at=datetime(2026, 11, 27, 11, tzinfo=UTC),
    )
    attributes = dead_letter_attributes(message, "rejected", 422, 3)
    assert {k: v["StringValue"] for k, v in attributes.items()} == {
        "reason": "rejected",
        "last_status": "422",
        "attempts": "3",
        "first_attempt_at": "2026-11-27T10:00:00+00:00",
        "dead_lettered_at": "2026-11-27T11:00:00+00:00",
        "workspace_id": "ws_1",
        "endpoint_id": "ep_1",
    }
    assert dead_letter_attributes(message, "timeout", None, 3)["last_status"]["StringValue"] == "none"


def test_the_webhook_body_is_the_event_envelope_byte_for_byte_stable() -> None:
    message = DeliveryMessage(
        delivery_id="d", workspace_id="w", endpoint_id="e", event={"id": "evt_1", "type": "t", "data": {"x": "é"}}
    )
    assert webhook_body(message) == '{"id":"evt_1","type":"t","data":{"x":"é"}}'.encode()
    assert webhook_body(message) == webhook_body(DeliveryMessage.model_validate_json(message.model_dump_json()))


def test_cursors_round_trip_and_foreign_ones_are_refused() -> None:
    cursor = replay._encode_cursor(1764241200000, "dlv_01_1")
    assert replay._decode_cursor(cursor) == (1764241200000, "dlv_01_1")
    with pytest.raises(replay.InvalidCursor):
        replay._decode_cursor("!!!")
