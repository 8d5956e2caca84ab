"""Sessions per worker on the simulator: memory per session (PSS) for both auth strategies, against the
whatsapp-web.js model (one full Chromium per session), plus time to open and to restore a session.

    .venv/bin/python bench/sessions.py [--sessions 50] [--baseline 10]

PSS is read from /proc/<pid>/smaps_rollup for every Chromium process under this one (shared pages counted
once, split among the processes that map them); summed RSS would count shared pages once per process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

import httpx

from session_workers.metrics import browser_pids, pss_kib
from session_workers.simulator import SimulatorServer
from session_workers.simulator.ingest_stub import IngestStub
from shared.local.services import start_redis

FULL_CHROMIUM = "/usr/lib/chromium/chromium"
SETTLE_SECONDS = 5.0


def browser_pss_mib() -> float:
    return sum(pss_kib(pid) for pid in browser_pids()) / 1024


async def scan_all(sim: SimulatorServer, stub: IngestStub, sids: list[str], phones: dict[str, str]) -> None:
    """Scan each session's newest QR as its phone would, until every one is ready."""
    async with httpx.AsyncClient(timeout=10) as http:
        pending = set(sids)
        deadline = time.monotonic() + 300
        while pending and time.monotonic() < deadline:
            for sid in list(pending):
                if "ready" in stub.statuses(sid):
                    pending.discard(sid)
                    continue
                qrs = stub.select("session.qr", sid)
                if qrs and not getattr(stub, f"_scanned_{sid}_{len(qrs)}", False):
                    setattr(stub, f"_scanned_{sid}_{len(qrs)}", True)
                    await http.post(sim.url + "control/scan", json={"qr": qrs[-1]["data"]["qr"], "phone": phones[sid]})
            await asyncio.sleep(0.2)
        if pending:
            raise RuntimeError(f"{len(pending)} sessions never got ready")


async def run_strategy(strategy: str, count: int, sim: SimulatorServer, stub: IngestStub) -> dict[str, Any]:
    from redis.asyncio import Redis

    from session_workers.worker import Worker
    from shared import redis_keys as keys
    from shared.settings import get_settings
    from shared.store.records import SessionRecord
    from shared.store.sessions import create_session

    os.environ["WAGW_AUTH_STRATEGY"] = strategy
    get_settings.cache_clear()
    settings = get_settings().model_copy(update={"worker_capacity": count + 10})
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    await redis.flushdb()
    worker = Worker(settings.model_copy(update={"worker_id": f"bench-{strategy}-1"}), health_port=None)
    await worker.start()
    sids = [f"bench_{strategy}_{i:03d}" for i in range(count)]
    phones = {sid: f"1555{strategy == 'profile':d}{i:06d}" for i, sid in enumerate(sids)}
    created: dict[str, float] = {}
    started = time.monotonic()
    for sid in sids:
        created[sid] = time.time()
        await create_session(redis, SessionRecord(id=sid, workspace_id="ws_bench"))
    await stub.wait_for(lambda: all(stub.select("session.qr", s) for s in sids), 300, "every QR")
    opened = time.monotonic() - started
    open_each = [stub.select("session.qr", s)[0]["_received_at"] - created[s] for s in sids]
    await scan_all(sim, stub, sids, phones)
    all_ready = time.monotonic() - started

    async def saved() -> bool:
        return all(await asyncio.gather(*[redis.exists(keys.session_auth(s)) for s in sids]))

    while not await saved():
        await asyncio.sleep(0.2)
    await asyncio.sleep(SETTLE_SECONDS)
    pss = browser_pss_mib()
    processes = len(browser_pids())
    # Restore: a graceful stop saves and hands back every session; a new worker restores them all
    await worker.stop()
    ready_before = {s: stub.statuses(s).count("ready") for s in sids}
    qrs_before = {s: len(stub.select("session.qr", s)) for s in sids}
    second = Worker(settings.model_copy(update={"worker_id": f"bench-{strategy}-2"}), health_port=None)
    restore_started = time.monotonic()
    stamp = time.time()
    await second.start()

    def restored() -> bool:
        return all(
            stub.statuses(s).count("ready") > ready_before[s] or len(stub.select("session.qr", s)) > qrs_before[s]
            for s in sids
        )

    await stub.wait_for(restored, 300, "every session restored")
    restore_all = time.monotonic() - restore_started
    without_qr = sum(stub.statuses(s).count("ready") > ready_before[s] for s in sids)
    restore_each = [
        min([e["_received_at"] for e in stub.select("session.status", s) if e["_received_at"] > stamp] + [float("inf")])
        for s in sids
    ]
    ready_each = [
        next(
            (
                e["_received_at"]
                for e in stub.select("session.status", s)
                if e["_received_at"] > stamp and e["data"]["status"] == "ready"
            ),
            None,
        )
        for s in sids
    ]
    await second.stop()
    await redis.aclose()
    first_seen = [r for r in restore_each if r != float("inf")]
    return {
        "strategy": strategy,
        "sessions": count,
        "pss_total_mib": pss,
        "pss_per_session_mib": pss / count,
        "browser_processes": processes,
        "open_all_s": opened,
        "open_median_s": statistics.median(open_each),
        "ready_all_s": all_ready,
        "restore_all_s": restore_all,
        "restored_without_qr": without_qr,
        "restore_ready_median_s": statistics.median([r - stamp for r in ready_each if r]) if any(ready_each) else None,
        "restore_first_event_median_s": statistics.median([r - stamp for r in first_seen]) if first_seen else None,
    }


