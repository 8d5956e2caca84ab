"""The simulator's server: serves the page (`/`), the page's own API (`/api/*`, standing in for WhatsApp's
servers) and the control API (`/control/*`, standing in for the phone and the network).

Each page load is a *client*; a scanned QR or an entered pairing code links a client to a *device* (one
linked device of one phone). A device has a secret key the page keeps as a non-extractable CryptoKey in
IndexedDB and a token in localStorage; a page that comes back with both logs in again without a QR. When a
second client logs in as a device whose previous client is still connected, the previous one gets
CONFLICT (as WhatsApp Web does when the account is opened elsewhere) and `stats.conflicts` counts it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

CONNECTED_GRACE_SECONDS = 1.5  # between two polls of a live page
POLL_HOLD_SECONDS = 10.0


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class SentMessage:
    id: str
    to: str
    body: str
    sends: int = 1
    ack: int = 1
    t: int = field(default_factory=lambda: int(time.time()))


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


@dataclass
class Client:
    client_id: str
    device_id: str | None = None
    qr_ref: str | None = None
    qr_full: str | None = None
    qr_count: int = 0
    link_code: str | None = None
    link_phone: str | None = None
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
    conflicts: int = 0
    sends: int = 0
    duplicate_sends: int = 0


class SimulatorState:
    def __init__(self, qr_interval_ms: int = 20_000, qr_max: int = 0) -> None:
        self.qr_interval_ms = qr_interval_ms
        self.qr_max = qr_max  # 0: rotate forever; else the page goes idle after this many codes
        self.clients: dict[str, Client] = {}
        self.devices: dict[str, Device] = {}
        self.qr_refs: dict[str, str] = {}
        self.link_codes: dict[str, str] = {}
        self.nonces: dict[str, str] = {}
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


class ScanBody(BaseModel):
    phone: str
    qr: str | None = None
    client_id: str | None = None


class PairBody(BaseModel):
    code: str


class PhoneBody(BaseModel):
    phone: str
    reason: str | None = None


class InboundBody(BaseModel):
    phone: str
    sender: str
    body: str = ""
    id: str | None = None
    type: str = "chat"


class AckBody(BaseModel):
    phone: str
    message_id: str
    ack: int


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
        return HTMLResponse(static.joinpath("index.html").read_text())

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
        return {"phone": device.phone, "offline": device.offline}

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

    @app.post("/api/send")
    async def send(body: SendBody) -> dict[str, Any]:
        device = device_of_client(body.client_id)
        sim.stats.sends += 1
        existing = device.sent.get(body.id)
        if existing is not None:
            existing.sends += 1
            sim.stats.duplicate_sends += 1
            return {"id": existing.id, "ack": existing.ack, "t": existing.t}
        message = device.sent[body.id] = SentMessage(id=body.id, to=body.to, body=body.body)
        return {"id": message.id, "ack": message.ack, "t": message.t}

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

    @app.post("/control/inbound")
    async def control_inbound(body: InboundBody) -> dict[str, str]:
        device = device_for(body.phone)
        message_id = body.id or secrets.token_hex(10).upper()
        sim.deliver(
            device,
            {
                "type": "message",
                "id": message_id,
                "from": body.sender,
                "to": f"{device.phone}@c.us",
                "body": body.body,
                "msg_type": body.type,
                "t": int(time.time()),
            },
        )
        return {"id": f"false_{body.sender}_{message_id}"}

    @app.post("/control/ack")
    async def control_ack(body: AckBody) -> dict[str, bool]:
        device = device_for(body.phone)
        found = device.sent.get(body.message_id)
        if found is not None:
            found.ack = body.ack
        chat = found.to if found else body.message_id.split("_")[1] if "_" in body.message_id else ""
        sim.deliver(device, {"type": "ack", "ack": body.ack, "ids": [body.message_id], "chat": chat})
        return {"known": found is not None}

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
        return {"messages": [m.__dict__ for d in sim.devices_of(phone) for m in d.sent.values()]}

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
