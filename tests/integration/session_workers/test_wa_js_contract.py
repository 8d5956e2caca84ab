"""The simulator's contract with WhatsApp: what @wppconnect/wa-js 4.6.0 really does, stated once per behaviour.

Each test drives the simulator page alone (no gateway code) and cites the wa-js source file it models (paths under
`src/` at tag v4.6.0). The gateway's own tests run against this same page, so a behaviour stated here is one the
driver must cope with. When wa-js is upgraded: re-read every cited file at the new tag, change the simulator where
the library changed, bump CONTRACT_VERSION, and run this module (docs/session-workers.md, "Updating wa-js").
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page

from session_workers.simulator import SimulatorServer
from shared.settings import get_settings
from tests.integration.session_workers.conftest import control, eventually

pytestmark = pytest.mark.browser

CONTRACT_VERSION = "4.6.0"
REPO = Path(__file__).resolve().parents[3]
PHONE = "15550009001"
CONTACT = "15550009002"
CONTACT_LID = "987654321098765"

# Records every wa-js event the moment WPP appears, serialized at fire time (a Msg can change after it fired).
RECORDER_JS = """
(() => {
  window.__log = [];
  const names = ['conn.main_ready', 'conn.authenticated', 'conn.stream_mode_changed', 'conn.auth_code_change',
    'conn.link_code_change', 'conn.link_code_expired', 'conn.link_code_error', 'conn.logout',
    'chat.new_message', 'chat.msg_ack_change'];
  const ser = (v) => {
    const flat = (k, x) => (x && x._serialized ? x._serialized : x);
    try { return JSON.parse(JSON.stringify(v === undefined ? null : v, flat)); } catch (err) { return String(v); }
  };
  let current;
  Object.defineProperty(window, 'WPP', {
    configurable: true,
    get() { return current; },
    set(W) {
      current = W;
      for (const name of names) W.on(name, (p) => window.__log.push({ name, payload: ser(p) }));
    },
  });
})();
"""


@pytest.fixture
async def page(browser: Browser, sim: SimulatorServer) -> AsyncIterator[Page]:
    context = await browser.new_context()
    await context.add_init_script(script=RECORDER_JS)
    opened = await context.new_page()
    try:
        yield opened
    finally:
        await context.close()
        await control(sim, "page", wa_js_incompatible=False, link_code_ttl_ms=195_000)


async def log(page: Page, name: str | None = None) -> list[Any]:
    entries = await page.evaluate("() => window.__log")
    return [e["payload"] for e in entries if name is None or e["name"] == name]


async def at_least(page: Page, name: str, count: int) -> list[Any] | None:
    found = await log(page, name)
    return found if len(found) >= count else None


async def with_body(page: Page, body: str) -> Any:
    return next((m for m in await log(page, "chat.new_message") if m.get("body") == body), None)


async def names(page: Page) -> list[str]:
    return [e["name"] for e in await page.evaluate("() => window.__log")]


async def open_unpaired(page: Page, sim: SimulatorServer) -> str:
    """Load the page and wait for its QR; returns the QR's full code."""
    await page.goto(sim.url)
    return str(
        await eventually(
            lambda: page.evaluate("async () => { const c = await WPP.conn.getAuthCode(); return c && c.fullCode; }"),
            what="a QR code",
        )
    )


async def open_linked(page: Page, sim: SimulatorServer, phone: str = PHONE) -> None:
    qr = await open_unpaired(page, sim)
    await control(sim, "scan", qr=qr, phone=phone)
    await eventually(lambda: page.evaluate("() => WPP.conn.getStreamData().mode === 'MAIN'"), what="MAIN")


