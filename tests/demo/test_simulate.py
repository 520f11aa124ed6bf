"""A small simulated day through the real broker, hub and database."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from demo.cli import format_report
from demo.simulate import SimConfig, Simulation, plan_day, queue_chart
from protocol.brokers import Mosquitto
from protocol.errors import MppError
from protocol.site import parse_site
from protocol.synthetic import synthetic_site


def test_plan_has_a_morning_peak_and_is_reproducible() -> None:
    site = parse_site(synthetic_site(counters=10, services=5))
    config = SimConfig(visitors=2000)
    plan = plan_day(site, config, random.Random(1))
    again = plan_day(site, config, random.Random(1))
    assert [v.arrives for v in plan] == [v.arrives for v in again]
    hours = [int((v.arrives - plan[0].arrives) // 3600) for v in plan]
    nine_to_ten = sum(1 for v in plan if site.local_now(v.arrives).hour == 9)
    one_to_two = sum(1 for v in plan if site.local_now(v.arrives).hour == 13)
    assert nine_to_ten > 1.5 * one_to_two and len(hours) == 2000


@pytest.mark.slow
def test_small_day_keeps_every_integrity_check(broker: Mosquitto, tmp_path: Path) -> None:
    config = SimConfig(visitors=300, counters=8, services=5, displays=2, kiosks=2, tick_s=20)
    result = Simulation(config, broker.port, tmp_path).run()
    assert result["integrity"] == {
        "numbers_issued_twice": 0,
        "confirmed_tickets_lost": 0,
        "tickets_called_at_two_counters": 0,
    }
    tickets = result["tickets"]
    assert tickets["issued"] == 300
    # NEXT on an empty queue is not a refused ticket: each has its own place in the report.
    assert tickets["refused"] == {} and "queue_empty" not in json.dumps(result["other_refusals"])
    nexts = result["next_presses"]
    assert nexts["calls"] >= tickets["served"] and nexts["empty_queue"] >= 0
    # Services are named; the waiting-time SLA is given per service and for the day.
    waits = result["waiting_minutes"]
    assert waits["s01"]["name"] == "Layanan 1" and 0 <= waits["s01"]["within_target"] <= 1
    sla = result["waiting_sla"]
    assert sla["target_min"] == 30 and sla["called"] == sum(w["n"] for w in waits.values())
    within = sum(w["within_target"] * w["n"] for w in waits.values()) / sla["called"]
    assert abs(sla["within"] - within) < 1e-9
    text = format_report(result)
    assert "s01 Layanan 1:" in text and "found nobody waiting" in text
    assert "waiting-time SLA (called within 30 min)" in text
    assert tickets["served"] + tickets["no_show"] == 300
    assert 0 < tickets["no_show"] < 60
    assert result["system"]["press_to_reply_ms"]["p50"] is not None
    seen, sent = result["system"]["calls_seen_on_screen"].split("/")
    assert seen == sent and int(sent) >= tickets["served"]
    with Image.open(tmp_path / "queue-lengths.png") as chart:
        assert chart.size == (1200, 600)
        assert len(chart.getcolors(10000) or []) > 3  # lines were drawn, not a blank image
    assert (tmp_path / "simulation.json").exists()


def test_the_chart_has_labelled_axes_in_readable_type(tmp_path: Path) -> None:
    """Axis titles and a legend in 16-20 px type (Pillow's 11 px bitmap font was unreadable)."""
    site = parse_site(synthetic_site(counters=10, services=5))
    t0 = site.local_now(0).timestamp() + 9 * 3600
    samples = [(t0 + 60 * i, {"s01": i % 40, "s02": i % 25}) for i in range(300)]
    queue_chart(samples, site, tmp_path / "chart.png")
    with Image.open(tmp_path / "chart.png") as chart:
        grey = chart.convert("L")
        # The value axis' title stands upright left of the labels; the time axis' under them.
        left_band = grey.crop((0, 70, 18, 520))  # (the value labels start right of it)
        bottom_band = grey.crop((300, 560, 900, 600))
        assert left_band.getextrema()[0] < 100 and bottom_band.getextrema()[0] < 100
        # Type is taller than the old bitmap font's ~11 px: measure the title's ink.
        title = grey.crop((0, 0, 1200, 50)).point(lambda v: 255 if v < 128 else 0)
        box = title.getbbox()
        assert box is not None and box[3] - box[1] >= 14


def test_the_terminal_shows_progress_and_the_report_not_the_hubs_alerts(tmp_path: Path) -> None:
    """The hub's 'alert raised' warnings (30 in a 400-visitor day) were printed into the
    progress line; the report counts them. Run as a user runs it: the hub is a process of its
    own, whose stderr is the terminal's too."""
    args = ["--visitors", "60", "--counters", "2", "--services", "2", "--displays", "1"]
    args += ["--kiosks", "1", "--out", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, "-m", "protocol.cli", "simulate", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "alerts raised: long_wait" in result.stdout  # there were alerts ...
    assert " WARNING " not in result.stderr  # ... and no log line of them
    assert "issued" in result.stderr  # the progress line


def test_a_hub_that_cannot_start_is_said_and_nothing_hangs(tmp_path: Path) -> None:
    """The simulated hub runs in its own process: its failure to start reaches the simulator
    as an error naming the cause, not a hang."""
    config = SimConfig(visitors=10, counters=2, services=2, displays=1, kiosks=1)
    with Mosquitto() as broker:
        sim = Simulation(config, broker.port, tmp_path)
        (tmp_path / "site.toml").write_text("this is not TOML =", encoding="utf-8")
        with pytest.raises(MppError, match="the simulated hub failed"):
            sim.run()
