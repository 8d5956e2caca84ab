"""The OpenAPI `webhooks` section: one entry per event type a tenant's endpoint can receive, with its schema, so
tenants can generate types from /openapi.json. Built from `shared.events` (the models producers and ingest use),
so it cannot drift from what is delivered. docs/events.md says when each event happens, with examples."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any, get_args

from fastapi import Body, FastAPI, Response

from shared.events import EVENT_TYPES, Event

SUMMARIES: dict[str, str] = {
    "session.status": "A session's state changed (starting, qr, ready, disconnected, logged_out, failed, ...)",
    "session.qr": "A new QR code to scan (each rotation)",
    "session.pairing_code": "A pairing code to type on the phone",
    "message.received": "A contact's message, of any kind (text, media, location, contact, ...)",
    "message.sent": "A message went out: sent through the API (origin api) or typed on the phone (origin phone)",
    "message.ack": "A sent message was received, read or played (in groups: by `reader`)",
    "message.failed": "A message could not be sent; `reason` says why",
    "message.media": "The media of a message reported before is now available (with a URL) or failed",
    "message.reaction": "Someone reacted to a message (an empty emoji removes the reaction)",
    "message.edited": "A message was edited",
    "message.revoked": "A message was deleted for everyone",
    "group.participants": "Participants were added, removed, promoted or demoted, or joined or left a group",
    "call.received": "An incoming WhatsApp call (rejected when the workspace says so)",
    "presence": "A contact came online or went offline",
    "typing": "A contact is typing or recording, or stopped",
}

DESCRIPTION = (
    "POSTed to each of the workspace's webhook endpoints whose `event_types` include it (or are empty), signed "
    "with Standard Webhooks headers (`webhook-id`: the event id, the same on every retry: deduplicate on it; "
    "`webhook-timestamp`; `webhook-signature`). Answer 2xx to acknowledge. See docs/events.md."
)

RETRIED = "Not acknowledged: delivered again later with the same `webhook-id` (410 Gone disables the endpoint)"


def event_models() -> dict[str, type]:
    """Each event type and its model, from the `Event` union itself."""
    union = get_args(Event)[0]
    return {model.model_fields["type"].default: model for model in get_args(union)}


def _receiver(event_type: str, model: type) -> Callable[..., Coroutine[Any, Any, Response]]:
    """A documentation-only operation whose request body is `model` (never served: webhooks are not routes)."""

    async def receive(event: Any) -> Response:
        return Response(status_code=204)

    receive.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("event", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=model, default=Body())]
    )
    return receive


def add_webhooks(app: FastAPI) -> None:
    """Declare every event type under the document's `webhooks`, named by its type."""
    models = event_models()
    missing = set(EVENT_TYPES) - set(models)
    if missing:
        raise RuntimeError(f"event types without a model: {sorted(missing)}")
    for event_type in EVENT_TYPES:
        app.webhooks.add_api_route(
            event_type,
            _receiver(event_type, models[event_type]),
            methods=["POST"],
            summary=SUMMARIES.get(event_type, event_type),
            description=DESCRIPTION,
            tags=["webhooks"],
            status_code=204,
            operation_id="webhook_" + event_type.replace(".", "_"),
            # "default" also keeps FastAPI from listing its own 422 validation error, which a receiver never sends
            responses={204: {"description": "Acknowledged (any 2xx is)"}, "default": {"description": RETRIED}},
        )
