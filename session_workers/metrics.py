"""Worker metrics: sessions by status, browser memory as PSS, restarts, outbox depth."""

from __future__ import annotations

import os
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

BROWSER_NAMES = ("chrom", "headless_shell", "headless-shell")


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def descendants(root: int, children: dict[int, list[int]] | None = None) -> list[int]:
    """Every process below `root`, from `children` (parent -> its children) or, if not given, /proc now."""
    if children is None:
        children = _children_map()
    found: list[int] = []
    stack = [root]
    while stack:
        pid = stack.pop()
        for child in children.get(pid, []):
            found.append(child)
            stack.append(child)
    return found


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def pss_kib(pid: int) -> int:
    """Proportional set size of one process (shared pages split among their users), from smaps_rollup."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return 0
    return 0


def browser_pids(root: int | None = None) -> list[int]:
    """Every Chromium process under `root` (default: this process), found through the process tree."""
    return [pid for pid in descendants(root or os.getpid()) if any(n in process_name(pid) for n in BROWSER_NAMES)]


def browser_pss_bytes(root: int | None = None) -> int:
    return sum(pss_kib(pid) for pid in browser_pids(root)) * 1024


def window_quantiles(samples: deque[float]) -> dict[str, float]:
    """p50 / p99 / max of the recent samples (nothing when there are none)."""
    if not samples:
        return {}
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"0.5": pick(0.5), "0.99": pick(0.99), "1": ordered[-1]}


@dataclass
class WorkerMetrics:
    restarts: int = 0
    commands: int = 0
    messages_sent: int = 0
    auth_saves: int = 0
    claims: int = 0
    lost_leases: int = 0
    wa_js_incompatible: int = 0
    reconciled: int = 0
    prepared_restores: int = 0  # `context`: storage restored ahead of a takeover's claim
    prepared_used: int = 0  # ... and used by the claim
    inbound_to_outbox_ms: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    statuses: Counter[str] = field(default_factory=Counter)

    def prometheus(self, *, worker_id: str, outbox_depth: int, pss_bytes: int, capacity: int) -> str:
        labels = f'worker="{worker_id}"'
        lines = [
            "# TYPE wagw_worker_sessions gauge",
            *[f'wagw_worker_sessions{{{labels},status="{s}"}} {n}' for s, n in sorted(self.statuses.items())],
            "# TYPE wagw_worker_capacity gauge",
            f"wagw_worker_capacity{{{labels}}} {capacity}",
            "# TYPE wagw_worker_browser_pss_bytes gauge",
            f"wagw_worker_browser_pss_bytes{{{labels}}} {pss_bytes}",
            "# TYPE wagw_worker_outbox_depth gauge",
            f"wagw_worker_outbox_depth{{{labels}}} {outbox_depth}",
            "# TYPE wagw_worker_restarts_total counter",
            f"wagw_worker_restarts_total{{{labels}}} {self.restarts}",
            "# TYPE wagw_worker_commands_total counter",
            f"wagw_worker_commands_total{{{labels}}} {self.commands}",
            "# TYPE wagw_worker_lost_leases_total counter",
            f"wagw_worker_lost_leases_total{{{labels}}} {self.lost_leases}",
            "# TYPE wagw_worker_inbound_to_outbox_ms summary",
            *[
                f'wagw_worker_inbound_to_outbox_ms{{{labels},quantile="{q}"}} {v:.1f}'
                for q, v in window_quantiles(self.inbound_to_outbox_ms).items()
            ],
            "# TYPE wagw_worker_reconciled_messages_total counter",
            f"wagw_worker_reconciled_messages_total{{{labels}}} {self.reconciled}",
            "# TYPE wagw_worker_wa_js_incompatible_total counter",
            f"wagw_worker_wa_js_incompatible_total{{{labels}}} {self.wa_js_incompatible}",
        ]
        return "\n".join(lines) + "\n"
