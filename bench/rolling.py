"""Rolling restart: every worker replaced in turn while tenants send messages and contacts write in, as an ECS deploy
with minimum healthy 100 % does it (a new task started and healthy, then the old one stopped with SIGTERM).

    .venv/bin/python bench/rolling.py [--workers 3] [--sessions 30] [--signal term|kill] [--rate 4]
        [--strategy profile] [--data-dir docs/bench-data]

`--signal kill` stops each old worker with SIGKILL instead (its whole process tree, Chromium included), for
comparison. Real Redis, the WhatsApp Web simulator, the signature-checking ingest stub, worker processes with
production lease timings. Figures:
- per session, the time it was not driven: the simulator samples every 100 ms whether the session's phone has a
  live page logged in (a page counts as live until 1.5 s after its last poll, so gaps read up to 1.5 s short);
  p50 / p99 / max over sessions of the longest gap, and of the total;
- per handed-over session, SIGTERM (or SIGKILL) to `ready` again on the new worker (what the ingest stub saw);
- events lost (contact messages never delivered to ingest, sends never reported), messages WhatsApp got twice,
  QR codes shown. Targets: 0, 0, 0, and no session undriven for more than 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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

TARGET_UNDRIVEN_SECONDS = 10.0
SAMPLE_SECONDS = 0.1
CONTACT = "15557770001"


def occurred(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00")).timestamp()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else 0.0


def spread(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p99": percentile(values, 99), "max": max(values or [0.0])}


async def wait(check: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


@dataclass
class WorkerProcess:
    worker_id: str
    port: int
    process: subprocess.Popen[bytes]

    @classmethod
    def start(
        cls, worker_id: str, logdir: Path, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> WorkerProcess:
        port = free_port()
        log = (logdir / f"{worker_id}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "session_workers", "--worker-id", worker_id, "--health-port", str(port)],
            env=env if env is not None else os.environ.copy(),
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a container
        )
        return cls(worker_id, port, process)

    async def ready(self, http: httpx.AsyncClient) -> bool:
        try:
            return (await http.get(f"http://127.0.0.1:{self.port}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, how: str) -> None:
        if how == "term":
            self.process.send_signal(signal.SIGTERM)
            return
        for pid in [self.process.pid, *descendants(self.process.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@dataclass
class DrivenSampler:
    """Samples, from the simulator's side, which phones have a live page logged in."""

    sim_url: str
    phones: list[str]
    samples: list[tuple[float, frozenset[str]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(timeout=5) as http:
            while not self._stop.is_set():
                at = time.time()
                with contextlib.suppress(httpx.HTTPError):
                    self.samples.append((at, driven_phones(http.get(self.sim_url + "control/state").json())))
                self._stop.wait(SAMPLE_SECONDS)

    def gaps(self, phone: str) -> list[tuple[float, float]]:
        """(start, end) of each stretch during which `phone` had no live page."""
        found: list[tuple[float, float]] = []
        start: float | None = None
        for at, driven in self.samples:
            if phone not in driven and start is None:
                start = at
            elif phone in driven and start is not None:
                found.append((start, at))
                start = None
        if start is not None:
            found.append((start, self.samples[-1][0]))
        return found


def driven_phones(state: dict[str, Any]) -> frozenset[str]:
    live = {c["client_id"] for c in state["clients"] if c["connected"]}
    return frozenset(d["phone"] for d in state["devices"] if d["active_client"] in live)


@dataclass
class Traffic:
    """Tenants sending and contacts writing in, round-robin over the sessions, at `rate` per second each way."""

    redis: Redis
    sim_url: str
    sessions: dict[str, str]  # session id -> phone
    rate: float
    sends: list[str] = field(default_factory=list)  # client_message_id of every send_text command
    inbound: list[str] = field(default_factory=list)  # body of every contact message
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, http: httpx.AsyncClient) -> None:
        order = list(self.sessions.items())
        n = 0
        while not self.stop.is_set():
            sid, phone = order[n % len(order)]
            client_id = f"roll-{n}"
            await enqueue_command(
                self.redis,
                SendTextCommand(
                    session_id=sid, message_id=f"msg_roll_{n}", client_message_id=client_id, to=CONTACT, text=client_id
                ),
            )
            self.sends.append(client_id)
            body = f"inbound {n}"
            response = await http.post(
                self.sim_url + "control/inbound", json={"phone": phone, "sender": f"{CONTACT}@c.us", "body": body}
            )
            if response.status_code == 200:
                self.inbound.append(body)
            n += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), 1 / self.rate)