async def test_main_ready_fires_on_the_first_qr_and_never_again_after_the_scan(
    page: Page, sim: SimulatorServer
) -> None:
    """conn/events/registerMainReadyEvent.ts (first stream mode MAIN *or QR*, once per load),
    conn/functions/isMainReady.ts (latches true), conn/events/registerAuthenticatedEvent.ts."""
    # Given an unpaired page showing a QR
    qr = await open_unpaired(page, sim)
    # Then wa-js already says "main ready", though nobody is logged in
    assert await names(page) == ["conn.stream_mode_changed", "conn.main_ready", "conn.auth_code_change"]
    assert await page.evaluate("() => [WPP.conn.isMainReady(), WPP.conn.isAuthenticated()]") == [True, False]
    # When the phone scans it
    await control(sim, "scan", qr=qr, phone=PHONE)
    await eventually(lambda: page.evaluate("() => WPP.conn.getStreamData().mode === 'MAIN'"), what="MAIN")
    # Then it authenticates and reaches MAIN, and main_ready does NOT fire again
    assert (await names(page)).count("conn.main_ready") == 1
    assert "conn.authenticated" in await names(page)
    assert await log(page, "conn.stream_mode_changed") == ["QR", "SYNCING", "MAIN"]
    assert await page.evaluate("() => WPP.conn.isAuthenticated()") is True


async def test_a_restored_page_reaches_main_without_conn_authenticated(page: Page, sim: SimulatorServer) -> None:
    """conn/events/registerAuthenticatedEvent.ts: only a page that attached unauthenticated fires it."""
    # Given a linked page
    await open_linked(page, sim)
    # When it reloads (its auth in IndexedDB and localStorage)
    await page.reload()
    await eventually(lambda: page.evaluate("() => WPP.conn.getStreamData().mode === 'MAIN'"), what="MAIN again")
    # Then it logs in without a QR and without conn.authenticated; main_ready fires on the first MAIN
    assert "conn.authenticated" not in await names(page)
    assert "conn.auth_code_change" not in await names(page)
    assert (await names(page)).count("conn.main_ready") == 1


async def test_a_restored_page_that_cannot_reach_whatsapp_waits_offline_and_never_shows_a_qr(
    page: Page, sim: SimulatorServer
) -> None:
    """whatsapp/enums/StreamMode.ts, whatsapp/enums/StreamInfo.ts: a page holding a login reconnects (mode OFFLINE,
    info OPENING) when the servers cannot be reached; conn/events/registerAuthCodeChangeEvent.ts: no auth code."""
    # Given a linked page
    await open_linked(page, sim)
    # When it reloads while WhatsApp's servers cannot be reached
    await page.route("**/api/challenge", lambda route: route.abort())
    await page.reload()
    await eventually(lambda: page.evaluate("() => WPP.conn.getStreamData().mode === 'OFFLINE'"), what="OFFLINE")
    assert await page.evaluate("() => WPP.conn.getStreamData().info") == "OPENING"
    # ... and then can again
    await page.unroute("**/api/challenge")
    await eventually(lambda: page.evaluate("() => WPP.conn.getStreamData().mode === 'MAIN'"), what="MAIN")
    # Then it logged in with its stored credentials: no QR at any time, main_ready once
    assert "conn.auth_code_change" not in await names(page)
    assert await log(page, "conn.stream_mode_changed") == ["OFFLINE", "SYNCING", "MAIN"]
    assert (await names(page)).count("conn.main_ready") == 1


async def test_a_failed_send_resolves_with_its_result_instead_of_throwing(page: Page, sim: SimulatorServer) -> None:
    """chat/functions/sendRawMessage.ts (returns `sendMsgResult`), whatsapp/enums/SendMsgResult.ts."""
    # Given a linked page whose next send WhatsApp refuses
    await open_linked(page, sim)
    await control(sim, "send_failure", phone=PHONE, result="ERROR_NETWORK")
    # When it sends twice
    failed = await page.evaluate(f"() => WPP.chat.sendTextMessage('{CONTACT}@c.us', 'one')")
    sent = await page.evaluate(f"() => WPP.chat.sendTextMessage('{CONTACT}@c.us', 'two')")
    # Then nothing is thrown: the first says ERROR_NETWORK (ack -1), the second OK
    assert failed["sendMsgResult"] == {"messageSendResult": "ERROR_NETWORK"} and failed["ack"] == -1
    assert sent["sendMsgResult"] == {"messageSendResult": "OK"} and sent["ack"] == 1
    assert set(sent) == {"id", "ack", "from", "to", "sendMsgResult"}
    assert sent["to"] == f"{CONTACT}@c.us" and sent["from"] == f"{PHONE}@c.us"


