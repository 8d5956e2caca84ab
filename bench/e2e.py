"""End-to-end latency and cost: inbound messages injected into the WhatsApp Web simulator across ready sessions,
each timed until the tenant's webhook receiver gets it (page -> worker outbox -> signed batch to ingest -> SQS ->
deliver -> receiver); every message must arrive.

Ramp (the default): the inbound rate climbs in steps (`--steps`, msgs/s), each held `--seconds` and then drained;
the knee is the highest step sustained: injected at >= 95 % of its rate, p99 under 1 s, nothing lost (the ramp stops
at the first step that is not). A low step is held long enough to carry `--min-step-messages` (600 by default: 60 s
at 10/s), so its CPU per message is not a few hundred messages against the idle burn of the same span.
Beside it: the machine's speed in the same run (a fixed CPU-bound loop timed before the system starts and after
it stops: bench/common.py calibration_ms), and the CPU per message of each part over each step (per process from
/proc, the worker's tree split by role; deliver and the receiver are threads of this process), net of what the
part burns idle (measured for `--idle-seconds` before the ramp with every session ready; the gross figure, idle
included, is kept beside it in the data file).

Fixed rate (the old pass/fail): `--rate R --seconds S` is a one-step ramp.

    flock /tmp/wagw-bench.lock .venv/bin/python bench/e2e.py [--sessions 20] [--auth-strategy profile|context]
        [--steps 10,20,40,60,80,100,120] [--seconds 20] [--min-step-messages 600] [--idle-seconds 30]
        | [--rate 50 --seconds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    LoadSampler,
    add_data_dir_argument,
    calibration_ms,
    cpu_of,
    cpu_used,
    threads_named,
    worker_roles,
    write_data,
)
from session_workers.metrics import descendants
from shared.settings import default_throttle_limits
from wagw_local.system import LocalSystem, Ports, SystemOptions

DEFAULT_LIMITS = {name: limit.model_dump() for name, limit in default_throttle_limits().items()}
DEFAULT_STEPS = "10,20,40,60,80,100,120"
TARGET_P99_MS = 1000.0
PACE_KEPT = 0.95  # a step whose injector fell further behind than this did not offer its rate
DRAIN_SECONDS = 30.0
IDLE_SECONDS = 30.0
MIN_STEP_MESSAGES = 600
INJECTORS = 8  # threads posting to the simulator, so one slow answer does not hold the pace up
BENCH_REST = "bench (injector, collector)"
GATEWAY_PARTS = ("worker Python", "ingest", "deliver")


def onboard(system: LocalSystem, api_key: str, count: int) -> list[str]:
    """Create `count` sessions through the API and scan each QR with a simulated phone; wait until ready."""
    phones = [f"62812{index:07d}" for index in range(count)]
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=system.api_url, headers=headers, timeout=30) as http:
        ids = [http.post("/v1/sessions", json={"name": f"bench {p}", "phone": p}).json()["id"] for p in phones]
        pending = dict(zip(ids, phones, strict=True))
        deadline = time.monotonic() + 300
        while pending and time.monotonic() < deadline:
            for sid, phone in list(pending.items()):
                qr = http.get(f"/v1/sessions/{sid}/qr").json().get("qr")
                if (
                    qr
                    and httpx.post(f"{system.simulator_url}/control/scan", json={"qr": qr, "phone": phone}).is_success
                ):
                    del pending[sid]
            time.sleep(0.5)
        while time.monotonic() < deadline:
            statuses = [http.get(f"/v1/sessions/{sid}").json()["status"] for sid in ids]
            if all(s == "ready" for s in statuses):
                return phones
            time.sleep(0.5)
    raise RuntimeError("sessions did not all become ready")


def inject(system: LocalSystem, phones: list[str], rate: float, seconds: float, tag: str = "bench") -> dict[str, float]:
    """Send `rate` inbound messages per second, round-robin over the phones; return token -> send time."""
    sent: dict[str, float] = {}
    local = threading.local()
    interval = 1.0 / rate

    def post(token: str, phone: str) -> None:
        if not hasattr(local, "http"):
            local.http = httpx.Client(base_url=system.simulator_url, timeout=10)
        sent[token] = time.time()
        local.http.post("/control/inbound", json={"phone": phone, "sender": "6289999@c.us", "body": token})

    started = time.perf_counter()
    index = 0
    with ThreadPoolExecutor(INJECTORS, thread_name_prefix="injector") as pool:
        while time.perf_counter() - started < seconds:
            pause = started + index * interval - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            pool.submit(post, f"{tag}-{index}", phones[index % len(phones)])
            index += 1
    return sent


@dataclass
class Arrivals:
    """Receiver times of the injected tokens, read from the receiver's event list as it grows."""

    system: LocalSystem
    seen: int = 0
    at: dict[str, float] = field(default_factory=dict)
    repeats: int = 0

    def collect(self) -> None:
        with self.system.receiver_state.lock:
            fresh = self.system.receiver_state.events[self.seen :]
            self.seen += len(fresh)
        for event in fresh:
            if event.body.get("type") != "message.received":
                continue
            token = event.body["data"].get("body", "")
            if token in self.at:
                self.repeats += 1
            else:
                self.at[token] = event.received_at

    def wait_for(self, tokens: dict[str, float], within: float) -> None:
        deadline = time.monotonic() + within
        while True:
            self.collect()
            if all(token in self.at for token in tokens) or time.monotonic() > deadline:
                return
            time.sleep(0.1)


