"""The whole system through HTTP: tenant API, simulator phone, worker failover, webhook delivery, DLQ redrive.

The tests run in order on one running system (a story: onboard, message, fail over, survive an outage).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from shared import aws
from wagw_local.receiver import ReceiverState
from wagw_local.system import Demo, LocalSystem

PHONE = "6281100000001"
CONTACT = "6281299990000"


def api(system: LocalSystem, demo: Demo) -> httpx.Client:
    return httpx.Client(base_url=system.api_url, headers={"Authorization": f"Bearer {demo.api_key}"}, timeout=30)


def wait_until(what: str, check: Any, within: float = 60.0, every: float = 0.25) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out after {within}s waiting for {what}")


def events_of(state: ReceiverState, event_type: str, **data: Any) -> list[dict[str, Any]]:
    return [
        e.body for e in state.of_type(event_type) if all(e.body.get("data", {}).get(k) == v for k, v in data.items())
    ]


@pytest.fixture(scope="module")
def session_id(system: LocalSystem, demo: Demo) -> str:
    """A session created through the API, logged in by scanning its QR with the simulated phone."""
    with api(system, demo) as http:
        created = http.post("/v1/sessions", json={"name": "shop front", "phone": PHONE})
        assert created.status_code == 201, created.text
        sid = created.json()["id"]
        qr = wait_until("a QR code from the API", lambda: http.get(f"/v1/sessions/{sid}/qr").json().get("qr"))
        png = http.get(f"/v1/sessions/{sid}/qr.png")
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    scanned = httpx.post(f"{system.simulator_url}/control/scan", json={"qr": qr, "phone": PHONE}, timeout=10)
    assert scanned.status_code == 200, scanned.text
    return str(sid)


def test_scanned_session_becomes_ready_and_the_tenant_hears_it_signed(
    system: LocalSystem, demo: Demo, session_id: str
) -> None:
    # Then the tenant's webhook receives session.status ready, signed as Standard Webhooks says
    ready = wait_until(
        "session.status ready at the receiver",
        lambda: [
            e
            for e in system.receiver_state.of_type("session.status")
            if e.body["session_id"] == session_id and e.body["data"]["status"] == "ready"
        ],
    )
    payload = Webhook(demo.endpoint_secret).verify(ready[0].raw, ready[0].headers)
    assert payload["workspace_id"] == demo.workspace_id
    assert ready[0].headers["webhook-id"] == payload["id"]
    # And the QR codes shown before the scan were delivered too
    assert events_of(system.receiver_state, "session.qr")
    with api(system, demo) as http:
        session = http.get(f"/v1/sessions/{session_id}").json()
    assert session["status"] == "ready" and session["owner"] in system.worker_ids()


def test_sent_message_is_reported_sent_then_acked(system: LocalSystem, demo: Demo, session_id: str) -> None:
    with api(system, demo) as http:
        # When the tenant sends a message
        accepted = http.post(
            f"/v1/sessions/{session_id}/messages",
            json={"to": CONTACT, "text": "Your order has shipped", "client_message_id": "order-77"},
        )
        assert accepted.status_code == 202, accepted.text
        message_id = accepted.json()["id"]
        # Then message.sent reaches the webhook with WhatsApp's id
        sent = wait_until(
            "message.sent", lambda: events_of(system.receiver_state, "message.sent", client_message_id="order-77")
        )
        wa_id = sent[0]["data"]["message_id"]
        # When the contact's phone receives and reads it
        for ack in (2, 3):
            httpx.post(
                f"{system.simulator_url}/control/ack",
                json={"phone": PHONE, "message_id": wa_id, "ack": ack},
                timeout=10,
            ).raise_for_status()
        # Then both acks are delivered, and the API shows the message read
        wait_until("two acks", lambda: len(events_of(system.receiver_state, "message.ack", message_id=wa_id)) >= 2)
        wait_until("status read", lambda: http.get(f"/v1/messages/{message_id}").json()["status"] == "read")


def test_inbound_message_is_delivered(system: LocalSystem, session_id: str) -> None:
    httpx.post(
        f"{system.simulator_url}/control/inbound",
        json={"phone": PHONE, "sender": f"{CONTACT}@c.us", "body": "Is the shop open today?"},
        timeout=10,
    ).raise_for_status()
    received = wait_until(
        "message.received", lambda: events_of(system.receiver_state, "message.received", body="Is the shop open today?")
    )
    assert received[0]["session_id"] == session_id


def test_killed_owner_is_replaced_without_a_qr_and_a_gap_message_goes_out_once(
    system: LocalSystem, demo: Demo, session_id: str
) -> None:
    with api(system, demo) as http:
        owner = http.get(f"/v1/sessions/{session_id}").json()["owner"]
        qr_events_before = len(
            [e for e in events_of(system.receiver_state, "session.qr") if e["session_id"] == session_id]
        )
        # When the owning worker dies (SIGKILL, no handover) and a message is sent during the gap
        system.kill_worker(owner)
        accepted = http.post(
            f"/v1/sessions/{session_id}/messages",
            json={"to": CONTACT, "text": "Sent during the failover", "client_message_id": "order-78"},
        )
        assert accepted.status_code == 202
        # Then the other worker takes the session over and it is ready again, with no QR shown
        wait_until(
            "new owner", lambda: http.get(f"/v1/sessions/{session_id}").json()["owner"] not in (None, owner), within=60
        )
        wait_until("ready again", lambda: http.get(f"/v1/sessions/{session_id}").json()["status"] == "ready")
    wait_until(
        "message.sent for the gap message",
        lambda: events_of(system.receiver_state, "message.sent", client_message_id="order-78"),
        within=60,
    )
    qr_events_after = len([e for e in events_of(system.receiver_state, "session.qr") if e["session_id"] == session_id])
    assert qr_events_after == qr_events_before
    # And WhatsApp got the gap message exactly once
    sent = httpx.get(f"{system.simulator_url}/control/sent", params={"phone": PHONE}, timeout=10).json()["messages"]
    assert [m["body"] for m in sent].count("Sent during the failover") == 1


def test_receiver_outage_goes_to_the_dlq_and_redrive_delivers(system: LocalSystem, session_id: str) -> None:
    state = system.receiver_state
    # Given the tenant's receiver answers 503 for a while
    state.fail_with = 503
    httpx.post(
        f"{system.simulator_url}/control/inbound",
        json={"phone": PHONE, "sender": f"{CONTACT}@c.us", "body": "sent while you were down"},
        timeout=10,
    ).raise_for_status()
    # When every attempt of the compressed schedule has failed
    dlq_url = aws.deliveries_dlq_url()
    wait_until("the delivery in the DLQ", lambda: _depth(dlq_url) >= 1, within=90, every=1)
    assert state.refused >= 4  # the first attempt and three retries
    assert not events_of(state, "message.received", body="sent while you were down")
    # And the receiver is back and the operator redrives the DLQ (the console's "Start DLQ redrive")
    state.fail_with = None
    aws.sqs().start_message_move_task(
        SourceArn=aws.queue_arn(dlq_url), DestinationArn=aws.queue_arn(aws.deliveries_queue_url())
    )
    # Then the event is delivered, once
    wait_until(
        "redriven delivery", lambda: events_of(state, "message.received", body="sent while you were down"), within=60
    )
    time.sleep(2)
    assert len(events_of(state, "message.received", body="sent while you were down")) == 1


def _depth(url: str) -> int:
    attributes = aws.sqs().get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])
