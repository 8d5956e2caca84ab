"""The simulator's server: serves the page (`/`), the page's own API (`/api/*`, standing in for WhatsApp's
servers) and the control API (`/control/*`, standing in for the phone and the network).

Each page load is a *client*; a scanned QR or an entered pairing code links a client to a *device* (one
linked device of one phone). A device has a secret key the page keeps as a non-extractable CryptoKey in
IndexedDB and a token in localStorage; a page that comes back with both logs in again without a QR. When a
second client logs in as a device whose previous client is still connected, the previous one gets
CONFLICT (as WhatsApp Web does when the account is opened elsewhere) and `stats.conflicts` counts it.

What WhatsApp does that a kinder stand-in would hide is modelled here and in `static/wpp.js` (see the contract
test, tests/integration/session_workers/test_wa_js_contract.py): contacts migrated to LIDs (a `<phone>@c.us`
resolves to `<digits>@lid`, inbound messages come from the LID, the phone number only where WhatsApp knows it),
sends that fail with a `sendMsgResult` instead of an exception, sends that mark the chat read, messages that
arrive encrypted first, messages typed on the phone, group receipts per reader, pairing codes that expire, and a
WhatsApp Web build that wa-js cannot hook.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from session_workers.simulator.samples import SAMPLES, sample

CONNECTED_GRACE_SECONDS = 1.5  # between two polls of a live page
POLL_HOLD_SECONDS = 10.0


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


SEND_RESULTS = ("OK", "ERROR_NETWORK", "ERROR_EXPIRED", "ERROR_CANCELLED", "ERROR_UPLOAD", "ERROR_UNKNOWN")


@dataclass
class SentMessage:
    id: str
    to: str
    body: str
    sends: int = 1
    ack: int = 1
    result: str = "OK"
    t: int = field(default_factory=lambda: int(time.time()))
    at: float = field(default_factory=time.time)  # when WhatsApp got it (t is WhatsApp's whole seconds)
    type: str = "chat"
    quoted: str | None = None
    mentions: list[str] = field(default_factory=list)
    media: dict[str, Any] | None = None
    caption: str | None = None
    location: dict[str, Any] | None = None
    vcard_name: str | None = None
    reactions: list[str] = field(default_factory=list)  # every reaction set on it, in order ('' removed it)
    revoked: bool = False
    edits: list[str] = field(default_factory=list)


@dataclass
class Contact:
    """Someone the account talks to. With a `lid`, WhatsApp addresses the 1:1 chat by LID; `pn_known` says
    whether WhatsApp can map that LID back to the phone number (it cannot always)."""

    phone: str
    lid: str | None = None
    pn_known: bool = True
    on_whatsapp: bool = True
    business: bool = False


@dataclass
class Group:
    """A group the account is in: its subject and members (chat ids, as WhatsApp addresses them) with their role."""

    id: str
    subject: str
    roles: dict[str, str] = field(default_factory=dict)  # member -> "member" | "admin" | "superadmin"
    t: int = field(default_factory=lambda: int(time.time()))


def account_lid(phone: str) -> str:
    """The account's own LID: stable per phone, not derivable by a tenant (like WhatsApp's)."""
    return str(int(hashlib.sha256(phone.encode()).hexdigest()[:13], 16)).rjust(15, "1")[:15]


@dataclass
class Device:
    device_id: str
    phone: str
    key: bytes
    token: str
    active_client: str | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)  # events while no client is logged in
    sent: dict[str, SentMessage] = field(default_factory=dict)
    offline: bool = False

    @property
    def lid(self) -> str:
        return account_lid(self.phone)


@dataclass
class Client:
    client_id: str
    device_id: str | None = None
    qr_ref: str | None = None
    qr_full: str | None = None
    qr_count: int = 0
    link_code: str | None = None
    link_phone: str | None = None
    restore_failure: str | None = None  # why this page could not use what it found in storage
    events: list[dict[str, Any]] = field(default_factory=list)  # sent until the page acknowledges them
    seq: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    polls: int = 0
    last_seen: float = field(default_factory=time.monotonic)

    def connected(self) -> bool:
        return self.polls > 0 or time.monotonic() - self.last_seen < CONNECTED_GRACE_SECONDS

    def push(self, event: dict[str, Any]) -> None:
        self.seq += 1
        self.events.append({**event, "seq": self.seq})
        self.wake.set()


@dataclass
class Stats:
    qr_codes: int = 0
    scans: int = 0
    logins: int = 0
    failed_logins: int = 0
    restore_failures: int = 0  # pages that found auth in storage but could not use it (lost key, lost records)
    conflicts: int = 0
    sends: int = 0
    duplicate_sends: int = 0
    failed_sends: int = 0
    marked_read: int = 0


@dataclass
class PageConfig:
    """What the page is told at load (`window.__wagwSimConfig`): applies to pages loaded after a change."""

    wa_js_incompatible: bool = False
    link_code_ttl_ms: int = 195_000  # linkDeviceCodeLifecycle.ts: LINK_CODE_TTL_MS = 3.25 min
    decrypt_ms: int = 120
    sync_ms: int = 50
    wa_version: str = "2.3000.1029999999"
    storage_kb: int = (
        256  # the model-storage database a linked page fills (benchmarks set 1024: a real account keeps MBs)
    )
    heap_mb: int = 0  # the chats and messages a logged-in page holds in its JS heap (WhatsApp Web's collections)
    dom_nodes: int = 0  # elements of the rendered chat list

    def script(self) -> str:
        return (
            "window.__wagwSimConfig = "
            + json.dumps(
                {
                    "waJsIncompatible": self.wa_js_incompatible,
                    "linkCodeTtlMs": self.link_code_ttl_ms,
                    "decryptMs": self.decrypt_ms,
                    "syncMs": self.sync_ms,
                    "waVersion": self.wa_version,
                    "storageKb": self.storage_kb,
                    "heapMb": self.heap_mb,
                    "domNodes": self.dom_nodes,
                }
            )
            + ";"
        )


# What a page weighs once logged in: `light` is the simulator as it always was (a few KiB of models, 256 KiB of
# IndexedDB); `heavy` is calibrated to what a WhatsApp Web tab is reported to take (about 300-400 MB for a
# Chromium per session: docs/benchmarks.md, Sessions, "Page weight"): a store of thousands of chats and ~250,000
# messages in the JS heap, a rendered chat list, and 16 MiB of model-storage in IndexedDB.
PAGE_WEIGHTS: dict[str, dict[str, int]] = {
    "light": {"heap_mb": 0, "dom_nodes": 0, "storage_kb": 256},
    "heavy": {"heap_mb": 120, "dom_nodes": 6000, "storage_kb": 16384},
}


class SimulatorState:
    def __init__(self, qr_interval_ms: int = 20_000, qr_max: int = 0) -> None:
        self.qr_interval_ms = qr_interval_ms
        self.qr_max = qr_max  # 0: rotate forever; else the page goes idle after this many codes
        self.clients: dict[str, Client] = {}
        self.devices: dict[str, Device] = {}
        self.qr_refs: dict[str, str] = {}
        self.link_codes: dict[str, str] = {}
        self.nonces: dict[str, str] = {}
        self.contacts: dict[tuple[str, str], Contact] = {}  # (account phone, contact phone)
        self.send_failures: dict[str, list[str]] = {}  # account phone -> results for its next sends
        self.reads: dict[str, dict[str, int]] = {}  # account phone -> chat -> times marked read
        self.reactions: list[dict[str, str]] = []  # every reaction the pages sent, in order
        self.media: dict[str, tuple[bytes, str] | None] = {}  # message id -> bytes on WhatsApp's media server
        self.media_refs: dict[str, bytes] = {}  # /control/media ref -> bytes for an inbound message still to come
        self.calls: dict[str, dict[str, Any]] = {}  # call id -> the call, and whether a page rejected it
        self.groups: dict[str, dict[str, Group]] = {}  # account phone -> group id -> the group
        self.unread: dict[str, dict[str, int]] = {}  # account phone -> chat -> messages not yet read
        self.presence_sent: list[dict[str, Any]] = []  # the accounts' typing/recording shown to contacts
        self.page = PageConfig()
        self.stats = Stats()

    # --- helpers ------------------------------------------------------------------------------
    def client(self, client_id: str) -> Client:
        found = self.clients.get(client_id)
        if found is None:
            found = self.clients[client_id] = Client(client_id)
        found.last_seen = time.monotonic()
        return found

    def devices_of(self, phone: str) -> list[Device]:
        return [d for d in self.devices.values() if d.phone == phone]

    def contact_by_lid(self, account: str, lid: str) -> Contact | None:
        return next((c for (a, _), c in self.contacts.items() if a == account and c.lid == lid), None)

    def resolve_chat(self, account: str, chat: str) -> str:
        """chat/functions/find.ts: the chat WhatsApp really uses for an id (a migrated contact's LID)."""
        user, _, server = chat.partition("@")
        if server == "c.us":
            contact = self.contacts.get((account, user))
            if contact is not None and contact.lid:
                return f"{contact.lid}@lid"
        return chat

    def pn_lid(self, account: str, chat: str) -> dict[str, Any]:
        """contact/functions/getPnLidEntry.ts and queryWidExists.ts, from the account's point of view."""
        user, _, server = chat.partition("@")
        if server == "lid":
            found = self.contact_by_lid(account, user)
            phone = f"{found.phone}@c.us" if found is not None and found.pn_known else None
            return {
                "lid": chat,
                "phone": phone,
                "exists": found is not None and found.on_whatsapp,
                "biz": found is not None and found.business,
            }
        contact = self.contacts.get((account, user))
        return {
            "lid": f"{contact.lid}@lid" if contact is not None and contact.lid else None,
            "phone": chat,
            "exists": contact.on_whatsapp if contact is not None else True,
            "biz": contact is not None and contact.business,
        }

    def sender_address(self, account: str, sender: str) -> str:
        """How WhatsApp addresses a contact in what it delivers: by LID once the contact has one."""
        return self.resolve_chat(account, sender if "@" in sender else f"{sender}@c.us")

    def deliver(self, device: Device, event: dict[str, Any]) -> None:
        client = self.clients.get(device.active_client or "")
        if client is None or client.device_id != device.device_id:
            device.pending.append(event)
        else:
            client.push(event)

    def login(self, client: Client, device: Device) -> None:
        previous = self.clients.get(device.active_client or "")
        if previous is not None and previous is not client:
            if previous.connected():
                self.stats.conflicts += 1
            # Messages the previous page never fetched are delivered to the new one (the server keeps them).
            undelivered = [
                {k: v for k, v in e.items() if k != "seq"} for e in previous.events if e["type"] in ("message", "ack")
            ]
            previous.events = [e for e in previous.events if e["type"] not in ("message", "ack")]
            device.pending[:0] = undelivered
            previous.push({"type": "conflict"})
            previous.device_id = None
        device.active_client = client.client_id
        client.device_id = device.device_id
        self.stats.logins += 1
        for event in device.pending:
            client.push(event)
        device.pending.clear()

    def link(self, client: Client, phone: str) -> Device:
        device = Device(
            device_id=f"dev_{secrets.token_hex(8)}",
            phone=phone,
            key=secrets.token_bytes(32),
            token=secrets.token_hex(16),
        )
        self.devices[device.device_id] = device
        self.stats.scans += 1
        client.push(
            {
                "type": "paired",
                "device_id": device.device_id,
                "phone": phone,
                "key": _b64(device.key),
                "token": device.token,
                "lid": device.lid,
                "offline": device.offline,
            }
        )
        self.login(client, device)
        return device

    def new_qr(self, client: Client) -> dict[str, Any]:
        if client.qr_ref:
            self.qr_refs.pop(client.qr_ref, None)
        client.qr_count += 1
        if self.qr_max and client.qr_count > self.qr_max:
            client.qr_ref = client.qr_full = None
            return {"idle": True}
        ref = f"2@{secrets.token_urlsafe(24)}"
        client.qr_ref = ref
        client.qr_full = ",".join([ref, _b64(secrets.token_bytes(32)), _b64(secrets.token_bytes(32)), _b64(b"sim")])
        self.qr_refs[ref] = client.client_id
        self.stats.qr_codes += 1
        return {"ref": ref, "fullCode": client.qr_full, "ttl_ms": self.qr_interval_ms}

    def snapshot(self) -> dict[str, Any]:
        return {
            "clients": [
                {
                    "client_id": c.client_id,
                    "device_id": c.device_id,
                    "phone": self.devices[c.device_id].phone if c.device_id in self.devices else None,
                    "qr": c.qr_full,
                    "qr_count": c.qr_count,
                    "link_code": c.link_code,
                    "connected": c.connected(),
                    "restore_failure": c.restore_failure,
                }
                for c in self.clients.values()
            ],
            "devices": [
                {"device_id": d.device_id, "phone": d.phone, "active_client": d.active_client, "sent": len(d.sent)}
                for d in self.devices.values()
            ],
            "stats": self.stats.__dict__,
        }


# --- request bodies ----------------------------------------------------------------------------
class ClientBody(BaseModel):
    client_id: str


class RestoreFailedBody(BaseModel):
    client_id: str
    reason: str = Field(max_length=500)


class LoginBody(BaseModel):
    client_id: str
    device_id: str
    token: str
    nonce: str
    sig: str


class LinkCodeBody(BaseModel):
    client_id: str
    phone: str


class SendBody(BaseModel):
    client_id: str
    to: str
    body: str
    id: str
    type: str = "chat"
    quoted: str | None = None
    mentions: list[str] = []
    media: dict[str, Any] | None = None  # {size, sha256, mimetype, filename}
    caption: str | None = None
    location: dict[str, Any] | None = None
    vcard_name: str | None = None


class PresenceSentBody(BaseModel):
    client_id: str
    chat: str
    state: str
    duration: int | None = None


class DeleteBody(BaseModel):
    client_id: str
    id: str
    revoke: bool


class EditMessageBody(BaseModel):
    client_id: str
    id: str
    body: str


class CallRejectBody(BaseModel):
    client_id: str
    id: str


class ReactBody(BaseModel):
    client_id: str
    target: str
    emoji: str


class ScanBody(BaseModel):
    phone: str
    qr: str | None = None
    client_id: str | None = None


class PairBody(BaseModel):
    code: str


class PhoneBody(BaseModel):
    phone: str
    reason: str | None = None


class FindBody(BaseModel):
    client_id: str
    wid: str


class ReadBody(BaseModel):
    client_id: str
    chat: str


class InboundBody(BaseModel):
    """A contact's message. Media types (image, video, audio, ptt, document, sticker) carry real bytes: `media_b64`,
    or `media_ref` (bytes given raw to `/control/media` before), or a sample of the type; `media_gone` makes
    WhatsApp's media server forget them (the download fails)."""

    phone: str
    sender: str
    body: str = ""
    id: str | None = None
    type: str = "chat"
    encrypted: bool = False
    group: str | None = None
    caption: str | None = None
    media_b64: str | None = None
    media_ref: str | None = None
    mimetype: str | None = None
    filename: str | None = None
    media_gone: bool = False
    lat: float | None = None
    lng: float | None = None
    loc: str | None = None
    quoted: str | None = None
    mentions: list[str] = []


class ReactionBody(BaseModel):
    phone: str
    sender: str
    message_id: str
    emoji: str = ""


class EditBody(BaseModel):
    phone: str
    message_id: str
    body: str


class RevokeBody(BaseModel):
    phone: str
    message_id: str
    by_admin: bool = False
    author: str | None = None


class PresenceBody(BaseModel):
    phone: str
    chat: str
    state: str = Field(pattern=r"^(available|unavailable|composing|recording|paused)$")


class GroupBody(BaseModel):
    phone: str
    group: str
    action: str = Field(pattern=r"^(add|remove|promote|demote|join|leaver)$")
    participants: list[str]
    author: str | None = None


class CallBody(BaseModel):
    phone: str
    sender: str
    video: bool = False


class TypedBody(BaseModel):
    phone: str
    to: str
    body: str = ""
    id: str | None = None


class AckBody(BaseModel):
    phone: str
    message_id: str
    ack: int = Field(ge=-7, le=5)
    reader: str | None = None


class ContactBody(BaseModel):
    phone: str
    contact: str
    lid: str | None = None
    pn_known: bool = True
    on_whatsapp: bool = True
    business: bool = False


class GroupDefinitionBody(BaseModel):
    """A group the account is in: members as phone numbers or chat ids (a contact with a LID is a LID member)."""

    phone: str
    group: str = Field(pattern=r"^[0-9-]+@g\.us$")
    subject: str = Field(max_length=100)
    participants: list[str] = []
    admins: list[str] = []
    super_admins: list[str] = []


class SendFailureBody(BaseModel):
    phone: str
    result: str = "ERROR_NETWORK"
    count: int = Field(default=1, ge=1, le=1000)


class PageConfigBody(BaseModel):
    wa_js_incompatible: bool | None = None
    link_code_ttl_ms: int | None = Field(default=None, ge=50)
    decrypt_ms: int | None = Field(default=None, ge=0)
    sync_ms: int | None = Field(default=None, ge=0)
    storage_kb: int | None = Field(default=None, ge=0, le=65536)
    heap_mb: int | None = Field(default=None, ge=0, le=2048)
    dom_nodes: int | None = Field(default=None, ge=0, le=200_000)
    weight: Literal["light", "heavy"] | None = None  # a preset of the three above; explicit values win


class LinkCodeExpireBody(BaseModel):
    code: str


def apply_participant_change(group: Group, action: str, members: list[str]) -> None:
    """group/events/registerParticipantsChangedEvent.ts actions, applied to the group's membership."""
    for member in members:
        if action in ("add", "join"):
            group.roles.setdefault(member, "member")
        elif action in ("remove", "leaver"):
            group.roles.pop(member, None)
        elif action == "promote":
            group.roles[member] = "admin"
        elif action == "demote" and member in group.roles:
            group.roles[member] = "member"


def create_app(state: SimulatorState | None = None) -> FastAPI:
    sim = state or SimulatorState()
    app = FastAPI(title="WhatsApp Web simulator", docs_url=None, redoc_url=None)
    app.state.sim = sim
    static = resources.files(__package__).joinpath("static")

    def device_for(phone: str) -> Device:
        devices = sim.devices_of(phone)
        if not devices:
            raise HTTPException(404, f"no linked device for phone {phone}")
        return devices[-1]

    def device_of_client(client_id: str) -> Device:
        client = sim.client(client_id)
        device = sim.devices.get(client.device_id or "")
        if device is None or device.active_client != client_id:
            raise HTTPException(401, "not logged in")
        return device

    # --- the page ---------------------------------------------------------------------------------
    @app.get("/")
    async def index() -> HTMLResponse:
        page = static.joinpath("index.html").read_text()
        return HTMLResponse(page.replace("<!--config-->", f"<script>{sim.page.script()}</script>"))

    @app.get("/wpp.js")
    async def wpp_js() -> Response:
        return Response(static.joinpath("wpp.js").read_text(), media_type="application/javascript")

    @app.get("/favicon.ico")
    async def favicon() -> Response:
        return Response(status_code=204)

    # --- the page's API (WhatsApp's servers) ------------------------------------------------------
    @app.post("/api/qr")
    async def qr(body: ClientBody) -> dict[str, Any]:
        client = sim.client(body.client_id)
        if client.device_id:
            raise HTTPException(409, "already logged in")
        return sim.new_qr(client)

    @app.post("/api/challenge")
    async def challenge(body: ClientBody) -> dict[str, str]:
        nonce = secrets.token_hex(16)
        sim.nonces[body.client_id] = nonce
        return {"nonce": nonce}

    @app.post("/api/login")
    async def login(body: LoginBody) -> dict[str, Any]:
        client = sim.client(body.client_id)
        device = sim.devices.get(body.device_id)
        nonce = sim.nonces.pop(body.client_id, None)
        if device is None or nonce != body.nonce or not hmac.compare_digest(device.token, body.token):
            sim.stats.failed_logins += 1
            raise HTTPException(401, "unknown device, stale nonce or bad token")
        expected = _b64(hmac.new(device.key, nonce.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, body.sig):
            sim.stats.failed_logins += 1
            raise HTTPException(401, "bad signature")
        sim.login(client, device)
        return {"phone": device.phone, "lid": device.lid, "offline": device.offline}

    @app.post("/api/restore_failed")
    async def restore_failed(body: RestoreFailedBody) -> dict[str, bool]:
        """The page found auth in storage but could not use it (e.g. its CryptoKey was lost or replaced)."""
        sim.client(body.client_id).restore_failure = body.reason
        sim.stats.restore_failures += 1
        return {"ok": True}

    @app.get("/api/poll")
    async def poll(client_id: str, request: Request, after: int = 0) -> dict[str, Any]:
        """Long poll. `after` acknowledges every event up to that sequence number; the rest are sent (again)."""
        client = sim.client(client_id)
        client.events = [e for e in client.events if e["seq"] > after]
        await request.is_disconnected()  # consumes the (empty) request body, so later checks see a disconnect
        client.polls += 1
        gone = False
        try:
            deadline = time.monotonic() + POLL_HOLD_SECONDS
            while not client.events and time.monotonic() < deadline:
                client.wake.clear()
                try:
                    await asyncio.wait_for(client.wake.wait(), 0.5)
                except TimeoutError:
                    if await request.is_disconnected():
                        gone = True
                        break
            if await request.is_disconnected():
                gone = True
                return {"events": []}
            return {"events": list(client.events)}
        finally:
            client.polls -= 1
            client.last_seen = 0.0 if gone else time.monotonic()

    @app.post("/api/link_code")
    async def link_code(body: LinkCodeBody) -> dict[str, str]:
        client = sim.client(body.client_id)
        code = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTVWXYZ0123456789") for _ in range(8))
        client.link_code, client.link_phone = code, body.phone
        sim.link_codes[code] = client.client_id
        return {"code": code}

    @app.post("/api/find")
    async def find(body: FindBody) -> dict[str, Any]:
        device = device_of_client(body.client_id)
        return {"id": sim.resolve_chat(device.phone, body.wid)}

    @app.post("/api/pnlid")
    async def pnlid(body: FindBody) -> dict[str, Any]:
        device = device_of_client(body.client_id)
        return sim.pn_lid(device.phone, body.wid)

    @app.post("/api/read")
    async def read(body: ReadBody) -> dict[str, bool]:
        device = device_of_client(body.client_id)
        chats = sim.reads.setdefault(device.phone, {})
        chats[body.chat] = chats.get(body.chat, 0) + 1
        sim.unread.setdefault(device.phone, {})[body.chat] = 0
        sim.stats.marked_read += 1
        return {"ok": True}

    @app.post("/api/send")
    async def send(body: SendBody) -> dict[str, Any]:
        device = device_of_client(body.client_id)
        existing = device.sent.get(body.id)
        if existing is not None:
            sim.stats.sends += 1
            existing.sends += 1
            sim.stats.duplicate_sends += 1
            return {"id": existing.id, "ack": existing.ack, "t": existing.t, "result": existing.result}
        failures = sim.send_failures.get(device.phone) or []
        result = failures.pop(0) if failures else "OK"
        details = body.model_dump(include={"type", "quoted", "mentions", "media", "caption", "location", "vcard_name"})
        if result == "OK":
            sim.stats.sends += 1
            message = SentMessage(id=body.id, to=body.to, body=body.body, **details)
        else:
            # The message stays in the chat with an error ack; WhatsApp never received it.
            sim.stats.failed_sends += 1
            message = SentMessage(id=body.id, to=body.to, body=body.body, sends=0, ack=-1, result=result, **details)
        device.sent[body.id] = message
        return {"id": message.id, "ack": message.ack, "t": message.t, "result": result}

    @app.post("/api/react")
    async def react(body: ReactBody) -> dict[str, str]:
        """A reaction to a message of the chat: sent messages keep the list of reactions set on them."""
        device = device_of_client(body.client_id)
        target = device.sent.get(body.target)
        if target is not None:
            target.reactions.append(body.emoji)
        sim.reactions.append({"phone": device.phone, "target": body.target, "emoji": body.emoji})
        return {"result": "OK"}

    @app.get("/api/message")
    async def message(client_id: str, id: str) -> dict[str, Any]:
        device = device_of_client(client_id)
        found = device.sent.get(id)
        if found is None:
            raise HTTPException(404, "msg_not_found")
        return found.__dict__

    @app.post("/api/logout")
    async def page_logout(body: ClientBody) -> dict[str, bool]:
        client = sim.client(body.client_id)
        device = sim.devices.pop(client.device_id or "", None)
        client.device_id = None
        return {"removed": device is not None}

    # --- control (the phone and the network) -----------------------------------------------------
    @app.get("/control/state")
    async def control_state() -> dict[str, Any]:
        return sim.snapshot()

    @app.post("/control/scan")
    async def control_scan(body: ScanBody) -> dict[str, str]:
        client_id = body.client_id or sim.qr_refs.get((body.qr or "").split(",", 1)[0])
        client = sim.clients.get(client_id or "")
        if client is None or client.device_id or not client.qr_ref:
            raise HTTPException(404, "no page shows this QR code")
        sim.qr_refs.pop(client.qr_ref, None)
        client.qr_ref = client.qr_full = None
        device = sim.link(client, body.phone)
        return {"device_id": device.device_id, "client_id": client.client_id}

    @app.post("/control/pair")
    async def control_pair(body: PairBody) -> dict[str, str]:
        client = sim.clients.get(sim.link_codes.pop(body.code.replace("-", "").upper(), ""))
        if client is None or client.device_id or not client.link_phone:
            raise HTTPException(404, "unknown pairing code")
        device = sim.link(client, client.link_phone)
        return {"device_id": device.device_id, "client_id": client.client_id}

    @app.post("/control/contact")
    async def control_contact(body: ContactBody) -> dict[str, str]:
        """A contact of the account; with `lid`, WhatsApp addresses it by LID (the LID migration)."""
        contact = "".join(ch for ch in body.contact.split("@")[0] if ch.isdigit())
        sim.contacts[(body.phone, contact)] = Contact(contact, body.lid, body.pn_known, body.on_whatsapp, body.business)
        return {"chat": sim.resolve_chat(body.phone, f"{contact}@c.us")}

    @app.post("/control/inbound")
    async def control_inbound(body: InboundBody) -> dict[str, str]:
        """A contact writes to the account (in `group`, if given); WhatsApp gives LID-addressed senders."""
        device = device_for(body.phone)
        message_id = body.id or secrets.token_hex(10).upper()
        sender = sim.sender_address(device.phone, body.sender)
        chat = body.group or sender
        suffix = f"_{sender}" if body.group else ""
        serialized = f"false_{chat}_{message_id}{suffix}"
        event: dict[str, Any] = {
            "type": "message",
            "id": message_id,
            "chat": chat,
            "author": sender if body.group else None,
            "body": body.body,
            "msg_type": body.type,
            "encrypted": body.encrypted,
            "t": int(time.time()),
            "caption": body.caption,
            "lat": body.lat,
            "lng": body.lng,
            "loc": body.loc,
            "quoted": body.quoted,
            "mentions": body.mentions,
        }
        if body.media_b64 is not None and body.media_ref is not None:
            raise HTTPException(422, "media_b64 or media_ref, not both")
        given = sim.media_refs.pop(body.media_ref, None) if body.media_ref is not None else None
        if body.media_ref is not None and given is None:
            raise HTTPException(404, "unknown media_ref (each is taken once)")
        if body.type in SAMPLES or body.media_b64 is not None or given is not None:
            made, mimetype, filename = sample(body.type) if body.type in SAMPLES else (b"", "", None)
            if given is not None:
                data = given
            elif body.media_b64 is not None:
                data = base64.b64decode(body.media_b64)
            else:
                data = made
            mimetype = body.mimetype or mimetype or "application/octet-stream"
            sim.media[serialized] = None if body.media_gone else (data, mimetype)
            event["media"] = {
                "mimetype": mimetype,
                "size": len(data),
                "filename": body.filename or filename,
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        unread = sim.unread.setdefault(device.phone, {})
        unread[chat] = unread.get(chat, 0) + 1
        sim.deliver(device, event)
        return {"id": serialized, "chat": chat}

    @app.post("/control/media")
    async def control_media(request: Request) -> dict[str, Any]:
        """Bytes for an inbound message still to come, as the raw body: `/control/inbound` takes them once with
        the `media_ref` answered. A harness moving hundreds of MB (bench/media.py) would otherwise pay for base64
        inside JSON on both sides, which WhatsApp does not; the page still fetches them from `/api/media`."""
        data = await request.body()
        ref = secrets.token_hex(10)
        sim.media_refs[ref] = data
        return {"media_ref": ref, "size": len(data)}

    @app.get("/api/media/{message_id}")
    async def media(message_id: str) -> Response:
        """WhatsApp's media server: the bytes of an inbound message's media, until it forgets them (410)."""
        found = sim.media.get(message_id)
        if found is None:
            raise HTTPException(410 if message_id in sim.media else 404, "media gone")
        return Response(found[0], media_type=found[1])

    @app.post("/control/reaction")
    async def control_reaction(body: ReactionBody) -> dict[str, str]:
        device = device_for(body.phone)
        sender = sim.sender_address(device.phone, body.sender)
        reaction_id = secrets.token_hex(8).upper()
        chat = body.message_id.split("_")[1]
        sim.deliver(
            device,
            {
                "type": "reaction",
                "id": reaction_id,
                "chat": chat,
                "target": body.message_id,
                "emoji": body.emoji,
                "sender": sender,
                "t": int(time.time()),
            },
        )
        return {"id": f"false_{chat}_{reaction_id}"}

    @app.post("/control/edit")
    async def control_edit(body: EditBody) -> dict[str, bool]:
        """The contact edits a message it sent."""
        device = device_for(body.phone)
        sim.deliver(device, {"type": "edit", "target": body.message_id, "body": body.body, "t": int(time.time())})
        return {"ok": True}

    @app.post("/control/revoke")
    async def control_revoke(body: RevokeBody) -> dict[str, bool]:
        """The contact (or a group admin) deletes a message for everyone."""
        device = device_for(body.phone)
        event = {
            "type": "revoke",
            "target": body.message_id,
            "id": secrets.token_hex(8).upper(),
            "by_admin": body.by_admin,
            "author": body.author,
        }
        sim.deliver(device, event)
        return {"ok": True}

    @app.post("/control/presence")
    async def control_presence(body: PresenceBody) -> dict[str, bool]:
        device = device_for(body.phone)
        chat = sim.sender_address(device.phone, body.chat)
        sim.deliver(device, {"type": "presence", "chat": chat, "state": body.state, "t": int(time.time())})
        return {"ok": True}

    @app.post("/control/group")
    async def control_group(body: GroupBody) -> dict[str, bool]:
        device = device_for(body.phone)
        known = sim.groups.get(device.phone, {}).get(body.group)
        if known is not None:
            members = [sim.sender_address(device.phone, p) for p in body.participants]
            apply_participant_change(known, body.action, members)
        sim.deliver(device, {"type": "group", **body.model_dump(exclude={"phone"})})
        return {"ok": True}

    @app.post("/control/groups")
    async def control_groups(body: GroupDefinitionBody) -> dict[str, Any]:
        """The account is in this group (created or replaced): WPP.group.getAllGroups / getParticipants see it."""
        device = device_for(body.phone)
        roles = {sim.sender_address(device.phone, p): "member" for p in body.participants}
        roles.update({sim.sender_address(device.phone, p): "admin" for p in body.admins})
        roles.update({sim.sender_address(device.phone, p): "superadmin" for p in body.super_admins})
        sim.groups.setdefault(device.phone, {})[body.group] = Group(body.group, body.subject, roles)
        return {"group": body.group, "participants": roles}

    @app.get("/api/chat_meta")
    async def chat_meta(client_id: str) -> dict[str, Any]:
        """What WhatsApp syncs about the account's chats beside their messages: unread counts and groups."""
        device = device_of_client(client_id)
        groups = sim.groups.get(device.phone, {}).values()
        return {
            "unread": sim.unread.get(device.phone, {}),
            "groups": [
                {
                    "id": g.id,
                    "subject": g.subject,
                    "t": g.t,
                    "participants": [
                        {"id": m, "admin": role != "member", "super_admin": role == "superadmin"}
                        for m, role in g.roles.items()
                    ],
                }
                for g in groups
            ],
        }

    @app.post("/control/call")
    async def control_call(body: CallBody) -> dict[str, str]:
        """The contact calls the account; `GET /control/calls` says whether a page rejected it."""
        device = device_for(body.phone)
        call_id = secrets.token_hex(8).upper()
        sender = sim.sender_address(device.phone, body.sender)
        sim.calls[call_id] = {"id": call_id, "phone": device.phone, "sender": sender, "rejected": False}
        sim.deliver(
            device, {"type": "call", "id": call_id, "sender": sender, "video": body.video, "t": int(time.time())}
        )
        return {"id": call_id}

    @app.post("/api/presence")
    async def presence_sent(body: PresenceSentBody) -> dict[str, bool]:
        device = device_of_client(body.client_id)
        sim.presence_sent.append(
            {
                "phone": device.phone,
                "chat": body.chat,
                "state": body.state,
                "duration": body.duration,
                "at": time.time(),
            }
        )
        return {"ok": True}

    @app.get("/control/presence_sent")
    async def control_presence_sent(phone: str) -> dict[str, Any]:
        """The typing / recording / paused states the account showed its contacts, in order."""
        return {"presence": [p for p in sim.presence_sent if p["phone"] == phone]}

    @app.post("/api/delete")
    async def delete_message(body: DeleteBody) -> dict[str, str]:
        device = device_of_client(body.client_id)
        found = device.sent.get(body.id)
        if body.revoke and found is not None:
            found.revoked = True
        return {"result": "OK"}

    @app.post("/api/edit")
    async def edit_message(body: EditMessageBody) -> dict[str, str]:
        device = device_of_client(body.client_id)
        found = device.sent.get(body.id)
        if found is None:
            raise HTTPException(404, "msg_not_found")
        found.edits.append(body.body)
        return {"result": "OK"}

    @app.post("/api/call_reject")
    async def call_reject(body: CallRejectBody) -> dict[str, bool]:
        device_of_client(body.client_id)
        found = sim.calls.get(body.id)
        if found is not None:
            found["rejected"] = True
        return {"ok": found is not None}

    @app.get("/control/calls")
    async def control_calls(phone: str) -> dict[str, Any]:
        return {"calls": [c for c in sim.calls.values() if c["phone"] == phone]}

    @app.post("/control/typed")
    async def control_typed(body: TypedBody) -> dict[str, str]:
        """The account's owner types a message on the phone: the page sees it as its own (`fromMe`)."""
        device = device_for(body.phone)
        chat = sim.sender_address(device.phone, body.to)
        message_id = body.id or "3A" + secrets.token_hex(9).upper()
        sim.deliver(
            device,
            {
                "type": "message",
                "id": message_id,
                "chat": chat,
                "from_me": True,
                "body": body.body,
                "msg_type": "chat",
                "t": int(time.time()),
            },
        )
        suffix = f"_{device.lid}@lid" if chat.endswith("@g.us") else ""
        return {"id": f"true_{chat}_{message_id}{suffix}", "chat": chat}

    @app.post("/control/ack")
    async def control_ack(body: AckBody) -> dict[str, bool]:
        """The recipient's receipt (`reader`: who read it, in a group), or an error ack (-1) on the message."""
        device = device_for(body.phone)
        found = device.sent.get(body.message_id)
        if found is not None and body.ack > found.ack:
            found.ack = body.ack
        chat = found.to if found else body.message_id.split("_")[1] if "_" in body.message_id else ""
        sim.deliver(
            device, {"type": "ack", "ack": body.ack, "message_id": body.message_id, "chat": chat, "reader": body.reader}
        )
        return {"known": found is not None}

    @app.post("/control/send_failure")
    async def control_send_failure(body: SendFailureBody) -> dict[str, int]:
        """The account's next `count` sends fail with `result` (a SendMsgResult), returned, not thrown."""
        if body.result not in SEND_RESULTS or body.result == "OK":
            raise HTTPException(422, f"result must be one of {', '.join(SEND_RESULTS[1:])}")
        queue = sim.send_failures.setdefault(body.phone, [])
        queue.extend([body.result] * body.count)
        return {"queued": len(queue)}

    @app.get("/control/reads")
    async def control_reads(phone: str) -> dict[str, Any]:
        """Chats the page marked read (each clears the contact's unread state on the phone)."""
        return {"chats": sim.reads.get(phone, {})}

    @app.post("/control/page")
    async def control_page(body: PageConfigBody) -> dict[str, Any]:
        """Change what pages loaded from now on are told (e.g. a WhatsApp build wa-js cannot hook, a page weight)."""
        values = body.model_dump(exclude_none=True)
        preset = PAGE_WEIGHTS[values.pop("weight")] if "weight" in values else {}
        for name, value in {**preset, **values}.items():
            setattr(sim.page, name, value)
        return sim.page.__dict__

    @app.post("/control/link_code_expire")
    async def control_link_code_expire(body: LinkCodeExpireBody) -> dict[str, bool]:
        """WhatsApp forces a manual refresh of a pairing code (LinkDeviceEvents 'force_manual_refresh')."""
        client = sim.clients.get(sim.link_codes.pop(body.code.replace("-", "").upper(), ""))
        if client is None:
            raise HTTPException(404, "unknown pairing code")
        client.push({"type": "link_code_expired"})
        return {"ok": True}

    @app.post("/control/offline")
    async def control_offline(body: PhoneBody) -> dict[str, bool]:
        device = device_for(body.phone)
        device.offline = True
        sim.deliver(device, {"type": "mode", "mode": "OFFLINE"})
        return {"ok": True}

    @app.post("/control/online")
    async def control_online(body: PhoneBody) -> dict[str, bool]:
        device = device_for(body.phone)
        device.offline = False
        sim.deliver(device, {"type": "mode", "mode": "MAIN"})
        return {"ok": True}

    @app.post("/control/conflict")
    async def control_conflict(body: PhoneBody) -> dict[str, bool]:
        device = device_for(body.phone)
        sim.deliver(device, {"type": "conflict"})
        return {"ok": True}

    @app.post("/control/logout")
    async def control_logout(body: PhoneBody) -> dict[str, int]:
        devices = sim.devices_of(body.phone)
        for device in devices:
            sim.devices.pop(device.device_id, None)
            client = sim.clients.get(device.active_client or "")
            if client is not None:
                client.device_id = None
                client.push({"type": "logout", "reason": body.reason or "user_initiated"})
        return {"devices": len(devices)}

    @app.get("/control/sent")
    async def control_sent(phone: str) -> dict[str, Any]:
        """What WhatsApp received from the account's pages: messages (with type, media digest, quoted id,
        mentions, location, contact) and reactions."""
        return {
            "messages": [m.__dict__ for d in sim.devices_of(phone) for m in d.sent.values()],
            "reactions": [r for r in sim.reactions if r["phone"] == phone],
        }

    return app


class SimulatorServer:
    """The simulator on a local port, in a thread of its own (so it never competes with the caller's loop)."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, qr_interval_ms: int = 20_000, qr_max: int = 0
    ) -> None:
        self.state = SimulatorState(qr_interval_ms=qr_interval_ms, qr_max=qr_max)
        self.host = host
        self._requested_port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> SimulatorServer:
        if self._requested_port == 0:
            from wagw_local.services import free_port

            self.port = free_port()
        config = uvicorn.Config(
            create_app(self.state), host=self.host, port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="wa-simulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the simulator did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
