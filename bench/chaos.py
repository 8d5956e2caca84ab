"""Chaos: the whole local system under steady traffic while workers die and Redis goes away.

Inbound messages are injected into the WhatsApp Web simulator and sends are made through the API, at a steady rate
across ready sessions, while workers are stopped (SIGKILL of the worker and its Chromium, or SIGTERM) and started
again, and/or redis-server is paused (SIGSTOP ... SIGCONT, as an ElastiCache failover or a partition would do).
An independent receiver verifies every webhook with the `standardwebhooks` package and answers 500 to a share of
requests. Every message is counted: delivered once, lost, delivered twice with the same `webhook-id`, delivered
twice as different events, sent to WhatsApp twice. For every lost or duplicated message it prints where it was
last seen (simulator, page, outbox, ingest, queue, retry schedule, command stream) and the chaos timeline.

    flock /tmp/wagw-bench.lock .venv/bin/python bench/chaos.py --seconds 120 --kill-every 25-30 --signal KILL
    flock /tmp/wagw-bench.lock .venv/bin/python bench/chaos.py --seconds 150 --kill-every 0 \\
        --redis-pause 12 --redis-pause-every 40
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bench.common import LoadSampler
from session_workers.metrics import descendants
from session_workers.simulator import SimulatorServer
from shared import aws
from shared import redis_keys as keys
from shared.delivery.queue import delivery_id_for
from shared.settings import DEV_ADMIN_KEY, default_throttle_limits
from wagw_local.services import free_port
from wagw_local.system import LocalSystem, Ports, SystemOptions

SENDER = "6289990001@c.us"
RECIPIENT = "6289990002"
SEND_WITHIN_S = 30.0


# --- the timeline -------------------------------------------------------------------------------------------
class Timeline:
    def __init__(self) -> None:
        self.origin = time.time()
        self.entries: list[tuple[float, str, str]] = []  # (unix time, kind, text)
        self.lock = threading.Lock()

    def add(self, kind: str, text: str, at: float | None = None) -> float:
        stamp = time.time() if at is None else at
        with self.lock:
            self.entries.append((stamp, kind, text))
        print(f"  {self.rel(stamp)}  {text}", flush=True)
        return stamp

    def rel(self, stamp: float) -> str:
        return f"{stamp - self.origin:+8.2f} s"

    def of_kind(self, *kinds: str) -> list[tuple[float, str, str]]:
        with self.lock:
            return [e for e in self.entries if e[1] in kinds]

    def nearest(self, stamp: float, *kinds: str) -> str:
        chaos = self.of_kind(*kinds)
        if not chaos:
            return "no chaos event"
        at, _kind, text = min(chaos, key=lambda e: abs(e[0] - stamp))
        return f"{(stamp - at) * 1000:+.0f} ms from '{text}'"


# --- an independent receiver: standardwebhooks verifies, a share of requests fails -------------------------
@dataclass
class Delivery:
    webhook_id: str
    type: str
    data: dict[str, Any]
    at: float
    session_id: str = ""


@dataclass
class ChaosReceiver:
    fail_share: float
    seed: int
    secret: str = ""
    deliveries: list[Delivery] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    bad_signatures: int = 0
    failed_on_purpose: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)
        self.port = free_port()
        self._server: uvicorn.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            self.attempts[headers.get("webhook-id", "")] += 1
            if self.random.random() < self.fail_share:
                self.failed_on_purpose += 1
                return 500
        try:
            payload = Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError:
            with self.lock:
                self.bad_signatures += 1
            return 400
        with self.lock:
            self.deliveries.append(
                Delivery(
                    headers["webhook-id"],
                    str(payload.get("type")),
                    dict(payload.get("data") or {}),
                    time.time(),
                    str(payload.get("session_id") or ""),
                )
            )
        return 204

    async def app(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        status = self.handle(headers, body)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def of_type(self, event_type: str) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if d.type == event_type]

    def start(self) -> ChaosReceiver:
        self._server = serve_in_thread(self.app, self.port, "chaos-receiver")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True


def serve_in_thread(app: Any, port: int, name: str) -> uvicorn.Server:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", access_log=False, interface="asgi3"
    )
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, name=name, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server


# --- a tap in front of ingest: which events the workers posted, and what ingest answered ------------------
@dataclass
class TappedEvent:
    event_id: str
    type: str
    key: str  # the message body (message.received) or client_message_id (message.sent / message.failed)
    first_posted: float
    outcomes: list[str] = field(default_factory=list)


class IngestTap:
    def __init__(self, target: str) -> None:
        self.target = target
        self.port = free_port()
        self.events: dict[str, TappedEvent] = {}
        self.lock = threading.Lock()
        self._server: uvicorn.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/events"

    def by_key(self, event_type: str, key: str) -> list[TappedEvent]:
        with self.lock:
            return [e for e in self.events.values() if e.type == event_type and e.key == key]

    def _record(self, body: bytes, answer: httpx.Response | None) -> None:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            events = json.loads(body)["events"]
            results: dict[str, str] = {}
            if answer is not None and answer.status_code == 200:
                results = {r["id"]: r["outcome"] for r in answer.json()["results"]}
            now = time.time()
            with self.lock:
                for event in events:
                    data = event.get("data") or {}
                    key = str(data.get("body") or data.get("client_message_id") or "")
                    tapped = self.events.setdefault(event["id"], TappedEvent(event["id"], event["type"], key, now))
                    status = f"HTTP {answer.status_code}" if answer is not None else "no answer"
                    tapped.outcomes.append(results.get(event["id"], status))

    async def app(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode(): v.decode() for k, v in scope["headers"] if k.decode().lower() != "host"}
        answer: httpx.Response | None = None
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                answer = await http.post(self.target, content=body, headers=headers)
        except httpx.HTTPError:
            pass
        self._record(body, answer)
        if answer is None:
            await send({"type": "http.response.start", "status": 502, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        passed = [
            (k.encode(), v.encode()) for k, v in answer.headers.items() if k.lower() in ("content-type", "retry-after")
        ]
        await send({"type": "http.response.start", "status": answer.status_code, "headers": passed})
        await send({"type": "http.response.body", "body": answer.content})

    def start(self) -> IngestTap:
        self._server = serve_in_thread(self.app, self.port, "ingest-tap")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True


# --- the system: LocalSystem with the simulator in this process (so its queues can be inspected) -----------
class ChaosSystem(LocalSystem):
    sim: SimulatorServer

    def _spawn(self, name: str, command: list[str], extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        if name == "simulator":
            self.sim = SimulatorServer(port=self.options.ports.simulator, qr_interval_ms=60_000).start()
            return subprocess.Popen(["true"])
        return super()._spawn(name, command, extra_env)

    def redis_pid(self) -> int:
        return next(s.process.pid for s in self.services if s.name == "redis")

    def stop(self) -> None:
        super().stop()
        if hasattr(self, "sim"):
            self.sim.stop()


# --- watching the simulator: when each inbound message left WhatsApp's queue (the page acknowledged it) -----
@dataclass
class SimWatch:
    sim: SimulatorServer
    session_of_phone: dict[str, str]
    queued_at: dict[str, float] = field(default_factory=dict)  # body -> last time seen queued at WhatsApp
    queued_for: dict[str, str] = field(default_factory=dict)  # body -> session
    sent_first: dict[str, float] = field(default_factory=dict)  # body -> first time WhatsApp had it as sent
    stop: threading.Event = field(default_factory=threading.Event)

    def queued_now(self) -> dict[str, str]:
        """Bodies of inbound messages WhatsApp still holds for a page (not acknowledged), with their session."""
        state = self.sim.state
        found: dict[str, str] = {}
        for _ in range(5):
            try:
                phones = {d.device_id: d.phone for d in list(state.devices.values())}
                for device in list(state.devices.values()):
                    for event in list(device.pending):
                        if event.get("type") == "message":
                            found[str(event.get("body"))] = self.session_of_phone.get(device.phone, "?")
                for client in list(state.clients.values()):
                    for event in list(client.events):
                        if event.get("type") == "message":
                            phone = phones.get(client.device_id or "", "")
                            found[str(event.get("body"))] = self.session_of_phone.get(phone, "?")
                return found
            except RuntimeError:  # a dict changed size under us; look again
                continue
        return found

    def sent_now(self) -> dict[str, int]:
        """Body -> how many times WhatsApp got it from a page."""
        state = self.sim.state
        for _ in range(5):
            try:
                return {m.body: m.sends for d in list(state.devices.values()) for m in list(d.sent.values())}
            except RuntimeError:
                continue
        return {}

    def run(self) -> None:
        while not self.stop.wait(0.05):
            now = time.time()
            for body, session in self.queued_now().items():
                self.queued_at[body] = now
                self.queued_for[body] = session
            for body in self.sent_now():
                self.sent_first.setdefault(body, now)

    def start(self) -> SimWatch:
        threading.Thread(target=self.run, name="sim-watch", daemon=True).start()
        return self


# --- chaos: stopping workers, pausing Redis ------------------------------------------------------------------
@dataclass
class Chaos:
    system: ChaosSystem
    timeline: Timeline
    args: argparse.Namespace
    stop: threading.Event = field(default_factory=threading.Event)
    restarts: list[threading.Thread] = field(default_factory=list)
    redis_returns: list[float] = field(default_factory=list)

    def kill_loop(self) -> None:
        low, high = parse_range(self.args.kill_every)
        if high <= 0:
            return
        rng = random.Random(self.args.seed + 1)
        workers = self.system.worker_ids()
        turn = 0
        while not self.stop.wait(rng.uniform(low, high)):
            worker_id = workers[turn % len(workers)]
            turn += 1
            process = self.system.processes.get(worker_id)
            if process is None or process.poll() is not None:
                continue
            self.stop_worker(worker_id, process)

    def stop_worker(self, worker_id: str, process: subprocess.Popen[bytes]) -> None:
        self.system.processes.pop(worker_id, None)
        if self.args.signal == "KILL":
            doomed = [process.pid, *descendants(process.pid)]
            self.timeline.add("kill", f"SIGKILL {worker_id} (pid {process.pid} and {len(doomed) - 1} children)")
            for pid in doomed:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        else:
            self.timeline.add("kill", f"SIGTERM {worker_id} (pid {process.pid})")
            process.terminate()
        thread = threading.Thread(target=self.restart, args=(worker_id, process), daemon=True)
        thread.start()
        self.restarts.append(thread)

    def restart(self, worker_id: str, process: subprocess.Popen[bytes]) -> None:
        try:
            process.wait(40)
        except subprocess.TimeoutExpired:
            self.timeline.add("note", f"{worker_id} did not exit within 40 s of SIGTERM; SIGKILL")
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        if self.args.signal == "TERM":
            self.timeline.add("exit", f"{worker_id} exited with {process.returncode}")
        time.sleep(self.args.restart_after)
        port = self.system.options.ports.worker_health[self.system.worker_ids().index(worker_id)]
        try:
            self.system.start_worker(worker_id, port)
            self.timeline.add("start", f"{worker_id} started again")
        except RuntimeError as exc:
            self.timeline.add("note", f"{worker_id} failed to start again: {exc}")

    def pause_loop(self) -> None:
        if self.args.redis_pause <= 0:
            return
        pid = self.system.redis_pid()
        delay = self.args.redis_pause_first
        for _ in range(self.args.redis_pauses):
            if self.stop.wait(delay):
                return
            os.kill(pid, signal.SIGSTOP)
            self.timeline.add("pause", f"redis-server paused (SIGSTOP) for {self.args.redis_pause:g} s")
            time.sleep(self.args.redis_pause)
            os.kill(pid, signal.SIGCONT)
            self.redis_returns.append(self.timeline.add("resume", "redis-server resumed (SIGCONT)"))
            delay = self.args.redis_pause_every - self.args.redis_pause

    def start(self) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self.kill_loop, name="kills", daemon=True),
            threading.Thread(target=self.pause_loop, name="pauses", daemon=True),
        ]
        for thread in threads:
            thread.start()
        return threads


def stop_plan(args: argparse.Namespace) -> str:
    return f"SIG{args.signal} every {args.kill_every} s" if parse_range(args.kill_every)[1] > 0 else "none"


def redis_plan(args: argparse.Namespace) -> str:
    if args.redis_pause <= 0:
        return "none"
    return f"{args.redis_pauses} x {args.redis_pause:g} s every {args.redis_pause_every:g} s"


def parse_range(text: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    return float(low), float(high or low)


# --- onboarding and traffic ----------------------------------------------------------------------------------
def create_tenant(system: LocalSystem, receiver: ChaosReceiver) -> tuple[str, str]:
    """A workspace, an API key and a webhook endpoint on the chaos receiver; returns (API key, endpoint id)."""
    admin = {"Authorization": f"Bearer {DEV_ADMIN_KEY}"}
    with httpx.Client(base_url=system.api_url, timeout=30) as http:
        workspace_id = http.post("/v1/admin/workspaces", json={"name": "chaos"}, headers=admin).json()["id"]
        api_key = http.post(
            f"/v1/admin/workspaces/{workspace_id}/keys",
            json={"name": "chaos", "scopes": ["read", "send", "manage"]},
            headers=admin,
        ).json()["key"]
        endpoint = http.post(
            "/v1/endpoints", json={"url": receiver.url}, headers={"Authorization": f"Bearer {api_key}"}
        )
        endpoint.raise_for_status()
        receiver.secret = endpoint.json()["secret"]
    return str(api_key), str(endpoint.json()["id"])


def onboard(system: ChaosSystem, api_key: str, count: int) -> dict[str, str]:
    """Create `count` sessions and scan their QR codes; returns session id -> phone once all are ready."""
    headers = {"Authorization": f"Bearer {api_key}"}
    phones = [f"62813{index:07d}" for index in range(count)]
    with httpx.Client(base_url=system.api_url, headers=headers, timeout=30) as http:
        ids = [http.post("/v1/sessions", json={"name": f"chaos {p}", "phone": p}).json()["id"] for p in phones]
        sessions = dict(zip(ids, phones, strict=True))
        pending = dict(sessions)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            for sid, phone in list(pending.items()):
                qr = http.get(f"/v1/sessions/{sid}/qr").json().get("qr")
                if (
                    qr
                    and httpx.post(f"{system.simulator_url}/control/scan", json={"qr": qr, "phone": phone}).is_success
                ):
                    del pending[sid]
            if not pending and all(http.get(f"/v1/sessions/{s}").json()["status"] == "ready" for s in ids):
                return sessions
            time.sleep(0.5)
    raise RuntimeError("sessions did not all become ready")


@dataclass
class Traffic:
    system: ChaosSystem
    api_key: str
    sessions: dict[str, str]
    args: argparse.Namespace
    inbound: dict[str, tuple[float, str]] = field(default_factory=dict)  # body -> (injected at, session)
    sends: dict[str, tuple[float, str]] = field(default_factory=dict)  # client_message_id -> (asked at, session)
    send_status: dict[str, str] = field(default_factory=dict)  # client_message_id -> HTTP status / error
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, seconds: float) -> None:
        ids = list(self.sessions)
        total_in = int(seconds * self.args.inbound_rate)
        total_out = int(seconds * self.args.send_rate)
        schedule = sorted(
            [(i / self.args.inbound_rate, "in", i) for i in range(total_in)]
            + [(i / self.args.send_rate, "out", i) for i in range(total_out)]
        )
        started = time.perf_counter()
        with (
            httpx.Client(base_url=self.system.simulator_url, timeout=10) as sim,
            httpx.Client(
                base_url=self.system.api_url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=20
            ) as api,
            ThreadPoolExecutor(max_workers=16) as pool,
        ):
            for due, kind, index in schedule:
                pause = started + due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                sid = ids[index % len(ids)]
                if kind == "in":
                    pool.submit(self._inbound, sim, sid, f"chaos-in-{index:05d}")
                else:
                    pool.submit(self._send, api, sid, f"chaos-out-{index:05d}")

    def _inbound(self, sim: httpx.Client, sid: str, body: str) -> None:
        with self.lock:
            self.inbound[body] = (time.time(), sid)
        sim.post("/control/inbound", json={"phone": self.sessions[sid], "sender": SENDER, "body": body})

    def _send(self, api: httpx.Client, sid: str, token: str) -> None:
        with self.lock:
            self.sends[token] = (time.time(), sid)
        payload = {"to": RECIPIENT, "text": token, "client_message_id": token}
        try:
            status = str(api.post(f"/v1/sessions/{sid}/messages", json=payload).status_code)
        except httpx.HTTPError as exc:
            status = f"error {type(exc).__name__}"
        with self.lock:
            self.send_status[token] = status

    def settle_unknown(self) -> None:
        """A send whose answer never came, or was a 503 (a store timeout means the outcome is unknown), may have
        been accepted: the idempotent repeat tells, as the API's docs tell tenants to do."""
        with httpx.Client(
            base_url=self.system.api_url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=20
        ) as api:
            for token, status in list(self.send_status.items()):
                if status.startswith("error") or status == "503":
                    sid = self.sends[token][1]
                    payload = {"to": RECIPIENT, "text": token, "client_message_id": token}
                    answer = api.post(f"/v1/sessions/{sid}/messages", json=payload)
                    replayed = answer.headers.get("idempotent-replayed") == "true"
                    self.send_status[token] = "202" if replayed else f"{status}, then {answer.status_code} on repeat"

    def accepted(self) -> dict[str, tuple[float, str]]:
        return {
            t: v
            for t, v in self.sends.items()
            if self.send_status.get(t) == "202" or "then 202" in str(self.send_status.get(t))
        }


