"""End-to-end latency: inbound messages injected into the WhatsApp Web simulator at a steady rate across
ready sessions, timed until the tenant's webhook receiver gets them; every message must arrive.

Run: .venv/bin/python bench/e2e.py [--sessions 20] [--rate 50] [--seconds 30] [--auth-strategy profile|context]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from shared.settings import default_throttle_limits
from wagw_local.system import LocalSystem, Ports, SystemOptions

DEFAULT_LIMITS = {name: limit.model_dump() for name, limit in default_throttle_limits().items()}


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


def inject(system: LocalSystem, phones: list[str], rate: float, seconds: float) -> dict[str, float]:
    """Send `rate` inbound messages per second, round-robin over the phones; return token -> send time."""
    sent: dict[str, float] = {}
    interval = 1.0 / rate
    started = time.perf_counter()
    index = 0
    with httpx.Client(base_url=system.simulator_url, timeout=10) as http:
        while time.perf_counter() - started < seconds:
            due = started + index * interval
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            token = f"bench-{index}"
            sent[token] = time.time()
            http.post(
                "/control/inbound", json={"phone": phones[index % len(phones)], "sender": "6289999@c.us", "body": token}
            ).raise_for_status()
            index += 1
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--rate", type=float, default=50.0, help="inbound messages per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--auth-strategy", choices=["profile", "context"], default="profile")
    args = parser.parse_args()
    # The default message limit (1000/min per workspace) would throttle this one-workspace load on purpose;
    # a tenant sending 50/s gets a limit that fits it.
    limits = {"message": {"per_minute": 12_000, "burst": 1_000}}
    options = SystemOptions(
        extra_env={"WAGW_THROTTLE_LIMITS": json.dumps({**DEFAULT_LIMITS, **limits})},
        ports=Ports.free(workers=1),
        workers=1,
        schedules=False,
        auth_strategy=args.auth_strategy,
        workdir=Path(tempfile.mkdtemp(prefix="wagw-bench-e2e-")),
    )
    system = LocalSystem(options)
    try:
        system.start()
        demo = system.create_demo_tenant("bench")
        phones = onboard(system, demo.api_key, args.sessions)
        print(f"{args.sessions} sessions ready; injecting {args.rate:.0f}/s for {args.seconds:.0f}s")
        sent = inject(system, phones, args.rate, args.seconds)
        deadline = time.monotonic() + 60
        arrived: dict[str, float] = {}
        while time.monotonic() < deadline and len(arrived) < len(sent):
            for event in system.receiver_state.of_type("message.received"):
                token = event.body["data"].get("body", "")
                if token in sent and token not in arrived:
                    arrived[token] = event.received_at
            time.sleep(0.2)
        latencies = sorted(arrived[t] - sent[t] for t in arrived)
        duplicates = len(system.receiver_state.of_type("message.received")) - len(arrived)
        lost = len(sent) - len(arrived)
        p50 = statistics.median(latencies) * 1000
        p99 = statistics.quantiles(latencies, n=100)[98] * 1000
        print(f"sent {len(sent)}, delivered {len(arrived)}, lost {lost}, duplicate deliveries {duplicates}")
        print(
            f"latency to the receiver: p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {latencies[-1] * 1000:.0f} ms "
            "(target p99 < 1000 ms)"
        )
        print("RESULT:", "PASS" if lost == 0 and p99 < 1000 else "FAIL")
    finally:
        system.stop()


if __name__ == "__main__":
    main()
