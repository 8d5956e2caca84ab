"""The OpenAPI document's `webhooks` section names every event type a tenant can receive, with its schema."""

from __future__ import annotations

from functions.api.app import create_app
from shared.events import EVENT_TYPES


def test_every_event_type_is_a_webhook_with_its_event_schema() -> None:
    # Given the API's OpenAPI document
    document = create_app().openapi()
    # When its webhooks section is read
    webhooks = document["webhooks"]
    # Then every event type is there, its request body the event's model, whose `type` is that event type
    assert sorted(webhooks) == sorted(EVENT_TYPES)
    schemas = document["components"]["schemas"]
    for event_type, item in webhooks.items():
        ref = item["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = schemas[ref.rsplit("/", 1)[-1]]
        assert schema["properties"]["type"]["const"] == event_type
        assert {"id", "workspace_id", "session_id", "occurred_at", "data"} <= set(schema["properties"])


def test_webhooks_are_documentation_not_routes() -> None:
    # Given the app
    app = create_app()
    # When its served paths are listed
    paths = app.openapi()["paths"]
    # Then no event type became a path a caller could POST to
    assert not [path for path in paths if path.lstrip("/") in EVENT_TYPES]
