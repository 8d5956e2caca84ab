"""What a tenant sees when WhatsApp Web behaves as wa-js 4.6.0 really does (test_wa_js_contract.py states each
behaviour against the simulator page): over HTTP only, counted at the tenant's webhook receiver."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from tests.e2e.test_whole_system import api, events_of, wait_until
from wagw_local.system import Demo, LocalSystem

PHONE = "6281100000201"
CONTACT = "6281299990201"
LID_CONTACT = "6281299990202"
LID = "201234567890123"


def control(system: LocalSystem, path: str, **body: object) -> dict[str, object]:
    response = httpx.post(f"{system.simulator_url}/control/{path}", json=body, timeout=10)
    response.raise_for_status()
    return dict(response.json())


def statuses(system: LocalSystem, session_id: str) -> list[tuple[str, str | None]]:
    return [
        (e.body["data"]["status"], e.body["data"].get("reason"))
        for e in system.receiver_state.of_type("session.status")
        if e.body["session_id"] == session_id
    ]


def create_session(system: LocalSystem, demo: Demo, phone: str) -> str:
    with api(system, demo) as http:
        created = http.post("/v1/sessions", json={"name": f"fidelity {phone}", "phone": phone})
        assert created.status_code == 201, created.text
        return str(created.json()["id"])


@pytest.fixture(scope="module")
def linked(system: LocalSystem, demo: Demo) -> Iterator[str]:
    """A session linked by scanning its QR; deleted afterwards so it does not hold a worker's capacity."""
    sid = create_session(system, demo, PHONE)
    with api(system, demo) as http:
        qr = wait_until("a QR", lambda: http.get(f"/v1/sessions/{sid}/qr").json().get("qr"))
        control(system, "scan", qr=qr, phone=PHONE)
        yield sid
        http.delete(f"/v1/sessions/{sid}")


def test_a_qr_page_is_never_ready(system: LocalSystem, demo: Demo) -> None:
    # Given a session whose page shows a QR nobody scans (wa-js has fired conn.main_ready on it)
    sid = create_session(system, demo, "6281100000202")
    wait_until(
        "a QR at the receiver",
        lambda: (
            events_of(system.receiver_state, "session.qr")
            and any(e.body["session_id"] == sid for e in system.receiver_state.of_type("session.qr"))
        ),
    )
    # When the page has had time to report every state it has (the bridge re-checks every 2 s)
    time.sleep(3)
    # Then it was never ready, and the API says it waits for a scan
    assert "ready" not in [status for status, _ in statuses(system, sid)]
    with api(system, demo) as http:
        assert http.get(f"/v1/sessions/{sid}").json()["status"] == "qr"
        http.delete(f"/v1/sessions/{sid}")


def test_a_scanned_session_becomes_ready_after_it_authenticated(system: LocalSystem, linked: str) -> None:
    wait_until("ready", lambda: ("ready", None) in statuses(system, linked))
    # Webhooks may arrive in any order (docs/tenant-guide.md): the order that counts is when each happened
    events = [e.body for e in system.receiver_state.of_type("session.status") if e.body["session_id"] == linked]
    seen = [e["data"]["status"] for e in sorted(events, key=lambda e: datetime.fromisoformat(e["occurred_at"]))]
    assert seen.index("authenticated") < seen.index("ready")


def test_a_send_whatsapp_rejects_is_message_failed_never_sent(system: LocalSystem, demo: Demo, linked: str) -> None:
    wait_until("ready", lambda: ("ready", None) in statuses(system, linked))
    # Given WhatsApp will refuse the account's next send (a result, not an exception, in wa-js)
    control(system, "send_failure", phone=PHONE, result="ERROR_NETWORK")
    with api(system, demo) as http:
        # When the tenant sends
        accepted = http.post(
            f"/v1/sessions/{linked}/messages",
            json={"to": CONTACT, "text": "will fail", "client_message_id": "fid-fail-1"},
        )
        assert accepted.status_code == 202, accepted.text
        # Then the tenant hears message.failed with a reason it can read, and never message.sent
        failed = wait_until(
            "message.failed",
            lambda: events_of(system.receiver_state, "message.failed", client_message_id="fid-fail-1"),
        )
        assert failed[0]["data"]["reason"].startswith("ERROR_NETWORK: ")
        assert not events_of(system.receiver_state, "message.sent", client_message_id="fid-fail-1")
        message = accepted.json()["id"]
        wait_until("status failed", lambda: http.get(f"/v1/messages/{message}").json()["status"] == "failed")
    # And nothing reached the contact, and the chat was not marked read on the phone
    assert httpx.get(f"{system.simulator_url}/control/reads", params={"phone": PHONE}).json()["chats"] == {}


