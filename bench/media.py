"""Media through the whole local system (simulator -> worker -> media bucket on LocalStack -> ingest -> SQS -> deliver
-> the tenant's webhook receiver), one worker, N ready sessions.

Inbound: `--images` images of `--min-mb`..`--max-mb` (random bytes, so nothing compresses) arrive on the sessions
through the simulator's control API (the bytes raw, then the message naming them), as fast as it takes them.
Measured at the tenant's webhook: media MB/s (all bytes over first arrival -> last `message.media`), p50/p99 from
arrival to `message.media` (and to `message.received`, which never waits for its media). Checked: every image
announced once, available, with the right size and sha256, and a sample fetched back through its presigned URL byte
for byte. In the same run a baseline moves the same bytes out of a page (same Chromium, same simulator media server,
the worker driver's own Blob read, `read_blob`) and into the same bucket with no gateway logic, as many at once as
the worker's media slots; target: gateway MB/s >= 0.7 of it. A second baseline (`--page-baseline`, on by default)
moves as many bytes out of WhatsApp's own page: linked pages of the simulator in a browser of the bench's, each
message taken and fired as wa-js does, its bytes read with `WPP.chat.downloadMedia` and `read_blob`, put the same
way, with no worker, outbox, events, ingest or delivery: the page's work per message is WhatsApp Web's, which any
way of getting the bytes out pays, and the first baseline leaves it out. The worker's memory (PSS of its process and
its Chromium) after the run must be within 10 % of before (measured after a warm-up, so first-use allocations do not
count). Memory is read after each of `--rounds` rounds of `--images` images, each time 10 s after the round and
again after a forced garbage collection in every page (CDP `HeapProfiler.collectGarbage`, through a debugging port
the bench opens on the worker's Chromium) and in Playwright's driver (the same command through node's inspector,
which SIGUSR1 opens): growth that a collection takes back is garbage, growth that stays round after round is kept.

Outbound: `--sends` image messages by URL (a local HTTP server serves `--send-files` distinct images) POSTed to
`/v1/sessions/{id}/messages` round-robin over the sessions: sends/s (first POST -> last `message.sent` at the
receiver) and p50/p99 from the API's 202 to `message.sent`; checked: each sent once (the simulator's duplicate count
and its received media digests). Pacing is set to zero for this run (it is an anti-ban policy, not a cost).

    flock /tmp/wagw-bench.lock .venv/bin/python bench/media.py [--sessions 10] [--images 500] [--sends 200]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import os
import random
import signal
import socket
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.common import (
    LoadSampler,
    add_data_dir_argument,
    browser_parts,
    children_of,
    cpu_of,
    cpu_used,
    process_times,
    threads_named,
    write_data,
)
from bench.e2e import DEFAULT_LIMITS, onboard
from session_workers.allocator import keep_the_drivers_young_generation_small
from session_workers.driver import read_blob
from session_workers.metrics import descendants, pss_kib
from shared import aws
from shared.settings import get_settings
from wagw_local.media_host import MediaServer
from wagw_local.receiver import ReceivedEvent
from wagw_local.services import free_port
from wagw_local.system import LocalSystem, Ports, SystemOptions

MB = 1024 * 1024
TARGET_RATIO = 0.7
MEMORY_TOLERANCE = 0.10
WARM_UP_IMAGES = 20
BASELINE_AT_ONCE = 4  # = the worker's media slots (session_workers/session.py MEDIA_DOWNLOADS_AT_ONCE)
FETCH_BACK_SAMPLE = 25


@dataclass
class Image:
    index: int
    size: int
    seed: int

    def data(self) -> bytes:
        return random.Random(self.seed).randbytes(self.size)


@dataclass
class Timings:
    """Receiver-side times of the events a run waits for, keyed by WhatsApp message id (or client id)."""

    received: dict[str, float] = field(default_factory=dict)
    media: dict[str, dict[str, Any]] = field(default_factory=dict)
    media_at: dict[str, float] = field(default_factory=dict)
    sent_at: dict[str, float] = field(default_factory=dict)
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: list[dict[str, Any]] = field(default_factory=list)
    repeats: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_event(self, event: ReceivedEvent) -> None:
        body = event.body
        data = body.get("data", {})
        with self.lock:
            if body["type"] == "message.received":
                self.repeats += data["message_id"] in self.received
                self.received.setdefault(data["message_id"], event.received_at)
            elif body["type"] == "message.media":
                self.repeats += data["message_id"] in self.media
                self.media.setdefault(data["message_id"], data["media"])
                self.media_at.setdefault(data["message_id"], event.received_at)
            elif body["type"] == "message.sent" and data.get("client_message_id"):
                self.repeats += data["client_message_id"] in self.sent
                self.sent.setdefault(data["client_message_id"], data)
                self.sent_at.setdefault(data["client_message_id"], event.received_at)
            elif body["type"] == "message.failed":
                self.failed.append(data)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) < 2:
        return ordered[0] if ordered else float("nan")
    return statistics.quantiles(ordered, n=100, method="inclusive")[round(q * 100) - 1]


def worker_pss_mib(system: LocalSystem) -> dict[str, float]:
    """The worker's PSS: its Python process, and its Chromium (with Playwright's driver), and the browser side by
    part."""
    root = system.processes["worker-a"].pid
    parts = browser_parts(descendants(root))
    names = {"driver": "Playwright driver", "renderers": "Chromium renderers", "chromium other": "Chromium other"}
    by_part = {name: sum(pss_kib(pid) for pid in parts[part]) / 1024 for name, part in names.items()}
    browser = sum(by_part.values())
    python = pss_kib(root) / 1024
    return {"python": python, "browser": browser, "total": python + browser, **by_part}


async def collect_garbage(debugging_port: int) -> int:
    """A full garbage collection in every page of the worker's Chromium (through its debugging port); the pages
    collected. The bench's connection goes away after: the worker's own pages and contexts stay as they were."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.connect_over_cdp(f"http://127.0.0.1:{debugging_port}")
        pages = [page for context in browser.contexts for page in context.pages]
        for page in pages:
            cdp = await page.context.new_cdp_session(page)
            await cdp.send("HeapProfiler.collectGarbage")
            await cdp.detach()
        await browser.close()
    return len(pages)


