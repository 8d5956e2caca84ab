"""The Python receiver in docs/tenant-guide.md, run as written: served over HTTP on 127.0.0.1 and sent the example
events of docs/events.md signed exactly as the deliver function signs them (same body bytes, same headers)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import uvicorn

from functions.deliver.logic import webhook_body
from shared.delivery.queue import DeliveryMessage
from shared.signing import generate_secret, sign
from wagw_local.media_host import LocalHttpHost, QuietHandler
from wagw_local.services import free_port

ROOT = Path(__file__).resolve().parents[3]
GUIDE = ROOT / "docs" / "tenant-guide.md"
EXAMPLES = ROOT / "tests" / "fixtures" / "events" / "examples"
RECEIVER_BLOCK = re.compile(r"<!-- tested: python-receiver -->\s*```python\n(.*?)\n```", re.DOTALL)


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return loaded


@pytest.fixture
def receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, str, str]]:
    """The guide's receiver module, configured as its docstring says and served by uvicorn."""
    secret = generate_secret()
    monkeypatch.setenv("WAGW_WEBHOOK_SECRET", secret)
    monkeypatch.setenv("WAGW_RECEIVER_DB", str(tmp_path / "receiver.db"))
    match = RECEIVER_BLOCK.search(GUIDE.read_text())
    assert match, "docs/tenant-guide.md has no tested python-receiver block"
    source = tmp_path / "receiver.py"
    source.write_text(match.group(1))
    spec = importlib.util.spec_from_file_location("tenant_receiver", source)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(module.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield module, f"http://127.0.0.1:{port}/wagw/webhook", secret
    finally:
        server.should_exit = True
        thread.join(10)
        module.db.close()


def deliver(url: str, secret: str, event: dict[str, Any], *, timestamp: int | None = None) -> httpx.Response:
    """POST `event` as the deliver function does: its body bytes, Standard Webhooks headers, webhook-id = event id."""
    message = DeliveryMessage(delivery_id="dlv_test", workspace_id=event["workspace_id"], endpoint_id="ep", event=event)
    body = webhook_body(message)
    headers = sign([secret], event["id"], body, timestamp).as_dict() | {"content-type": "application/json"}
    return httpx.post(url, content=body, headers=headers, timeout=10)


def rows(module: ModuleType, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    result: list[tuple[Any, ...]] = module.db.execute(sql, params).fetchall()
    return result


def test_events_in_any_order_and_repeated_make_one_consistent_record(receiver: tuple[ModuleType, str, str]) -> None:
    module, url, secret = receiver
    # Given events as delivery can bring them: media before its message, an ack before the send, repeats
    order = [
        "session_status_ready",
        "message_media_available",
        "message_received_image",
        "message_ack_read",
        "message_sent_api",
        "message_received_text",
        "message_edited",
        "message_received_text",  # a retry after a lost 2xx: must not undo the edit
        "message_reaction",
        "message_received_location",
        "message_failed_send",
        "presence",
        "typing",
        "call_received",
        "session_status_ready",
    ]
    # When each is delivered
    answers = [deliver(url, secret, example(name)).status_code for name in order]
    # Then every one is acknowledged, each event id is processed once, and the records are the final state
    assert answers == [204] * len(order)
    assert len(rows(module, "SELECT * FROM processed")) == len(set(order))
    image = example("message_media_available")["data"]
    assert rows(
        module, "SELECT kind, body, media_status, media_sha256 FROM messages WHERE message_id = ?", image["message_id"]
    ) == [("image", "The handle broke on the first day", "available", image["media"]["sha256"])]
    sent = example("message_sent_api")["data"]
    assert rows(module, "SELECT direction, ack FROM messages WHERE message_id = ?", sent["message_id"]) == [("out", 3)]
    edited = example("message_edited")["data"]
    assert rows(module, "SELECT body FROM messages WHERE message_id = ?", edited["message_id"]) == [(edited["body"],)]
    assert rows(module, "SELECT emoji FROM reactions") == [("👍",)]
    assert rows(module, "SELECT status FROM sessions") == [("ready",)]


def test_a_later_revocation_and_a_removed_reaction_apply(receiver: tuple[ModuleType, str, str]) -> None:
    module, url, secret = receiver
    # Given a message with a reaction
    for name in ("message_received_text", "message_reaction"):
        deliver(url, secret, example(name))
    # When the reaction is removed (empty emoji, a new event) and the message deleted for everyone
    removal = example("message_reaction") | {"id": "evw_" + "2" * 40}
    removal["data"] = removal["data"] | {"emoji": ""}
    deliver(url, secret, removal)
    deliver(url, secret, example("message_revoked"))
    # Then no reaction is left and the message is marked revoked, its text gone
    assert rows(module, "SELECT * FROM reactions") == []
    text_id = example("message_revoked")["data"]["message_id"]
    assert rows(module, "SELECT revoked, body FROM messages WHERE message_id = ?", text_id) == [(1, None)]


@pytest.mark.parametrize("forgery", ["other_secret", "stale_timestamp", "tampered_body"])
def test_what_does_not_verify_is_refused_and_changes_nothing(
    receiver: tuple[ModuleType, str, str], forgery: str
) -> None:
    module, url, secret = receiver
    event = example("message_received_text")
    # Given a request that is not the gateway's, or not as it signed it
    if forgery == "other_secret":
        response = deliver(url, generate_secret(), event)
    elif forgery == "stale_timestamp":
        response = deliver(url, secret, event, timestamp=int(time.time()) - 600)
    else:
        body = json.dumps(event, separators=(",", ":")).encode()
        headers = sign([secret], event["id"], body).as_dict()
        response = httpx.post(url, content=body.replace(b"Halo", b"Hola"), headers=headers)
    # Then it is refused with 400 and nothing was recorded
    assert response.status_code == 400
    assert rows(module, "SELECT * FROM processed") == []
    assert rows(module, "SELECT * FROM messages") == []


class MediaHost(LocalHttpHost):
    """The media bucket's presigned URL (403 once expired) and the API's GET /v1/media/{id} on 127.0.0.1."""

    def __init__(self, data: bytes, media_id: str) -> None:
        self.asked_fresh: list[str] = []
        host = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                if self.path == f"/v1/media/{media_id}":
                    host.asked_fresh.append(self.headers.get("authorization", ""))
                    self.answer(200, json.dumps({"id": media_id, "url": f"{host.url}/fresh"}).encode())
                elif self.path == "/fresh":
                    self.answer(200, data)
                else:
                    self.answer(403, b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>")

        super().__init__(Handler)


@pytest.mark.parametrize("stored_digest", ["right", "wrong"])
def test_media_is_fetched_with_a_fresh_url_and_checked(
    receiver: tuple[ModuleType, str, str], stored_digest: str
) -> None:
    module, url, secret = receiver
    data = b"\xff\xd8\xff\xe0 a photo of a broken handle"
    event = example("message_media_available")
    media_id = event["data"]["media"]["id"]
    host = MediaHost(data, media_id)
    try:
        # Given a message.media whose presigned URL has expired
        digest = hashlib.sha256(data).hexdigest() if stored_digest == "right" else "0" * 64
        event["data"]["media"] |= {"url": f"{host.url}/expired", "sha256": digest}
        assert deliver(url, secret, event).status_code == 204
        message_id = event["data"]["message_id"]
        # When the guide's download job runs
        if stored_digest == "right":
            got = module.download_media(message_id, host.url, "wagw_sk_test")
            # Then it asked the API for a fresh URL with its key, and has the bytes
            assert got == data
            assert host.asked_fresh == ["Bearer wagw_sk_test"]
        else:
            # Then bytes that do not match the announced sha256 are refused
            with pytest.raises(ValueError, match="does not match its sha256"):
                module.download_media(message_id, host.url, "wagw_sk_test")
    finally:
        host.close()
