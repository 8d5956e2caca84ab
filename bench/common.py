"""Pieces the benchmarks share."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from session_workers.simulator import SimulatorServer
from session_workers.simulator.ingest_stub import IngestStub
from wagw_local.services import REPO_ROOT, ServiceProcess, free_port, start_redis


@contextmanager
def serve(target: str, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """An ASGI app under uvicorn (one process) on a free port; yields its base URL and PID."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", target, "--port", str(port), "--log-level", "warning", "--no-access-log"],
        env=env,
        cwd=REPO_ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(url + "/openapi.json", timeout=0.5)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(10)


# Recorded data: every benchmark that feeds a plot writes its figures as JSON under docs/bench-data/ --------
DATA_DIR = REPO_ROOT / "docs" / "bench-data"


def add_data_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DATA_DIR,
        help=f"where to write this run's data as JSON for bench/plots.py (default {DATA_DIR.relative_to(REPO_ROOT)})",
    )


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LoadSampler:
    """The 1-minute load average (as `uptime` prints it), sampled in a thread while a benchmark runs."""

    def __init__(self, interval: float = 15.0) -> None:
        self.interval = interval
        self.started_utc = utc_now()
        self._origin = time.monotonic()
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append((round(time.monotonic() - self._origin, 1), os.getloadavg()[0]))
            if self._stop.wait(self.interval):
                return

    def start(self) -> LoadSampler:
        self._thread.start()
        return self

    def __enter__(self) -> LoadSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join()
            self.samples.append((round(time.monotonic() - self._origin, 1), os.getloadavg()[0]))

    def summary(self) -> str:
        loads = [load for _, load in self.samples] or [os.getloadavg()[0]]
        return f"load average (1 min) during the run: {min(loads):.2f}-{max(loads):.2f}"

    def run_info(self) -> dict[str, Any]:
        """When, how and under what load the run happened: the `run` block of every data file."""
        loads = [load for _, load in self.samples] or [os.getloadavg()[0]]
        return {
            "command": " ".join([".venv/bin/python", *sys.argv]),
            "started_utc": self.started_utc,
            "finished_utc": utc_now(),
            "cores": os.cpu_count(),
            "load_average_1m": {"min": min(loads), "max": max(loads), "samples": self.samples},
        }


def write_data(data_dir: Path, name: str, payload: dict[str, Any]) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"{name}.json"
    text = json.dumps(payload, indent=1)
    # Lists of numbers on one line each (per-second series stay readable in a diff)
    text = re.sub(
        r"\[([-0-9.eE+,\s]+)\]", lambda m: "[" + ", ".join(n.strip() for n in m.group(1).split(",")) + "]", text
    )
    path.write_text(text + "\n")
    print(f"data written to {path}", flush=True)
    return path


# The session-worker benches' world: real Redis, the WhatsApp Web simulator and the ingest stub -------------
@dataclass
class SimulatedBackends:
    redis_server: ServiceProcess
    sim: SimulatorServer
    stub: IngestStub

    def stop(self) -> None:
        self.stub.stop()
        self.sim.stop()
        self.redis_server.stop()


def start_simulated_backends(extra_env: dict[str, str]) -> SimulatedBackends:
    """Start them and point this process's worker settings at them (plus `extra_env`)."""
    backends = SimulatedBackends(start_redis(), SimulatorServer(qr_interval_ms=60_000).start(), IngestStub().start())
    os.environ.update(
        {
            "WAGW_REDIS_URL": backends.redis_server.url,
            "WAGW_WHATSAPP_URL": backends.sim.url,
            "WAGW_INGEST_URL": backends.stub.url,
            **extra_env,
        }
    )
    return backends


