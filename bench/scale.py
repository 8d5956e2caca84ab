"""The control plane at 1,000 sessions: what each session and each message costs as the fleet grows.

20 `python -m session_workers` processes (capacity 55, 50 sessions each at 1,000) on browserless page stand-ins
(WAGW_PAGE=standin, session_workers/standin.py), so what is measured is our own machinery: leases, heartbeats,
claims, command streams, the outbox, ingest, delivery and cleanup. Around them the real local system
(wagw_local.system): redis-server, LocalStack (SQS, EventBridge), the ingest and API apps under uvicorn, the
deliver handler fed real SQS batches (threads of this process), the cleanup schedule, the webhook receiver.

At 100, 250, 500 and 1,000 sessions: Redis commands/s, CPU and memory per session and worker CPU per session when
idle; then 1,000 and 10,000 messages a minute (half inbound from contacts, half sends through the command streams)
with the CPU per message of ingest, deliver, the workers and Redis. At 1,000: a rolling deploy of every worker
(each replaced in turn as ECS does it, a fresh one ready then the old one SIGTERMed: bench/rolling.py's `roll`;
no session may go more than 10 s without a live page, measured from the stand-ins' page log), one worker
SIGKILLed (its sessions ready elsewhere, nothing lost or sent twice), then a claim storm (every worker stopped,
20 fresh ones claim all 1,000). Prints a table, writes docs/bench-data/scale.json and docs/img/scale.png.

Run: flock /tmp/wagw-bench.lock .venv/bin/python bench/scale.py [--workers 20] [--steps 100,250,500,1000]
                                                                [--phases steps,rolling,failover,storm]
                                                                [--sessions-per-worker 50] [--idle-seconds 20]
                                                                [--rates 1000,10000 | --rates '']
     .venv/bin/python bench/scale.py --plot-only   (redraw the picture from the data file)

`--sessions-per-worker 50` sizes the fleet to the sessions at each step instead, as a deployment autoscales it
(2, 5, 10 and 20 workers for 100, 250, 500 and 1,000): workers are added before a step's sessions are created (a
claim takes toward a fair share, so the new ones take the new sessions). The idle figures per session are then given
both gross (the whole control plane's cost over the sessions: what a capacity plan multiplies) and net of the
workers' fixed cost (the no-session baseline scaled by the step's worker count); the data goes to
scale-sized[-<phases>].json and the picture to docs/img/scale-sized.png.

`--phases` runs only some of them (the sessions are still grown to the last step first, without the idle and
traffic windows when `steps` is left out); a partial run writes scale-<phases>.json and draws nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from bench.common import LoadSampler, add_data_dir_argument, write_data
from bench.rolling import TARGET_UNDRIVEN_SECONDS, WorkerProcess, occurred, roll, spread
from shared import redis_keys as keys
from shared.commands import SendTextCommand, enqueue_command
from shared.settings import default_throttle_limits
from shared.store.records import SessionRecord
from shared.store.sessions import create_session
from wagw_local.services import REPO_ROOT
from wagw_local.system import LocalSystem, Ports, SystemOptions

CLK_TCK = os.sysconf("SC_CLK_TCK")
IMG_PATH = REPO_ROOT / "docs" / "img" / "scale.png"
CONTACT = "6289911112222"
SEND_NUMBERS = itertools.count()
TARGETS = {
    "redis_core_share": 0.25,
    "redis_bytes": 1 << 30,
    "flatness": 0.20,
    "failover_s": 20.0,
    "storm_s": 60.0,
    "rolling_undriven_s": TARGET_UNDRIVEN_SECONDS,
}
PHASES = ("steps", "rolling", "failover", "storm")


# CPU and Redis figures --------------------------------------------------------------------------------
def proc_cpu(pid: int, task: int | None = None) -> float:
    """CPU seconds (user + system) of a process, or of one thread of this process."""
    path = f"/proc/{pid}/task/{task}/stat" if task else f"/proc/{pid}/stat"
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and every descendant still alive (LocalStack runs a few)."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += proc_cpu(current)
        with contextlib.suppress(FileNotFoundError):
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(c) for c in children)
    return total


@dataclass
class Reading:
    at: float
    redis_cmds: int
    redis_cpu: float
    redis_mem: int
    workers: float
    ingest: float
    deliver: float
    localstack: float
    bench: float


@dataclass
class Meter:
    system: LocalSystem
    redis: SyncRedis
    worker_pids: dict[str, int] = field(default_factory=dict)

    def read(self) -> Reading:
        stats: Any = self.redis.info("stats")
        cpu: Any = self.redis.info("cpu")
        memory: Any = self.redis.info("memory")
        deliver_threads = [t.native_id for p in self.system.pollers for t in p._threads if t.native_id]
        localstack = next(s for s in self.system.services if s.name == "localstack")
        return Reading(
            at=time.monotonic(),
            redis_cmds=int(stats["total_commands_processed"]),
            redis_cpu=float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]),
            redis_mem=int(memory["used_memory"]),
            workers=sum(proc_cpu(pid) for pid in self.worker_pids.values()),
            ingest=proc_cpu(self.system.processes["ingest"].pid),
            deliver=sum(proc_cpu(os.getpid(), tid) for tid in deliver_threads),
            localstack=tree_cpu(localstack.process.pid),
            bench=proc_cpu(os.getpid()),
        )


# The fleet --------------------------------------------------------------------------------------------
@dataclass
class Fleet:
    system: LocalSystem
    meter: Meter
    workdir: Path
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def spawn(self, wid: str) -> WorkerProcess:
        """One more worker process in the fleet (not waited for)."""
        worker = WorkerProcess.start(wid, self.workdir, env=self.env, cwd=REPO_ROOT)
        self.processes[wid] = worker.process
        self.ports[wid] = worker.port
        self.meter.worker_pids[wid] = worker.process.pid
        return worker

    def forget(self, wid: str) -> None:
        self.processes.pop(wid, None)
        self.ports.pop(wid, None)
        self.meter.worker_pids.pop(wid, None)

    def start(self, worker_ids: list[str]) -> None:
        ports = [self.spawn(wid).port for wid in worker_ids]
        deadline = time.monotonic() + 180
        for port in ports:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                        break
                time.sleep(0.2)
            else:
                raise RuntimeError(f"workers not ready within 180 s (logs in {self.workdir})")

    def kill(self, wid: str) -> None:
        process = self.processes[wid]
        process.kill()
        process.wait(10)
        self.forget(wid)

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(40)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()
        self.ports.clear()
        self.meter.worker_pids.clear()


def control(standin_dir: Path, inbound_per_minute_per_session: float) -> None:
    path = standin_dir / "control.json"
    path.with_suffix(".tmp").write_text(json.dumps({"inbound_per_minute": inbound_per_minute_per_session}))
    path.with_suffix(".tmp").replace(path)


def phone_records(standin_dir: Path) -> Iterator[dict[str, Any]]:
    """Every line of every stand-in process's phone log (session_workers/standin.py, PhoneLog)."""
    for path in standin_dir.glob("phone-*.jsonl"):
        for line in path.read_text().splitlines():
            if line:
                yield json.loads(line)


