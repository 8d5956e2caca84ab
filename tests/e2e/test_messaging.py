"""Messaging through the whole system over HTTP: media by upload and by URL, location and contact out, the
media API's refusals and its tenant isolation; counted at the tenant's webhook receiver and at the simulator."""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Iterator

import httpx
import pytest

from session_workers.session import PACING_CACHE_SECONDS
from tests.e2e.test_wa_js_fidelity import control, create_session, statuses
from tests.e2e.test_whole_system import api, events_of, wait_until
from tests.fixtures.media import MediaServer, png
from wagw_local.system import Demo, LocalSystem

PHONE = "6281100000301"
CONTACT = "6281299990301"
PDF = b"%PDF-1.4\n% wa-gateway e2e\n" + bytes(range(256)) * 16


@pytest.fixture(scope="module")
def media_host() -> Iterator[MediaServer]:
    server = MediaServer({"/photo.png": (png(16, 16), "image/png")})
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def linked(system: LocalSystem, demo: Demo) -> Iterator[str]:
    sid = create_session(system, demo, PHONE)
    with api(system, demo) as http:
        qr = wait_until("a QR", lambda: http.get(f"/v1/sessions/{sid}/qr").json().get("qr"))
        control(system, "scan", qr=qr, phone=PHONE)
        wait_until("ready", lambda: ("ready", None) in statuses(system, sid))
        yield sid
        http.delete(f"/v1/sessions/{sid}")


def sent_to_whatsapp(system: LocalSystem) -> list[dict[str, object]]:
    return list(httpx.get(f"{system.simulator_url}/control/sent", params={"phone": PHONE}).json()["messages"])


def test_a_document_uploaded_then_sent_by_reference_arrives_byte_for_byte(
    system: LocalSystem, demo: Demo, linked: str
) -> None:
    with api(system, demo) as http:
        # Given the tenant reserves an upload and PUTs the file to the presigned URL
        reserved = http.post("/v1/media", json={"mimetype": "application/pdf", "size": len(PDF), "filename": "a.pdf"})
        assert reserved.status_code == 201, reserved.text
        upload = reserved.json()
        put = httpx.put(upload["upload_url"], content=PDF, headers=upload["upload_headers"], timeout=30)
        assert put.status_code == 200, put.text
        # When it sends the document by its media id
        accepted = http.post(
            f"/v1/sessions/{linked}/messages",
            json={
                "to": CONTACT,
                "type": "document",
                "media": {"media_id": upload["id"]},
                "client_message_id": "e2e-doc",
            },
        )
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["type"] == "document"
        # Then it is reported sent as a document, and WhatsApp got exactly those bytes once
        sent = wait_until(
            "message.sent", lambda: events_of(system.receiver_state, "message.sent", client_message_id="e2e-doc")
        )
        assert sent[0]["data"]["kind"] == "document"
        doc = next(m for m in sent_to_whatsapp(system) if m["type"] == "document")
        assert doc["media"]["sha256"] == hashlib.sha256(PDF).hexdigest() and doc["sends"] == 1  # type: ignore[index]
        # And the media API gives a fresh URL that serves the same bytes
        fetched = http.get(f"/v1/media/{upload['id']}").json()
        assert fetched["size"] == len(PDF) and httpx.get(fetched["url"], timeout=30).content == PDF


def test_an_image_by_url_a_location_and_a_contact_go_out(
    system: LocalSystem, demo: Demo, linked: str, media_host: MediaServer
) -> None:
    bodies = {
        "e2e-img": {"type": "image", "text": "your order", "media": {"url": f"{media_host.url}/moved"}},
        "e2e-loc": {"type": "location", "location": {"latitude": -6.17, "longitude": 106.82, "name": "Shop"}},
        "e2e-vcf": {"type": "contact", "contact": {"name": "Support", "phone": "6281100000999"}},
    }
    with api(system, demo) as http:
        for client_id, body in bodies.items():
            accepted = http.post(
                f"/v1/sessions/{linked}/messages", json={"to": CONTACT, "client_message_id": client_id, **body}
            )
            assert accepted.status_code == 202, accepted.text
    for client_id, body in bodies.items():
        sent = wait_until(
            client_id, lambda c=client_id: events_of(system.receiver_state, "message.sent", client_message_id=c)
        )
        assert sent[0]["data"]["kind"] == body["type"]
    out = {m["type"]: m for m in sent_to_whatsapp(system)}
    assert out["image"]["media"]["sha256"] == hashlib.sha256(png(16, 16)).hexdigest()  # type: ignore[index]
    assert out["image"]["caption"] == "your order"
    assert out["location"]["location"]["loc"] == "Shop"  # type: ignore[index]
    assert out["vcard"]["vcard_name"] == "Support"