# --- where a message was last seen -----------------------------------------------------------------------------
@dataclass
class Tracer:
    system: ChaosSystem
    redis: redis.Redis
    tap: IngestTap
    watch: SimWatch
    timeline: Timeline
    endpoint_id: str

    def outbox_entries(self) -> dict[str, list[str]]:
        """Worker id -> raw events in its outbox stream (every worker that ever registered or is known)."""
        workers = set(self.system.worker_ids()) | {str(w) for w in self.redis.zrange(keys.workers(), 0, -1)}
        return {w: [f["event"] for _id, f in self.redis.xrange(keys.outbox(w))] for w in workers}

    def spooled(self, needle: str) -> list[str]:
        found = []
        for path in self.system.options.workdir.rglob("*.spool*"):
            with contextlib.suppress(OSError):
                if needle in path.read_text(errors="replace"):
                    found.append(str(path))
        return found

    def delivery_stage(self, event_id: str) -> str:
        delivery_id = delivery_id_for(event_id, self.endpoint_id)
        state = self.redis.hgetall(keys.delivery_state(delivery_id))
        in_schedule = self.redis.zscore(keys.retry_schedule(), delivery_id)
        dead = self.redis.exists(keys.dead_letter(delivery_id))
        parts = [f"delivery {delivery_id}: state {state or 'none'}"]
        if state.get("status") == "pending" and int(state.get("finished", 0)) < int(state.get("attempt", 0)):
            parts.append(
                "an attempt began but never finished (a deliver invocation failed): the queue shows its message "
                "again after the visibility timeout"
            )
        if in_schedule is not None:
            parts.append(f"in the retry schedule (due in {(in_schedule / 1000 - time.time()):.0f} s)")
        if dead:
            parts.append("dead-lettered")
        return "; ".join(parts)

    def inbound(self, body: str, injected: tuple[float, str]) -> str:
        at, sid = injected
        queued = self.watch.queued_now()
        if body in queued:
            return f"simulator: still queued for a page of {sid} (never acknowledged)"
        tapped = self.tap.by_key("message.received", body)
        if tapped:
            return "; ".join(
                f"ingest got {t.event_id} ({', '.join(t.outcomes)}); {self.delivery_stage(t.event_id)}" for t in tapped
            )
        for worker_id, raws in self.outbox_entries().items():
            if any(body in raw for raw in raws):
                return f"outbox of {worker_id} (not yet posted)"
        spools = self.spooled(body)
        if spools:
            return f"a worker's local spool: {spools}"
        acked = self.watch.queued_at.get(body)
        where = (
            f"acknowledged by a page of {sid} after {self.timeline.rel(acked)} (last seen queued at WhatsApp), "
            if acked
            else f"acknowledged by a page of {sid} within 50 ms of injection at {self.timeline.rel(at)}, "
        )
        nearest = self.timeline.nearest(acked or at, "kill", "pause", "resume")
        return where + f"never reached an outbox or ingest (page/worker memory); {nearest}"

    def send(self, token: str, asked: tuple[float, str]) -> str:
        _at, sid = asked
        parts = []
        stream = keys.session_commands(sid)
        entry_id = next(
            (
                eid
                for eid, f in self.redis.xrange(stream)
                if json.loads(f.get("command", "{}")).get("client_message_id") == token
            ),
            None,
        )
        if entry_id is None:
            parts.append("command not in the stream")
        else:
            pending = self.redis.xpending_range(stream, "workers", min=entry_id, max=entry_id, count=1)
            parts.append(
                f"command {entry_id} pending at {pending[0]['consumer']} (delivered {pending[0]['times_delivered']}x)"
                if pending
                else f"command {entry_id} not pending (acked or never read)"
            )
        for name, key in (("sending", keys.session_sending(sid, token)), ("sent", keys.session_sent(sid, token))):
            value = self.redis.get(key)
            parts.append(f"{name} marker {value!r}" if value else f"no {name} marker")
        sent = self.watch.sent_now().get(token, 0)
        parts.append(f"WhatsApp got it {sent}x")
        for tapped in self.tap.by_key("message.sent", token) + self.tap.by_key("message.failed", token):
            parts.append(
                f"ingest got {tapped.type} {tapped.event_id} ({', '.join(tapped.outcomes)}); "
                + self.delivery_stage(tapped.event_id)
            )
        return "; ".join(parts)


