"""The simulator's contract with wa-js 4.6.0 for what the reads call (GET .../contacts, chats, messages, groups):
each behaviour stated once against the page alone, with the wa-js source file it models (under `src/` at tag
v4.6.0). Same rules as test_wa_js_contract.py: when wa-js is upgraded, re-read every cited file at the new tag.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from session_workers.simulator import SimulatorServer
from shared.settings import get_settings
from tests.integration.session_workers.test_wa_js_contract import RECORDER_JS, REPO, control, open_linked

pytestmark = pytest.mark.browser

PHONE = "15550019001"
CUSTOMER = "15550019002"
QUIET = "15550019003"
LID_CONTACT = "15550019004"
LID = "190019001900190"
GROUP = "120363000000001901@g.us"
SERIALIZE_JS = "(v) => JSON.parse(JSON.stringify(v, (k, x) => (x && x._serialized ? x._serialized : x)))"


@pytest.fixture
async def page(browser: Browser, sim: SimulatorServer) -> AsyncIterator[Page]:
    """A fresh simulator page with wa-js's events recorded (test_wa_js_contract.RECORDER_JS)."""
    context = await browser.new_context()
    await context.add_init_script(script=RECORDER_JS)
    opened = await context.new_page()
    try:
        yield opened
    finally:
        await context.close()


async def call(page: Page, expression: str) -> Any:
    """Evaluate a WPP call and hand back its result serialized (Wids as strings), or `{error: code}`."""
    return await page.evaluate(
        f"async () => {{ try {{ return ({SERIALIZE_JS})(await {expression}); }}"
        " catch (err) { return { error: err.code || String(err) }; } }"
    )


async def test_query_wid_exists_is_null_for_a_number_not_on_whatsapp(page: Page, sim: SimulatorServer) -> None:
    """contact/functions/queryWidExists.ts: `null` when the number is not on WhatsApp (also when the server query
    fails: fetchFromServer catches it); else {wid, biz, lid?} with the LID from the LID/PN cache."""
    # Given a linked page, a business contact WhatsApp addresses by LID and a number not on WhatsApp
    await open_linked(page, sim, PHONE)
    await control(sim, "contact", phone=PHONE, contact=LID_CONTACT, lid=LID, business=True)
    await control(sim, "contact", phone=PHONE, contact=QUIET, on_whatsapp=False)
    # When the page asks about both
    found = await call(page, f"WPP.contact.queryWidExists('{LID_CONTACT}@c.us')")
    missing = await call(page, f"WPP.contact.queryWidExists('{QUIET}@c.us')")
    # Then the first is there with its LID and business flag, the second is null (not an error)
    assert found == {"wid": f"{LID_CONTACT}@c.us", "biz": True, "lid": f"{LID}@lid"}
    assert missing is None


async def test_chats_carry_unread_counts_and_page_from_a_chat_included(page: Page, sim: SimulatorServer) -> None:
    """chat/functions/list.ts (ChatStore order, a page of `count` from the chat `id` *included*; a chat it cannot
    get starts the page at the top), whatsapp/models/ChatModel.ts (`unreadCount`, `lastReceivedKey`),
    chat/functions/markIsRead.ts (clears the unread count)."""
    # Given two customers who wrote, the second last
    phone = "15550019011"
    await open_linked(page, sim, phone)
    ids = []
    for sender, body in ((CUSTOMER, "one"), (CUSTOMER, "two"), (QUIET, "three")):
        ids.append((await control(sim, "inbound", phone=phone, sender=sender, body=body))["id"])
        await page.wait_for_function(f"() => window.__log.some((e) => e.payload && e.payload.body === '{body}')")
    # When the page lists its chats, then pages from the second one, then from a chat it does not know
    chats = await call(page, "WPP.chat.list()")
    from_second = await call(page, f"WPP.chat.list({{ id: '{CUSTOMER}@c.us', count: 5 }})")
    from_unknown = await call(page, "WPP.chat.list({ id: '15550019099@c.us', count: 1 })")
    # Then the most recent chat comes first, each with its unread count, and a page includes its anchor
    assert [(c["id"], c["unreadCount"]) for c in chats] == [(f"{QUIET}@c.us", 1), (f"{CUSTOMER}@c.us", 2)]
    assert chats[1]["lastReceivedKey"] == ids[1]
    assert [c["id"] for c in from_second] == [f"{CUSTOMER}@c.us"]
    assert [c["id"] for c in from_unknown] == [f"{QUIET}@c.us"]
    # And marking a chat read clears its count
    await page.evaluate(f"() => WPP.chat.markIsRead('{CUSTOMER}@c.us')")
    after = await call(page, f"WPP.chat.list({{ id: '{CUSTOMER}@c.us', count: 1 }})")
    assert after[0]["unreadCount"] == 0