async def test_sending_marks_the_chat_read_unless_told_not_to(page: Page, sim: SimulatorServer) -> None:
    """chat/defaultSendMessageOptions.ts (`markIsRead: true`), chat/functions/sendRawMessage.ts."""
    # Given a linked page
    phone = "15550009011"
    await open_linked(page, sim, phone)
    # When it sends with the defaults, then with markIsRead false to another chat
    await page.evaluate("() => WPP.chat.sendTextMessage('15550009012@c.us', 'default')")
    await page.evaluate("() => WPP.chat.sendTextMessage('15550009013@c.us', 'quiet', { markIsRead: false })")
    # Then only the first chat was marked read on the phone
    async with httpx.AsyncClient() as http:
        reads = (await http.get(sim.url + "control/reads", params={"phone": phone})).json()["chats"]
    assert reads == {"15550009012@c.us": 1}


async def test_a_migrated_contact_resolves_to_its_lid_and_a_key_on_the_phone_number_is_refused(
    page: Page, sim: SimulatorServer
) -> None:
    """chat/functions/find.ts (findOrCreateLatestChat), chat/functions/prepareRawMessage.ts (messageId checks),
    contact/functions/getPnLidEntry.ts."""
    # Given a contact WhatsApp addresses by LID, and one whose LID it cannot map to a phone number
    phone = "15550009021"
    await open_linked(page, sim, phone)
    await control(sim, "contact", phone=phone, contact=CONTACT, lid=CONTACT_LID)
    await control(sim, "contact", phone=phone, contact="15550009029", lid="111222333444555", pn_known=False)
    # When the page looks the phone number's chat up
    chat = await page.evaluate(f"async () => (await WPP.chat.find('{CONTACT}@c.us')).id._serialized")
    # Then it is the LID chat
    assert chat == f"{CONTACT_LID}@lid"
    # And a caller-chosen id keyed on the phone number is refused, one keyed on the LID is sent
    on_phone = f"true_{CONTACT}@c.us_3EB0AAAAAAAAAAAAAAAAAAAA"
    error = await page.evaluate(
        f"() => WPP.chat.sendTextMessage('{CONTACT}@c.us', 'x', {{messageId: '{on_phone}'}})"
        ".then(() => null, (e) => e.code)"
    )
    assert error == "message_key_remote_id_is_not_same_of_chat"
    on_lid = f"true_{CONTACT_LID}@lid_3EB0BBBBBBBBBBBBBBBBBBBB"
    sent = await page.evaluate(f"() => WPP.chat.sendTextMessage('{CONTACT}@c.us', 'x', {{messageId: '{on_lid}'}})")
    assert sent["id"] == on_lid and sent["to"] == f"{CONTACT_LID}@lid"
    # And the LID maps back to the phone number only where WhatsApp knows it
    known = await page.evaluate(f"() => WPP.contact.getPnLidEntry('{CONTACT_LID}@lid')")
    unknown = await page.evaluate("() => WPP.contact.getPnLidEntry('111222333444555@lid')")
    assert known["phoneNumber"]["_serialized"] == f"{CONTACT}@c.us"
    assert unknown["phoneNumber"] is None  # undefined: a LID the tenant cannot map
    # And inbound messages from the contact come from the LID
    await control(sim, "inbound", phone=phone, sender=f"{CONTACT}@c.us", body="from a lid")
    inbound = await eventually(lambda: with_body(page, "from a lid"), what="the inbound message")
    assert inbound["from"] == f"{CONTACT_LID}@lid" and inbound["id"].startswith(f"false_{CONTACT_LID}@lid_")


