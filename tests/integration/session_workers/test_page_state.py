"""The `context` strategy's in-page capture and restore, on real Chromium: every value type IndexedDB can hold
round-trips into a fresh context, keys come back usable and non-extractable to the page, and keys made without
the WebCrypto wrapper are detected and marked instead of silently lost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from session_workers.browser import ContextSession, SharedBrowserHost, parse_context_archive
from tests.integration.session_workers.conftest import serve_origin

pytestmark = pytest.mark.browser

ORIGIN = "https://app.wagw.test"
JS = Path(__file__).parent / "js"

# A page that stores one record of every type, in two databases (one with indexes, an auto-increment store and
# out-of-line keys of several kinds), with keys the page creates non-extractable, plus localStorage.
WRITE_JS = (JS / "write_every_type.js").read_text()

# Reads everything back in the restored page and says what differs (an empty list: nothing).
CHECK_JS = (JS / "check_every_type.js").read_text()


async def capture(context_host: SharedBrowserHost, session_id: str) -> tuple[bytes, ContextSession]:
    session = await context_host.open(session_id, None, on_gone=lambda: None)
    assert isinstance(session, ContextSession)
    session.page = await serve_origin(session.context, ORIGIN)
    assert await session.page.evaluate(WRITE_JS)
    return await session.snapshot(), session


async def test_every_value_type_round_trips_into_a_fresh_context(context_host: SharedBrowserHost) -> None:
    # Given a page that stored every value type, with keys it made non-extractable
    archive, first = await capture(context_host, "sess_types")
    await first.close()
    header, state = parse_context_archive(archive)
    assert header["lost_keys"] == 0 and header["origin"] == ORIGIN
    # When the archive is restored into a fresh context and the site loads
    restored = await context_host.open("sess_types", archive, on_gone=lambda: None)
    try:
        page = await serve_origin(restored.context, ORIGIN)
        # Then every database, store, index, record and value is back, keys usable and non-extractable to the page
        assert await page.evaluate(CHECK_JS) == []
        # And a second capture of the restored page gives the same archive (the keys can move again)
        assert isinstance(restored, ContextSession)
        restored.page = page
        again = parse_context_archive(await restored.snapshot())[1]
        assert (
            json.loads(again)["indexedDB"][0]["stores"][0]["records"][0]
            == json.loads(state)["indexedDB"][0]["stores"][0]["records"][0]
        )
    finally:
        await restored.close()


async def test_the_wrapper_hides_itself_from_the_page_as_far_as_values_go(context_host: SharedBrowserHost) -> None:
    session = await context_host.open("sess_wrapper", None, on_gone=lambda: None)
    try:
        page = await serve_origin(session.context, ORIGIN)
        # When the page makes a non-extractable and an extractable key
        seen: dict[str, Any] = await page.evaluate(
            """async () => {
              const s = crypto.subtle;
              const hidden = await s.generateKey({name: 'AES-GCM', length: 128}, false, ['encrypt']);
              const open = await s.generateKey({name: 'AES-GCM', length: 128}, true, ['encrypt']);
              const pbkdf2 = await s.importKey('raw', new Uint8Array(8), 'PBKDF2', false, ['deriveBits']);
              const jwk = {kty: 'oct', k: 'AAAAAAAAAAAAAAAAAAAAAA', alg: 'A128GCM', ext: false};
              const fromJwk = await s.importKey('jwk', jwk, 'AES-GCM', false, ['encrypt']);
              const refusedJwk = await s.importKey('jwk', jwk, 'AES-GCM', true, ['encrypt'])
                .then(() => 'ok', (e) => e.name);
              return {
                hidden: hidden.extractable, open: open.extractable, pbkdf2: pbkdf2.extractable,
                jwk: fromJwk.extractable, refusedJwk, names: [s.generateKey.name, s.importKey.length],
                refused: await s.exportKey('raw', hidden).then(() => 'exported', (e) => e.name),
                exported: (await s.exportKey('raw', open)).byteLength,
              };
            }"""
        )
        # Then it sees exactly what the browser would show it (PBKDF2 keys are left as they are)
        assert seen == {
            "hidden": False,
            "open": True,
            "pbkdf2": False,
            "jwk": False,  # a JWK marked ext:false imports as the page asked (exportable underneath)
            "refusedJwk": "DataError",  # and asking for an exportable key from it fails as in the browser
            "names": ["generateKey", 5],
            "refused": "InvalidAccessError",
            "exported": 16,
        }
    finally:
        await session.close()


async def test_keys_made_without_the_wrapper_are_detected_and_the_archive_marked(
    context_host: SharedBrowserHost,
) -> None:
    # Given the wrapper is off (as for a session linked before it existed)
    context_host.settings = context_host.settings.model_copy(update={"context_exportable_keys": False})
    try:
        archive, session = await capture(context_host, "sess_legacy")
        await session.close()
    finally:
        context_host.settings = context_host.settings.model_copy(update={"context_exportable_keys": True})
    # Then the capture says how many keys it could not take, and the archive carries the mark
    header, state = parse_context_archive(archive)
    assert header["lost_keys"] == 4  # AES, HMAC and the two private keys (public keys are always exportable)
    assert '"$":"lostkey"' in state