# --- the run ---------------------------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--strategy", choices=["profile", "context"], default="profile")
    parser.add_argument("--seconds", type=float, default=120.0, help="how long the traffic flows")
    parser.add_argument("--inbound-rate", type=float, default=5.0, help="inbound messages per second")
    parser.add_argument("--send-rate", type=float, default=5.0, help="API sends per second")
    parser.add_argument("--kill-every", default="25-30", help="seconds between worker stops, 'low-high'; 0: none")
    parser.add_argument("--signal", choices=["KILL", "TERM"], default="KILL")
    parser.add_argument("--restart-after", type=float, default=3.0, help="seconds from exit to the new start")
    parser.add_argument("--redis-pause", type=float, default=0.0, help="seconds redis-server stays paused; 0: never")
    parser.add_argument("--redis-pause-every", type=float, default=40.0)
    parser.add_argument("--redis-pause-first", type=float, default=15.0, help="seconds into the flow of the 1st pause")
    parser.add_argument("--redis-pauses", type=int, default=3)
    parser.add_argument("--receiver-fail", type=float, default=0.2, help="share of webhook requests answered 500")
    parser.add_argument("--settle", type=float, default=240.0, help="seconds to wait for stragglers after the flow")
    parser.add_argument("--seed", type=int, default=17)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    load = LoadSampler().start()
    workdir = Path(tempfile.mkdtemp(prefix="wagw-chaos-"))
    limits = {name: limit.model_dump() for name, limit in default_throttle_limits().items()}
    limits["message"] = {"per_minute": 12_000, "burst": 1_000}
    limits["session_ready"] = {"per_minute": 1_000, "burst": 100}
    ports = Ports.free(workers=args.workers)
    tap = IngestTap(f"http://127.0.0.1:{ports.ingest}/v1/events")
    options = SystemOptions(
        ports=ports,
        workers=args.workers,
        schedules=True,
        auth_strategy=args.strategy,
        workdir=workdir,
        retry_schedule=json.dumps([1, 2, 4, 8, 15, 30, 60]),
        extra_env={
            "WAGW_THROTTLE_LIMITS": json.dumps(limits),
            # Every accepted send is counted against a deadline: no anti-ban pacing (it would queue them on purpose).
            "WAGW_SEND_GAP_MS": "0",
            "WAGW_SEND_JITTER_MS": "0",
            "WAGW_SEND_QUEUE_MAX": "100000",
            "WAGW_PROFILES_DIR": str(workdir / "profiles"),
        },
        worker_env={"WAGW_INGEST_URL": tap.url, "WAGW_WORKER_CAPACITY": str(args.sessions + 5)},
    )
    receiver = ChaosReceiver(args.receiver_fail, args.seed).start()
    tap.start()
    system = ChaosSystem(options)
    timeline = Timeline()
    chaos: Chaos | None = None
    watch: SimWatch | None = None
    try:
        system.start()
        api_key, endpoint_id = create_tenant(system, receiver)
        sessions = onboard(system, api_key, args.sessions)
        qrs_before = len(receiver.of_type("session.qr"))
        watch = SimWatch(system.sim, {phone: sid for sid, phone in sessions.items()}).start()
        print(
            f"chaos: {args.workers} workers, {args.sessions} sessions ready, strategy {args.strategy}; "
            f"{args.seconds:g} s of {args.inbound_rate:g} inbound/s and {args.send_rate:g} sends/s; "
            f"stops: {stop_plan(args)}; "
            f"redis pauses: {redis_plan(args)}; "
            f"receiver fails {args.receiver_fail:.0%}; logs in {workdir}",
            flush=True,
        )
        print("timeline:")
        timeline = Timeline()
        timeline.add("flow", "traffic starts")
        chaos = Chaos(system, timeline, args)
        chaos_threads = chaos.start()
        traffic = Traffic(system, api_key, sessions, args)
        traffic.run(args.seconds)
        timeline.add("flow", "traffic ends")
        chaos.stop.set()
        for thread in chaos_threads + chaos.restarts:
            thread.join(90)
        traffic.settle_unknown()
        report(args, system, receiver, tap, watch, timeline, traffic, chaos, sessions, endpoint_id, api_key, qrs_before)
    finally:
        if chaos is not None:
            chaos.stop.set()
        if watch is not None:
            watch.stop.set()
        load.stop()
        print(load.summary())
        system.stop()
        receiver.stop()
        tap.stop()