def parts_of(system: LocalSystem) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """The processes and (this process's) threads of each part of the system."""
    worker = system.processes["worker-a"].pid
    processes = {
        "simulator": [system.processes["simulator"].pid],
        **worker_roles(worker),
        "ingest": [system.processes["ingest"].pid],
        "api": [system.processes["api"].pid],
        **{service.name: [service.process.pid, *descendants(service.process.pid)] for service in system.services},
    }
    # This process: the deliver poller's and the receiver's threads, and the rest (the injector, the collector)
    processes[BENCH_REST] = [os.getpid()]
    threads = {"deliver": threads_named("sqs-poller"), "receiver": threads_named("receiver")}
    return processes, threads


def without_threads(used: dict[str, float]) -> dict[str, float]:
    """This process's total less its deliver and receiver threads."""
    return {**used, BENCH_REST: round(used[BENCH_REST] - used["deliver"] - used["receiver"], 3)}


def quantile_ms(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] * 1000 if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def run_step(
    system: LocalSystem, phones: list[str], rate: float, seconds: float, arrivals: Arrivals, idle: dict[str, float]
) -> dict[str, Any]:
    processes, threads = parts_of(system)
    before, started = cpu_of(processes, threads), time.monotonic()
    sent = inject(system, phones, rate, seconds, tag=f"r{rate:g}")
    injected_for = time.monotonic() - started
    repeats_before = arrivals.repeats
    arrivals.wait_for(sent, DRAIN_SECONDS)
    used, elapsed = without_threads(cpu_used(before, cpu_of(processes, threads))), time.monotonic() - started
    latencies = sorted(arrivals.at[t] - sent[t] for t in sent if t in arrivals.at)
    count = max(1, len(sent))
    step: dict[str, Any] = {
        "rate": rate,
        "offered_per_s": round(len(sent) / injected_for, 1),
        "sent": len(sent),
        "delivered": len(latencies),
        "lost": len(sent) - len(latencies),
        "duplicates": arrivals.repeats - repeats_before,
        "p50_ms": round(quantile_ms(latencies, 50), 1),
        "p99_ms": round(quantile_ms(latencies, 99), 1),
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
        "injected_seconds": round(injected_for, 1),
        "seconds": round(elapsed, 1),
        "cpu_seconds": used,
        # per message, net of the part's idle burn over the same time
        "cpu_ms_per_message": {
            part: round(max(0.0, seconds_used - idle.get(part, 0.0) * elapsed) * 1000 / count, 3)
            for part, seconds_used in used.items()
        },
        # and with the idle burn left in: how much of the net figure leans on the idle estimate
        "cpu_ms_per_message_gross": {part: round(used_s * 1000 / count, 3) for part, used_s in used.items()},
    }
    step["sustained"] = (
        step["lost"] == 0 and step["p99_ms"] < TARGET_P99_MS and step["offered_per_s"] >= PACE_KEPT * rate
    )
    return step


def measure_idle(system: LocalSystem, seconds: float) -> dict[str, float]:
    processes, threads = parts_of(system)
    before, started = cpu_of(processes, threads), time.monotonic()
    time.sleep(seconds)
    used = without_threads(cpu_used(before, cpu_of(processes, threads)))
    return {part: round(seconds / (time.monotonic() - started), 4) for part, seconds in used.items()}