def phone_log(standin_dir: Path) -> tuple[Counter[str], Counter[str]]:
    """(inbound bodies handed to pages, keys pages sent), each with how many times."""
    inbound: Counter[str] = Counter()
    outbound: Counter[str] = Counter()
    for record in phone_records(standin_dir):
        if record["kind"] in ("in", "out"):
            (inbound if record["kind"] == "in" else outbound)[record["value"]] += 1
    return inbound, outbound


def undriven_gaps(standin_dir: Path, until: float) -> dict[str, list[tuple[float, float]]]:
    """Per session, (start, end) of each stretch with no open page in any worker process (the stand-ins log each
    page's opening and closing); a stretch still open at `until` ends there."""
    changes: dict[str, list[tuple[float, bool]]] = {}
    for record in phone_records(standin_dir):
        if record["kind"] == "page":
            changes.setdefault(record["value"], []).append((record["at"], record["open"]))
    gaps: dict[str, list[tuple[float, float]]] = {}
    for sid, events in changes.items():
        live, since = 0, None
        for at, opened in sorted(events):
            live += 1 if opened else -1
            if live == 0 and since is None:
                since = at
            elif live > 0 and since is not None:
                gaps.setdefault(sid, []).append((since, at))
                since = None
        if since is not None:
            gaps.setdefault(sid, []).append((since, until))
    return gaps


def received(system: LocalSystem, event_type: str) -> list[dict[str, Any]]:
    return [e.body for e in system.receiver_state.of_type(event_type)]


def ready_after(system: LocalSystem, since_wall: float) -> dict[str, float]:
    """Session id -> wall time its first `ready` after `since_wall` reached the tenant's webhook."""
    out: dict[str, float] = {}
    for event in system.receiver_state.of_type("session.status"):
        data = event.body["data"]
        if data.get("status") == "ready" and event.received_at >= since_wall:
            out.setdefault(event.body["session_id"], event.received_at)
    return out


async def statuses(redis: Redis, ids: list[str]) -> list[str]:
    async with redis.pipeline(transaction=False) as pipe:
        for sid in ids:
            pipe.hget(keys.session(sid), "status")
        return [str(s) for s in await pipe.execute()]