# CPU per part of a running local system: per-process (and per-thread) CPU from /proc -------------------------
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, tid: int | None = None, *, reaped_children: bool = False) -> float:
    """User + system CPU seconds of a process (all its threads), or of one of its threads; 0 once it is gone.
    With `reaped_children`, also the CPU of the children it has reaped (a closed renderer counts for its parent)."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11 : 15 if reaped_children else 13]) / CLOCK_TICKS


@dataclass(frozen=True)
class ProcessTime:
    ppid: int
    cpu_s: float  # user + system, its own and that of the children it has reaped


def process_times() -> dict[int, ProcessTime]:
    """Every process's parent and CPU from one read of each /proc/<pid>/stat: a sampler that walks the tree and
    then reads each process again costs twice the reads, on the cores the benchmark is measuring."""
    table: dict[int, ProcessTime] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        table[int(entry.name)] = ProcessTime(int(fields[1]), sum(int(x) for x in fields[11:15]) / CLOCK_TICKS)
    return table


def children_of(table: dict[int, ProcessTime]) -> dict[int, list[int]]:
    """Parent -> its children, from one `process_times` table (for `session_workers.metrics.descendants`)."""
    children: dict[int, list[int]] = {}
    for pid, process in table.items():
        children.setdefault(process.ppid, []).append(pid)
    return children


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def browser_parts(pids: list[int]) -> dict[str, list[int]]:
    """Processes of a worker's browser side by part: Playwright's driver (node), the Chromium renderers (the
    pages) and the rest of Chromium (browser, network, GPU, zygotes); every part present, maybe empty."""
    parts: dict[str, list[int]] = {"Playwright driver": [], "Chromium renderers": [], "Chromium other": []}
    for pid in pids:
        line = cmdline(pid)
        # By the executable: Chromium's browser process also names Playwright in its arguments (its profile lives
        # in /tmp/playwright_chromiumdev_profile-*): matched anywhere in the line, it was counted as the driver.
        part = (
            "Playwright driver"
            if "/playwright/driver/" in line.split(" ", 1)[0]
            else "Chromium renderers"
            if "--type=renderer" in line
            else "Chromium other"
        )
        parts[part].append(pid)
    return parts


def worker_roles(worker_pid: int) -> dict[str, list[int]]:
    """A session worker's process tree split by role: its Python and its browser side's parts."""
    from session_workers.metrics import descendants

    parts = browser_parts(descendants(worker_pid))
    return {
        "worker Python": [worker_pid],
        "Playwright driver": parts["Playwright driver"],
        "Chromium renderers (pages)": parts["Chromium renderers"],
        "Chromium other (browser, network, GPU)": parts["Chromium other"],
    }


def threads_named(prefix: str) -> list[int]:
    """Native ids of this process's Python threads whose name starts with `prefix`."""
    return [t.native_id for t in threading.enumerate() if t.name.startswith(prefix) and t.native_id is not None]


def cpu_of(parts: dict[str, list[int]], threads: dict[str, list[int]] | None = None) -> dict[str, float]:
    """CPU seconds so far of each part: `parts` are process ids, `threads` native thread ids of this process."""
    totals = {part: sum(cpu_seconds(pid) for pid in pids) for part, pids in parts.items()}
    for part, tids in (threads or {}).items():
        totals[part] = sum(cpu_seconds(os.getpid(), tid) for tid in tids)
    return totals


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {part: round(after[part] - before.get(part, 0.0), 3) for part in after}


# The machine's speed at the moment of a run ------------------------------------------------------------------
CALIBRATION_ROUNDS = 5


def calibration_ms(rounds: int = CALIBRATION_ROUNDS) -> dict[str, float]:
    """A fixed CPU-bound Python loop (about 0.1 s on a quiet core here), timed `rounds` times: the best round is
    the core's speed, the median how much of it other work on the machine left us. Runs taken on a slow and a
    fast moment compare by dividing by it."""
    import hashlib

    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        digest = b"calibration"
        total = 0
        for index in range(800_000):
            total += index * index % 7
            if index % 1000 == 0:
                digest = hashlib.sha256(digest).digest()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"best_ms": round(times[0], 1), "median_ms": round(times[len(times) // 2], 1)}