async def test_get_messages_pages_backwards_from_the_newest_own_messages_included(
    page: Page, sim: SimulatorServer
) -> None:
    """chat/functions/getMessages.ts: without `id` the anchor is the chat's lastReceivedKey and it is included
    (count - 1 before it, then it); with `id` the page is `count` messages before it, the anchor excluded; oldest
    first. lastReceivedKey follows the account's own messages too (chat/functions/sendFileMessage.ts waits for
    it to change to its own status message). A chat the page cannot get is `chat_not_found` (assert/assertChat.ts)."""
    # Given a customer's two messages and our reply after them
    phone = "15550019021"
    await open_linked(page, sim, phone)
    for body in ("first", "second"):
        await control(sim, "inbound", phone=phone, sender=CUSTOMER, body=body)
        await page.wait_for_function(f"() => window.__log.some((e) => e.payload && e.payload.body === '{body}')")
    await page.evaluate(f"() => WPP.chat.sendTextMessage('{CUSTOMER}@c.us', 'reply', {{ markIsRead: false }})")
    # When the page reads the newest two, then two before the oldest of them
    newest = await call(page, f"WPP.chat.getMessages('{CUSTOMER}@c.us', {{ count: 2 }})")
    older = await call(page, f"WPP.chat.getMessages('{CUSTOMER}@c.us', {{ count: 2, id: '{newest[0]['id']}' }})")
    unknown = await call(page, "WPP.chat.getMessages('15550019098@c.us', { count: 2 })")
    # Then the newest page ends with our own reply, the next holds only what is older, and nobody's chat errs
    assert [m["body"] for m in newest] == ["second", "reply"] and newest[1]["id"].startswith("true_")
    assert [m["body"] for m in older] == ["first"]
    assert unknown == {"error": "chat_not_found"}


async def test_groups_are_chats_with_metadata_and_participants_have_roles(page: Page, sim: SimulatorServer) -> None:
    """group/functions/getAllGroups.ts (each group is chat.get(id): a ChatModel), group/functions/
    getParticipants.ts and ensureGroup.ts (`chat_not_found`, `not_a_group`), whatsapp/models/ParticipantModel.ts
    ({id, isAdmin, isSuperAdmin}); group members are often LIDs (getPnLidEntry.ts maps only what it knows)."""
    # Given a group with us as super admin, an admin and a member known only by LID
    phone = "15550019031"
    await open_linked(page, sim, phone)
    await control(sim, "contact", phone=phone, contact=LID_CONTACT, lid=LID, pn_known=False)
    await control(
        sim,
        "groups",
        phone=phone,
        group=GROUP,
        subject="Suppliers",
        participants=[LID_CONTACT],
        admins=[CUSTOMER],
        super_admins=[phone],
    )
    # When the page lists its groups and the group's participants, and asks a user chat for participants
    groups = await call(page, "WPP.group.getAllGroups()")
    members = await call(page, f"WPP.group.getParticipants('{GROUP}')")
    await control(sim, "inbound", phone=phone, sender=CUSTOMER, body="hi")
    await page.wait_for_function("() => window.__log.some((e) => e.payload && e.payload.body === 'hi')")
    user_chat = await call(page, f"WPP.group.getParticipants('{CUSTOMER}@c.us')")
    unknown = await call(page, "WPP.group.getParticipants('120363000000001999@g.us')")
    # Then the group is a chat with its subject and members, each member with its role
    assert [(g["id"], g["name"], g["groupMetadata"]["participants"]["length"]) for g in groups] == [
        (GROUP, "Suppliers", 3)
    ]
    assert sorted((m["id"], m["isAdmin"], m["isSuperAdmin"]) for m in members) == sorted(
        [(f"{phone}@c.us", True, True), (f"{CUSTOMER}@c.us", True, False), (f"{LID}@lid", False, False)]
    )
    assert user_chat == {"error": "not_a_group"} and unknown == {"error": "chat_not_found"}


async def test_the_real_bundle_exposes_every_read_the_driver_calls(browser: Browser) -> None:
    """The real wa-js bundle in a blank page: each function session_workers/driver.py's reads call exists."""
    bundle = REPO / get_settings().wa_js_path
    context = await browser.new_context()
    try:
        blank = await context.new_page()
        await blank.set_content("<html><body></body></html>")
        await blank.add_script_tag(path=str(bundle))
        missing = await blank.evaluate(
            """() => ['contact.queryWidExists', 'contact.getPnLidEntry', 'chat.list', 'chat.getMessages',
                'chat.getMessageById', 'group.getAllGroups', 'group.getParticipants']
              .filter((n) => typeof n.split('.').reduce((o, k) => (o ? o[k] : undefined), WPP) !== 'function')"""
        )
        assert missing == []
    finally:
        await context.close()
