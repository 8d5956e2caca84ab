"""bench/plots.py draws the pictures of docs/benchmarks.md from the benchmarks' recorded data.

The fixtures are small recorded runs in the shape bench/sessions.py, bench/delivery.py and bench/failover.py
write (docs/bench-data/*.json).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from matplotlib.image import imread

from bench import plots

FIXTURES = Path(__file__).parent / "fixtures"


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def assert_drawn(path: Path) -> None:
    assert path.is_file()
    assert png_size(path) == (1000, 500)
    assert path.stat().st_size > 20_000  # an empty 1000 x 500 canvas compresses to a few KB
    rgb = imread(path)[..., :3]
    # Data was drawn: axes, text and grid are grey; only the plotted series are in colour
    coloured = int(((rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.3).sum())
    assert coloured > 500, f"{path}: only {coloured} coloured pixels"


@pytest.mark.parametrize(
    ("plot", "data_file"),
    [
        (plots.plot_sessions, "sessions.json"),
        (plots.plot_delivery, "delivery.json"),
        (plots.plot_failover, "failover.json"),
    ],
    ids=["memory-per-session", "deliveries-under-failure", "failover-timeline"],
)
def test_each_plot_is_drawn_from_recorded_data(
    plot: Callable[[dict[str, Any], Path], Path], data_file: str, tmp_path: Path
) -> None:
    # Given a benchmark's recorded data
    data = json.loads((FIXTURES / data_file).read_text())
    # When it is plotted
    out = plot(data, tmp_path / "img" / "plot.png")
    # Then a 1000 x 500 PNG with a real picture in it is written where asked
    assert out == tmp_path / "img" / "plot.png"
    assert_drawn(out)


def test_main_draws_every_picture_from_a_data_directory(tmp_path: Path) -> None:
    # Given the three data files in one directory
    # When the script runs on it
    code = plots.main(["--data-dir", str(FIXTURES), "--img-dir", str(tmp_path)])
    # Then the three pictures docs/benchmarks.md shows are written
    assert code == 0
    names = {"memory-per-session.png", "deliveries-under-failure.png", "failover-timeline.png"}
    assert {p.name for p in tmp_path.iterdir()} == names
    for name in names:
        assert_drawn(tmp_path / name)


def test_delivery_data_without_a_failure_phase_is_refused(tmp_path: Path) -> None:
    # Given delivery data from a run of the healthy phase only
    data = json.loads((FIXTURES / "delivery.json").read_text())
    data["phases"] = [p for p in data["phases"] if p["phase"] == "healthy"]
    # When it is plotted, then the error says what is missing (no empty picture)
    with pytest.raises(ValueError, match="no faulty or outage phase"):
        plots.plot_delivery(data, tmp_path / "plot.png")
    assert not (tmp_path / "plot.png").exists()