async def test_an_encrypted_message_fires_twice_first_as_ciphertext(page: Page, sim: SimulatorServer) -> None:
    """chat/events/registerNewMessageEvent.ts: type 'ciphertext' first, then the same Msg again decrypted."""
    # Given a linked page
    phone = "15550009031"
    await open_linked(page, sim, phone)
    # When a message arrives encrypted
    await control(sim, "inbound", phone=phone, sender=f"{CONTACT}@c.us", body="secret", id="ENC1", encrypted=True)
    first, second = await eventually(lambda: at_least(page, "chat.new_message", 2), what="two fires")
    # Then the first fire has no body and type ciphertext, the second the real one, with the same id
    assert first["type"] == "ciphertext" and "body" not in first
    assert second["type"] == "chat" and second["body"] == "secret"
    assert first["id"] == second["id"] == f"false_{CONTACT}@c.us_ENC1"


async def test_own_messages_typed_on_the_phone_fire_new_message_from_me(page: Page, sim: SimulatorServer) -> None:
    """chat/events/registerNewMessageEvent.ts: every new Msg is emitted, `id.fromMe` ones too."""
    phone = "15550009041"
    await open_linked(page, sim, phone)
    # When the owner types on the phone
    typed = await control(sim, "typed", phone=phone, to=CONTACT, body="typed on the phone")
    # Then the page emits it as a new message from me
    message = await eventually(lambda: with_body(page, "typed on the phone"), what="the typed message")
    assert message["id"] == typed["id"] and typed["id"].startswith("true_")


async def test_acks_one_from_the_store_receipts_per_reader_and_errors_only_on_the_msg(
    page: Page, sim: SimulatorServer
) -> None:
    """chat/events/registerAckMessageEvent.ts: ack 1 from MsgStore 'change:ack'; receipts (>= 2) rebuilt as
    MsgKeys with the receipt's participant (the reader, in groups); nothing else is emitted (-1 stays on the Msg)."""
    phone = "15550009051"
    group = "120363000000000001@g.us"
    reader = "444555666777888@lid"
    await open_linked(page, sim, phone)
    await page.evaluate(
        "() => { window.__storeAcks = [];"
        " WPP.whatsapp.MsgStore.on('change:ack', (m) => window.__storeAcks.push(m.ack)); }"
    )
    # When the page sends to a group and a member reads it
    sent = await page.evaluate(f"() => WPP.chat.sendTextMessage('{group}', 'hello group', {{ markIsRead: false }})")
    await control(sim, "ack", phone=phone, message_id=sent["id"], ack=3, reader=reader)
    # Then the send's key carries our own LID, ack 1 fired, and the receipt's key carries the reader instead
    assert sent["id"].startswith(f"true_{group}_3EB0") and sent["id"].endswith("@lid")
    acks = await eventually(lambda: at_least(page, "chat.msg_ack_change", 2), what="ack 1 and the receipt")
    assert acks[0]["ack"] == 1 and acks[0]["ids"] == [sent["id"]]
    bare = sent["id"].split("_")[2]
    assert acks[1] == {"ack": 3, "chat": group, "sender": reader, "ids": [f"true_{group}_{bare}_{reader}"]}
    # When WhatsApp marks a 1:1 message as failed
    one = await page.evaluate(f"() => WPP.chat.sendTextMessage('{CONTACT}@c.us', 'x', {{ markIsRead: false }})")
    before = len(await log(page, "chat.msg_ack_change"))
    await control(sim, "ack", phone=phone, message_id=one["id"], ack=-1)
    await eventually(lambda: page.evaluate("() => window.__storeAcks.includes(-1)"), what="the error on the Msg")
    # Then no chat.msg_ack_change says so (only ack 1 of the new send was added)
    assert [a["ack"] for a in (await log(page, "chat.msg_ack_change"))[before:]] in ([], [1])


async def test_pairing_codes_are_emitted_only_by_the_managed_lifecycle_and_expire(
    page: Page, sim: SimulatorServer
) -> None:
    """conn/functions/genLinkDeviceCodeForPhoneNumber.ts (returns, emits nothing),
    conn/functions/linkDeviceCodeLifecycle.ts (emits each code, refreshes 5 times at the TTL, then expires)."""
    # Given pages whose codes live 300 ms
    await control(sim, "page", link_code_ttl_ms=300)
    await open_unpaired(page, sim)
    # When a code is generated the plain way
    plain = await page.evaluate("() => WPP.conn.genLinkDeviceCodeForPhoneNumber('15550009061')")
    # Then it is returned and nothing is emitted
    assert len(plain) == 8 and await log(page, "conn.link_code_change") == []
    # When the managed lifecycle starts
    first = await page.evaluate("() => WPP.conn.startLinkDeviceCodeForPhoneNumber('15550009061')")
    # Then every code is emitted: the first, five automatic refreshes, then the expiry
    await eventually(lambda: log(page, "conn.link_code_expired"), within=10, what="expiry")
    codes = await log(page, "conn.link_code_change")
    assert codes[0] == first and len(codes) == 6 and len(set(codes)) == 6