async def wait_until(check: Any, within: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(1.0)
    raise RuntimeError(f"timed out after {within:.0f} s waiting for {what}")


# Traffic ----------------------------------------------------------------------------------------------
@dataclass
class Traffic:
    redis: Redis
    sessions: list[str]
    per_minute: float  # sends, over all sessions
    sends: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        if self.per_minute <= 0:
            return
        interval = 60.0 / self.per_minute
        started, issued = time.monotonic(), 0
        while not self.stop.is_set():
            pause = started + issued * interval - time.monotonic()
            if pause > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), pause)
                continue
            n = next(SEND_NUMBERS)  # client message ids never repeat across windows (a repeat is not sent again)
            sid = self.sessions[n % len(self.sessions)]
            client_id = f"scale-{n}"
            command = SendTextCommand(
                session_id=sid, message_id=f"msg_scale_{n}", client_message_id=client_id, to=CONTACT, text=client_id
            )
            await enqueue_command(self.redis, command)
            self.sends.append(client_id)
            issued += 1


def per(value: float, count: float) -> float:
    return value / count if count else float("nan")


async def idle_window(meter: Meter, sessions: int, seconds: float) -> dict[str, Any]:
    before = meter.read()
    await asyncio.sleep(seconds)
    after = meter.read()
    span = after.at - before.at
    return {
        "seconds": round(span, 1),
        "workers": len(meter.worker_pids),
        "redis_commands_per_s": round((after.redis_cmds - before.redis_cmds) / span, 1),
        "redis_commands_per_s_per_session": round((after.redis_cmds - before.redis_cmds) / span / sessions, 3),
        "redis_core_share": round((after.redis_cpu - before.redis_cpu) / span, 4),
        "redis_core_share_per_session": (after.redis_cpu - before.redis_cpu) / span / sessions,
        "redis_used_memory": after.redis_mem,
        "worker_core_share": round((after.workers - before.workers) / span, 4),
        "worker_core_share_per_session": (after.workers - before.workers) / span / sessions,
        "worker_rss_bytes": sum(rss_bytes(pid) for pid in meter.worker_pids.values()),
    }


async def flow_window(
    system: LocalSystem,
    meter: Meter,
    redis: Redis,
    standin_dir: Path,
    sessions: list[str],
    per_minute: float,
    seconds: float,
    idle: dict[str, Any],
) -> dict[str, Any]:
    """`per_minute` messages (half inbound, half sends) for `seconds`; CPU until every one reached the webhook.
    The workers' and Redis's CPU per message is also given net of their idle cost over the same span."""
    inbound_before, _ = phone_log(standin_dir)
    got_in = {e["data"]["body"] for e in received(system, "message.received")}
    got_out = {e["data"]["client_message_id"] for e in received(system, "message.sent")}
    traffic = Traffic(redis, sessions, per_minute / 2)
    before = meter.read()
    control(standin_dir, per_minute / 2 / len(sessions))
    sender = asyncio.create_task(traffic.run())
    await asyncio.sleep(seconds)
    control(standin_dir, 0)
    traffic.stop.set()
    await sender
    offered_s = time.monotonic() - before.at
    await asyncio.sleep(1.5)  # the stand-ins flush their phone logs every second
    inbound_after, _ = phone_log(standin_dir)
    inbound = set(inbound_after) - set(inbound_before)
    sends = set(traffic.sends)

    async def all_arrived() -> bool:
        bodies = {e["data"]["body"] for e in received(system, "message.received")} - got_in
        clients = {e["data"]["client_message_id"] for e in received(system, "message.sent")} - got_out
        return inbound <= bodies and sends <= clients

    drained = True
    try:
        await wait_until(all_arrived, 120, "every message at the webhook")
    except RuntimeError:
        drained = False
    after = meter.read()
    bodies = {e["data"]["body"] for e in received(system, "message.received")} - got_in
    clients = {e["data"]["client_message_id"] for e in received(system, "message.sent")} - got_out
    delivered = len(inbound & bodies) + len(sends & clients)
    messages = len(inbound) + len(sends)
    span = after.at - before.at
    return {
        "per_minute_offered": per_minute,
        "inbound": len(inbound),
        "sends": len(sends),
        "delivered": delivered,
        "all_delivered": drained,
        "achieved_per_minute": round(messages / offered_s * 60, 1),
        "seconds_until_all_delivered": round(span, 1),
        "cpu_ms_per_message": {
            "ingest": round(per(after.ingest - before.ingest, messages) * 1000, 3),
            "deliver": round(per(after.deliver - before.deliver, messages) * 1000, 3),
            "workers": round(per(after.workers - before.workers, messages) * 1000, 3),
            "redis": round(per(after.redis_cpu - before.redis_cpu, messages) * 1000, 3),
            "localstack": round(per(after.localstack - before.localstack, messages) * 1000, 3),
            "bench_process": round(per(after.bench - before.bench, messages) * 1000, 3),
            "workers_net_of_idle": round(
                per(after.workers - before.workers - idle["worker_core_share"] * span, messages) * 1000, 3
            ),
            "redis_net_of_idle": round(
                per(after.redis_cpu - before.redis_cpu - idle["redis_core_share"] * span, messages) * 1000, 3
            ),
        },
        "redis_commands_per_message": round(per(after.redis_cmds - before.redis_cmds, messages), 1),
    }