async def link_sessions(redis: Redis, http: httpx.AsyncClient, sim_url: str, stub: Any, count: int) -> dict[str, str]:
    sessions = {f"roll_{i:02d}": f"1555900{i:04d}" for i in range(count)}
    for sid in sessions:
        await create_session(redis, SessionRecord(id=sid, workspace_id="ws_bench"))
    scanned: set[tuple[str, int]] = set()

    async def all_ready() -> bool:
        for sid, phone in sessions.items():
            qrs = stub.select("session.qr", sid)
            if "ready" not in stub.statuses(sid) and qrs and (sid, len(qrs)) not in scanned:
                scanned.add((sid, len(qrs)))
                await http.post(sim_url + "control/scan", json={"qr": qrs[-1]["data"]["qr"], "phone": phone})
        return all("ready" in stub.statuses(s) for s in sessions)

    await wait(all_ready, 300, "every session linked and ready")

    async def all_saved() -> bool:
        return all(await asyncio.gather(*[redis.exists(keys.session_auth(s)) for s in sessions]))

    await wait(all_saved, 120, "every session's auth saved")
    return sessions


async def owners(redis: Redis, sessions: list[str]) -> list[str | None]:
    """Each session's owner, in one round trip (a thousand sessions are polled every 100 ms)."""
    async with redis.pipeline(transaction=False) as pipe:
        for sid in sessions:
            pipe.hget(keys.session(sid), "owner")
        return list(await pipe.execute())


async def roll(
    redis: Redis,
    http: httpx.AsyncClient,
    workers: list[WorkerProcess],
    how: str,
    logdir: Path,
    sessions: list[str],
    start: Callable[[int, WorkerProcess], WorkerProcess] | None = None,
    exited: Callable[[WorkerProcess], None] | None = None,
) -> list[dict[str, Any]]:
    """Replace each worker in turn: start the new one (`start(index, old)`, by default `worker-<index>-new` here),
    wait until it is ready, stop the old one (then `exited(old)`), wait until every session is owned again.
    Returns what happened at each step."""
    steps = []
    for index, old in enumerate(list(workers)):
        new = start(index, old) if start else WorkerProcess.start(f"worker-{index}-new", logdir)
        workers.append(new)
        await wait(lambda new=new: new.ready(http), 90, f"{new.worker_id} ready")
        held = [s for s, owner in zip(sessions, await owners(redis, sessions), strict=True) if owner == old.worker_id]
        stopped_at = time.time()
        old.stop(how)
        await asyncio.to_thread(old.process.wait, 150)
        exited_at = time.time()
        if exited:
            exited(old)

        async def all_owned(gone: str = old.worker_id) -> bool:
            return all(owner and owner != gone for owner in await owners(redis, sessions))

        with contextlib.suppress(RuntimeError):  # a shortfall shows in the figures
            await wait(all_owned, 60, "every session owned by a live worker")
        steps.append({"worker": old.worker_id, "held": held, "stopped_at": stopped_at, "exited_at": exited_at})
        print(
            f"  {old.worker_id}: {'SIGTERM' if how == 'term' else 'SIGKILL'} with {len(held)} sessions, exited after "
            f"{exited_at - stopped_at:.1f} s",
            flush=True,
        )
    return steps


