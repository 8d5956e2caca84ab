"""Sessions per worker on the simulator: memory per session (PSS) for both auth strategies, against the
whatsapp-web.js model (one full Chromium per session), plus time to open and to restore a session.

    .venv/bin/python bench/sessions.py [--sessions 50] [--baseline 10] [--step 10] [--baseline-step 2]
                                       [--storage-kb 1024] [--timed 10] [--data-dir docs/bench-data]

Each linked page fills `--storage-kb` of IndexedDB (the simulator's model-storage database). Per strategy, the
save (capture/archive, compress, store) and the restore (a fresh context or profile from the archive, before the
page loads) are timed one session at a time for `--timed` sessions, and the archive sizes (raw, stored) and the
memory once every session was restored on the second worker are reported.

PSS is read from /proc/<pid>/smaps_rollup for every Chromium process under this one (shared pages counted
once, split among the processes that map them); summed RSS would count shared pages once per process.

For the memory curve (docs/img/memory-per-session.png, drawn by bench/plots.py from
docs/bench-data/sessions.json), a second pass per strategy opens the sessions `--step` at a time and samples
PSS each time a step is ready and settled (10, 20, ... 50); the baseline is sampled every `--baseline-step`
sessions as it opens them one after the other. The first pass (all sessions started at once) gives the
timings and the table's figures, as before.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

import httpx

from bench.common import LoadSampler, add_data_dir_argument, start_simulated_backends, write_data
from session_workers.metrics import browser_pids, pss_kib
from session_workers.simulator import SimulatorServer
from session_workers.simulator.ingest_stub import IngestStub

FULL_CHROMIUM = "/usr/lib/chromium/chromium"
SETTLE_SECONDS = 5.0


def browser_pss_mib() -> float:
    return sum(pss_kib(pid) for pid in browser_pids()) / 1024


def memory_point(sessions: int, elapsed: float) -> dict[str, Any]:
    pss = browser_pss_mib()
    point = {
        "sessions": sessions,
        "pss_total_mib": round(pss, 1),
        "pss_per_session_mib": round(pss / sessions, 2),
        "browser_processes": len(browser_pids()),
        "elapsed_s": round(elapsed, 1),
    }
    print(f"  {point}", flush=True)
    return point


async def no_browsers_left(within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while browser_pids() and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    if browser_pids():
        raise RuntimeError(f"{len(browser_pids())} browser processes still alive after the worker stopped")


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


async def run_strategy(
    strategy: str, count: int, sim: SimulatorServer, stub: IngestStub, timed: int = 10
) -> dict[str, Any]:
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
    archive = await time_save_and_restore(worker, redis, sids[:timed])
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
    await asyncio.sleep(SETTLE_SECONDS)
    pss_restored = browser_pss_mib()
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
        "pss_restored_total_mib": pss_restored,
        "pss_restored_per_session_mib": pss_restored / count,
        **archive,
    }


async def time_save_and_restore(worker: Any, redis: Any, sids: list[str]) -> dict[str, Any]:
    """One session at a time: a forced save (capture, compress, store), then a restore of its archive into a
    fresh context or profile (what a new owner does before the page loads), closed again."""
    from shared import redis_keys as keys

    saves, restores = [], []
    for sid in sids:
        session = worker.sessions[sid]
        began = time.perf_counter()
        await session.backup(force=True)
        saves.append(time.perf_counter() - began)
        archive = await worker.auth.load(sid)
        began = time.perf_counter()
        browser = await worker.host.open(f"timed_{sid}", archive.raw, on_gone=lambda: None)
        restores.append(time.perf_counter() - began)
        await browser.close()
    sizes = [await redis.hmget(keys.session_auth(s), ["size", "stored"]) for s in sids]
    return {
        "save_median_s": statistics.median(saves),
        "restore_open_median_s": statistics.median(restores),
        "archive_raw_kib": statistics.median(int(r[0]) for r in sizes) / 1024,
        "archive_stored_kib": statistics.median(int(r[1]) for r in sizes) / 1024,
    }


async def run_ramp(
    strategy: str, count: int, step: int, sim: SimulatorServer, stub: IngestStub
) -> list[dict[str, Any]]:
    """Memory against the session count: one worker, sessions opened `step` at a time; after each step is
    ready (scanned, auth saved) and has settled, the PSS of every browser process."""
    from redis.asyncio import Redis

    from session_workers.worker import Worker
    from shared import redis_keys as keys
    from shared.settings import get_settings
    from shared.store.records import SessionRecord
    from shared.store.sessions import create_session

    os.environ["WAGW_AUTH_STRATEGY"] = strategy
    get_settings.cache_clear()
    settings = get_settings().model_copy(update={"worker_capacity": count + 10, "worker_id": f"bench-{strategy}-ramp"})
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    await redis.flushdb()
    await no_browsers_left()
    worker = Worker(settings, health_port=None)
    await worker.start()
    sids = [f"ramp_{strategy}_{i:03d}" for i in range(count)]
    phones = {sid: f"1556{strategy == 'profile':d}{i:06d}" for i, sid in enumerate(sids)}
    points = []
    started = time.monotonic()
    print(f"{strategy}: memory as sessions are added {step} at a time", flush=True)
    try:
        for first in range(0, count, step):
            batch = sids[first : first + step]
            for sid in batch:
                await create_session(redis, SessionRecord(id=sid, workspace_id="ws_bench"))
            await scan_all(sim, stub, batch, phones)

            async def saved(batch: list[str] = batch) -> bool:
                return all(await asyncio.gather(*[redis.exists(keys.session_auth(s)) for s in batch]))

            while not await saved():
                await asyncio.sleep(0.2)
            await asyncio.sleep(SETTLE_SECONDS)
            points.append(memory_point(first + len(batch), time.monotonic() - started))
    finally:
        await worker.stop()
        await redis.flushdb()
        await redis.aclose()
    await no_browsers_left()
    return points


async def run_baseline(count: int, step: int, sim: SimulatorServer) -> dict[str, Any]:
    """The whatsapp-web.js model: one full Chromium (and profile) per session, opened one after the other;
    memory sampled every `step` sessions (the pauses for it are left out of the time to ready)."""
    import tempfile

    from playwright.async_api import async_playwright

    contexts = []
    points = []
    paused = 0.0
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
            if len(contexts) % step == 0 and len(contexts) < count:
                pause = time.monotonic()
                await asyncio.sleep(SETTLE_SECONDS)
                points.append(memory_point(len(contexts), pause - started - paused))
                paused += time.monotonic() - pause
        ready_all = time.monotonic() - started - paused
        await asyncio.sleep(SETTLE_SECONDS)
        pss = browser_pss_mib()
        processes = len(browser_pids())
        points.append(memory_point(count, ready_all))
        for context in contexts:
            await context.close()
    return {
        "strategy": "baseline (full Chromium per session)",
        "sessions": count,
        "pss_total_mib": pss,
        "pss_per_session_mib": pss / count,
        "browser_processes": processes,
        "ready_all_s": ready_all,
        "points": points,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--baseline", type=int, default=10)
    parser.add_argument("--strategies", default="context,profile")
    parser.add_argument("--step", type=int, default=10, help="sessions added per step of the memory curve (0: none)")
    parser.add_argument("--baseline-step", type=int, default=2, help="baseline sessions between memory samples")
    parser.add_argument("--storage-kb", type=int, default=1024, help="IndexedDB each linked page fills")
    parser.add_argument("--timed", type=int, default=10, help="sessions whose save and restore are timed one by one")
    add_data_dir_argument(parser)
    args = parser.parse_args()
    load = LoadSampler().start()
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    backends = start_simulated_backends({"WAGW_AUTH_BACKUP_INTERVAL_SECONDS": "600"})
    sim, stub = backends.sim, backends.stub
    async with httpx.AsyncClient(timeout=10) as http:
        (await http.post(sim.url + "control/page", json={"storage_kb": args.storage_kb})).raise_for_status()
    results = []
    curves: dict[str, list[dict[str, Any]]] = {}
    try:
        for strategy in args.strategies.split(","):
            results.append(await run_strategy(strategy, args.sessions, sim, stub, args.timed))
            print(results[-1], flush=True)
            if args.step:
                curves[strategy] = await run_ramp(strategy, args.sessions, args.step, sim, stub)
        print(f"baseline: memory every {args.baseline_step} sessions", flush=True)
        baseline = await run_baseline(args.baseline, args.baseline_step, sim)
        print({k: v for k, v in baseline.items() if k != "points"}, flush=True)
    finally:
        backends.stop()
        load.stop()
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
        print(
            f"{row['strategy']}: archive {row['archive_raw_kib']:.0f} KiB raw, {row['archive_stored_kib']:.0f} KiB "
            f"stored (median); save {row['save_median_s'] * 1000:.0f} ms, restore before the page loads "
            f"{row['restore_open_median_s'] * 1000:.0f} ms per session (median of {args.timed}, one at a time); "
            f"after restoring all: {row['pss_restored_per_session_mib']:.1f} MiB per session "
            f"({row['pss_restored_per_session_mib'] / base:.2f}x baseline)"
        )
    if curves:
        print()
        print("PSS per session (MiB) as sessions are added:")
        for name, points in [*curves.items(), ("baseline", baseline["points"])]:
            print(f"  {name:10} " + ", ".join(f"{p['sessions']}: {p['pss_per_session_mib']:.1f}" for p in points))
    print(load.summary())
    write_data(
        args.data_dir,
        "sessions",
        {
            "bench": "sessions",
            "run": load.run_info(),
            "settle_seconds": SETTLE_SECONDS,
            "targets": {s: {"mib_per_session": targets[s], "x_baseline": ratios[s]} for s in targets},
            "models": [
                *(
                    {"model": row["strategy"], "all_at_once": row, "points": curves.get(row["strategy"], [])}
                    for row in results
                ),
                {
                    "model": "baseline",
                    "all_at_once": {k: v for k, v in baseline.items() if k != "points"},
                    "points": baseline["points"],
                },
            ],
        },
    )


if __name__ == "__main__":
    asyncio.run(main())