# Phases -----------------------------------------------------------------------------------------------
async def grow(redis: Redis, system: LocalSystem, workspace_id: str, ids: list[str], total: int) -> float:
    started = time.monotonic()
    for index in range(len(ids), total):
        sid = f"sess_scale_{index:05d}"
        await create_session(redis, SessionRecord(id=sid, workspace_id=workspace_id))
        ids.append(sid)

    async def all_ready() -> bool:
        return all(s == "ready" for s in await statuses(redis, ids))

    await wait_until(all_ready, 180, f"{total} sessions ready")
    return time.monotonic() - started


@dataclass
class TrafficDuringFault:
    """Messages flowing both ways (5 s before a fault to 5 s after it), and what had arrived before they began."""

    system: LocalSystem
    standin_dir: Path
    traffic: Traffic
    sender: asyncio.Task[None]
    got_out: set[str]
    got_in: set[str]
    inbound_before: Counter[str]
    keys_before: Counter[str]

    @classmethod
    async def start(
        cls, system: LocalSystem, redis: Redis, standin_dir: Path, sessions: list[str], per_minute: float
    ) -> TrafficDuringFault:
        got_out = {e["data"]["client_message_id"] for e in received(system, "message.sent")}
        got_in = {e["data"]["body"] for e in received(system, "message.received")}
        inbound_before, keys_before = phone_log(standin_dir)
        traffic = Traffic(redis, sessions, per_minute / 2)
        control(standin_dir, per_minute / 2 / len(sessions))
        sender = asyncio.create_task(traffic.run())
        await asyncio.sleep(5)
        return cls(system, standin_dir, traffic, sender, got_out, got_in, inbound_before, keys_before)

    async def finish(self) -> dict[str, Any]:
        await asyncio.sleep(5)
        control(self.standin_dir, 0)
        self.traffic.stop.set()
        await self.sender
        return await traffic_outcome(
            self.system, self.standin_dir, self.traffic, self.got_out, self.got_in, self.inbound_before,
            self.keys_before,
        )  # fmt: skip


async def rolling_deploy(
    system: LocalSystem, fleet: Fleet, redis: Redis, standin_dir: Path, sessions: list[str], per_minute: float
) -> dict[str, Any]:
    """Every worker replaced in turn while messages flow (bench/rolling.py's `roll`: a fresh worker started and
    ready, then the old one SIGTERMed, which hands its sessions over, then every session owned again)."""
    flow = await TrafficDuringFault.start(system, redis, standin_dir, sessions, per_minute)
    began = time.time()
    old = [WorkerProcess(wid, fleet.ports[wid], fleet.processes[wid]) for wid in sorted(fleet.processes)]
    async with httpx.AsyncClient(timeout=5) as http:
        steps = await roll(
            redis,
            http,
            old,
            "term",
            fleet.workdir,
            sessions,
            start=lambda _, worker: fleet.spawn(f"{worker.worker_id}-r"),
            exited=lambda worker: fleet.forget(worker.worker_id),
        )
    ended = time.time()
    outcome = await flow.finish()
    await asyncio.sleep(1.5)  # the last page events are in the logs
    gaps = {
        sid: [(a, b) for a, b in found if b > began]
        for sid, found in undriven_gaps(standin_dir, time.time()).items()
        if sid in set(sessions)
    }
    longest = [max([b - a for a, b in gaps.get(sid, [])] or [0.0]) for sid in sessions]
    handed = [sid for step in steps for sid in step["held"]]
    readies: dict[str, list[float]] = {}
    for event in system.receiver_state.of_type("session.status"):
        if event.body["data"].get("status") == "ready":
            readies.setdefault(event.body["session_id"], []).append(occurred(event.body))
    stop_to_ready = [
        min([t for t in readies.get(sid, []) if t > step["stopped_at"]] or [float("inf")]) - step["stopped_at"]
        for step in steps
        for sid in step["held"]
    ]
    loads = {wid: int(await redis.scard(keys.worker_sessions(wid))) for wid in fleet.processes}  # type: ignore[misc]
    return {
        "workers_replaced": len(steps),
        "seconds": round(ended - began, 1),
        "sessions_handed_over": len(handed),
        "undriven_longest_s": {k: round(v, 2) for k, v in spread(longest).items()},
        "sessions_undriven_over_target": sum(1 for v in longest if v > TARGET_UNDRIVEN_SECONDS),
        "stop_to_ready_s": {k: round(v, 2) for k, v in spread(stop_to_ready).items()},
        "exit_after_sigterm_s": spread([step["exited_at"] - step["stopped_at"] for step in steps]),
        "steps": [
            {
                "worker": step["worker"],
                "held": len(step["held"]),
                "exit_s": round(step["exited_at"] - step["stopped_at"], 1),
            }
            for step in steps
        ],
        **outcome,
        "loads_after": loads,
    }


