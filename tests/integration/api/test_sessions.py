"""Sessions through the API: create, list, read, QR, pairing code, commands, delete, phone retirement."""

from __future__ import annotations

import httpx
from redis.asyncio import Redis

from shared import redis_keys as keys
from shared.commands import parse_command
from shared.events import SessionStatus
from shared.store import sessions
from tests.integration.api.conftest import Tenant, assert_problem, create_session


async def commands_of(redis: Redis, session_id: str) -> list[str]:
    entries = await redis.xrange(keys.session_commands(session_id))
    return [parse_command(fields).type for _, fields in entries]


async def test_create_puts_the_session_up_for_a_worker(client: httpx.AsyncClient, tenant: Tenant, redis: Redis) -> None:
    # When a session is created
    created = await create_session(client, tenant, name="support")
    # Then it is starting, waiting in the unowned pool, and readable
    assert created["status"] == "starting" and created["retired_session_ids"] == []
    assert await redis.sismember(keys.unowned_sessions(), str(created["id"]))
    got = await client.get(f"/v1/sessions/{created['id']}", headers=tenant.headers)
    assert got.status_code == 200 and got.json()["name"] == "support" and got.json()["owner"] is None


async def test_list_pages_newest_first_and_filters_by_status(
    client: httpx.AsyncClient, tenant: Tenant, redis: Redis
) -> None:
    # Given five sessions, one of them showing a QR
    ids = [str((await create_session(client, tenant, name=f"s{i}"))["id"]) for i in range(5)]
    await sessions.set_qr(redis, ids[2], "2@qr", "2026-01-01T00:00:00Z", occurred_at_ms=1)
    # When listing two at a time
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/sessions", params=params, headers=tenant.headers)).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    # Then every session comes once, newest first; and the status filter finds the QR one
    assert seen == list(reversed(ids))
    filtered = (await client.get("/v1/sessions", params={"status": "qr"}, headers=tenant.headers)).json()
    assert [s["id"] for s in filtered["items"]] == [ids[2]]


