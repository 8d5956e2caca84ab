"""The console: one static page (HTML + JS) that talks to this API with the API key the operator types."""

from __future__ import annotations

import os
from functools import cache
from importlib import resources
from urllib.parse import urlparse

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

router = APIRouter(include_in_schema=False)


def media_origin() -> str:
    """Where presigned media URLs point: the conversation view previews media there and uploads files to it
    (S3; LocalStack when AWS_ENDPOINT_URL points there)."""
    endpoint = urlparse(os.environ.get("AWS_ENDPOINT_URL", ""))
    return f"{endpoint.scheme}://{endpoint.netloc}" if endpoint.netloc else "https://*.amazonaws.com"


def _headers() -> dict[str, str]:
    media = media_origin()
    return {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": (
            f"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' blob: {media}; "
            f"media-src {media}; connect-src 'self' {media}; form-action 'none'; frame-ancestors 'none'; "
            "base-uri 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


@cache
def _asset(name: str) -> str:
    return resources.files("functions.api").joinpath("console", name).read_text()


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/console")


@router.get("/console")
async def console_page() -> HTMLResponse:
    return HTMLResponse(_asset("index.html"), headers=_headers())


@router.get("/console/console.js")
async def console_script() -> Response:
    return Response(_asset("console.js"), media_type="text/javascript", headers=_headers())