def test_a_send_to_a_lid_contact_goes_out_once(system: LocalSystem, demo: Demo, linked: str) -> None:
    wait_until("ready", lambda: ("ready", None) in statuses(system, linked))
    # Given a contact WhatsApp addresses by LID
    control(system, "contact", phone=PHONE, contact=LID_CONTACT, lid=LID)
    with api(system, demo) as http:
        # When the tenant sends to its phone number, and to its LID
        for to, client_id in ((LID_CONTACT, "fid-lid-1"), (f"{LID}@lid", "fid-lid-2")):
            accepted = http.post(
                f"/v1/sessions/{linked}/messages", json={"to": to, "text": client_id, "client_message_id": client_id}
            )
            assert accepted.status_code == 202, accepted.text
    # Then each is reported sent once, on the LID chat
    for client_id in ("fid-lid-1", "fid-lid-2"):
        sent = wait_until(
            f"message.sent {client_id}",
            lambda c=client_id: events_of(system.receiver_state, "message.sent", client_message_id=c),
        )
        assert len(sent) == 1 and sent[0]["data"]["chat_id"] == f"{LID}@lid"
    # And WhatsApp received each text once
    out = httpx.get(f"{system.simulator_url}/control/sent", params={"phone": PHONE}).json()["messages"]
    mine = [m for m in out if m["body"] in ("fid-lid-1", "fid-lid-2")]
    assert sorted(m["body"] for m in mine) == ["fid-lid-1", "fid-lid-2"]
    assert all(m["sends"] == 1 and m["to"] == f"{LID}@lid" for m in mine)
    # When the contact writes back (WhatsApp gives the LID), the tenant also gets the phone number
    control(system, "inbound", phone=PHONE, sender=f"{LID_CONTACT}@c.us", body="lid says hi")
    received = wait_until(
        "message.received from the LID",
        lambda: events_of(system.receiver_state, "message.received", body="lid says hi"),
    )
    assert received[0]["data"]["chat_id"] == f"{LID}@lid" and received[0]["data"]["phone"] == LID_CONTACT


def test_an_encrypted_inbound_message_is_delivered_once_with_its_body(system: LocalSystem, linked: str) -> None:
    wait_until("ready", lambda: ("ready", None) in statuses(system, linked))
    # When a message arrives encrypted (wa-js fires it as ciphertext, then decrypted)
    control(system, "inbound", phone=PHONE, sender=f"{CONTACT}@c.us", body="decrypt me", id="FIDENC1", encrypted=True)
    wait_until("message.received", lambda: events_of(system.receiver_state, "message.received", body="decrypt me"))
    time.sleep(2)
    # Then the tenant got exactly one message.received for it, with its body and real type
    mine = [
        e.body for e in system.receiver_state.of_type("message.received") if "FIDENC1" in e.body["data"]["message_id"]
    ]
    assert len(mine) == 1 and mine[0]["data"]["kind"] == "chat" and mine[0]["data"]["body"] == "decrypt me"


def test_a_message_typed_on_the_phone_arrives_once(system: LocalSystem, demo: Demo, linked: str) -> None:
    wait_until("ready", lambda: ("ready", None) in statuses(system, linked))
    # When the shop assistant replies from the phone
    typed = control(system, "typed", phone=PHONE, to=CONTACT, body="typed by the assistant")
    # Then the tenant hears it once, as sent from the phone
    own = wait_until(
        "message.sent from the phone",
        lambda: events_of(system.receiver_state, "message.sent", origin="phone", message_id=typed["id"]),
    )
    time.sleep(1)
    assert len(events_of(system.receiver_state, "message.sent", origin="phone", message_id=typed["id"])) == 1
    assert own[0]["data"]["body"] == "typed by the assistant" and own[0]["data"]["to"] == f"{CONTACT}@c.us"
    # And the page's echo of an API send is never reported as typed on the phone
    api_ids = {e["data"]["message_id"] for e in events_of(system.receiver_state, "message.sent", origin="api")}
    assert api_ids and not api_ids & {
        e["data"]["message_id"] for e in events_of(system.receiver_state, "message.sent", origin="phone")
    }


def test_the_pairing_code_arrives_and_its_expiry_is_an_event(system: LocalSystem, demo: Demo) -> None:
    # Given pages whose pairing codes live 0.4 s (WhatsApp's are 3.25 min)
    control(system, "page", link_code_ttl_ms=400)
    try:
        sid = create_session(system, demo, "6281100000203")
        wait_until(
            "a QR", lambda: any(e.body["session_id"] == sid for e in system.receiver_state.of_type("session.qr"))
        )
        with api(system, demo) as http:
            # When the tenant asks for a pairing code instead
            asked = http.post(f"/v1/sessions/{sid}/pairing-code", json={"phone": "6281100000203"})
            assert asked.status_code == 202, asked.text
            # Then each code wa-js issues reaches the tenant with its expiry, then the expiry itself as a status
            wait_until(
                "failed: pairing_code_expired",
                lambda: ("failed", "pairing_code_expired") in statuses(system, sid),
                within=30,
            )
            codes = [
                e.body["data"]
                for e in system.receiver_state.of_type("session.pairing_code")
                if e.body["session_id"] == sid
            ]
            assert len(codes) == 6 and len({c["code"] for c in codes}) == 6
            assert sorted(c["attempt"] for c in codes) == [1, 2, 3, 4, 5, 6] and all(c["expires_at"] for c in codes)
            http.delete(f"/v1/sessions/{sid}")
    finally:
        control(system, "page", link_code_ttl_ms=195_000)
