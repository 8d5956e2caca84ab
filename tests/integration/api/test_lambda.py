"""The Lambda entry point answers a real API Gateway HTTP API (payload v2) event through Mangum."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.integration.api.conftest import Tenant


def http_api_event(method: str, path: str, headers: dict[str, str], body: str | None = None) -> dict[str, Any]:
    """The shape API Gateway HTTP APIs send with payload format 2.0."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "limit=5",
        "cookies": [],
        "headers": {
            "accept": "application/json",
            "content-type": "application/json",
            "host": "abc123.execute-api.eu-west-1.amazonaws.com",
            "user-agent": "curl/8.5.0",
            "x-amzn-trace-id": "Root=1-65f0a1b2-0123456789abcdef01234567",
            "x-forwarded-for": "203.0.113.7",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
            **headers,
        },
        "queryStringParameters": {"limit": "5"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "curl/8.5.0",
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "$default",
            "stage": "$default",
            "time": "27/Nov/2026:17:00:00 +0000",
            "timeEpoch": 1795366800000,
        },
        "body": body,
        "isBase64Encoded": False,
    }


class Context:
    function_name = "wagw-api"
    aws_request_id = "5a1b2c3d-0000-4000-8000-000000000001"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:wagw-api"
    memory_limit_in_mb = 512

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def invoke(*events: dict[str, Any]) -> list[dict[str, Any]]:
    """Run the handler the way the Lambda runtime does: synchronously, one event after another on one
    thread that has an event loop but is not running it."""
    from functions.api import handler

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return [handler.handler(event, Context()) for event in events]
    finally:
        asyncio.set_event_loop(None)
        loop.close()


async def test_the_handler_serves_api_gateway_events(tenant: Tenant) -> None:
    # When API Gateway invokes the function to create, then list, sessions
    created, listed, missing = await asyncio.to_thread(
        invoke,
        http_api_event("POST", "/v1/sessions", tenant.headers, json.dumps({"name": "lambda"})),
        http_api_event("GET", "/v1/sessions", tenant.headers),
        http_api_event("GET", "/v1/sessions", {}),
    )
    # Then the responses are what API Gateway expects, with the API's status codes and bodies
    assert created["statusCode"] == 201 and json.loads(created["body"])["name"] == "lambda"
    assert listed["statusCode"] == 200 and [s["name"] for s in json.loads(listed["body"])["items"]] == ["lambda"]
    assert missing["statusCode"] == 401 and missing["headers"]["content-type"] == "application/problem+json"
