"""The pictures in docs/benchmarks.md, drawn from the data the benchmarks record (no benchmark is rerun):

    .venv/bin/python bench/plots.py [--data-dir docs/bench-data] [--img-dir docs/img]

- docs/bench-data/sessions.json (bench/sessions.py) -> docs/img/memory-per-session.png
- docs/bench-data/delivery.json (bench/delivery.py) -> docs/img/deliveries-under-failure.png
- docs/bench-data/failover.json (bench/failover.py) -> docs/img/failover-timeline.png

matplotlib with the Agg canvas (no display needed); every image is 1000 x 500 px.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "docs" / "bench-data"
IMG_DIR = REPO_ROOT / "docs" / "img"
SIZE_INCHES = (10.0, 5.0)
DPI = 100  # 1000 x 500 px

COLORS = {
    "context": "tab:blue",
    "profile": "tab:orange",
    "baseline": "tab:gray",
    "delivered": "tab:green",
    "http_500": "tab:orange",
    "timeout": "tab:red",
    "refused": "tab:purple",
    "other_failed": "tab:brown",
}
MODEL_LABELS = {
    "context": "context (one browser, a context per session)",
    "profile": "profile (a headless-shell profile per session)",
    "baseline": "baseline: one full Chromium per session",
}


def new_figure() -> Figure:
    figure = Figure(figsize=SIZE_INCHES, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)  # Agg: renders to PNG without a display
    return figure


def run_note(data: dict[str, Any]) -> str:
    """When and under what load the data was recorded, for the figure's subtitle."""
    run = data.get("run", {})
    when = run.get("started_utc", "?").replace("T", " ")[:16]
    load = run.get("load_average_1m", {})
    cores = run.get("cores", "?")
    if "min" in load:
        return f"run {when} UTC, load average {load['min']:.1f}-{load['max']:.1f} on {cores} cores"
    return f"run {when} UTC"


def save(figure: Figure, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=DPI, metadata={"Software": None})
    return out


# Memory per session ------------------------------------------------------------------------------------
def plot_sessions(data: dict[str, Any], out: Path) -> Path:
    figure = new_figure()
    total, per_session = figure.subplots(1, 2)
    for model in data["models"]:
        points = model["points"]
        if not points:
            continue
        name = model["model"]
        sessions = [p["sessions"] for p in points]
        style = {"color": COLORS.get(name), "marker": "o", "label": MODEL_LABELS.get(name, name)}
        total.plot(sessions, [p["pss_total_mib"] for p in points], **style)
        per_session.plot(sessions, [p["pss_per_session_mib"] for p in points], **style)
    for name, target in data.get("targets", {}).items():
        per_session.axhline(
            target["mib_per_session"],
            color=COLORS.get(name),
            linestyle="--",
            linewidth=1,
            label=f"{name} target: {target['mib_per_session']:.0f} MiB",
        )
    total.set_title("All browser processes")
    total.set_ylabel("PSS total (MiB)")
    per_session.set_title("Per session")
    per_session.set_ylabel("PSS per session (MiB)")
    for axes in (total, per_session):
        axes.set_xlabel("ready sessions on one worker")
        axes.set_xlim(left=0)
        axes.set_ylim(bottom=0)
        axes.grid(alpha=0.3)
    total.legend(loc="upper left", fontsize="small")
    per_session.legend(loc="upper right", fontsize="small")
    figure.suptitle(f"Browser memory (PSS) against the session count\n{run_note(data)}", fontsize="medium")
    return save(figure, out)


# Deliveries under failure ------------------------------------------------------------------------------
FAILURE_SERIES = {
    "http_500": "500 answers",
    "timeout": "timeouts (stalled requests)",
    "refused": "connection refused",
    "other_failed": "other errors",
}
FAILED_NAMES = {"500": "x 500", "timeout": "timeouts", "refused": "refused", "error": "other errors"}
PHASE_TITLES = {
    "faulty": "Faulty receiver: 30 % answered 500, 5 % stalled",
    "outage": "Receiver down, then back",
}


SMOOTH_SECONDS = 5


def moving_average(values: list[int], width: int = SMOOTH_SECONDS) -> list[float]:
    """Centred mean over `width` seconds (shorter at the edges): the trend through per-second noise."""
    half = width // 2
    return [
        sum(values[max(0, i - half) : i + half + 1]) / len(values[max(0, i - half) : i + half + 1])
        for i in range(len(values))
    ]