def wait_settled(
    args: argparse.Namespace, receiver: ChaosReceiver, traffic: Traffic, accepted: dict[str, tuple[float, str]]
) -> float:
    started = time.monotonic()
    while time.monotonic() - started < args.settle:
        got_in = {d.data.get("body") for d in receiver.of_type("message.received")}
        reported = {
            d.data.get("client_message_id")
            for d in receiver.of_type("message.sent") + receiver.of_type("message.failed")
        }
        if set(traffic.inbound) <= got_in and set(accepted) <= reported:
            break
        time.sleep(1)
    return time.monotonic() - started


def report(
    args: argparse.Namespace,
    system: ChaosSystem,
    receiver: ChaosReceiver,
    tap: IngestTap,
    watch: SimWatch,
    timeline: Timeline,
    traffic: Traffic,
    chaos: Chaos,
    sessions: dict[str, str],
    endpoint_id: str,
    api_key: str,
    qrs_before: int,
) -> None:
    accepted = traffic.accepted()
    waited = wait_settled(args, receiver, traffic, accepted)
    tracer = Tracer(
        system,
        redis.Redis.from_url(str(system.options.redis_url), decode_responses=True),
        tap,
        watch,
        timeline,
        endpoint_id,
    )
    print(f"settled after {waited:.0f} s")

    # inbound
    by_body: dict[str, list[Delivery]] = defaultdict(list)
    for delivery in receiver.of_type("message.received"):
        by_body[str(delivery.data.get("body"))].append(delivery)
    lost_in = [b for b in traffic.inbound if b not in by_body]
    same_id_twice = [b for b, ds in by_body.items() if len(ds) > len({d.webhook_id for d in ds})]
    different_events = [b for b, ds in by_body.items() if len({d.webhook_id for d in ds}) > 1]
    once_in = [b for b, ds in by_body.items() if len(ds) == 1]
    print(
        f"inbound: {len(traffic.inbound)} injected; delivered once {len(once_in)}; lost {len(lost_in)}; "
        f"same webhook-id twice {len(same_id_twice)}; twice as different events {len(different_events)}"
    )

    # sends
    statuses = Counter(traffic.send_status.values())
    sent_counts = watch.sent_now()
    reports: dict[str, list[Delivery]] = defaultdict(list)
    for delivery in receiver.of_type("message.sent") + receiver.of_type("message.failed"):
        reports[str(delivery.data.get("client_message_id"))].append(delivery)
    never_sent = [t for t in accepted if sent_counts.get(t, 0) == 0]
    sent_twice = [t for t in accepted if sent_counts.get(t, 0) > 1]
    not_reported = [t for t in accepted if t not in reports]
    failed = [t for t in accepted if any(d.type == "message.failed" for d in reports.get(t, []))]
    reported_twice = [
        t
        for t, ds in reports.items()
        if len({d.webhook_id for d in ds}) > 1 or len(ds) > len({d.webhook_id for d in ds})
    ]
    print(
        f"sends: {len(traffic.sends)} asked; API answers {dict(statuses)}; accepted {len(accepted)}; "
        f"sent to WhatsApp once {len(accepted) - len(never_sent) - len(sent_twice)}; never sent {len(never_sent)}; "
        f"sent twice {len(sent_twice)}; reported failed {len(failed)}; never reported {len(not_reported)}; "
        f"reported twice {len(reported_twice)}"
    )
    refused_but_sent = [t for t in traffic.sends if t not in accepted and sent_counts.get(t, 0) > 0]
    if refused_but_sent:
        print(f"sends the API refused (or never answered) that WhatsApp got anyway: {len(refused_but_sent)}")
    late = send_delays_after_redis(chaos, traffic, accepted, watch)
    if chaos.redis_returns:
        print(f"sends accepted before a Redis return and sent more than {SEND_WITHIN_S:g} s after it: {late}")

    # sessions and signatures
    headers = {"Authorization": f"Bearer {api_key}"}
    final = {
        sid: httpx.get(f"{system.api_url}/v1/sessions/{sid}", headers=headers).json().get("status") for sid in sessions
    }
    new_qrs = len(receiver.of_type("session.qr")) - qrs_before
    print(
        f"sessions at the end: {Counter(final.values())}; new QR codes {new_qrs}; bad signatures "
        f"{receiver.bad_signatures}; webhook requests failed on purpose {receiver.failed_on_purpose}"
    )
    for sid, status in final.items():
        if status != "ready":
            history = sorted(
                (d.at, str(d.data.get("status")), str(d.data.get("reason") or ""))
                for d in receiver.of_type("session.status")
                if d.session_id == sid
            )
            steps = ", ".join(f"{timeline.rel(at).strip()} {st} {why}".strip() for at, st, why in history[-8:])
            print(f"  {sid} ended {status}: {steps}")
    print(f"queues: {queue_depths()}")
    stops = timeline.of_kind("kill")
    print(f"worker stops: {len(stops)}; redis pauses: {len(chaos.redis_returns)}")

    # where each lost or duplicated message was last seen
    for title, tokens, trace in (
        ("lost inbound", lost_in, lambda t: tracer.inbound(t, traffic.inbound[t])),
        ("inbound delivered as different events", different_events, lambda t: tracer.inbound(t, traffic.inbound[t])),
        ("accepted sends never sent", never_sent, lambda t: tracer.send(t, traffic.sends[t])),
        ("sends sent twice", sent_twice, lambda t: tracer.send(t, traffic.sends[t])),
        ("sends never reported", not_reported, lambda t: tracer.send(t, traffic.sends[t])),
    ):
        if tokens:
            print(f"{title} ({len(tokens)}):")
            for token in sorted(tokens):
                asked = (traffic.inbound.get(token) or traffic.sends[token])[0]
                print(f"  {token} (at {timeline.rel(asked)}): {trace(token)}")
    windows = kill_windows(lost_in, watch, timeline)
    if windows:
        print(f"lost inbound, ms from the page's acknowledgement to the next kill: {windows}")
    ok = (
        not lost_in
        and not same_id_twice
        and not different_events
        and not never_sent
        and not sent_twice
        and not not_reported
        and not reported_twice
        and receiver.bad_signatures == 0
        and late == 0
        and all(s == "ready" for s in final.values())
        and new_qrs == 0
    )
    print("RESULT:", "PASS" if ok else "FAIL")


