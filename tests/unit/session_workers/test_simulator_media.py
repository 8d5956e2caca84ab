"""The simulator's raw way in for inbound media bytes (`/control/media` then `/control/inbound` with `media_ref`):
what the page gets is the same as with `media_b64`."""

from __future__ import annotations

import base64
import hashlib

from fastapi.testclient import TestClient

from session_workers.simulator.server import SimulatorState, create_app

PHONE = "6281100000001"


def linked_simulator() -> tuple[SimulatorState, TestClient]:
    state = SimulatorState()
    state.link(state.client("page-1"), PHONE)
    return state, TestClient(create_app(state))


def inbound(http: TestClient, **media: str) -> dict[str, str]:
    response = http.post(
        "/control/inbound",
        json={"phone": PHONE, "sender": "6289990001@c.us", "type": "image", "mimetype": "image/jpeg", **media},
    )
    response.raise_for_status()
    return dict(response.json())


def test_raw_media_reaches_the_page_as_base64_media_does() -> None:
    # Given the same bytes once given raw and once as base64
    state, http = linked_simulator()
    data = bytes(range(256)) * 4000
    ref = http.post("/control/media", content=data, headers={"Content-Type": "application/octet-stream"}).json()

    # When each arrives as an inbound image
    by_ref = inbound(http, media_ref=ref["media_ref"])
    by_b64 = inbound(http, media_b64=base64.b64encode(data).decode())

    # Then WhatsApp's media server gives the same bytes for both, and both messages announce the same size and hash
    assert ref["size"] == len(data)
    for message in (by_ref, by_b64):
        served = http.get(f"/api/media/{message['id']}")
        assert served.content == data and served.headers["content-type"] == "image/jpeg"
    announced = [e["media"] for e in state.clients["page-1"].events if e.get("media")]
    assert [m["sha256"] for m in announced] == [hashlib.sha256(data).hexdigest()] * 2
    assert [m["size"] for m in announced] == [len(data)] * 2


def test_a_media_ref_is_taken_once() -> None:
    # Given bytes given raw and used by one message
    _state, http = linked_simulator()
    ref = http.post("/control/media", content=b"abc").json()["media_ref"]
    inbound(http, media_ref=ref)

    # When a second message names the same ref, or a message names a ref and base64 bytes at once
    again = http.post("/control/inbound", json={"phone": PHONE, "sender": "6289990001@c.us", "media_ref": ref})
    fresh = http.post("/control/media", content=b"abc").json()["media_ref"]
    both = http.post(
        "/control/inbound",
        json={"phone": PHONE, "sender": "6289990001@c.us", "media_ref": fresh, "media_b64": "YWJj"},
    )

    # Then both are refused, and the refused ref is still there to use
    assert again.status_code == 404
    assert both.status_code == 422
    assert inbound(http, media_ref=fresh)["id"]
