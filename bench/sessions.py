"""Sessions per worker on the simulator: memory per session (PSS) for both auth strategies, against the
whatsapp-web.js model (one full Chromium per session), the CPU per idle session, plus time to open and to restore
a session.

    .venv/bin/python bench/sessions.py [--sessions 50] [--baseline 10] [--step 10] [--baseline-step 2]
                                       [--weights light] [--storage-kb N] [--timed 10] [--idle-seconds 30]
                                       [--data-dir docs/bench-data]

`--weights light,heavy` runs everything once per page weight (the simulator's PAGE_WEIGHTS: `heavy` holds
~120 MiB of chats and messages in the JS heap, a 6,000-element chat list and 16 MiB of IndexedDB, calibrated to
what WhatsApp Web tabs are reported to take; `light` is the simulator's old page). Each linked page fills the
weight's IndexedDB (the simulator's model-storage database), or `--storage-kb` of it when given. Per strategy, the
save (capture/archive, compress, store) and the restore (a fresh context or profile from the archive, before the
page loads) are timed one session at a time for `--timed` sessions, and the archive sizes (raw, stored) and the
memory once every session was restored on the second worker are reported.

PSS is read from /proc/<pid>/smaps_rollup for every Chromium process under this one (shared pages counted
once, split among the processes that map them); summed RSS would count shared pages once per process.

CPU per idle session: once every session is ready and settled, the CPU of every Chromium process (and of
Playwright's driver) over `--idle-seconds`, divided by the sessions; for the baseline, of its browsers.

Data: docs/bench-data/sessions.json for a light-only run (the picture below is drawn from it), else
sessions-<weights>.json. Archives are kept inline in Redis whatever their size (there is no S3 here; production
puts archives over 512 KiB in S3, which does not change the browser's memory).

For the memory curve (docs/img/memory-per-session.png, drawn by bench/plots.py from
docs/bench-data/sessions.json), a second pass per strategy opens the sessions `--step` at a time and samples
PSS each time a step is ready and settled (10, 20, ... 50); the baseline is sampled every `--baseline-step`
sessions as it opens them one after the other. The first pass (all sessions started at once) gives the
timings and the table's figures, as before.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import time
from typing import Any

import httpx

from bench.common import LoadSampler, add_data_dir_argument, cmdline, cpu_seconds, start_simulated_backends, write_data
from session_workers.metrics import browser_pids, descendants, pss_kib
from session_workers.simulator import SimulatorServer
from session_workers.simulator.ingest_stub import IngestStub

FULL_CHROMIUM = "/usr/lib/chromium/chromium"
SETTLE_SECONDS = 5.0
WEIGHT_DIGIT = {"light": 0, "heavy": 1}  # in the phone numbers, so each weight's pass links fresh accounts
BENCH_STORAGE_KB = {"light": 1024}  # this bench's light pages keep 1 MiB of IndexedDB, as its earlier runs did


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


IDLE_SETTLE_SECONDS = 20.0  # after the last page loaded: V8 finishes collecting what loading a heavy page left


async def idle_cpu(sessions: int, seconds: float) -> dict[str, Any]:
    """CPU of the browsers (every Chromium process under this one) and of Playwright's driver over `seconds` of
    idle, per session: ms of CPU per second = tenths of a percent of a core."""
    await asyncio.sleep(IDLE_SETTLE_SECONDS)
    pids = descendants(os.getpid())
    browsers = set(browser_pids())
    driver = {p for p in pids if "playwright" in cmdline(p) and p not in browsers}
    before = {p: cpu_seconds(p) for p in pids}
    started = time.monotonic()
    await asyncio.sleep(seconds)
    span = time.monotonic() - started
    after = {p: cpu_seconds(p) for p in pids}
    # a process gone in the window reads 0 after: left out rather than counted negative
    used = {p: after[p] - before[p] for p in pids if after[p] >= before[p]}
    chromium = sum(v for p, v in used.items() if p in browsers)
    node = sum(v for p, v in used.items() if p in driver)
    figures = {
        "seconds": round(span, 1),
        "chromium_ms_per_s_per_session": round(chromium / span / sessions * 1000, 3),
        "driver_ms_per_s_per_session": round(node / span / sessions * 1000, 3),
        "chromium_core_share": round(chromium / span, 4),
    }
    print(f"  idle CPU: {figures}", flush=True)
    return figures


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
    strategy: str,
    count: int,
    sim: SimulatorServer,
    stub: IngestStub,
    timed: int = 10,
    weight: str = "light",
    idle_seconds: float = 30.0,
    started_workers: list[Any] | None = None,
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
    if started_workers is not None:
        started_workers.append(worker)  # stopped by the caller if this pass fails
    await worker.start()
    # ids and phones unique per weight: the ingest stub and the simulator keep what earlier passes saw
    sids = [f"bench_{weight}_{strategy}_{i:03d}" for i in range(count)]
    phones = {sid: f"1555{WEIGHT_DIGIT[weight]}{strategy == 'profile':d}{i:05d}" for i, sid in enumerate(sids)}
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

    deadline = time.monotonic() + 300
    while not await saved():
        if time.monotonic() > deadline:  # a session that never saves fails this pass instead of hanging it
            raise RuntimeError("not every session's auth was saved within 300 s")
        await asyncio.sleep(0.2)
    await asyncio.sleep(SETTLE_SECONDS)
    pss = browser_pss_mib()
    processes = len(browser_pids())
    idle = await idle_cpu(count, idle_seconds)
    archive = await time_save_and_restore(worker, redis, sids[:timed])
    # Restore: a graceful stop saves and hands back every session; a new worker restores them all
    await worker.stop()
    ready_before = {s: stub.statuses(s).count("ready") for s in sids}
    qrs_before = {s: len(stub.select("session.qr", s)) for s in sids}
    second = Worker(settings.model_copy(update={"worker_id": f"bench-{strategy}-2"}), health_port=None)
    if started_workers is not None:
        started_workers.append(second)
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
        "weight": weight,
        "sessions": count,
        "idle_cpu": idle,
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

    if not sids:
        return {}
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
    strategy: str, count: int, step: int, sim: SimulatorServer, stub: IngestStub, weight: str = "light"
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
    sids = [f"ramp_{weight}_{strategy}_{i:03d}" for i in range(count)]
    phones = {sid: f"1556{WEIGHT_DIGIT[weight]}{strategy == 'profile':d}{i:05d}" for i, sid in enumerate(sids)}
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

            deadline = time.monotonic() + 300
            while not await saved():
                if time.monotonic() > deadline:
                    raise RuntimeError("not every session's auth was saved within 300 s")
                await asyncio.sleep(0.2)
            await asyncio.sleep(SETTLE_SECONDS)
            points.append(memory_point(first + len(batch), time.monotonic() - started))
    finally:
        await worker.stop()
        await redis.flushdb()
        await redis.aclose()
    await no_browsers_left()
    return points


async def run_baseline(
    count: int, step: int, sim: SimulatorServer, weight: str = "light", idle_seconds: float = 30.0
) -> dict[str, Any]:
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
            phone = f"155590{WEIGHT_DIGIT[weight]}{i:04d}"
            await http.post(sim.url + "control/scan", json={"qr": client, "phone": phone})
            # MAIN (logged in and loaded), not isMainReady(): that latches on the first QR (wa-js 4.6.0)
            await page.wait_for_function("WPP.conn.getStreamData().mode === 'MAIN'", timeout=120_000)
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
        idle = await idle_cpu(count, idle_seconds)
        for context in contexts:
            await context.close()
    return {
        "strategy": "baseline (full Chromium per session)",
        "weight": weight,
        "idle_cpu": idle,
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
    parser.add_argument("--weights", default="light", help="page weights to run, e.g. light,heavy")
    parser.add_argument("--step", type=int, default=10, help="sessions added per step of the memory curve (0: none)")
    parser.add_argument("--baseline-step", type=int, default=2, help="baseline sessions between memory samples")
    parser.add_argument(
        "--storage-kb",
        type=int,
        default=None,
        help="IndexedDB each linked page fills (default: light 1024, heavy its own)",
    )
    parser.add_argument("--timed", type=int, default=10, help="sessions whose save and restore are timed one by one")
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="window of the CPU per idle session")
    add_data_dir_argument(parser)
    args = parser.parse_args()
    weights = args.weights.split(",")
    load = LoadSampler().start()
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    # No S3 here: every archive inline (a heavy page's are MiBs; production puts those over 512 KiB in S3)
    backends = start_simulated_backends(
        {"WAGW_AUTH_BACKUP_INTERVAL_SECONDS": "600", "WAGW_AUTH_INLINE_MAX_BYTES": str(256 << 20)}
    )
    sim, stub = backends.sim, backends.stub
    results: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    baselines: dict[str, dict[str, Any]] = {}
    curves: dict[tuple[str, str], list[dict[str, Any]]] = {}
    try:
        for weight in weights:
            page = {"weight": weight, "storage_kb": args.storage_kb or BENCH_STORAGE_KB.get(weight)}
            async with httpx.AsyncClient(timeout=10) as http:
                response = await http.post(sim.url + "control/page", json={k: v for k, v in page.items() if v})
                response.raise_for_status()
                print(f"page weight {weight}: {response.json()}", flush=True)
            for strategy in args.strategies.split(","):
                started: list[Any] = []
                try:
                    results.append(
                        await run_strategy(
                            strategy, args.sessions, sim, stub, args.timed, weight, args.idle_seconds, started
                        )
                    )
                except Exception as exc:  # a failed pass is reported; the other passes still run
                    failed.append({"strategy": strategy, "weight": weight, "error": repr(exc)})
                    print(f"{strategy} ({weight}) FAILED: {exc!r}", flush=True)
                    for worker in started:
                        with contextlib.suppress(Exception):
                            await worker.stop()
                    await no_browsers_left(60)
                    continue
                print(results[-1], flush=True)
                if args.step:
                    curves[(weight, strategy)] = await run_ramp(strategy, args.sessions, args.step, sim, stub, weight)
            print(f"baseline ({weight}): memory every {args.baseline_step} sessions", flush=True)
            baselines[weight] = await run_baseline(args.baseline, args.baseline_step, sim, weight, args.idle_seconds)
            print({k: v for k, v in baselines[weight].items() if k != "points"}, flush=True)
    finally:
        backends.stop()
        load.stop()
    targets = {"context": 35.0, "profile": 100.0}
    ratios = {"context": 0.2, "profile": 0.5}
    print()
    print(
        f"{'model':40} {'weight':>6} {'sessions':>8} {'PSS total MiB':>14} {'MiB/session':>12} {'x baseline':>10} "
        f"{'idle CPU ms/s':>13} {'target (light)':>22}"
    )
    for row in results:
        base = baselines[row["weight"]]["pss_per_session_mib"]
        target = f"<= {targets[row['strategy']]:.0f} MiB, <= {ratios[row['strategy']]}x"
        ratio = row["pss_per_session_mib"] / base
        ok = row["pss_per_session_mib"] <= targets[row["strategy"]] and ratio <= ratios[row["strategy"]]
        print(
            f"{row['strategy']:40} {row['weight']:>6} {row['sessions']:>8} {row['pss_total_mib']:>14.0f} "
            f"{row['pss_per_session_mib']:>12.1f} {ratio:>10.2f} "
            f"{row['idle_cpu']['chromium_ms_per_s_per_session']:>13.2f} {target:>18} {'OK' if ok else 'MISS'}"
        )
    for weight, baseline in baselines.items():
        print(
            f"{baseline['strategy']:40} {weight:>6} {baseline['sessions']:>8} {baseline['pss_total_mib']:>14.0f} "
            f"{baseline['pss_per_session_mib']:>12.1f} {1.0:>10.2f} "
            f"{baseline['idle_cpu']['chromium_ms_per_s_per_session']:>13.2f}"
        )
    print()
    for row in results:
        base = baselines[row["weight"]]["pss_per_session_mib"]
        name = f"{row['strategy']} ({row['weight']})"
        print(
            f"{name}: all {row['sessions']} QR shown in {row['open_all_s']:.1f} s "
            f"(median open {row['open_median_s']:.2f} s), all ready in {row['ready_all_s']:.1f} s; "
            f"restore of all: {row['restore_all_s']:.1f} s, ready without QR: {row['restored_without_qr']}/"
            f"{row['sessions']}, median to ready {row['restore_ready_median_s']}, "
            f"median to first event {row['restore_first_event_median_s']}"
        )
        if "save_median_s" in row:
            print(
                f"{name}: archive {row['archive_raw_kib']:.0f} KiB raw, {row['archive_stored_kib']:.0f} KiB "
                f"stored (median); save {row['save_median_s'] * 1000:.0f} ms, restore before the page loads "
                f"{row['restore_open_median_s'] * 1000:.0f} ms per session (median of {args.timed}, one at a time)"
            )
        print(
            f"{name}: after restoring all: {row['pss_restored_per_session_mib']:.1f} MiB per session "
            f"({row['pss_restored_per_session_mib'] / base:.2f}x baseline); idle: Chromium "
            f"{row['idle_cpu']['chromium_ms_per_s_per_session']:.2f} ms CPU per s per session, Playwright's driver "
            f"{row['idle_cpu']['driver_ms_per_s_per_session']:.2f}"
        )
    if curves:
        print()
        print("PSS per session (MiB) as sessions are added:")
        series = [(f"{s} ({w})", p) for (w, s), p in curves.items()]
        series += [(f"baseline ({w})", b["points"]) for w, b in baselines.items()]
        for name, points in series:
            print(f"  {name:18} " + ", ".join(f"{p['sessions']}: {p['pss_per_session_mib']:.1f}" for p in points))
    for failure in failed:
        print(f"FAILED: {failure['strategy']} ({failure['weight']}): {failure['error']}")
    print(load.summary())
    write_data(
        args.data_dir,
        "sessions" if weights == ["light"] else "sessions-" + "-".join(weights),
        {
            "bench": "sessions",
            "run": load.run_info(),
            "settle_seconds": SETTLE_SECONDS,
            "weights": weights,
            "failed": failed,
            "targets": {s: {"mib_per_session": targets[s], "x_baseline": ratios[s]} for s in targets},
            "models": [
                *(
                    {
                        "model": row["strategy"] if weights == ["light"] else f"{row['strategy']} ({row['weight']})",
                        "weight": row["weight"],
                        "all_at_once": row,
                        "points": curves.get((row["weight"], row["strategy"]), []),
                    }
                    for row in results
                ),
                *(
                    {
                        "model": "baseline" if weights == ["light"] else f"baseline ({weight})",
                        "weight": weight,
                        "all_at_once": {k: v for k, v in baseline.items() if k != "points"},
                        "points": baseline["points"],
                    }
                    for weight, baseline in baselines.items()
                ),
            ],
        },
    )


if __name__ == "__main__":
    asyncio.run(main())
