"""Lambda entry point: API Gateway (HTTP API, payload v2) events through Mangum to the FastAPI app.

The app and the adapter are built on the first invocation, not at import.
"""

from __future__ import annotations

from typing import Any

from mangum import Mangum

_adapter: Mangum | None = None


def _build() -> Mangum:
    from functions.api.app import app

    return Mangum(app, lifespan="off")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _adapter
    if _adapter is None:
        _adapter = _build()
    return _adapter(event, context)