async def traffic_outcome(
    system: LocalSystem,
    standin_dir: Path,
    traffic: Traffic,
    got_out: set[str],
    got_in: set[str],
    inbound_before: Counter[str],
    keys_before: Counter[str],
) -> dict[str, Any]:
    """After a disturbance: every send reported once, every inbound message delivered once, nothing sent twice."""
    sends = set(traffic.sends)
    inbound = set(phone_log(standin_dir)[0] - inbound_before)

    async def all_arrived() -> bool:
        clients = {e["data"]["client_message_id"] for e in received(system, "message.sent")} - got_out
        bodies = {e["data"]["body"] for e in received(system, "message.received")} - got_in
        return sends <= clients and inbound <= bodies

    with contextlib.suppress(RuntimeError):
        await wait_until(all_arrived, 120, "every send reported and every inbound message delivered")
    # A webhook retried is the same event (same id): what counts as twice is two events for one message
    bodies = Counter(
        body
        for body, _ in {(e["data"]["body"], e["id"]) for e in received(system, "message.received")}
        if body in inbound
    )
    clients = Counter(
        client
        for client, _ in {(e["data"]["client_message_id"], e["id"]) for e in received(system, "message.sent")}
        if client in sends
    )
    _, keys_after = phone_log(standin_dir)
    new_keys = keys_after - keys_before
    return {
        "sends": len(sends),
        "sends_reported": len(clients),
        "sends_lost": len(sends - set(clients)),
        "sends_reported_twice": sum(1 for c in clients.values() if c > 1),
        "whatsapp_got_twice": sum(1 for c in new_keys.values() if c > 1),
        "whatsapp_sends": len(new_keys),
        "inbound": len(inbound),
        "inbound_lost": len(inbound - set(bodies)),
        "inbound_delivered_twice": sum(1 for c in bodies.values() if c > 1),
    }


