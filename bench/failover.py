"""Failover: two workers (separate processes), 20 ready sessions on A, A killed with SIGKILL (its whole process
group, as when an ECS task dies). Checks: all 20 ready on B within 20 s of the kill, no QR shown, commands sent
during the gap delivered once, no event lost (A's unsent outbox drained by B). Prints the timeline.

    .venv/bin/python bench/failover.py [--sessions 20] [--strategy profile] [--data-dir docs/bench-data]

The timeline and each session's restore on B (when B started it, when it was ready) also go to
docs/bench-data/failover.json, which bench/plots.py draws as docs/img/failover-timeline.png.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from bench.common import LoadSampler, add_data_dir_argument, start_simulated_backends, write_data
from session_workers.metrics import descendants
from shared import redis_keys as keys
from shared.commands import SendTextCommand, enqueue_command
from shared.settings import get_settings
from shared.store.records import SessionRecord
from shared.store.sessions import create_session
from wagw_local.services import free_port

TARGET_SECONDS = 20.0


def at(stamp: float, origin: float) -> str:
    return f"{stamp - origin:+7.2f} s"


def occurred(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00")).timestamp()


async def wait(check: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def start_worker(worker_id: str, port: int, logdir: Path) -> subprocess.Popen[bytes]:
    log = (logdir / f"{worker_id}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "session_workers", "--worker-id", worker_id, "--health-port", str(port)],
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: Chromium dies with it, as in a container
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--strategy", default="profile")
    add_data_dir_argument(parser)
    args = parser.parse_args()
    load = LoadSampler().start()
    count = args.sessions
    logdir = Path(tempfile.mkdtemp(prefix="wagw-failover-"))
    backends = start_simulated_backends(
        {
            "WAGW_AUTH_STRATEGY": args.strategy,
            "WAGW_WORKER_CAPACITY": str(count + 5),
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
    )
    sim, stub = backends.sim, backends.stub
    get_settings.cache_clear()
    settings = get_settings()
    redis = Redis.from_url(backends.redis_server.url, decode_responses=True)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        port_a, port_b = free_port(), free_port()
        a = start_worker("worker-a", port_a, logdir)
        processes.append(a)
        async with httpx.AsyncClient(timeout=10) as http:

            async def healthy(port: int) -> bool:
                try:
                    return (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await wait(lambda: healthy(port_a), 60, "worker A ready")
            sids = [f"fo_{i:02d}" for i in range(count)]
            phones = {sid: f"1555800{i:04d}" for i, sid in enumerate(sids)}
            for sid in sids:
                await create_session(redis, SessionRecord(id=sid, workspace_id="ws_bench"))
            scanned: set[tuple[str, int]] = set()

            async def all_ready() -> bool:
                for sid in sids:
                    if "ready" in stub.statuses(sid):
                        continue
                    qrs = stub.select("session.qr", sid)
                    if qrs and (sid, len(qrs)) not in scanned:
                        scanned.add((sid, len(qrs)))
                        await http.post(
                            sim.url + "control/scan", json={"qr": qrs[-1]["data"]["qr"], "phone": phones[sid]}
                        )
                return all("ready" in stub.statuses(s) for s in sids)

            await wait(all_ready, 300, "all sessions ready on A")
            owners = {sid: await redis.hget(keys.session(sid), "owner") for sid in sids}
            assert set(owners.values()) == {"worker-a"}, owners

            async def all_saved() -> bool:
                return all(await asyncio.gather(*[redis.exists(keys.session_auth(s)) for s in sids]))

            await wait(all_saved, 120, "auth saved for every session")
            b = start_worker("worker-b", port_b, logdir)
            processes.append(b)
            await wait(lambda: healthy(port_b), 60, "worker B ready")
            qrs_before = {s: len(stub.select("session.qr", s)) for s in sids}
            ready_before = {s: stub.statuses(s).count("ready") for s in sids}

            # Kill A (SIGKILL to its process group) and work during the gap
            # Everything of task A dies at once, as when a container is killed (Playwright starts Chromium in a
            # process group of its own, so the group kill alone would leave it running).
            doomed = [a.pid, *descendants(a.pid)]
            kill_at = time.time()
            for pid in doomed:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            a.wait(10)
            unsent = [fields["event"] for _id, fields in await redis.xrange(keys.outbox("worker-a"))]
            for i, sid in enumerate(sids):
                await enqueue_command(
                    redis,
                    SendTextCommand(
                        session_id=sid,
                        message_id=f"msg_gap_{i}",
                        client_message_id=f"gap-{i}",
                        to="15557770001",
                        text=f"gap message {i}",
                    ),
                )
                await http.post(
                    sim.url + "control/inbound",
                    json={"phone": phones[sid], "sender": "15557770001@c.us", "body": f"inbound during gap {i}"},
                )
            gap_sent_at = time.time()

            # B takes over
            with contextlib.suppress(RuntimeError):
                await wait(
                    lambda: all(stub.statuses(s).count("ready") > ready_before[s] for s in sids), 90, "all ready on B"
                )
            all_ready_at = time.time()
            with contextlib.suppress(RuntimeError):  # a shortfall is reported by the checks below
                await wait(lambda: len(stub.select("message.sent")) >= count, 60, "gap messages sent")
                await wait(lambda: len(stub.select("message.received")) >= count, 60, "gap inbound delivered")
            await asyncio.sleep(1)
            # A's outbox (events it wrote but never posted) is drained by B once A counts as dead
            drain_deadline = time.monotonic() + 6 * settings.lease_ttl_ms / 1000 + 10
            while time.monotonic() < drain_deadline and await redis.xlen(keys.outbox("worker-a")) > 0:
                await asyncio.sleep(0.2)
            outbox_left = await redis.xlen(keys.outbox("worker-a"))
            state = (await http.get(sim.url + "control/state")).json()
            sent_bodies = []
            for sid in sids:
                response = await http.get(sim.url + "control/sent", params={"phone": phones[sid]})
                sent_bodies += [m["body"] for m in response.json()["messages"]]

        # Timeline
        def first_after_kill(sid: str, status: str) -> float:
            return min(
                [
                    occurred(e)
                    for e in stub.select("session.status", sid)
                    if e["data"]["status"] == status and occurred(e) > kill_at
                ]
                or [float("inf")]
            )

        ready_by_session = {s: first_after_kill(s, "ready") for s in sids}
        ready_times = sorted(ready_by_session.values())
        claims = sorted(
            occurred(e)
            for s in sids
            for e in stub.select("session.status", s)
            if e["data"]["status"] == "starting" and occurred(e) > kill_at
        )
        new_qrs = sum(len(stub.select("session.qr", s)) - qrs_before[s] for s in sids)
        sent = stub.select("message.sent")
        sent_ids = [e["data"]["client_message_id"] for e in sent]
        received = [e["data"]["body"] for e in stub.select("message.received")]
        delivered_ids = {e["id"] for e in stub.select()}
        lost = [raw for raw in unsent if json.loads(raw)["id"] not in delivered_ids]
        print(f"failover bench: {count} sessions, strategy {args.strategy}, lease TTL {settings.lease_ttl_ms} ms")
        print("timeline (relative to the kill):")
        print(f"  {at(kill_at, kill_at)}  SIGKILL every process of worker A; {len(unsent)} events still in A's outbox")
        print(f"  {at(gap_sent_at, kill_at)}  {count} send_text commands and {count} inbound messages issued")
        print(f"  {at(claims[0], kill_at)}  B starts its first restored session (A's leases lapsed)")
        print(f"  {at(ready_times[0], kill_at)}  first session ready on B")
        print(f"  {at(statistics_median(ready_times), kill_at)}  half the sessions ready on B")
        print(f"  {at(ready_times[-1], kill_at)}  all {count} sessions ready on B")
        print(f"  {at(all_ready_at, kill_at)}  (observed at the ingest stub)")
        print("checks:")
        elapsed = ready_times[-1] - kill_at
        checks = {
            f"all {count} ready on B within {TARGET_SECONDS:.0f} s ({elapsed:.1f} s)": elapsed <= TARGET_SECONDS,
            f"no QR shown ({new_qrs} new QR events)": new_qrs == 0,
            f"gap commands reported sent once ({len(sent_ids)} message.sent, {len(set(sent_ids))} distinct)": sorted(
                sent_ids
            )
            == sorted(f"gap-{i}" for i in range(count)),
            f"WhatsApp got each gap message once (duplicate sends: {state['stats']['duplicate_sends']})": sorted(
                sent_bodies
            )
            == sorted(f"gap message {i}" for i in range(count))
            and state["stats"]["duplicate_sends"] == 0,
            f"inbound during the gap delivered ({len(received)})": sorted(received)
            == sorted(f"inbound during gap {i}" for i in range(count)),
            f"no event lost: A's {len(unsent)} unposted events delivered ({len(lost)} missing, A outbox left "
            f"{outbox_left})": not lost and outbox_left == 0,
            f"never driven twice (simulator conflicts: {state['stats']['conflicts']})": state["stats"]["conflicts"]
            == 0,
        }
        for text, ok in checks.items():
            print(f"  [{'OK' if ok else 'FAIL'}] {text}")
        print(f"worker logs: {logdir}")
        load.stop()
        print(load.summary())

        def since_kill(stamp: float) -> float | None:
            return round(stamp - kill_at, 3) if stamp != float("inf") else None

        timeline = [
            ("kill", kill_at, f"SIGKILL every process of worker A ({len(unsent)} events still in its outbox)"),
            ("gap_work_issued", gap_sent_at, f"{count} send_text commands and {count} inbound messages issued"),
            ("first_restore", claims[0] if claims else float("inf"), "B starts its first restored session"),
            ("first_ready", ready_times[0], "first session ready on B"),
            ("half_ready", statistics_median(ready_times), "half the sessions ready on B"),
            ("all_ready", ready_times[-1], f"all {count} sessions ready on B"),
            ("observed", all_ready_at, "all ready observed at the ingest stub"),
        ]
        write_data(
            args.data_dir,
            "failover",
            {
                "bench": "failover",
                "run": load.run_info(),
                "sessions": count,
                "strategy": args.strategy,
                "lease": {
                    "ttl_ms": settings.lease_ttl_ms,
                    "heartbeat_interval_ms": settings.heartbeat_interval_ms,
                    "safety_margin_ms": settings.lease_safety_margin_ms,
                },
                "target_s": TARGET_SECONDS,
                "timeline": [{"event": e, "t_s": since_kill(t), "label": label} for e, t, label in timeline],
                "per_session": sorted(
                    (
                        {
                            "session": sid,
                            "restore_started_s": since_kill(first_after_kill(sid, "starting")),
                            "ready_s": since_kill(ready_by_session[sid]),
                        }
                        for sid in sids
                    ),
                    key=lambda row: (row["ready_s"] is None, row["ready_s"] or 0.0),
                ),
                "checks": [{"check": text, "ok": ok} for text, ok in checks.items()],
            },
        )
    finally:
        load.stop()
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
        await redis.aclose()
        backends.stop()


def statistics_median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


if __name__ == "__main__":
    asyncio.run(main())