NODE_INSPECTOR_PORT = 9229  # node's default: where SIGUSR1 opens a process's inspector
_inspected: set[int] = set()  # driver processes whose inspector this bench opened


def collect_driver_garbage(system: LocalSystem) -> bool:
    """A full garbage collection in the worker's Playwright driver (node), which carries every media byte as
    base64 strings and which the pages' collection does not reach: through the inspector SIGUSR1 opens in it (on
    node's default port, which must be free the first time), with a bare WebSocket (CDP
    `HeapProfiler.collectGarbage`). False if there was no single driver or its inspector did not answer."""
    drivers = browser_parts(descendants(system.processes["worker-a"].pid))["Playwright driver"]
    if len(drivers) != 1:
        return False
    inspector = f"http://127.0.0.1:{NODE_INSPECTOR_PORT}/json/list"
    if drivers[0] not in _inspected:
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(inspector, timeout=1)
            return False  # some other process has the port: not ours to collect
        os.kill(drivers[0], signal.SIGUSR1)
        _inspected.add(drivers[0])
    for _ in range(50):
        try:
            target = urlsplit(httpx.get(inspector, timeout=1).json()[0]["webSocketDebuggerUrl"])
            break
        except (httpx.HTTPError, IndexError, KeyError):
            time.sleep(0.1)
    else:
        return False
    with socket.create_connection((target.hostname or "127.0.0.1", target.port or 80), timeout=60) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET {target.path} HTTP/1.1\r\nHost: {target.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        reader = sock.makefile("rb")
        if b" 101 " not in reader.readline():
            return False
        while reader.readline() not in (b"\r\n", b""):
            pass
        command = json.dumps({"id": 1, "method": "HeapProfiler.collectGarbage"}).encode()
        mask = os.urandom(4)  # a client's frames are masked (RFC 6455); this one is short (< 126 bytes)
        sock.sendall(bytes([0x81, 0x80 | len(command)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(command)))
        while head := reader.read(2):
            length = head[1] & 0x7F
            if length >= 126:
                length = int.from_bytes(reader.read(2 if length == 126 else 8), "big")
            body = reader.read(length)
            if head[0] & 0x0F == 1 and json.loads(body).get("id") == 1:
                return "error" not in json.loads(body)
    return False


def memory_now(system: LocalSystem, debugging_port: int | None) -> dict[str, Any]:
    """The worker's PSS as it is, and again 5 s after a garbage collection in every page (when the bench has a
    debugging port into them) and in Playwright's driver."""
    as_is = worker_pss_mib(system)
    pages = asyncio.run(collect_garbage(debugging_port)) if debugging_port else 0
    driver = collect_driver_garbage(system)
    time.sleep(5)  # freed Blobs are released by the browser process, and V8 hands pages back, shortly after
    return {"as_is": as_is, "after_gc": worker_pss_mib(system), "pages_collected": pages, "driver_collected": driver}


def cpu_by_part(system: LocalSystem) -> dict[str, float]:
    """CPU seconds used so far by each part of the system; the bench's own share is what is left of its process
    tree (the injector and the baseline's browser and S3 puts) once deliver's and the receiver's threads are
    counted apart."""
    worker = system.processes["worker-a"].pid
    children = children_of(process_times())  # one read of /proc for every tree below
    roles = browser_parts(descendants(worker, children))
    parts = {
        "worker Python": [worker],
        "worker Playwright driver": roles["Playwright driver"],
        "worker Chromium renderers": roles["Chromium renderers"],
        "simulator": [system.processes["simulator"].pid],
        "ingest": [system.processes["ingest"].pid],
        "api": [system.processes["api"].pid],
        **{
            service.name: [service.process.pid, *descendants(service.process.pid, children)]
            for service in system.services
        },
        "worker Chromium other (browser, network, GPU)": roles["Chromium other"],
    }
    counted = {pid for pids in parts.values() for pid in pids}
    parts["bench process (+ baseline browser)"] = [
        p for p in [os.getpid(), *descendants(os.getpid(), children)] if p not in counted
    ]
    # The system's parts that are threads of this process: deliver (the local SQS poller, Lambda's event source
    # mapping, and the handler it calls) and the tenant's receiver; the bench process's figure is what is left.
    threads = {
        "deliver (SQS poller + handler)": threads_named("sqs-poller"),
        "tenant's receiver": threads_named("receiver"),
    }
    used = cpu_of(parts, threads)
    for part in threads:
        used["bench process (+ baseline browser)"] -= used[part]
    return used


def make_images(count: int, min_mb: float, max_mb: float, seed: int) -> list[Image]:
    chooser = random.Random(seed)
    return [Image(i, chooser.randint(int(min_mb * MB), int(max_mb * MB)), seed * 100_000 + i) for i in range(count)]


# --- inbound -----------------------------------------------------------------------------------------------------
@dataclass
class Arrival:
    image: Image
    session_phone: str
    whatsapp_id: str = ""
    sha256: str = ""
    arrived_at: float = 0.0
    media_ref: str = ""


def stage(system: LocalSystem, phones: list[str], images: list[Image]) -> list[Arrival]:
    """Before the burst: the bytes made (and their sha256 taken) and handed to the simulator raw
    (`/control/media`), where they wait as on WhatsApp's media servers, which hold a file before the message naming
    it reaches the phone (the sender uploaded it first). WhatsApp's servers do not run on the gateway's cores, so
    the harness's side of the burst is kept to the announcements: base64 inside JSON cost the simulator and the
    bench about 20 ms of CPU per MiB, and taking the raw bytes during the burst still several (docs/benchmarks.md,
    Media, runs 13-). The page still fetches each from `/api/media` when wa-js's `downloadMedia` asks for it."""
    arrivals = [Arrival(image, phones[i % len(phones)]) for i, image in enumerate(images)]

    def session_share(phone: str) -> None:
        with httpx.Client(base_url=system.simulator_url, timeout=60) as http:
            for arrival in (a for a in arrivals if a.session_phone == phone):
                data = arrival.image.data()
                arrival.sha256 = hashlib.sha256(data).hexdigest()
                given = http.post("/control/media", content=data, headers={"Content-Type": "application/octet-stream"})
                given.raise_for_status()
                arrival.media_ref = given.json()["media_ref"]

    with ThreadPoolExecutor(len(phones)) as pool:
        list(pool.map(session_share, phones))
    return arrivals


def announce(system: LocalSystem, arrivals: list[Arrival], tag: str) -> None:
    """The burst: each session's share arrives in order from a thread of its own (the sessions in parallel), as
    fast as the simulator takes them (`/control/inbound` naming the staged bytes by `media_ref`)."""
    phones = sorted({a.session_phone for a in arrivals})
    clients = {phone: httpx.Client(base_url=system.simulator_url, timeout=60) for phone in phones}

    def session_share(phone: str) -> None:
        http = clients[phone]
        for arrival in (a for a in arrivals if a.session_phone == phone):
            response = http.post(
                "/control/inbound",
                json={
                    "phone": phone,
                    "sender": "6289990001@c.us",
                    "type": "image",
                    "media_ref": arrival.media_ref,
                    "mimetype": "image/jpeg",
                    "filename": f"{tag}-{arrival.image.index}.jpg",
                    "caption": f"{tag} {arrival.image.index}",
                },
            )
            response.raise_for_status()
            arrival.arrived_at = time.time()
            arrival.whatsapp_id = response.json()["id"]

    try:
        with ThreadPoolExecutor(len(phones)) as pool:
            list(pool.map(session_share, phones))
    finally:
        for client in clients.values():
            client.close()


def inject(system: LocalSystem, phones: list[str], images: list[Image], tag: str) -> list[Arrival]:
    arrivals = stage(system, phones, images)
    announce(system, arrivals, tag)
    return arrivals


def wait_for(check: Any, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return bool(check())


def run_inbound(system: LocalSystem, timings: Timings, arrivals: list[Arrival]) -> dict[str, Any]:
    announce(system, arrivals, "bench")
    ids = [a.whatsapp_id for a in arrivals]
    wait_for(lambda: all(i in timings.media for i in ids), 600)
    media_latency = [timings.media_at[a.whatsapp_id] - a.arrived_at for a in arrivals if a.whatsapp_id in timings.media]
    received_latency = [
        timings.received[a.whatsapp_id] - a.arrived_at for a in arrivals if a.whatsapp_id in timings.received
    ]
    first = min(a.arrived_at for a in arrivals)
    last = max((timings.media_at[i] for i in ids if i in timings.media_at), default=first)
    total = sum(a.image.size for a in arrivals)
    wrong = [
        a.whatsapp_id
        for a in arrivals
        if (found := timings.media.get(a.whatsapp_id)) is None
        or found["status"] != "available"
        or found["size"] != a.image.size
        or found["sha256"] != a.sha256
    ]
    return {
        "arrivals": arrivals,
        "bytes": total,
        "seconds": last - first,
        "mb_per_s": total / MB / (last - first),
        "media_p50_ms": quantile(media_latency, 0.5) * 1000,
        "media_p99_ms": quantile(media_latency, 0.99) * 1000,
        "received_p50_ms": quantile(received_latency, 0.5) * 1000,
        "received_p99_ms": quantile(received_latency, 0.99) * 1000,
        "announced": len(media_latency),
        "received": len(received_latency),
        "wrong_or_missing": wrong,
        "fetched_back_ok": fetch_back(arrivals, timings),
    }


def fetch_back(arrivals: list[Arrival], timings: Timings) -> tuple[int, int]:
    """A sample of the presigned URLs, fetched as a tenant would: (matching sha256, tried)."""
    sample = random.Random(7).sample(arrivals, min(FETCH_BACK_SAMPLE, len(arrivals)))
    ok = 0
    with httpx.Client(timeout=60) as http:
        for arrival in sample:
            media = timings.media.get(arrival.whatsapp_id)
            if media and media.get("url"):
                body = http.get(media["url"]).content
                ok += hashlib.sha256(body).hexdigest() == arrival.sha256
    return ok, len(sample)


# --- baseline: the same bytes out of a page and into S3, nothing else --------------------------------------------
async def put_baseline_object(key: str, data: bytes, sha256: str) -> bool:
    """A baseline's put, with the worker's client settings (SSE, content type); True if the bytes were intact."""
    await asyncio.to_thread(
        aws.s3().put_object,
        Bucket=get_settings().media_bucket,
        Key=key,
        Body=data,
        ContentType="image/jpeg",
        ServerSideEncryption="AES256",
    )
    return hashlib.sha256(data).hexdigest() == sha256


async def run_baseline(system: LocalSystem, arrivals: list[Arrival]) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    before_launch = set(descendants(os.getpid()))
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=get_settings().chromium_path, args=get_settings().chromium_args
        )
        page = await browser.new_page()
        await page.goto(system.simulator_url + "/api/media/none")  # any page of the simulator's origin
        cdp = await page.context.new_cdp_session(page)
        slots = asyncio.Semaphore(BASELINE_AT_ONCE)
        browser_pids = [p for p in descendants(os.getpid()) if p not in before_launch]
        browser_cpu_start = browser_cpu(browser_pids)

        async def move(arrival: Arrival) -> bool:
            async with slots:
                url = "'/api/media/' + encodeURIComponent(" + json.dumps(arrival.whatsapp_id) + ")"
                data, _type = await read_blob(cdp, f"fetch({url}).then((r) => r.blob())")
                return await put_baseline_object(f"bench-baseline/{arrival.image.index}", data, arrival.sha256)

        started = time.time()
        correct = await asyncio.gather(*[move(a) for a in arrivals])
        seconds = time.time() - started
        # Its browser's CPU, read before it exits (a process gone from /proc is no longer counted anywhere).
        browser_used = cpu_used(browser_cpu_start, browser_cpu(browser_pids))
        await browser.close()
    return baseline_result(arrivals, seconds, sum(correct), browser_used)


def baseline_result(
    arrivals: list[Arrival], seconds: float, correct: int, browser_used: dict[str, float]
) -> dict[str, Any]:
    total = sum(a.image.size for a in arrivals)
    return {
        "bytes": total,
        "seconds": seconds,
        "mb_per_s": total / MB / seconds,
        "correct": correct,
        "browser_cpu_s": browser_used,
    }


PAGE_BASELINE_PHONE_PREFIX = "62899800"
PAGE_BASELINE_TAG = "page-baseline"
NEW_MEDIA_MESSAGES_JS = """() => WPP.on('chat.new_message', (msg) => {
  if (msg.mediaData && !msg.id.fromMe) window.benchNewMedia(msg.id._serialized, msg.caption);
})"""


async def link_page(browser: Any, http: httpx.AsyncClient, url: str, phone: str) -> Any:
    """A fresh context on the simulator's WhatsApp page, linked to `phone` by scanning its QR as a phone would."""
    page = await (await browser.new_context()).new_page()
    await page.goto(url)
    deadline = time.monotonic() + 60
    while True:  # the QR turns over every few seconds: one read just before it did is no longer shown (404)
        code = await page.wait_for_function(
            "async () => { const c = window.WPP && await WPP.conn.getAuthCode(); return c && c.fullCode; }",
            timeout=60_000,
        )
        scanned = await http.post("/control/scan", json={"qr": await code.json_value(), "phone": phone})
        if scanned.status_code != 404 or time.monotonic() > deadline:
            scanned.raise_for_status()
            break
        await asyncio.sleep(0.5)
    await page.wait_for_function("() => WPP.conn.isAuthenticated() && WPP.conn.isMainReady()", timeout=60_000)
    return page


async def run_page_baseline(system: LocalSystem, images: list[Image], sessions: int) -> dict[str, Any]:
    """The same bytes out of WhatsApp's own page and into S3, with no gateway logic: `sessions` linked pages of the
    simulator in a browser of the bench's own (the same Chromium build), each message taken, stored and fired by
    the page as wa-js does, and each media message's bytes read with `WPP.chat.downloadMedia` and the worker
    driver's `read_blob`, then put to S3 with the same client settings, 4 at a time. No worker, outbox, events,
    ingest or delivery. The page's own work per message is WhatsApp Web's, which every way of getting the bytes
    out of WhatsApp pays; the blank-page baseline (run_baseline) does none of it."""
    from playwright.async_api import async_playwright

    phones = [f"{PAGE_BASELINE_PHONE_PREFIX}{i:04d}" for i in range(sessions)]
    arrivals = stage(system, phones, images)  # before the clock starts, as for the gateway's rounds
    by_caption = {f"{PAGE_BASELINE_TAG} {a.image.index}": a for a in arrivals}
    moved: list[bool] = []
    done = asyncio.Event()
    before_launch = set(descendants(os.getpid()))
    async with async_playwright() as playwright, httpx.AsyncClient(base_url=system.simulator_url, timeout=60) as http:
        browser = await playwright.chromium.launch(
            executable_path=get_settings().chromium_path, args=get_settings().chromium_args
        )
        pages = await asyncio.gather(*[link_page(browser, http, system.simulator_url + "/", p) for p in phones])
        cdps = [await page.context.new_cdp_session(page) for page in pages]
        slots = asyncio.Semaphore(BASELINE_AT_ONCE)
        tasks: set[asyncio.Task[None]] = set()

        async def move(cdp: Any, message_id: str, caption: str) -> None:
            async with slots:
                arrival = by_caption[caption]
                try:
                    data, _type = await read_blob(cdp, f"WPP.chat.downloadMedia({json.dumps(message_id)})")
                    intact = await put_baseline_object(
                        f"bench-page-baseline/{arrival.image.index}", data, arrival.sha256
                    )
                except Exception as exc:  # counted as not moved, so the run ends and its check fails, not its timeout
                    print(f"page baseline: image {arrival.image.index} not moved: {exc!r}", flush=True)
                    intact = False
                moved.append(intact)
                if len(moved) == len(arrivals):
                    done.set()

        def on_new_media(cdp: Any) -> Any:
            def taken(_source: Any, message_id: str, caption: str) -> None:
                task = asyncio.get_running_loop().create_task(move(cdp, message_id, caption))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

            return taken

        for page, cdp in zip(pages, cdps, strict=True):
            await page.expose_binding("benchNewMedia", on_new_media(cdp))
            await page.evaluate(NEW_MEDIA_MESSAGES_JS)
        browser_pids = [p for p in descendants(os.getpid()) if p not in before_launch]
        browser_cpu_start = browser_cpu(browser_pids)
        cpu_start = cpu_by_part(system)
        started = time.time()
        # The announcements from threads, as in the gateway's rounds; a page may fire a message before its
        # announcement is answered, so the bench knows each by its caption.
        await asyncio.to_thread(announce, system, arrivals, PAGE_BASELINE_TAG)
        await asyncio.wait_for(done.wait(), 600)
        seconds = time.time() - started
        system_cpu = cpu_used(cpu_start, cpu_by_part(system))
        browser_used = cpu_used(browser_cpu_start, browser_cpu(browser_pids))
        await browser.close()
    return {**baseline_result(arrivals, seconds, sum(moved), browser_used), "cpu_s": system_cpu}


def browser_cpu(pids: list[int]) -> dict[str, float]:
    """CPU seconds so far of a Playwright driver and its Chromium, by part."""
    return cpu_of(browser_parts(pids))


# --- outbound ------------------------------------------------------------------------------------------------------
def run_outbound(
    system: LocalSystem, api_key: str, timings: Timings, phones: list[str], sends: int, files: list[Image]
) -> dict[str, Any]:
    served = {f"/img-{f.index}.jpg": f.data() for f in files}
    digests = {path: hashlib.sha256(body).hexdigest() for path, body in served.items()}
    server = MediaServer({path: (data, "image/jpeg") for path, data in served.items()})
    with httpx.Client(base_url=system.api_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30) as http:
        session_of = {s["phone"]: s["id"] for s in http.get("/v1/sessions", params={"limit": 100}).json()["items"]}
    accepted: dict[str, float] = {}
    expected: dict[str, tuple[str, str]] = {}  # client id -> (phone, digest)

    def post(index: int) -> None:
        phone = phones[index % len(phones)]
        path = f"/img-{files[index % len(files)].index}.jpg"
        client_id = f"bench-out-{index}"
        expected[client_id] = (phone, digests[path])
        with httpx.Client(base_url=system.api_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30) as h:
            response = h.post(
                f"/v1/sessions/{session_of[phone]}/messages",
                json={
                    "to": "6289990001",
                    "type": "image",
                    "media": {"url": server.url + path},
                    "client_message_id": client_id,
                },
            )
        response.raise_for_status()
        accepted[client_id] = time.time()

    try:
        started = time.time()
        with ThreadPoolExecutor(len(phones)) as pool:
            list(pool.map(post, range(sends)))
        wait_for(lambda: len(timings.sent) + len(timings.failed) >= sends, 600)
    finally:
        server.close()
    latency = [timings.sent_at[c] - accepted[c] for c in accepted if c in timings.sent_at]
    last = max(timings.sent_at.values(), default=started)
    state = httpx.get(system.simulator_url + "/control/state").json()
    got: list[str] = []
    for phone in phones:
        messages = httpx.get(system.simulator_url + "/control/sent", params={"phone": phone}).json()["messages"]
        got += [m["media"]["sha256"] for m in messages if m.get("media")]
    return {
        "sends": sends,
        "sent": len(timings.sent),
        "failed": timings.failed[:5],
        "seconds": last - started,
        "sends_per_s": len(latency) / (last - started),
        "p50_ms": quantile(latency, 0.5) * 1000,
        "p99_ms": quantile(latency, 0.99) * 1000,
        "duplicate_sends": state["stats"]["duplicate_sends"],
        "whatsapp_got_each_once": sorted(got) == sorted(d for _p, d in expected.values()),
    }


# --- the run -------------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2, help="inbound rounds of --images each (memory after each)")
    parser.add_argument("--min-mb", type=float, default=0.5)
    parser.add_argument("--max-mb", type=float, default=2.0)
    parser.add_argument("--sends", type=int, default=200)
    parser.add_argument("--send-files", type=int, default=20, help="distinct images the outbound sends point at")
    parser.add_argument("--auth-strategy", choices=["profile", "context"], default="context")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--page-baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also move the bytes out of linked WhatsApp pages (wa-js downloadMedia) into S3 with no gateway logic",
    )
    add_data_dir_argument(parser)
    args = parser.parse_args()
    # The baselines' Playwright drivers run as the worker's does (session_workers/__main__.py), like for like.
    keep_the_drivers_young_generation_small()
    # The bench's way in to collect the pages' garbage before reading memory (collect_garbage): a debugging port
    # on the worker's one Chromium. `profile` runs a Chromium per session, which cannot all listen on one port
    # (the sessions never became ready with it), so there the pages are not collected.
    port = free_port() if args.auth_strategy == "context" else None
    chromium_args = [*get_settings().chromium_args, *([f"--remote-debugging-port={port}"] if port else [])]
    limits = {"message": {"per_minute": 60_000, "burst": 5_000}}
    options = SystemOptions(
        extra_env={
            "WAGW_THROTTLE_LIMITS": json.dumps({**DEFAULT_LIMITS, **limits}),
            "WAGW_SEND_GAP_MS": "0",
            "WAGW_SEND_JITTER_MS": "0",
            "WAGW_SEND_QUEUE_MAX": str(args.sends + 10),
        },
        ports=Ports.free(workers=1),
        worker_env={"WAGW_CHROMIUM_ARGS": json.dumps(chromium_args)},
        workers=1,
        schedules=False,
        auth_strategy=args.auth_strategy,
        workdir=Path(tempfile.mkdtemp(prefix="wagw-bench-media-")),
    )
    system = LocalSystem(options)
    timings = Timings()
    system.receiver_state.on_event = timings.on_event
    load = LoadSampler().start()
    try:
        system.start()
        demo = system.create_demo_tenant("bench media")
        phones = onboard(system, demo.api_key, args.sessions)
        print(f"{args.sessions} sessions ready on one worker (auth strategy {args.auth_strategy})", flush=True)
        warm = make_images(WARM_UP_IMAGES, args.min_mb, args.max_mb, args.seed + 1)
        warm_ids = [a.whatsapp_id for a in inject(system, phones, warm, "warm")]
        wait_for(lambda: all(i in timings.media for i in warm_ids), 120)
        time.sleep(5)
        memory = [memory_now(system, port)]
        cpu_start = cpu_by_part(system)
        time.sleep(10)
        idle_cpu_s = cpu_used(cpu_start, cpu_by_part(system))  # what 10 s of the system at rest costs
        rounds: list[dict[str, Any]] = []
        for number in range(1, args.rounds + 1):
            images = make_images(args.images, args.min_mb, args.max_mb, args.seed + 10 * (number - 1))
            print(
                f"inbound round {number}: {len(images)} images, {sum(i.size for i in images) / MB:.0f} MiB (worker "
                f"pid {system.processes['worker-a'].pid})",
                flush=True,
            )
            arrivals = stage(system, phones, images)  # before the CPU count starts: WhatsApp's side, not ours
            cpu_start = cpu_by_part(system)
            polled = dict(system.pollers[0].totals)
            rounds.append(run_inbound(system, timings, arrivals))
            rounds[-1]["cpu_s"] = cpu_used(cpu_start, cpu_by_part(system))
            # deliver's invocations: how many records each got (SQS calls and fixed handler work are per batch)
            rounds[-1]["deliver_polls"] = {k: v - polled[k] for k, v in system.pollers[0].totals.items()}
            time.sleep(10)  # let the page's and Python's collectors run before judging memory
            memory.append(memory_now(system, port))
        inbound = rounds[0]
        print("baseline: the same bytes (round 1's) out of a page and into S3", flush=True)
        cpu_start = cpu_by_part(system)
        baseline = asyncio.run(run_baseline(system, inbound["arrivals"]))
        baseline["cpu_s"] = cpu_used(cpu_start, cpu_by_part(system))
        page_baseline = None
        if args.page_baseline:
            print("page baseline: as many images out of WhatsApp's own pages and into S3", flush=True)
            page_images = make_images(args.images, args.min_mb, args.max_mb, args.seed)  # round 1's sizes and bytes
            page_baseline = asyncio.run(run_page_baseline(system, page_images, args.sessions))
        print(f"outbound: {args.sends} image sends by URL", flush=True)
        files = make_images(args.send_files, args.min_mb, args.max_mb, args.seed + 2)
        outbound = run_outbound(system, demo.api_key, timings, phones, args.sends, files) if args.sends else None
        load.stop()
        report(args, rounds, baseline, page_baseline, outbound, memory, idle_cpu_s, timings, load)
    finally:
        load.stop()
        system.stop()


def report(
    args: argparse.Namespace,
    rounds: list[dict[str, Any]],
    baseline: dict[str, Any],
    page_baseline: dict[str, Any] | None,
    outbound: dict[str, Any] | None,
    memory: list[dict[str, Any]],
    idle_cpu_s: dict[str, float],
    timings: Timings,
    load: LoadSampler,
) -> None:
    inbound = rounds[0]
    ratio = inbound["mb_per_s"] / baseline["mb_per_s"]
    before, after = memory[0]["after_gc"], memory[-1]["after_gc"]
    growth = (after["total"] - before["total"]) / before["total"]
    for number, phase in enumerate(rounds, 1):
        print(
            f"inbound round {number} through the gateway: {phase['bytes'] / MB:.0f} MiB in {phase['seconds']:.1f} s "
            f"= {phase['mb_per_s']:.1f} MiB/s; arrival -> message.media at the webhook p50 "
            f"{phase['media_p50_ms']:.0f} ms, p99 {phase['media_p99_ms']:.0f} ms; arrival -> message.received p50 "
            f"{phase['received_p50_ms']:.0f} ms, p99 {phase['received_p99_ms']:.0f} ms"
        )
    print(
        f"baseline (page -> S3, {BASELINE_AT_ONCE} at once, no gateway logic, round 1's images): "
        f"{baseline['seconds']:.1f} s = {baseline['mb_per_s']:.1f} MiB/s; gateway (round 1) / baseline = {ratio:.2f}"
    )
    page_ratio = inbound["mb_per_s"] / page_baseline["mb_per_s"] if page_baseline else None
    if page_baseline is not None:
        print(
            f"page baseline (WhatsApp's page -> S3: {args.sessions} linked pages, wa-js downloadMedia, "
            f"{BASELINE_AT_ONCE} at once, no gateway logic, {args.images} other images of the same sizes): "
            f"{page_baseline['seconds']:.1f} s = {page_baseline['mb_per_s']:.1f} MiB/s; gateway (round 1) / page "
            f"baseline = {page_ratio:.2f}"
        )
    for number, phase in enumerate(rounds, 1):
        polls = phase["deliver_polls"]
        print(
            f"deliver in round {number}: {polls['received']} records in {polls['batches']} invocations "
            f"({polls['received'] / max(1, polls['batches']):.2f} a batch), {polls['empty']} empty receives"
        )
    phases = [(f"inbound round {n}", phase["cpu_s"]) for n, phase in enumerate(rounds, 1)]
    phases += [("baseline", baseline["cpu_s"]), ("10 s at rest before the rounds", idle_cpu_s)]
    if page_baseline is not None:
        phases.append(("page baseline (its browser is in the bench process's line)", page_baseline["cpu_s"]))
    for name, cpu in phases:
        used = ", ".join(f"{part} {seconds:.1f}" for part, seconds in cpu.items() if seconds >= 0.5)
        print(f"CPU seconds during {name}: {used or 'every part under 0.5'}")
    browser = ", ".join(f"{part} {seconds:.1f}" for part, seconds in baseline["browser_cpu_s"].items())
    print(f"  of which the baseline's own browser: {browser}")
    if page_baseline is not None:
        browser = ", ".join(f"{part} {seconds:.1f}" for part, seconds in page_baseline["browser_cpu_s"].items())
        print(f"  of which the page baseline's own browser: {browser}")
    print("worker memory (PSS, MiB; as it is 10 s after a round -> 5 s after a forced GC in the pages and the driver):")
    for index, reading in enumerate(memory):
        label = "after the warm-up" if index == 0 else f"after round {index}"
        print(
            f"  {label}: "
            + "; ".join(
                f"{part} {reading['as_is'][part]:.0f} -> {reading['after_gc'][part]:.0f}" for part in reading["as_is"]
            )
            + f" ({reading['pages_collected']} pages collected; driver "
            + ("collected" if reading.get("driver_collected") else "NOT collected")
            + ")"
        )
    steps = [m["after_gc"]["total"] for m in memory]
    print(
        "  growth after GC, round by round: " + ", ".join(f"{(b - a) / a:+.1%}" for a, b in itertools.pairwise(steps))
    )
    ok_back = sum(phase["fetched_back_ok"][0] for phase in rounds)
    tried_back = sum(phase["fetched_back_ok"][1] for phase in rounds)
    announced = sum(phase["announced"] for phase in rounds)
    received = sum(phase["received"] for phase in rounds)
    wrong = sum(len(phase["wrong_or_missing"]) for phase in rounds)
    expected = args.images * len(rounds)
    checks = {
        f"gateway >= {TARGET_RATIO} of the baseline ({ratio:.2f})": ratio >= TARGET_RATIO,
        f"worker memory after GC within {MEMORY_TOLERANCE:.0%} of before after {len(rounds)} round(s) "
        f"({growth:+.1%})": abs(growth) <= MEMORY_TOLERANCE,
        f"every image announced available with its size and sha256 ({announced}/{expected}, {wrong} wrong or "
        f"missing)": wrong == 0 and announced == expected,
        f"every message.received delivered ({received}/{expected})": received == expected,
        f"presigned URLs give the bytes back ({ok_back}/{tried_back})": ok_back == tried_back,
        f"baseline moved every image intact ({baseline['correct']}/{args.images})": baseline["correct"] == args.images,
        f"no event delivered twice to the receiver ({timings.repeats} repeats)": timings.repeats == 0,
    }
    if page_baseline is not None:
        checks[f"page baseline moved every image intact ({page_baseline['correct']}/{args.images})"] = (
            page_baseline["correct"] == args.images
        )
    if outbound is not None:
        print(
            f"outbound: {outbound['sent']}/{outbound['sends']} sent in {outbound['seconds']:.1f} s = "
            f"{outbound['sends_per_s']:.1f} sends/s; 202 -> message.sent p50 {outbound['p50_ms']:.0f} ms, "
            f"p99 {outbound['p99_ms']:.0f} ms"
        )
        checks[
            f"every send reported sent once ({outbound['sent']}/{outbound['sends']}, failures {outbound['failed']})"
        ] = outbound["sent"] == outbound["sends"] and not outbound["failed"]
        checks[f"WhatsApp got each image once (duplicate sends {outbound['duplicate_sends']})"] = (
            outbound["whatsapp_got_each_once"] and outbound["duplicate_sends"] == 0
        )
    print("checks:")
    for text, ok in checks.items():
        print(f"  [{'OK' if ok else 'FAIL'}] {text}")
    print(load.summary())
    write_data(
        args.data_dir,
        "media",
        {
            "bench": "media",
            "run": load.run_info(),
            "sessions": args.sessions,
            "images": args.images,
            "rounds": len(rounds),
            "size_mb": [args.min_mb, args.max_mb],
            "inbound": [{k: v for k, v in phase.items() if k != "arrivals"} for phase in rounds],
            "baseline": baseline,
            "ratio": ratio,
            "page_baseline": page_baseline,
            "ratio_to_page_baseline": page_ratio,
            "idle_cpu_s": idle_cpu_s,
            "memory_mib": memory,
            "outbound": outbound,
            "checks": [{"check": text, "ok": ok} for text, ok in checks.items()],
        },
    )


if __name__ == "__main__":
    main()
