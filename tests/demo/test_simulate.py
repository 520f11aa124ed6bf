"""A small simulated day through the real broker, hub and database."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from PIL import Image

from demo.simulate import SimConfig, Simulation, plan_day
from protocol.brokers import Mosquitto
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
    assert tickets["served"] + tickets["no_show"] == 300
    assert 0 < tickets["no_show"] < 60
    assert result["system"]["press_to_reply_ms"]["p50"] is not None
    seen, sent = result["system"]["calls_seen_on_screen"].split("/")
    assert seen == sent and int(sent) >= tickets["served"]
    with Image.open(tmp_path / "queue-lengths.png") as chart:
        assert chart.size == (1200, 600)
        assert len(chart.getcolors(10000) or []) > 3  # lines were drawn, not a blank image
    assert (tmp_path / "simulation.json").exists()