async def run_baseline(count: int, sim: SimulatorServer) -> dict[str, Any]:
    """The whatsapp-web.js model: one full Chromium (and profile) per session."""
    import tempfile

    from playwright.async_api import async_playwright

    contexts = []
    async with async_playwright() as pw, httpx.AsyncClient(timeout=10) as http:
        started = time.monotonic()
        for i in range(count):
            directory = tempfile.mkdtemp(prefix="wagw-baseline-")
            context = await pw.chromium.launch_persistent_context(
                directory, executable_path=FULL_CHROMIUM, headless=True, args=["--disable-quic"]
            )
            page = await context.new_page()
            await page.goto(sim.url)
            await page.wait_for_function("window.WPP && WPP.conn.getStreamData().mode === 'QR'")
            client = await page.evaluate("async () => (await WPP.conn.getAuthCode()).fullCode")
            await http.post(sim.url + "control/scan", json={"qr": client, "phone": f"1555900{i:04d}"})
            await page.wait_for_function("WPP.conn.isMainReady()")
            contexts.append(context)
        ready_all = time.monotonic() - started
        await asyncio.sleep(SETTLE_SECONDS)
        pss = browser_pss_mib()
        processes = len(browser_pids())
        for context in contexts:
            await context.close()
    return {
        "strategy": "baseline (full Chromium per session)",
        "sessions": count,
        "pss_total_mib": pss,
        "pss_per_session_mib": pss / count,
        "browser_processes": processes,
        "ready_all_s": ready_all,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--baseline", type=int, default=10)
    parser.add_argument("--strategies", default="context,profile")
    args = parser.parse_args()
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    redis_server = start_redis()
    sim = SimulatorServer(qr_interval_ms=60_000).start()
    stub = IngestStub().start()
    os.environ.update(
        {
            "WAGW_REDIS_URL": redis_server.url,
            "WAGW_WHATSAPP_URL": sim.url,
            "WAGW_INGEST_URL": stub.url,
            "WAGW_AUTH_BACKUP_INTERVAL_SECONDS": "600",
        }
    )
    results = []
    try:
        for strategy in args.strategies.split(","):
            results.append(await run_strategy(strategy, args.sessions, sim, stub))
            print(results[-1], flush=True)
        baseline = await run_baseline(args.baseline, sim)
        print(baseline, flush=True)
    finally:
        stub.stop()
        sim.stop()
        redis_server.stop()
    base = baseline["pss_per_session_mib"]
    targets = {"context": 35.0, "profile": 100.0}
    ratios = {"context": 0.2, "profile": 0.5}
    print()
    print(f"{'model':40} {'sessions':>8} {'PSS total MiB':>14} {'MiB/session':>12} {'x baseline':>10} {'target':>22}")
    for row in results:
        target = f"<= {targets[row['strategy']]:.0f} MiB, <= {ratios[row['strategy']]}x"
        ratio = row["pss_per_session_mib"] / base
        ok = row["pss_per_session_mib"] <= targets[row["strategy"]] and ratio <= ratios[row["strategy"]]
        print(
            f"{row['strategy']:40} {row['sessions']:>8} {row['pss_total_mib']:>14.0f} "
            f"{row['pss_per_session_mib']:>12.1f} {ratio:>10.2f} {target:>18} {'OK' if ok else 'MISS'}"
        )
    print(
        f"{baseline['strategy']:40} {baseline['sessions']:>8} {baseline['pss_total_mib']:>14.0f} "
        f"{base:>12.1f} {1.0:>10.2f}"
    )
    print()
    for row in results:
        print(
            f"{row['strategy']}: all {row['sessions']} QR shown in {row['open_all_s']:.1f} s "
            f"(median open {row['open_median_s']:.2f} s), all ready in {row['ready_all_s']:.1f} s; "
            f"restore of all: {row['restore_all_s']:.1f} s, ready without QR: {row['restored_without_qr']}/"
            f"{row['sessions']}, median to ready {row['restore_ready_median_s']}, "
            f"median to first event {row['restore_first_event_median_s']}"
        )


if __name__ == "__main__":
    asyncio.run(main())
