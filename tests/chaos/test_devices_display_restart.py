"""Scenario 4 of issue 11: a display is restarted mid-day.

Invariant: a lobby TV that restarts while counters are calling shows every counter's current
number (as the hub's database holds it) within 1 s of connecting, and speaks nothing called
before it started, not even a call made a second before the restart or while it was down;
a call made after it started is highlighted and spoken exactly once. Checked from the hub's
SQLite file, the tiles drawn on the screen, a PNG of it, and the announcer's record.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from bench.figures import figure
from display.renderer import YELLOW
from display.speech_text import call_phrase
from hub.service import HubService
from protocol import messages as m
from tests.chaos.device_rigs import (
    CallerRig,
    DisplayRig,
    caller_rig,
    display_rig,
    expected_tiles,
    stored_calls,
)
from tests.display.conftest import png_pixels
from tests.timing import wait_until

RESTARTS = 5
COUNTERS = (1, 2, 3, 4)
SETTLE_S = 1.5  # how long a restarted screen is watched for anything spoken


def call_lit(screen: DisplayRig, png: Path) -> bool:
    """True when the big call panel of the saved screen is highlighted (a fresh call)."""
    renderer = screen.app.renderer
    image = png_pixels(renderer.save_png(png))  # type: ignore[attr-defined]
    call = renderer.layout["call"]  # type: ignore[attr-defined]
    return image.getpixel((call.box.x + call.box.w // 2, call.box.y + 3)) == YELLOW


def press_next(rig: CallerRig) -> tuple[int, int]:
    """NEXT on a caller box; the (counter, call_seq) the hub answered with."""
    rig.press("next")
    outcome = rig.box.recent[-1]
    assert outcome.status == "ok" and outcome.result.get("call"), outcome
    return rig.counter, outcome.result["counter"]["call_seq"]


@pytest.mark.chaos
@pytest.mark.slow
def test_a_display_restarted_mid_day_shows_the_numbers_at_once_and_speaks_nothing_old(
    hub: HubService, tmp_path: Path
) -> None:
    site = hub.site
    for service in ("ktp", "kk", "pindah"):
        for _ in range(10):
            assert hub.submit(m.IssueTicket(device="hub", service=service)).ok
    rigs = [caller_rig(site, f"caller-{n:02d}", f"Petugas {n}") for n in COUNTERS]
    screens: list[DisplayRig] = []
    rng = random.Random(11)
    to_numbers: list[float] = []
    try:
        for rig in rigs:
            assert rig.bus.wait_connected(10)
            assert wait_until(lambda rig=rig: rig.box.state is not None, 10)
            rig.press("open_close")
            assert rig.box.recent[-1].status == "ok"
        screen = display_rig(site)
        screens.append(screen)
        screen.app.run(
            until=lambda: len(screen.app.model.services) == len(site.services), timeout=10
        )
        zone = tuple(sorted(screen.tile_texts()))
        old_spoken = 0

        for round_no in range(RESTARTS):
            # A call while the screen runs: highlighted and spoken once, by this screen.
            key = press_next(rng.choice(rigs))
            assert screen.run_until_spoken(key)
            screen.app.run(timeout=0.3)
            assert screen.spoken_keys.count(key) == 1

            # A call a moment before the restart, then one while the screen is off.
            old_keys = {press_next(rng.choice(rigs))}
            screen.close()
            old_keys.add(press_next(rng.choice(rigs)))

            started = time.monotonic()
            screen = display_rig(site)
            screens.append(screen)
            want = expected_tiles(hub.database, zone)
            assert screen.run_until_tiles(want), f"round {round_no}: wrong numbers shown"
            shown_at = time.monotonic()
            connects = screen.timeline.connects(started)
            assert connects, "the restarted screen never connected"
            to_numbers.append(shown_at - connects[0])
            assert shown_at - connects[0] <= 1.0, f"numbers {shown_at - connects[0]:.2f}s late"
            screen.app.run(timeout=SETTLE_S)
            old_spoken += len(screen.announcer.spoken)
            assert screen.announcer.spoken == [], f"round {round_no}: spoke old calls"
            assert not call_lit(screen, tmp_path / f"restart-{round_no}.png")
            newest = max(stored_calls(hub.database), key=lambda c: c.at)
            assert screen.app.renderer.drawn["call"][1].text == newest.ticket  # type: ignore[attr-defined]
            assert {(c.counter, c.call_seq) for c in stored_calls(hub.database)} >= old_keys

            # A call after the restart: spoken once, with the right words, and lit.
            rig = rng.choice(rigs)
            key = press_next(rig)
            assert screen.run_until_spoken(key)
            screen.app.run(timeout=0.3)
            assert screen.spoken_keys == [key]
            ticket = rig.box.state.ticket  # type: ignore[union-attr]
            phrase = call_phrase(
                site, ticket, rig.counter, "id", site.zones["lobby"].number_reading
            )
            assert screen.announcer.spoken[0].text == phrase.text
            assert call_lit(screen, tmp_path / f"after-{round_no}.png")

        calls = stored_calls(hub.database)
        every = [key for s in screens for key in s.spoken_keys]
        assert len(every) == len(set(every)), "a call was spoken twice"
        assert set(every) <= {(c.counter, c.call_seq) for c in calls}
        figure("display restarts", RESTARTS, "restarts")
        figure("display restart: numbers right after connect, max", max(to_numbers), "s", "<= 1")
        figure("display restart: old calls spoken", old_spoken, "calls", "0")
    finally:
        for screen in screens:
            screen.close()
        for rig in rigs:
            rig.close()
