"""Failover: two workers (separate processes), N ready sessions on A, then a fault: A killed with SIGKILL (its
whole process group, as when an ECS task dies), A stopped with SIGTERM (a deploy), or A's Chromium killed (a browser
crash; A restores its own sessions). Checks: all N ready again within 20 s of the fault, no QR shown, commands sent
during the gap delivered once, no event lost (A's unsent outbox drained). Prints the timeline.

    .venv/bin/python bench/failover.py [--sessions 20] [--strategy profile] [--fault kill|sigterm|browser-crash]
        [--storage-kb 1024] [--no-kms] [--data-dir docs/bench-data]

Archives are sealed with a KMS key on a LocalStack started for the run (unless --no-kms), as in AWS; each linked
page fills `--storage-kb` of IndexedDB (the simulator's model-storage database), a realistic size.

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
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from bench.common import (
    LoadSampler,
    add_data_dir_argument,
    children_of,
    cmdline,
    process_times,
    start_simulated_backends,
    write_data,
)
from session_workers.metrics import descendants, process_name
from shared import redis_keys as keys
from shared.commands import SendTextCommand, enqueue_command
from shared.settings import get_settings
from shared.store.records import SessionRecord
from shared.store.sessions import create_session
from wagw_local.services import aws_test_environment, free_port, start_localstack

TARGET_SECONDS = 20.0


class CpuSampler:
    """CPU-seconds per part of the run, sampled from /proc every half second: each worker's Python, Playwright
    driver (node) and Chromium; this process (the simulator, the ingest stub and the bench); LocalStack; Redis."""

    def __init__(self, workers: dict[str, int]) -> None:
        self.workers = workers  # label -> pid
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._named: dict[int, tuple[str, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def parts(self) -> dict[str, float]:
        table = process_times()
        children = children_of(table)
        found = {"bench (simulator, ingest stub)": table[os.getpid()].cpu_s}
        roots = {pid: label for label, pid in self.workers.items()}
        owner_of = dict(roots)
        for worker, root in self.workers.items():
            owner_of.update({pid: worker for pid in descendants(root, children)})
        for pid in descendants(os.getpid(), children):
            label = owner_of.get(pid)
            name, command = self._names(pid)
            if label is not None:
                kind = "python" if pid in roots else "node" if "node" in name else "chromium"
                key = f"{label} {kind}"
            else:
                key = "localstack" if "localstack" in command else "redis" if "redis" in name else f"other ({name})"
            found[key] = found.get(key, 0.0) + table[pid].cpu_s
        return found

    def _names(self, pid: int) -> tuple[str, str]:
        """A process's name and command line, read once (a pid is not reused within a run)."""
        if pid not in self._named:
            self._named[pid] = (process_name(pid), cmdline(pid))
        return self._named[pid]

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            with contextlib.suppress(Exception):
                self.samples.append((time.time(), self.parts()))

    def start(self) -> CpuSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def between(self, start: float, end: float) -> dict[str, float]:
        """CPU-seconds each part used from the sample nearest before `start` to the first one after `end`. When a
        worker's process ended in between, its parent took over its whole lifetime's CPU (reaped children count
        for their parent): that worker is then reported as one figure over all its processes, which stays right."""
        before = [parts for stamp, parts in self.samples if stamp <= start] or [{}]
        after = [parts for stamp, parts in self.samples if stamp >= end] or [parts for _, parts in self.samples[-1:]]
        first, last = before[-1], (after or [{}])[0]
        used: dict[str, float] = {}
        for label in self.workers:
            keys = {k for k in (*first, *last) if k.startswith(f"{label} ")}
            if any(last.get(k, 0.0) < first.get(k, 0.0) for k in keys):
                used[f"{label} (all its processes)"] = sum(last.get(k, 0.0) - first.get(k, 0.0) for k in keys)
            else:
                used.update({k: last.get(k, 0.0) - first.get(k, 0.0) for k in keys})
        for k in last:
            if not any(k.startswith(f"{label} ") for label in self.workers):
                used[k] = last[k] - first.get(k, 0.0)
        return {k: round(v, 2) for k, v in sorted(used.items()) if v >= 0.01}


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
    parser.add_argument("--fault", choices=("kill", "sigterm", "browser-crash"), default="kill")
    parser.add_argument("--storage-kb", type=int, default=1024, help="IndexedDB each linked page fills")
    parser.add_argument("--no-kms", action="store_true", help="store archives unsealed (no LocalStack)")
    add_data_dir_argument(parser)
    args = parser.parse_args()
    localstack = None
    if not args.no_kms:
        localstack = start_localstack()
        os.environ.update(aws_test_environment(localstack.url))
        os.environ["WAGW_AUTH_KMS_KEY_ID"] = create_archive_key()
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
            (await http.post(sim.url + "control/page", json={"storage_kb": args.storage_kb})).raise_for_status()
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
            archives = await archive_sizes(redis, sids)
            b = start_worker("worker-b", port_b, logdir)
            processes.append(b)
            cpu = CpuSampler({"A": a.pid, "B": b.pid}).start()
            await wait(lambda: healthy(port_b), 60, "worker B ready")
            qrs_before = {s: len(stub.select("session.qr", s)) for s in sids}
            ready_before = {s: stub.statuses(s).count("ready") for s in sids}

            kill_at = time.time()
            fault(a, args.fault)
            if args.fault == "kill":
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
                    lambda: all(stub.statuses(s).count("ready") > ready_before[s] for s in sids), 90, "all ready again"
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
        print(
            f"failover bench: {count} sessions, strategy {args.strategy}, fault {args.fault}, lease TTL "
            f"{settings.lease_ttl_ms} ms, {args.storage_kb} KiB IndexedDB per page, archives "
            f"{'sealed (KMS on LocalStack)' if localstack else 'unsealed'}: {archives['raw_kib']:.0f} KiB raw, "
            f"{archives['stored_kib']:.0f} KiB stored on average"
        )
        print("timeline (relative to the fault):")
        print(f"  {at(kill_at, kill_at)}  {FAULTS[args.fault]}; {len(unsent)} events still in A's outbox")
        print(f"  {at(gap_sent_at, kill_at)}  {count} send_text commands and {count} inbound messages issued")
        print(f"  {at(claims[0], kill_at)}  first restored session starts")
        print(f"  {at(ready_times[0], kill_at)}  first session ready again")
        print(f"  {at(statistics_median(ready_times), kill_at)}  half the sessions ready again")
        print(f"  {at(ready_times[-1], kill_at)}  all {count} sessions ready again")
        print(f"  {at(all_ready_at, kill_at)}  (observed at the ingest stub)")
        print("checks:")
        elapsed = ready_times[-1] - kill_at
        checks = {
            f"all {count} ready again within {TARGET_SECONDS:.0f} s ({elapsed:.1f} s)": elapsed <= TARGET_SECONDS,
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
        cpu.stop()
        cpu_used = cpu.between(kill_at, ready_times[-1]) if ready_times[-1] != float("inf") else {}
        if cpu_used:
            wall = ready_times[-1] - kill_at
            print(f"CPU-seconds from the fault to the last ready ({wall:.1f} s; {os.cpu_count()} cores):")
            for part, seconds in cpu_used.items():
                print(f"  {part:32s} {seconds:7.2f}")
            print(f"  {'total':32s} {sum(cpu_used.values()):7.2f} ({sum(cpu_used.values()) / wall:.2f} cores)")

        def since_kill(stamp: float) -> float | None:
            return round(stamp - kill_at, 3) if stamp != float("inf") else None

        timeline = [
            ("kill", kill_at, f"{FAULTS[args.fault]} ({len(unsent)} events still in its outbox)"),
            ("gap_work_issued", gap_sent_at, f"{count} send_text commands and {count} inbound messages issued"),
            ("first_restore", claims[0] if claims else float("inf"), "first restored session starts"),
            ("first_ready", ready_times[0], "first session ready again"),
            ("half_ready", statistics_median(ready_times), "half the sessions ready again"),
            ("all_ready", ready_times[-1], f"all {count} sessions ready again"),
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
                "fault": args.fault,
                "storage_kb": args.storage_kb,
                "archives": {**archives, "sealed": localstack is not None},
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
                "cpu_seconds_fault_to_last_ready": cpu_used,
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
        if localstack is not None:
            localstack.stop()


FAULTS = {
    "kill": "SIGKILL every process of worker A",
    "sigterm": "SIGTERM to worker A (graceful stop: save, hand over, drain)",
    "browser-crash": "SIGKILL worker A's Chromium processes (A reopens its sessions from their archives)",
}


def fault(worker: subprocess.Popen[bytes], kind: str) -> None:
    """Everything of task A dies at once for `kill`, as when a container is killed (Playwright starts Chromium in
    a process group of its own, so the group kill alone would leave it running)."""
    if kind == "sigterm":
        worker.send_signal(signal.SIGTERM)
        return
    doomed = [worker.pid, *descendants(worker.pid)] if kind == "kill" else chromium_processes(worker.pid)
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def chromium_processes(root: int) -> list[int]:
    found = []
    for pid in descendants(root):
        with contextlib.suppress(OSError):
            if b"chrom" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]:
                found.append(pid)
    return found


def create_archive_key() -> str:
    import boto3

    kms = boto3.client("kms", region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    arn: str = kms.create_key(Description="wagw bench: auth archives")["KeyMetadata"]["Arn"]
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=get_settings().auth_bucket)
    return arn


async def archive_sizes(redis: Redis, sids: list[str]) -> dict[str, float]:
    rows = [await redis.hmget(keys.session_auth(s), ["size", "stored"]) for s in sids]
    return {
        "raw_kib": sum(int(r[0] or 0) for r in rows) / len(rows) / 1024,
        "stored_kib": sum(int(r[1] or 0) for r in rows) / len(rows) / 1024,
        "in_s3": float(sum([await redis.hexists(keys.session_auth(s), "s3_key") for s in sids])),
    }


def statistics_median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


if __name__ == "__main__":
    asyncio.run(main())