async def test_whatsapp_can_force_a_pairing_code_to_expire(page: Page, sim: SimulatorServer) -> None:
    """conn/functions/linkDeviceCodeLifecycle.ts: LinkDeviceEvents 'force_manual_refresh' -> conn.link_code_expired."""
    await open_unpaired(page, sim)
    code = await page.evaluate("() => WPP.conn.startLinkDeviceCodeForPhoneNumber('15550009071')")
    await control(sim, "link_code_expire", code=code)
    await eventually(lambda: log(page, "conn.link_code_expired"), what="expiry")


async def test_a_missing_message_is_an_error_with_a_code(page: Page, sim: SimulatorServer) -> None:
    """chat/functions/getMessageById.ts: throws WPPError 'msg_not_found'."""
    await open_linked(page, sim, "15550009081")
    code = await page.evaluate(
        f"() => WPP.chat.getMessageById('true_{CONTACT}@c.us_3EB0CCCCCCCCCCCCCCCCCCCC').then(() => null, (e) => e.code)"
    )
    assert code == "msg_not_found"


async def test_on_a_build_wa_js_cannot_hook_wpp_exists_but_is_never_ready(page: Page, sim: SimulatorServer) -> None:
    """loader/index.ts: `isReady` turns true only once wa-js found WhatsApp's modules; after a breaking WhatsApp
    Web update it stays false and calls fail."""
    await control(sim, "page", wa_js_incompatible=True)
    await page.goto(sim.url)
    await page.wait_for_timeout(500)
    state = await page.evaluate("() => ({ present: !!window.WPP, ready: WPP.isReady, build: window.Debug.VERSION })")
    assert state == {"present": True, "ready": False, "build": "2.3000.1029999999"}


def test_the_pinned_wa_js_is_the_version_this_contract_was_read_against() -> None:
    """package.json pins wa-js; this file was read against that tag. Upgrading means re-reading it."""
    pinned = json.loads((REPO / "package.json").read_text())["dependencies"]["@wppconnect/wa-js"]
    installed = json.loads((REPO / "node_modules/@wppconnect/wa-js/package.json").read_text())["version"]
    assert pinned == installed == CONTRACT_VERSION


async def test_the_real_bundle_exposes_every_name_the_driver_calls(browser: Browser) -> None:
    """The real wa-js bundle, loaded in a blank page: each function the driver and bridge call exists there."""
    bundle = REPO / get_settings().wa_js_path
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.set_content("<html><body></body></html>")
        await page.add_script_tag(path=str(bundle))
        missing = await page.evaluate(
            """() => {
              const names = ['on', 'conn.getAuthCode', 'conn.isAuthenticated', 'conn.getStreamData', 'conn.getMyUserId',
                'conn.getMyUserLid', 'conn.getBuildConstants', 'conn.logout', 'conn.startLinkDeviceCodeForPhoneNumber',
                'conn.refreshLinkDeviceCode', 'conn.cancelLinkDeviceCode', 'chat.find', 'chat.sendTextMessage',
                'chat.getMessageById', 'chat.markIsRead', 'contact.getPnLidEntry', 'contact.queryWidExists'];
              const find = (n) => n.split('.').reduce((o, k) => (o ? o[k] : undefined), WPP);
              return names.filter((n) => typeof find(n) !== 'function');
            }"""
        )
        assert missing == []
        assert await page.evaluate("() => [typeof WPP.version, WPP.isReady]") == ["string", False]
    finally:
        await context.close()