async def test_a_cursor_that_does_not_parse_is_400(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get("/v1/sessions", params={"cursor": "!!not-a-cursor"}, headers=tenant.headers)
    assert_problem(response, 400)


async def test_phone_session_retires_stale_ones_and_stops_their_workers(
    client: httpx.AsyncClient, tenant: Tenant, redis: Redis
) -> None:
    # Given two sessions for a phone that never connected (one showed a QR)
    first = await create_session(client, tenant, phone="6281180164100")
    second = await create_session(client, tenant, phone="6281180164100")
    assert second["retired_session_ids"] == [first["id"]]
    await sessions.set_qr(redis, str(second["id"]), "2@qr", "2026-01-01T00:00:00Z", occurred_at_ms=1)
    # When a third is created for the same phone
    third = await create_session(client, tenant, phone="6281180164100")
    # Then the second is retired (QR gone, out of the unowned pool) and its worker told to stop
    assert third["retired_session_ids"] == [second["id"]]
    stale = (await client.get(f"/v1/sessions/{second['id']}", headers=tenant.headers)).json()
    assert stale["status"] == "retired" and stale["reason"] == sessions.RETIRED_REASON and not stale["has_qr"]
    assert not await redis.sismember(keys.unowned_sessions(), str(second["id"]))
    assert await commands_of(redis, str(second["id"])) == ["stop"]
    assert await redis.smembers(keys.workspace_phone_sessions(tenant.workspace_id, "6281180164100")) == {third["id"]}


async def test_phone_with_a_connected_session_is_409_and_changes_nothing(
    client: httpx.AsyncClient, tenant: Tenant, redis: Redis
) -> None:
    # Given a connected session for a phone
    live = await create_session(client, tenant, phone="6281180164101")
    record = await sessions.get_session(redis, str(live["id"]))
    assert record is not None
    await sessions.apply_status(redis, record, SessionStatus.READY, reason=None, occurred_at_ms=10)
    before = await redis.zcard(keys.workspace_sessions(tenant.workspace_id))
    # When another is created for it
    response = await client.post("/v1/sessions", json={"phone": "6281180164101"}, headers=tenant.headers)
    # Then 409 names the live one, and nothing was written
    assert str(live["id"]) in str(assert_problem(response, 409)["detail"])
    assert await redis.zcard(keys.workspace_sessions(tenant.workspace_id)) == before


async def test_qr_as_json_and_png_follow_the_latest_qr(client: httpx.AsyncClient, tenant: Tenant, redis: Redis) -> None:
    session_id = str((await create_session(client, tenant))["id"])
    # Before any QR: JSON says none, the PNG is a 409
    empty = (await client.get(f"/v1/sessions/{session_id}/qr", headers=tenant.headers)).json()
    assert empty["qr"] is None and empty["status"] == "starting"
    assert_problem(await client.get(f"/v1/sessions/{session_id}/qr.png", headers=tenant.headers), 409)
    # When the worker's QRs arrive (and rotate)
    await sessions.set_qr(redis, session_id, "2@first", "2026-01-01T00:00:20Z", occurred_at_ms=1)
    first_png = await client.get(f"/v1/sessions/{session_id}/qr.png", headers=tenant.headers)
    await sessions.set_qr(redis, session_id, "2@second", "2026-01-01T00:00:40Z", occurred_at_ms=2)
    # Then JSON shows the newest, and PNGs are images of different codes
    qr = (await client.get(f"/v1/sessions/{session_id}/qr", headers=tenant.headers)).json()
    assert qr == {"session_id": session_id, "status": "qr", "qr": "2@second", "expires_at": "2026-01-01T00:00:40Z"}
    second_png = await client.get(f"/v1/sessions/{session_id}/qr.png", headers=tenant.headers)
    assert first_png.headers["content-type"] == "image/png" and first_png.content.startswith(b"\x89PNG")
    assert second_png.content.startswith(b"\x89PNG") and second_png.content != first_png.content


async def test_pairing_code_needs_a_phone_then_asks_the_worker(
    client: httpx.AsyncClient, tenant: Tenant, redis: Redis
) -> None:
    session_id = str((await create_session(client, tenant))["id"])
    # Without a phone anywhere: 422 naming the field
    missing = await client.post(f"/v1/sessions/{session_id}/pairing-code", json={}, headers=tenant.headers)
    assert assert_problem(missing, 422)["errors"] == [
        {"field": "phone", "message": "the session has no phone number: give one"}
    ]
    # With one: 202 and a command for the worker; the code shows once ingest stores it
    asked = await client.post(
        f"/v1/sessions/{session_id}/pairing-code", json={"phone": "6281180164102"}, headers=tenant.headers
    )
    assert asked.status_code == 202 and asked.json()["command"] == "request_pairing_code"
    entries = await redis.xrange(keys.session_commands(session_id))
    command = parse_command(entries[0][1])
    assert command.type == "request_pairing_code" and command.phone == "6281180164102"
    await sessions.set_pairing_code(redis, session_id, "ABCD-EFGH", occurred_at_ms=5)
    code = (await client.get(f"/v1/sessions/{session_id}/pairing-code", headers=tenant.headers)).json()
    assert code == {"session_id": session_id, "status": "pairing", "code": "ABCD-EFGH"}


async def test_restart_logout_and_delete_reach_the_worker(
    client: httpx.AsyncClient, tenant: Tenant, redis: Redis
) -> None:
    session_id = str((await create_session(client, tenant))["id"])
    # When the tenant restarts, logs out and deletes it
    for action in ("restart", "logout"):
        response = await client.post(f"/v1/sessions/{session_id}/{action}", headers=tenant.headers)
        assert response.status_code == 202 and response.json()["command"] == action
    deleted = await client.delete(f"/v1/sessions/{session_id}", headers=tenant.headers)
    # Then the worker gets the three commands, and the session is gone for the tenant
    assert deleted.status_code == 204
    assert await commands_of(redis, session_id) == ["restart", "logout", "stop"]
    assert_problem(await client.get(f"/v1/sessions/{session_id}", headers=tenant.headers), 404)
    listed = (await client.get("/v1/sessions", headers=tenant.headers)).json()
    assert listed["items"] == []
    assert not await redis.sismember(keys.unowned_sessions(), session_id)


async def test_a_retired_session_takes_no_more_commands(
    client: httpx.AsyncClient, tenant: Tenant, redis: Redis
) -> None:
    old = await create_session(client, tenant, phone="6281180164103")
    await create_session(client, tenant, phone="6281180164103")
    for action in ("restart", "logout", "pairing-code"):
        assert_problem(await client.post(f"/v1/sessions/{old['id']}/{action}", headers=tenant.headers), 409)