def test_bad_media_requests_are_refused_before_anything_is_queued(system: LocalSystem, demo: Demo, linked: str) -> None:
    with api(system, demo) as http:
        # An upload over the largest limit, and a send whose upload never happened
        too_big = http.post("/v1/media", json={"mimetype": "video/mp4", "size": 200 * 1024 * 1024})
        assert too_big.status_code == 422 and "limit" in too_big.json()["detail"]
        pending = http.post("/v1/media", json={"mimetype": "image/png", "size": 10}).json()
        never = http.post(
            f"/v1/sessions/{linked}/messages",
            json={"to": CONTACT, "type": "image", "media": {"media_id": pending["id"]}, "client_message_id": "e2e-no"},
        )
        assert never.status_code == 422 and "not been uploaded" in never.json()["detail"]
        # A part that does not go with the type, and a reaction with a caption
        mixed = http.post(
            f"/v1/sessions/{linked}/messages",
            json={
                "to": CONTACT,
                "type": "text",
                "text": "x",
                "location": {"latitude": 1, "longitude": 1},
                "client_message_id": "e2e-mix",
            },
        )
        assert mixed.status_code == 422 and "location does not go with a text message" in mixed.text
        # Then none of them was queued
        assert http.get(f"/v1/sessions/{linked}").status_code == 200
    for client_id in ("e2e-no", "e2e-mix"):
        assert not events_of(system.receiver_state, "message.sent", client_message_id=client_id)
        assert not events_of(system.receiver_state, "message.failed", client_message_id=client_id)


def test_another_workspaces_media_is_not_found(system: LocalSystem, demo: Demo) -> None:
    with api(system, demo) as http:
        mine = http.post("/v1/media", json={"mimetype": "image/png", "size": 10}).json()
    other = system.create_demo_tenant("e2e media neighbour")
    with httpx.Client(base_url=system.api_url, headers={"Authorization": f"Bearer {other.api_key}"}) as http:
        assert http.get(f"/v1/media/{mine['id']}").status_code == 404


def test_inbound_media_is_stored_and_fetched_back_byte_for_byte(system: LocalSystem, demo: Demo, linked: str) -> None:
    # When a contact sends a photo with a caption
    photo = control(
        system, "inbound", phone=PHONE, sender=f"{CONTACT}@c.us", type="image", caption="the box", id="E2EIMG"
    )
    # Then the tenant hears the message at once (media pending), then message.media with a working URL
    received = wait_until(
        "message.received", lambda: events_of(system.receiver_state, "message.received", message_id=photo["id"])
    )
    assert received[0]["data"]["caption"] == "the box" and received[0]["data"]["media"]["status"] == "pending"
    media = wait_until(
        "message.media", lambda: events_of(system.receiver_state, "message.media", message_id=photo["id"])
    )[0]["data"]["media"]
    assert media["status"] == "available" and media["sha256"] == hashlib.sha256(png()).hexdigest()
    assert httpx.get(media["url"], timeout=30).content == png()
    # And the API gives a fresh URL to this workspace only
    with api(system, demo) as http:
        again = http.get(f"/v1/media/{media['id']}").json()
    assert again["sha256"] == media["sha256"] and httpx.get(again["url"], timeout=30).content == png()
    other = system.create_demo_tenant("e2e inbound media neighbour")
    with httpx.Client(base_url=system.api_url, headers={"Authorization": f"Bearer {other.api_key}"}) as http:
        assert http.get(f"/v1/media/{media['id']}").status_code == 404


def test_paced_sends_keep_their_order_and_a_burst_is_queued_not_refused(
    system: LocalSystem, demo: Demo, linked: str
) -> None:
    with api(system, demo) as http:
        # Given the workspace paces its sends 0.3 s apart
        assert http.patch("/v1/workspace", json={"send_gap_ms": 300, "send_jitter_ms": 0}).status_code == 200
        time.sleep(PACING_CACHE_SECONDS + 0.5)  # a session rereads its workspace's pacing this often
        try:
            # When a burst of five arrives at once
            for i in range(5):
                accepted = http.post(
                    f"/v1/sessions/{linked}/messages",
                    json={"to": CONTACT, "text": f"burst {i}", "client_message_id": f"e2e-burst-{i}"},
                )
                assert accepted.status_code == 202, accepted.text
            # Then all five go out, in order, each at least the gap after the one before
            wait_until(
                "five sent",
                lambda: all(
                    events_of(system.receiver_state, "message.sent", client_message_id=f"e2e-burst-{i}")
                    for i in range(5)
                ),
            )
            out = [m for m in sent_to_whatsapp(system) if str(m["body"]).startswith("burst ")]
            assert [m["body"] for m in out] == [f"burst {i}" for i in range(5)]
            # (WhatsApp's arrival times: the worker paces the start of each send, a gap apart)
            arrivals = [float(m["at"]) for m in out]  # type: ignore[arg-type]
            assert arrivals[-1] - arrivals[0] >= 4 * 0.3 - 0.1, arrivals
            assert min(b - a for a, b in itertools.pairwise(arrivals)) >= 0.15, arrivals
            assert http.get(f"/v1/sessions/{linked}/queue").json()["depth"] == 0
        finally:
            http.patch("/v1/workspace", json={"send_gap_ms": 0})
