"""Reads through the owning worker over HTTP, the whole system running: a conversation backfilled after linking,
number checks past the session's budget (429), another workspace's session (404), and reads while no worker is
alive (504 while the owner's heartbeat is fresh, then 503 at once), then again after the workers are back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared.settings import DEV_ADMIN_KEY, get_settings
from tests.e2e.test_wa_js_fidelity import control, create_session
from tests.e2e.test_whole_system import api, wait_until
from wagw_local.system import Demo, LocalSystem

PHONE = "6281100000401"
CUSTOMER = "6281299990401"


@pytest.fixture(scope="module")
def linked(system: LocalSystem, demo: Demo) -> Iterator[str]:
    sid = create_session(system, demo, PHONE)
    with api(system, demo) as http:
        qr = wait_until("a QR", lambda: http.get(f"/v1/sessions/{sid}/qr").json().get("qr"))
        control(system, "scan", qr=qr, phone=PHONE)
        wait_until("ready", lambda: http.get(f"/v1/sessions/{sid}").json()["status"] == "ready")
        yield sid
        http.delete(f"/v1/sessions/{sid}")


def history(http: httpx.Client, sid: str, chat: str, limit: int) -> list[dict[str, Any]]:
    """Every message of the chat, newest first, following the cursor."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        page = http.get(f"/v1/sessions/{sid}/chats/{chat}/messages", params=params)
        assert page.status_code == 200, page.text
        found += page.json()["items"]
        if not page.json()["next_cursor"]:
            return found
        params["cursor"] = page.json()["next_cursor"]


def test_a_conversation_is_backfilled_newest_first(system: LocalSystem, demo: Demo, linked: str) -> None:
    # Given a customer who wrote three messages, and our reply
    for n in range(3):
        control(system, "inbound", phone=PHONE, sender=CUSTOMER, body=f"question {n}")
    with api(system, demo) as http:
        wait_until("the three messages", lambda: len(history(http, linked, CUSTOMER, 50)) == 3)
        sent = http.post(
            f"/v1/sessions/{linked}/messages", json={"to": CUSTOMER, "text": "answer", "client_message_id": "rd-1"}
        )
        assert sent.status_code == 202, sent.text
        wait_until("our answer in the chat", lambda: history(http, linked, CUSTOMER, 50)[0]["body"] == "answer")
        # When the tenant lists the chats and pages the conversation back two at a time
        chats = http.get(f"/v1/sessions/{linked}/chats").json()["items"]
        backfill = history(http, linked, CUSTOMER, 2)
    # Then the chat shows the unread questions and our answer last, and the history holds all four once, newest first
    chat = next(c for c in chats if c["id"] == f"{CUSTOMER}@c.us")
    assert chat["unread_count"] == 3 and chat["last_message"]["body"] == "answer"
    assert [m["body"] for m in backfill] == ["answer", "question 2", "question 1", "question 0"]
    assert [m["from_me"] for m in backfill] == [True, False, False, False]


def test_number_checks_past_the_sessions_budget_are_429(system: LocalSystem, demo: Demo, linked: str) -> None:
    with api(system, demo) as http:
        # Given the session's budget of new numbers (5 at once by default) spent on five numbers
        answers = [http.get(f"/v1/sessions/{linked}/contacts/62812999905{n:02d}") for n in range(5)]
        assert [a.status_code for a in answers] == [200] * 5, answers[-1].text
        # When it checks a sixth number, and the first again
        sixth = http.get(f"/v1/sessions/{linked}/contacts/6281299990599")
        again = http.get(f"/v1/sessions/{linked}/contacts/6281299990500")
    # Then the sixth waits (429, Retry-After) and the first comes from the cache
    assert sixth.status_code == 429 and int(sixth.headers["retry-after"]) >= 1
    assert sixth.headers["content-type"].startswith("application/problem+json")
    assert again.status_code == 200 and again.json()["cached"] is True and again.json()["on_whatsapp"] is True


def test_another_workspaces_session_is_404(system: LocalSystem, linked: str) -> None:
    # Given another workspace's key
    admin = {"Authorization": f"Bearer {system_admin_key()}"}
    with httpx.Client(base_url=system.api_url, timeout=30) as http:
        workspace = http.post("/v1/admin/workspaces", json={"name": "other reads"}, headers=admin).json()
        key = http.post(
            f"/v1/admin/workspaces/{workspace['id']}/keys", json={"name": "k", "scopes": ["read"]}, headers=admin
        ).json()["key"]
        # When it reads this workspace's session
        other = {"Authorization": f"Bearer {key}"}
        answers = [
            http.get(f"/v1/sessions/{linked}/{path}", headers=other)
            for path in ("chats", f"chats/{CUSTOMER}/messages", "groups", f"contacts/{CUSTOMER}")
        ]
    # Then the session does not exist for it
    assert [a.status_code for a in answers] == [404] * 4


def system_admin_key() -> str:
    return get_settings().admin_api_key.get_secret_value() or DEV_ADMIN_KEY


def test_a_read_while_no_worker_lives_is_504_then_503_quickly(system: LocalSystem, demo: Demo, linked: str) -> None:
    ports = dict(zip(system.worker_ids(), system.options.ports.worker_health, strict=False))
    alive = [w for w in system.worker_ids() if w in system.processes]
    with api(system, demo) as http:
        # Given every worker killed (SIGKILL: no handover), the owner's last heartbeat still fresh
        for worker_id in alive:
            system.kill_worker(worker_id)
        try:
            # When the tenant reads at once, and again once the heartbeat is stale
            started = time.monotonic()
            fresh = http.get(f"/v1/sessions/{linked}/chats")
            first_took = time.monotonic() - started
            time.sleep(max(0.0, 7.0 - first_took))
            started = time.monotonic()
            stale = http.get(f"/v1/sessions/{linked}/chats")
            second_took = time.monotonic() - started
        finally:
            for worker_id in alive:
                system.start_worker(worker_id, ports[worker_id])
        # Then the first is a 504 within the read timeout, the second a 503 at once, never a hang
        assert fresh.status_code == 504 and first_took < 10.0, fresh.text
        assert fresh.headers["content-type"].startswith("application/problem+json")
        assert stale.status_code == 503 and stale.headers["retry-after"] and second_took < 1.0, stale.text
        # And once a worker has taken the session over, the reads answer again (the expired ones were skipped)
        wait_until(
            "taken over and ready",
            lambda: (
                http.get(f"/v1/sessions/{linked}").json()["status"] == "ready"
                and http.get(f"/v1/sessions/{linked}/chats").status_code == 200
            ),
            within=90,
        )