def plot_phase(axes: Axes, phase: dict[str, Any]) -> None:
    series = phase["series"]
    seconds = series["t_s"]
    window = series.get("outage_window_s")
    if window:
        axes.axvspan(window[0], window[1], color="0.85", label=f"receiver down ({window[1] - window[0]:.0f} s)")
    lines = [("delivered_2xx", COLORS["delivered"], "delivered (answered 2xx)", 2.0)]
    lines += [(key, COLORS[key], label, 1.2) for key, label in FAILURE_SERIES.items()]
    for key, color, label, width in lines:
        values = series.get(key) or []
        if any(values):
            axes.plot(seconds, values, color=color, linewidth=0.6, alpha=0.35)  # each second, faint
            axes.plot(seconds, moving_average(values), color=color, linewidth=width, label=label)
    cumulative = axes.twinx()
    done, running = [], 0
    for n in series["delivered_2xx"]:
        running += n
        done.append(100 * running / phase["events"])
    cumulative.plot(seconds, done, color="black", linestyle=":", linewidth=1.2, label="delivered so far (right axis)")
    cumulative.set_ylim(0, 105)
    cumulative.set_ylabel("delivered so far (% of the events)")
    title = PHASE_TITLES.get(phase["phase"], phase["phase"])
    sent = series.get("requests_sent_by_outcome", {})
    failed = ", ".join(f"{sent[key]:,} {name}" for key, name in FAILED_NAMES.items() if sent.get(key))
    axes.set_title(
        f"{title}\n{phase['events']:,} events: {phase['delivered_pct']:g} % delivered, {phase['lost']} lost"
        f"\nfailed requests: {failed or 'none'}",
        fontsize="medium",
    )
    axes.set_xlabel("seconds since the deliver workers started")
    axes.set_ylabel(f"requests per second ({SMOOTH_SECONDS} s average)")
    axes.set_xlim(0, max(seconds[-1], 1))
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)


def plot_delivery(data: dict[str, Any], out: Path) -> Path:
    phases = [p for p in data["phases"] if p["phase"] in PHASE_TITLES and p.get("series")]
    if not phases:
        raise ValueError("no faulty or outage phase with a per-second series in the delivery data")
    figure = new_figure()
    for axes, phase in zip(figure.subplots(1, len(phases), squeeze=False)[0], phases, strict=True):
        plot_phase(axes, phase)
    legend: dict[str, Any] = {}  # one legend for both panels, each series once
    for axes in figure.axes:
        for handle, label in zip(*axes.get_legend_handles_labels(), strict=True):
            legend.setdefault(label.split(" (")[0] if label.startswith("receiver down") else label, handle)
    figure.legend(list(legend.values()), list(legend), loc="outside lower center", ncols=3, fontsize="small")
    figure.suptitle(
        f"Webhook deliveries per second under failure (faint lines: each second)\n{run_note(data)}", fontsize="medium"
    )
    return save(figure, out)


# Failover timeline -------------------------------------------------------------------------------------
def plot_failover(data: dict[str, Any], out: Path) -> Path:
    figure = new_figure()
    axes = figure.subplots()
    rows = data["per_session"]
    for rank, row in enumerate(rows, start=1):
        if row["restore_started_s"] is not None and row["ready_s"] is not None:
            axes.plot([row["restore_started_s"], row["ready_s"]], [rank, rank], color="tab:blue", linewidth=3)
    ready = [(rank, row["ready_s"]) for rank, row in enumerate(rows, start=1) if row["ready_s"] is not None]
    axes.plot(
        [t for _, t in ready],
        [rank for rank, _ in ready],
        "o",
        color="tab:green",
        markersize=4,
        label="session ready on B (bar: from B starting it)",
    )
    events = {e["event"]: e for e in data["timeline"]}
    markers = [
        ("kill", "black", "-"),
        ("gap_work_issued", "tab:purple", ":"),
        ("first_restore", "tab:gray", "--"),
        ("all_ready", "tab:green", "--"),
    ]
    for name, color, style in markers:
        event = events.get(name)
        if event and event["t_s"] is not None:
            axes.axvline(
                event["t_s"],
                color=color,
                linestyle=style,
                linewidth=1.2,
                label=f"{event['t_s']:+.1f} s {event['label']}",
            )
    first = events.get("first_restore", {}).get("t_s")
    if first:
        axes.axvspan(0, first, color="0.9", label="A's leases lapsing (no worker drives the sessions)")
    axes.axvline(
        data["target_s"], color="tab:red", linestyle="-.", linewidth=1, label=f"target: {data['target_s']:.0f} s"
    )
    last = max([t for _, t in ready] + [data["target_s"]])
    axes.set_xlim(-0.5, last + 1)
    axes.set_ylim(0, len(rows) + 1)
    axes.set_xlabel("seconds since every process of worker A got SIGKILL")
    axes.set_ylabel("session (in the order they were ready)")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    figure.legend(loc="outside lower center", ncols=2, fontsize="small")
    figure.suptitle(
        f"Failover: {data['sessions']} sessions ({data['strategy']} strategy) move from killed worker A to worker B,"
        f" lease TTL {data['lease']['ttl_ms'] / 1000:g} s\n{run_note(data)}",
        fontsize="medium",
    )
    return save(figure, out)


PLOTS: dict[str, tuple[Callable[[dict[str, Any], Path], Path], str]] = {
    "sessions": (plot_sessions, "memory-per-session.png"),
    "delivery": (plot_delivery, "deliveries-under-failure.png"),
    "failover": (plot_failover, "failover-timeline.png"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--img-dir", type=Path, default=IMG_DIR)
    args = parser.parse_args(argv)
    for name, (plot, image) in PLOTS.items():
        source = args.data_dir / f"{name}.json"
        out = plot(json.loads(source.read_text()), args.img_dir / image)
        print(f"{source} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