def report(result: dict[str, Any]) -> None:
    steps = result["steps"]
    print(
        "\n| rate/s | offered/s | sent | delivered | lost | dup | p50 ms | p99 ms | max ms | sustained |\n"
        "|---|---|---|---|---|---|---|---|---|---|"
    )
    for s in steps:
        print(
            f"| {s['rate']:g} | {s['offered_per_s']} | {s['sent']} | {s['delivered']} | {s['lost']} | "
            f"{s['duplicates']} | {s['p50_ms']:.0f} | {s['p99_ms']:.0f} | {s['max_ms'] or 0:.0f} | "
            f"{'yes' if s['sustained'] else 'NO'} |"
        )
    print("\nCPU ms per message, net of idle (idle CPU-s per second in the first column):\n")
    print("| part | idle | " + " | ".join(f"{s['rate']:g}/s" for s in steps) + " |")
    print("|---|---|" + "---|" * len(steps))
    for part in steps[0]["cpu_ms_per_message"]:
        cells = " | ".join(f"{s['cpu_ms_per_message'][part]:.2f}" for s in steps)
        print(f"| {part} | {result['idle_cpu_per_second'].get(part, 0):.3f} | {cells} |")
    own = [sum(s["cpu_ms_per_message"][p] for p in GATEWAY_PARTS) for s in steps]
    print("| **gateway's own (worker Python + ingest + deliver)** | | " + " | ".join(f"{v:.2f}" for v in own) + " |")
    calibration = result["calibration"]
    print(
        f"\nmachine speed (fixed loop, lower is faster): before {calibration['before']}, after {calibration['after']}"
    )
    knee = result["knee_per_s"]
    print(f"knee: highest sustained rate {knee:g} msgs/s" if knee else "knee: no step sustained")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--rate", type=float, help="one fixed rate (msgs/s) instead of the ramp")
    parser.add_argument("--steps", default=DEFAULT_STEPS, help=f"the ramp's rates, msgs/s (default {DEFAULT_STEPS})")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each step injects (at least)")
    parser.add_argument(
        "--min-step-messages",
        type=int,
        default=MIN_STEP_MESSAGES,
        help=f"a step injects at least this many messages, held longer at low rates (default {MIN_STEP_MESSAGES})",
    )
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=IDLE_SECONDS,
        help=f"how long each part's idle burn is measured (default {IDLE_SECONDS:g})",
    )
    parser.add_argument("--keep-going", action="store_true", help="run every step even after one is not sustained")
    parser.add_argument("--auth-strategy", choices=["profile", "context"], default="profile")
    add_data_dir_argument(parser)
    args = parser.parse_args()
    rates = [args.rate] if args.rate else [float(r) for r in args.steps.split(",")]
    calibration_before = calibration_ms()
    # The default message limit (1000/min per workspace) would throttle this one-workspace load on purpose;
    # a tenant sending this much gets a limit that fits it.
    limits = {"message": {"per_minute": 60_000, "burst": 5_000}}
    options = SystemOptions(
        extra_env={"WAGW_THROTTLE_LIMITS": json.dumps({**DEFAULT_LIMITS, **limits})},
        ports=Ports.free(workers=1),
        workers=1,
        schedules=False,
        auth_strategy=args.auth_strategy,
        workdir=Path(tempfile.mkdtemp(prefix="wagw-bench-e2e-")),
    )
    system = LocalSystem(options)
    load = LoadSampler().start()
    steps: list[dict[str, Any]] = []
    try:
        system.start()
        demo = system.create_demo_tenant("bench")
        phones = onboard(system, demo.api_key, args.sessions)
        time.sleep(5)  # the sessions' after-ready work (saves, first heartbeats) out of the idle figure
        idle = measure_idle(system, args.idle_seconds)
        print(f"{args.sessions} sessions ready ({args.auth_strategy}); steps {', '.join(f'{r:g}' for r in rates)}/s")
        arrivals = Arrivals(system)
        for rate in rates:
            seconds = args.seconds if args.rate else max(args.seconds, args.min_step_messages / rate)
            step = run_step(system, phones, rate, seconds, arrivals, idle)
            steps.append(step)
            print(
                f"{rate:g}/s: offered {step['offered_per_s']}/s, {step['delivered']}/{step['sent']} delivered, "
                f"p50 {step['p50_ms']:.0f} ms, p99 {step['p99_ms']:.0f} ms, "
                f"gateway's own {sum(step['cpu_ms_per_message'][p] for p in GATEWAY_PARTS):.2f} ms/msg",
                flush=True,
            )
            if not step["sustained"] and not args.keep_going:
                break
            time.sleep(2)
    finally:
        system.stop()
        load.stop()
    sustained = [s["rate"] for s in steps if s["sustained"]]
    result = {
        "run": {**load.run_info(), "sessions": args.sessions, "auth_strategy": args.auth_strategy},
        "calibration": {"before": calibration_before, "after": calibration_ms()},
        "idle_cpu_per_second": idle,
        "steps": steps,
        "knee_per_s": max(sustained) if sustained else None,
    }
    report(result)
    print(load.summary())
    if args.rate:
        step = steps[0]
        print(
            f"sent {step['sent']}, delivered {step['delivered']}, lost {step['lost']}, "
            f"duplicate deliveries {step['duplicates']}"
        )
        print(
            f"latency to the receiver: p50 {step['p50_ms']:.0f} ms, p99 {step['p99_ms']:.0f} ms, "
            f"max {step['max_ms'] or 0:.0f} ms (target p99 < 1000 ms)"
        )
        print("RESULT:", "PASS" if step["lost"] == 0 and step["p99_ms"] < TARGET_P99_MS else "FAIL")
    name = f"e2e-{args.auth_strategy}" + (f"-fixed-{args.rate:g}" if args.rate else "")
    write_data(args.data_dir, name, result)


if __name__ == "__main__":
    main()