async def failover(
    system: LocalSystem, fleet: Fleet, redis: Redis, standin_dir: Path, sessions: list[str], per_minute: float
) -> dict[str, Any]:
    victim = sorted(fleet.processes)[0]
    owned = [str(s) for s in await redis.smembers(keys.worker_sessions(victim))]  # type: ignore[misc]
    flow = await TrafficDuringFault.start(system, redis, standin_dir, sessions, per_minute)
    killed_at = time.time()
    fleet.kill(victim)

    async def victims_ready() -> bool:
        return set(owned) <= set(ready_after(system, killed_at))

    ready_s = await wait_until(victims_ready, 90, "the killed worker's sessions ready elsewhere")
    outcome = await flow.finish()
    ready = ready_after(system, killed_at)
    times = sorted(ready[s] - killed_at for s in owned)
    loads = {wid: int(await redis.scard(keys.worker_sessions(wid))) for wid in fleet.processes}  # type: ignore[misc]
    return {
        "victim": victim,
        "victim_sessions": len(owned),
        "all_ready_s": round(times[-1], 1),
        "first_ready_s": round(times[0], 1),
        "median_ready_s": round(times[len(times) // 2], 1),
        "wait_observed_s": round(ready_s, 1),
        **outcome,
        "loads_after": loads,
    }


async def claim_storm(
    system: LocalSystem, fleet: Fleet, redis: Redis, sessions: list[str], workers: int
) -> dict[str, Any]:
    """A cold start of the whole fleet: every worker stopped (SIGTERM hands its sessions back to the unowned set),
    the sessions held out of that set while 20 fresh workers start, then all of them unowned at once."""
    await asyncio.to_thread(fleet.stop_all)
    unowned = int(await redis.scard(keys.unowned_sessions()))  # type: ignore[misc]
    await redis.srem(keys.unowned_sessions(), *sessions)  # type: ignore[misc]
    spawned_at = time.time()
    new_ids = [f"storm-{i:02d}" for i in range(workers)]
    await asyncio.to_thread(fleet.start, new_ids)
    workers_up_s = time.time() - spawned_at
    started_at = time.time()
    await redis.sadd(keys.unowned_sessions(), *sessions)  # type: ignore[misc]

    async def all_ready() -> bool:
        return set(sessions) <= set(ready_after(system, started_at))

    await wait_until(all_ready, 180, "every session claimed and ready")
    ready = ready_after(system, started_at)
    times = sorted(ready[s] - started_at for s in sessions)
    loads = {wid: int(await redis.scard(keys.worker_sessions(wid))) for wid in new_ids}  # type: ignore[misc]
    return {
        "unowned_after_stop": unowned,
        "workers_up_s": round(workers_up_s, 1),
        "all_ready_s": round(times[-1], 1),
        "half_ready_s": round(times[len(times) // 2], 1),
        "first_ready_s": round(times[0], 1),
        "loads": loads,
        "most_loaded": max(loads.values()),
        "least_loaded": min(loads.values()),
    }


# Picture ----------------------------------------------------------------------------------------------
IDLE_SERIES = {
    "redis_commands_per_s": ("Redis commands/s", "tab:blue"),
    "redis_core_share": ("Redis CPU", "tab:orange"),
    "redis_used_memory": ("Redis memory", "tab:green"),
    "worker_core_share": ("worker CPU (idle)", "tab:red"),
}
PART_COLORS = {
    "ingest": "tab:blue",
    "deliver": "tab:green",
    "workers_net_of_idle": "tab:red",
    "redis_net_of_idle": "tab:orange",
}


def fleet_size(idle: dict[str, Any], data: dict[str, Any]) -> int:
    """Workers running in an idle window (runs before the sized mode did not record it: a fixed fleet)."""
    return int(idle.get("workers") or data.get("workers") or 20)


# Which no-session costs grow with the fleet: each worker's own loops (claims, heartbeat, outbox) cost commands and
# worker CPU; Redis's CPU and memory at no sessions are the server's own (its cron, its dataset), which a worker's
# few commands a second barely move.
PER_WORKER_BASELINE = {"redis_commands_per_s", "worker_core_share"}


def per_session_net(data: dict[str, Any]) -> dict[str, list[float]]:
    """Each idle cost per session above the fixed cost (the no-session baseline; its per-worker parts scaled by the
    step's worker count when the fleet is sized to the sessions): what a session adds."""
    base = data["baseline_no_sessions"]
    base_workers = fleet_size(base, data)

    def fixed(name: str, step: dict[str, Any]) -> float:
        scale = fleet_size(step["idle"], data) / base_workers if name in PER_WORKER_BASELINE else 1.0
        return float(base[name]) * scale

    return {
        name: [(step["idle"][name] - fixed(name, step)) / step["sessions"] for step in data["steps"]]
        for name in IDLE_SERIES
    }


def per_session_gross(data: dict[str, Any]) -> dict[str, list[float]]:
    """Each idle cost over the sessions, the workers' fixed cost included: what a session costs as deployed."""
    return {name: [step["idle"][name] / step["sessions"] for step in data["steps"]] for name in IDLE_SERIES}


def plot(data: dict[str, Any], out: Path) -> Path:
    """Left: what one session adds at idle (net of the workers' fixed cost), relative to the first step (flat = 1,
    target band +-20 %). Right: CPU per message of each part (workers and Redis net of their idle cost)."""
    figure = Figure(figsize=(10.0, 5.0), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    relative, per_message = figure.subplots(1, 2)
    steps = data["steps"]
    sessions = [step["sessions"] for step in steps]
    sized = data.get("sessions_per_worker")
    series = per_session_gross(data) if sized else per_session_net(data)
    for name, values in series.items():
        label, color = IDLE_SERIES[name]
        relative.plot(sessions, [v / values[0] for v in values], marker="o", color=color, label=label)
    band = (1 - TARGETS["flatness"], 1 + TARGETS["flatness"])
    relative.axhspan(*band, color="tab:gray", alpha=0.15, label="target +-20 %")
    what = "Idle cost per session, workers' fixed cost included" if sized else "Idle cost a session adds"
    relative.set_title(f"{what},\nrelative to {sessions[0]} sessions", fontsize="medium")
    relative.set_ylabel("per-session cost / cost at the first step")
    rates = len(steps[0]["flows"])
    for rate_index, style in list(enumerate(("-", "--")))[:rates]:
        for part, color in PART_COLORS.items():
            values = [step["flows"][rate_index]["cpu_ms_per_message"][part] for step in steps]
            rate = steps[0]["flows"][rate_index]["per_minute_offered"]
            label = f"{part.replace('_net_of_idle', ' (net)')}, {rate:,.0f}/min"
            per_message.plot(sessions, values, style, marker="o", color=color, label=label)
    per_message.set_title("CPU per message (ms)")
    if not rates:
        per_message.text(0.5, 0.5, "no traffic windows in this run", ha="center", transform=per_message.transAxes)
    per_message.set_ylabel("CPU ms per message")
    fleet = f"{sized} sessions per worker" if sized else f"{fleet_size(steps[0]['idle'], data)} workers"
    for axes in (relative, per_message):
        axes.set_xlabel(f"sessions ({fleet})")
        axes.set_ylim(bottom=0)
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize="x-small")
    run = data.get("run", {})
    load = run.get("load_average_1m", {})
    note = f"run {run.get('started_utc', '?')}, load average {load.get('min', 0):.1f}-{load.get('max', 0):.1f}, 2 cores"
    figure.suptitle(f"Control plane cost against sessions (page stand-ins)\n{note}", fontsize="medium")
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100, metadata={"Software": None})
    return out


# Main -------------------------------------------------------------------------------------------------
def start_system(workdir: Path) -> LocalSystem:
    unlimited = {name: {"per_minute": 1_000_000, "burst": 100_000} for name in default_throttle_limits()}
    options = SystemOptions(
        extra_env={"WAGW_THROTTLE_LIMITS": json.dumps(unlimited)},
        ports=Ports.free(workers=0),
        workers=0,
        schedules=True,
        workdir=workdir,
    )
    return LocalSystem(options).start()


async def attempt(phase: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """A phase that fails is recorded as failed; the figures measured before it are kept."""
    try:
        return await phase
    except Exception as exc:
        return {"error": repr(exc)}


async def run(args: argparse.Namespace, system: LocalSystem, workdir: Path, result: dict[str, Any]) -> None:
    standin_dir = workdir / "standin"
    standin_dir.mkdir()
    control(standin_dir, 0)
    demo = system.create_demo_tenant("scale")
    assert system.options.redis_url
    redis = Redis.from_url(system.options.redis_url, decode_responses=True)
    meter = Meter(system, SyncRedis.from_url(system.options.redis_url, decode_responses=True))
    worker_env = {
        **os.environ,
        **system.env,
        "WAGW_PAGE": "standin",
        "WAGW_STANDIN_DIR": str(standin_dir),
        "WAGW_WORKER_CAPACITY": str(args.capacity),
        # Anti-ban pacing spaces one session's sends seconds apart; it is not control-plane cost
        "WAGW_SEND_GAP_MS": "0",
        "WAGW_SEND_JITTER_MS": "0",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    fleet = Fleet(system, meter, workdir, worker_env)
    first = fleet_for(args, args.steps[0])
    fleet.start([f"w-{i:02d}" for i in range(first)])
    await asyncio.sleep(5)
    baseline = await idle_window(meter, 1, args.idle_seconds)
    print(
        f"{first} workers up, no sessions: Redis {baseline['redis_commands_per_s']:.0f} commands/s, "
        f"used_memory {baseline['redis_used_memory'] / 2**20:.1f} MiB",
        flush=True,
    )
    sessions: list[str] = []
    steps: list[dict[str, Any]] = []
    result["baseline_no_sessions"] = baseline
    result["steps"] = steps
    if "steps" not in args.phases:
        await asyncio.to_thread(grow_fleet, fleet, fleet_for(args, args.steps[-1]))
        grow_s = await grow(redis, system, demo.workspace_id, sessions, args.steps[-1])
        print(f"{len(sessions)} sessions ready in {grow_s:.1f} s", flush=True)
        await asyncio.sleep(args.settle_seconds)
    for total in args.steps if "steps" in args.phases else []:
        await asyncio.to_thread(grow_fleet, fleet, fleet_for(args, total))
        grow_s = await grow(redis, system, demo.workspace_id, sessions, total)
        await asyncio.sleep(args.settle_seconds)
        idle = await idle_window(meter, total, args.idle_seconds)
        idle["redis_memory_per_session"] = (idle["redis_used_memory"] - baseline["redis_used_memory"]) / total
        flows = []
        for rate in args.rates:
            flows.append(await flow_window(system, meter, redis, standin_dir, sessions, rate, args.flow_seconds, idle))
        step = {"sessions": total, "workers": len(fleet.processes), "grow_s": round(grow_s, 1), "idle": idle}
        step["flows"] = flows
        steps.append(step)
        print_step(step, flush=True)
    if "rolling" in args.phases:
        result["rolling"] = await attempt(rolling_deploy(system, fleet, redis, standin_dir, sessions, args.rates[0]))
        print("rolling deploy:", json.dumps(result["rolling"]), flush=True)
    if "failover" in args.phases:
        result["failover"] = await attempt(failover(system, fleet, redis, standin_dir, sessions, args.rates[0]))
        print("failover:", json.dumps(result["failover"]), flush=True)
    if "storm" in args.phases:
        workers = fleet_for(args, args.steps[-1])
        result["claim_storm"] = await attempt(claim_storm(system, fleet, redis, sessions, workers))
        print("claim storm:", json.dumps(result["claim_storm"]), flush=True)
    await asyncio.to_thread(fleet.stop_all)
    await redis.aclose()


def fleet_for(args: argparse.Namespace, sessions: int) -> int:
    """The workers a step runs: a fixed fleet, or one sized to the sessions as a deployment autoscales it."""
    return math.ceil(sessions / args.sessions_per_worker) if args.sessions_per_worker else args.workers


def grow_fleet(fleet: Fleet, workers: int) -> None:
    """Start workers until the fleet has `workers` (never stops any: the sized steps only grow)."""
    fleet.start([f"w-{i:02d}" for i in range(len(fleet.processes), workers)])


def print_step(step: dict[str, Any], flush: bool = True) -> None:
    idle = step["idle"]
    print(
        f"{step['sessions']:>5} sessions on {idle.get('workers', '?')} workers (ready in {step['grow_s']} s): "
        f"Redis {idle['redis_commands_per_s']:.0f} cmd/s "
        f"({idle['redis_commands_per_s_per_session']:.2f}/session), {idle['redis_core_share'] * 100:.1f} % of a core, "
        f"{idle['redis_used_memory'] / 2**20:.0f} MiB ({idle['redis_memory_per_session'] / 1024:.0f} KiB/session); "
        f"workers idle {idle['worker_core_share'] * 100:.1f} % of a core "
        f"({idle['worker_core_share_per_session'] * 1000:.3f} ms CPU per second per session)",
        flush=flush,
    )
    for flow in step["flows"]:
        print(f"       {flow['per_minute_offered']:>6.0f}/min: {json.dumps(flow)}", flush=flush)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--capacity", type=int, default=55, help="per worker: 50 each at 1,000, room for a failover")
    parser.add_argument("--steps", type=lambda s: [int(x) for x in s.split(",")], default=[100, 250, 500, 1000])
    parser.add_argument(
        "--rates",
        type=lambda s: [float(x) for x in s.split(",") if x],
        default=[1000.0, 10000.0],
        help="messages a minute in each step's traffic windows ('' for none: idle figures only)",
    )
    parser.add_argument(
        "--sessions-per-worker",
        type=int,
        default=0,
        help="size the fleet to each step's sessions (ceil(sessions / this) workers) instead of --workers",
    )
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--settle-seconds", type=float, default=5.0)
    parser.add_argument("--flow-seconds", type=float, default=20.0)
    parser.add_argument(
        "--phases",
        type=lambda s: [p for p in s.split(",") if p],
        default=list(PHASES),
        help=f"which to run, in this order: {','.join(PHASES)}",
    )
    parser.add_argument("--plot-only", action="store_true")
    parser.add_argument("--img", type=Path, help="where to draw the picture (default docs/img/scale[-sized].png)")
    add_data_dir_argument(parser)
    args = parser.parse_args()
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))} (known: {', '.join(PHASES)})")
    name = "scale-sized" if args.sessions_per_worker else "scale"
    img = args.img or (IMG_PATH.with_name(f"{name}.png"))
    if args.plot_only:
        whole_run, steps_only = args.data_dir / f"{name}.json", args.data_dir / f"{name}-steps.json"
        source = whole_run if whole_run.exists() or not steps_only.exists() else steps_only
        print(plot(json.loads(source.read_text()), img))
        return
    workdir = Path(tempfile.mkdtemp(prefix="wagw-bench-scale-"))
    print(f"logs in {workdir}", flush=True)
    sampler = LoadSampler().start()
    result: dict[str, Any] = {}
    system = start_system(workdir)
    try:
        asyncio.run(run(args, system, workdir, result))
    finally:
        system.stop()
        sampler.stop()
        print(sampler.summary())
        data = {
            "run": sampler.run_info(),
            "targets": TARGETS,
            "phases": args.phases,
            "workers": args.workers,
            "sessions_per_worker": args.sessions_per_worker or None,
            **result,
        }
        whole = set(args.phases) == set(PHASES)
        write_data(args.data_dir, name if whole else f"{name}-" + "-".join(args.phases), data)
        if (whole or args.sessions_per_worker) and result.get("steps"):
            print(plot(data, img))


if __name__ == "__main__":
    main()
