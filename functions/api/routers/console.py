"""The console: one static page (HTML + JS) that talks to this API with the API key the operator types."""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

router = APIRouter(include_in_schema=False)

_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' blob:; "
        "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
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
    return HTMLResponse(_asset("index.html"), headers=_HEADERS)


@router.get("/console/console.js")
async def console_script() -> Response:
    return Response(_asset("console.js"), media_type="text/javascript", headers=_HEADERS)