def back_to_ready(stub: Any, steps: list[dict[str, Any]]) -> list[float]:
    """Seconds from each old worker's stop to each of its sessions' next `ready` (as ingest saw it)."""
    waits = []
    for step in steps:
        for sid in step["held"]:
            readies = [occurred(e) for e in stub.select("session.status", sid) if e["data"]["status"] == "ready"]
            later = [t for t in readies if t > step["stopped_at"]]
            waits.append(min(later) - step["stopped_at"] if later else float("inf"))
    return waits


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--signal", choices=("term", "kill"), default="term")
    parser.add_argument("--rate", type=float, default=4.0, help="sends and contact messages per second, each")
    parser.add_argument("--strategy", default="profile")
    add_data_dir_argument(parser)
    args = parser.parse_args()
    load = LoadSampler().start()
    logdir = Path(tempfile.mkdtemp(prefix="wagw-rolling-"))
    backends = start_simulated_backends(
        {
            "WAGW_AUTH_STRATEGY": args.strategy,
            "WAGW_WORKER_CAPACITY": str(args.sessions),
            "WAGW_STOP_TIMEOUT_SECONDS": "60",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
    )
    sim, stub = backends.sim, backends.stub
    get_settings.cache_clear()
    redis = Redis.from_url(backends.redis_server.url, decode_responses=True)
    workers = [WorkerProcess.start(f"worker-{i}", logdir) for i in range(args.workers)]
    sampler_thread: threading.Thread | None = None
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            for worker in workers:
                await wait(lambda w=worker: w.ready(http), 90, f"{worker.worker_id} ready")
            sessions = await link_sessions(redis, http, sim.url, stub, args.sessions)
            qrs_before = len(stub.select("session.qr"))
            sampler = DrivenSampler(sim.url, list(sessions.values()))
            sampler_thread = threading.Thread(target=sampler.run, daemon=True)
            sampler_thread.start()
            traffic = Traffic(redis, sim.url, sessions, args.rate)
            traffic_task = asyncio.create_task(traffic.run(http))
            await asyncio.sleep(5)  # traffic flowing before the first stop
            print(f"rolling {args.workers} workers ({args.signal}), {args.sessions} sessions, {args.rate}/s each way:")
            steps = await roll(redis, http, workers, args.signal, logdir, list(sessions))
            await asyncio.sleep(5)
            traffic.stop.set()
            await traffic_task
            sent_ids = lambda: {e["data"].get("client_message_id") for e in stub.select("message.sent")}  # noqa: E731
            received = lambda: {e["data"].get("body") for e in stub.select("message.received")}  # noqa: E731
            with contextlib.suppress(RuntimeError):
                await wait(lambda: set(traffic.sends) <= sent_ids() and set(traffic.inbound) <= received(), 90, "all")
            sampler._stop.set()
            state = (await http.get(sim.url + "control/state")).json()
            whatsapp_got: list[str] = []
            for phone in sessions.values():
                response = await http.get(sim.url + "control/sent", params={"phone": phone})
                whatsapp_got += [m["body"] for m in response.json()["messages"]]
        report(args, sampler, sessions, steps, stub, traffic, whatsapp_got, state, qrs_before, load)
    finally:
        load.stop()
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
                try:
                    worker.process.wait(60)
                except subprocess.TimeoutExpired:
                    worker.stop("kill")
        await redis.aclose()
        backends.stop()
    print(f"worker logs: {logdir}")


def report(
    args: argparse.Namespace,
    sampler: DrivenSampler,
    sessions: dict[str, str],
    steps: list[dict[str, Any]],
    stub: Any,
    traffic: Traffic,
    whatsapp_got: list[str],
    state: dict[str, Any],
    qrs_before: int,
    load: LoadSampler,
) -> None:
    longest = {sid: max([b - a for a, b in sampler.gaps(phone)] or [0.0]) for sid, phone in sessions.items()}
    total = {sid: sum(b - a for a, b in sampler.gaps(phone)) for sid, phone in sessions.items()}
    ready_again = back_to_ready(stub, steps)
    sent_ids = [e["data"].get("client_message_id") for e in stub.select("message.sent")]
    received = {e["data"].get("body") for e in stub.select("message.received")}
    lost_sends = sorted(set(traffic.sends) - set(sent_ids))
    lost_inbound = sorted(set(traffic.inbound) - received)
    twice = len(whatsapp_got) - len(set(whatsapp_got)) + state["stats"]["duplicate_sends"]
    new_qrs = len(stub.select("session.qr")) - qrs_before
    worst = max(longest.values())
    figures = {
        "undriven_longest_s": spread(list(longest.values())),
        "undriven_total_s": spread(list(total.values())),
        "stop_to_ready_s": spread(ready_again),
        "sends": len(traffic.sends),
        "inbound": len(traffic.inbound),
        "events_lost": len(lost_sends) + len(lost_inbound),
        "sent_twice": twice,
        "qr_shown": new_qrs,
        "conflicts": state["stats"]["conflicts"],
    }
    gap, whole, ready = figures["undriven_longest_s"], figures["undriven_total_s"], figures["stop_to_ready_s"]
    print(
        f"per session, longest undriven gap: p50 {gap['p50']:.2f} s, p99 {gap['p99']:.2f} s, max {gap['max']:.2f} s "
        f"(total undriven: p50 {whole['p50']:.2f} s, max {whole['max']:.2f} s)"
    )
    print(
        f"stop to ready again ({len(ready_again)} handed-over sessions): p50 {ready['p50']:.2f} s, "
        f"p99 {ready['p99']:.2f} s, max {ready['max']:.2f} s"
    )
    print(
        f"traffic: {len(traffic.sends)} sends, {len(traffic.inbound)} contact messages; lost {len(lost_sends)} sends + "
        f"{len(lost_inbound)} inbound; WhatsApp got {twice} twice; {new_qrs} QR shown; {state['stats']['conflicts']} "
        "conflicts (two pages on one account)"
    )
    checks = {
        f"no session undriven for more than {TARGET_UNDRIVEN_SECONDS:.0f} s (max {worst:.2f} s)": worst
        <= TARGET_UNDRIVEN_SECONDS,
        f"no event lost ({figures['events_lost']})": figures["events_lost"] == 0,
        f"no message sent twice ({twice})": twice == 0,
        f"no QR shown ({new_qrs})": new_qrs == 0,
    }
    for text, ok in checks.items():
        print(f"  [{'OK' if ok else 'FAIL'}] {text}")
    load.stop()
    print(load.summary())
    write_data(
        args.data_dir,
        f"rolling-{args.signal}",
        {
            "bench": "rolling",
            "run": load.run_info(),
            "workers": args.workers,
            "sessions": args.sessions,
            "signal": args.signal,
            "strategy": args.strategy,
            "rate_per_s": args.rate,
            "figures": figures,
            "steps": [{**s, "held": len(s["held"])} for s in steps],
            "per_session": [
                {"session": sid, "longest_undriven_s": round(longest[sid], 3), "total_undriven_s": round(total[sid], 3)}
                for sid in sessions
            ],
            "checks": [{"check": text, "ok": ok} for text, ok in checks.items()],
        },
    )


if __name__ == "__main__":
    asyncio.run(main())