def queue_depths() -> str:
    names = (
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    )
    parts = []
    for label, url in (("deliveries", aws.deliveries_queue_url()), ("DLQ", aws.deliveries_dlq_url())):
        attributes = aws.sqs().get_queue_attributes(QueueUrl=url, AttributeNames=list(names))["Attributes"]
        visible, invisible, delayed = (attributes.get(n, "?") for n in names)
        parts.append(f"{label} {visible} visible, {invisible} in flight, {delayed} delayed")
    return "; ".join(parts)


def send_delays_after_redis(
    chaos: Chaos, traffic: Traffic, accepted: dict[str, tuple[float, str]], watch: SimWatch
) -> int:
    late = 0
    for token, (asked, _sid) in accepted.items():
        returns = [r for r in chaos.redis_returns if r > asked]
        sent = watch.sent_first.get(token)
        if returns and (sent is None or sent > returns[0] + SEND_WITHIN_S) and (sent is None or sent > returns[0]):
            late += 1
    return late


def kill_windows(lost: list[str], watch: SimWatch, timeline: Timeline) -> list[int]:
    kills = [at for at, _k, _t in timeline.of_kind("kill")]
    windows = []
    for body in lost:
        acked = watch.queued_at.get(body)
        if acked is None:
            continue
        after = [k for k in kills if k >= acked]
        if after:
            windows.append(round((after[0] - acked) * 1000))
    return sorted(windows)


if __name__ == "__main__":
    main()