async def test_media_sends_return_less_and_refuse_files_over_whatsapps_limit(page: Page, sim: SimulatorServer) -> None:
    """chat/functions/sendFileMessage.ts: returns {id, ack, sendMsgResult} (no from/to), throws `file_too_large`
    over MediaGatingUtils.getUploadLimit; an audio with isPtt is a voice note. sendReactionToMessage.ts returns only
    {sendMsgResult}. sendVCardContactMessage.ts sends one contact as a `vcard` whose body is the vCard."""
    phone = "15550009091"
    await open_linked(page, sim, phone)
    small = await page.evaluate(
        f"() => WPP.chat.sendFileMessage('{CONTACT}@c.us', 'data:audio/ogg;base64,T2dnUw==',"
        " { type: 'audio', isPtt: true, markIsRead: false })"
    )
    assert set(small) == {"id", "ack", "sendMsgResult"} and small["sendMsgResult"] == {"messageSendResult": "OK"}
    too_big = await page.evaluate(
        f"() => WPP.chat.sendFileMessage('{CONTACT}@c.us', 'data:image/webp;base64,' + btoa('x'.repeat(1100000)),"
        " { type: 'sticker' }).then(() => null, (e) => e.code)"
    )
    assert too_big == "file_too_large"
    card = await page.evaluate(
        f"() => WPP.chat.sendVCardContactMessage('{CONTACT}@c.us', {{ id: '6281100000999@c.us', name: 'Help' }},"
        " { markIsRead: false })"
    )
    reaction = await page.evaluate(f"() => WPP.chat.sendReactionToMessage('{card['id']}', '👍')")
    assert reaction == {"sendMsgResult": {"messageSendResult": "OK"}}
    async with httpx.AsyncClient() as http:
        sent = (await http.get(sim.url + "control/sent", params={"phone": phone})).json()["messages"]
    assert [m["type"] for m in sent] == ["ptt", "vcard"] and "waid=6281100000999" in sent[1]["body"]


async def test_downloading_media_needs_a_media_message_and_the_servers_copy(page: Page, sim: SimulatorServer) -> None:
    """chat/functions/downloadMedia.ts: `message_not_contains_media` for a message without mediaData; the bytes come
    from WhatsApp's media servers, which forget them after a while (the download then fails)."""
    phone = "15550009092"
    await open_linked(page, sim, phone)
    text = await control(sim, "inbound", phone=phone, sender=f"{CONTACT}@c.us", body="no media", id="DLTEXT")
    photo = await control(sim, "inbound", phone=phone, sender=f"{CONTACT}@c.us", type="image", id="DLIMG")
    gone = await control(
        sim, "inbound", phone=phone, sender=f"{CONTACT}@c.us", type="document", id="DLGONE", media_gone=True
    )
    await eventually(lambda: at_least(page, "chat.new_message", 3), what="three messages")
    download = """(id) => WPP.chat.downloadMedia(id).then(
      async (b) => ({ size: b.size, type: b.type }), (e) => ({ error: e.code }))"""
    assert await page.evaluate(download, text["id"]) == {"error": "message_not_contains_media"}
    assert (await page.evaluate(download, photo["id"]))["type"] == "image/png"
    assert await page.evaluate(download, gone["id"]) == {"error": "media_download_failed"}


async def test_media_given_raw_to_the_harness_downloads_as_wa_js_hands_it_over(
    page: Page, sim: SimulatorServer
) -> None:
    """chat/functions/downloadMedia.ts returns `new Blob([cachedArrayBuffer])` of the message's media: bytes a test
    hands the simulator raw (`/control/media`, a harness path WhatsApp has no twin of) come out of the page the same
    way as bytes given as base64, byte for byte, with the message's mimetype."""
    phone = "15550009094"
    await open_linked(page, sim, phone)
    data = bytes(range(256)) * 64
    async with httpx.AsyncClient(timeout=10) as http:
        given = (await http.post(sim.url + "control/media", content=data)).json()
    raw = await control(
        sim,
        "inbound",
        phone=phone,
        sender=f"{CONTACT}@c.us",
        type="document",
        id="DLRAW",
        media_ref=given["media_ref"],
        mimetype="application/pdf",
        filename="raw.pdf",
    )
    await eventually(lambda: at_least(page, "chat.new_message", 1), what="the message")
    read = """(id) => WPP.chat.downloadMedia(id).then(async (b) => ({
      type: b.type, bytes: Array.from(new Uint8Array(await b.arrayBuffer())) }))"""
    got = await page.evaluate(read, raw["id"])
    assert got["type"] == "application/pdf"
    assert bytes(got["bytes"]) == data


