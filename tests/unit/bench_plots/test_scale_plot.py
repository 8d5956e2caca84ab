"""bench/scale.py draws its picture from its recorded data (the fixture is a small run: 3 workers, 20 and 40
sessions), and reports what a session adds above the fleet's fixed cost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import scale
from tests.unit.bench_plots.test_plots import assert_drawn

FIXTURE = Path(__file__).parent / "fixtures" / "scale.json"


def test_the_scale_picture_is_drawn_from_the_recorded_data(tmp_path: Path) -> None:
    # Given a recorded run / When it is drawn / Then a 1000 x 500 picture with its series
    out = scale.plot(json.loads(FIXTURE.read_text()), tmp_path / "scale.png")
    assert_drawn(out)


def test_what_a_session_adds_is_net_of_the_workers_fixed_cost() -> None:
    # Given a baseline of 100 commands/s with no sessions and 300 with 40
    data = {
        "baseline_no_sessions": {name: 100.0 for name in scale.IDLE_SERIES},
        "steps": [{"sessions": 40, "idle": {name: 300.0 for name in scale.IDLE_SERIES}}],
    }
    # When the per-session figures are derived / Then each is (300 - 100) / 40
    assert scale.per_session_net(data) == {name: [pytest.approx(5.0)] for name in scale.IDLE_SERIES}