async def test_reactions_edits_revokes_presence_groups_and_calls_have_wa_js_shapes(
    page: Page, sim: SimulatorServer
) -> None:
    """chat/events/eventTypes.ts: chat.new_reaction {id, msgId, reactionText, sender, timestamp, ...},
    chat.msg_edited {chat, id, msg}, chat.msg_revoke {from, id, refId, to, type}, chat.presence_change {id, state,
    ...}; group/events/eventTypes.ts group.participant_changed {groupId, action, operation, participants};
    call/events/eventTypes.ts call.incoming_call {id, isGroup, isVideo, offerTime, sender, peerJid}."""
    phone = "15550009093"
    await open_linked(page, sim, phone)
    await page.evaluate(
        """() => { window.__more = [];
          for (const n of ['chat.new_reaction', 'chat.msg_edited', 'chat.msg_revoke', 'chat.presence_change',
                           'group.participant_changed', 'call.incoming_call'])
            WPP.on(n, (p) => window.__more.push({ n, keys: Object.keys(p).sort() })); }"""
    )
    msg = await control(sim, "inbound", phone=phone, sender=f"{CONTACT}@c.us", body="hi", id="EVT1")
    await control(sim, "reaction", phone=phone, sender=f"{CONTACT}@c.us", message_id=msg["id"], emoji="🔥")
    await control(sim, "edit", phone=phone, message_id=msg["id"], body="hi!")
    await control(sim, "revoke", phone=phone, message_id=msg["id"])
    await control(sim, "presence", phone=phone, chat=f"{CONTACT}@c.us", state="composing")
    await control(sim, "group", phone=phone, group="120363000000000099@g.us", action="add", participants=[CONTACT])
    await control(sim, "call", phone=phone, sender=f"{CONTACT}@c.us")
    seen = await eventually(
        lambda: page.evaluate("() => window.__more.length >= 6 && window.__more"), what="six events"
    )
    shapes = {e["n"]: e["keys"] for e in seen}
    assert set(shapes["chat.new_reaction"]) >= {"id", "msgId", "reactionText", "sender", "timestamp"}
    assert shapes["chat.msg_edited"] == ["chat", "id", "msg"]
    assert set(shapes["chat.msg_revoke"]) >= {"from", "id", "refId", "to", "type"}
    assert set(shapes["chat.presence_change"]) >= {"id", "isGroup", "isOnline", "state", "t"}
    assert set(shapes["group.participant_changed"]) >= {"groupId", "action", "operation", "participants"}
    assert set(shapes["call.incoming_call"]) == {"id", "isGroup", "isVideo", "offerTime", "peerJid", "sender"}


async def test_editing_marks_the_chat_read_unless_told_not_to(page: Page, sim: SimulatorServer) -> None:
    """chat/functions/editMessage.ts merges defaultSendMessageOptions (markIsRead: true), like every send."""
    phone = "15550009094"
    await open_linked(page, sim, phone)
    sent = await page.evaluate(f"() => WPP.chat.sendTextMessage('{CONTACT}@c.us', 'typo', {{ markIsRead: false }})")
    await page.evaluate(f"() => WPP.chat.editMessage('{sent['id']}', 'fixed', {{ markIsRead: false }})")
    async with httpx.AsyncClient() as http:
        assert (await http.get(sim.url + "control/reads", params={"phone": phone})).json()["chats"] == {}
    await page.evaluate(f"() => WPP.chat.editMessage('{sent['id']}', 'fixed again')")
    async with httpx.AsyncClient() as http:
        assert (await http.get(sim.url + "control/reads", params={"phone": phone})).json()["chats"] == {
            f"{CONTACT}@c.us": 1
        }
