"""Pause windows and the waiting estimate that counts them, checked against a brute-force walk."""

from __future__ import annotations

import random

import pytest

from protocol.errors import InventoryError
from protocol.pauses import pause_now, pauses_now, wait_estimate, wait_estimates, windows
from protocol.site import parse_site
from tests.conftest import example_text, make_site
from tests.hub.test_rules import at

SECOND_PAUSE = """
[pauses.apel]
name = "Apel sore"
days = ["mon", "fri"]
time = "14:00-14:20"
services = ["ktp"]
"""
SITE = make_site(text=example_text() + SECOND_PAUSE)


def brute_force(service: str, start: float, work: float, step: float = 5.0) -> float:
    """Walk the clock in small steps, serving only outside the service's pauses."""
    moment, done = start, 0.0
    while done < work:
        if pause_now(SITE, service, moment) is None:
            done += step
        moment += step
    return moment


def test_windows_follow_the_inventory() -> None:
    friday = SITE.local_now(at(SITE, "2026-11-27 09:00")).date()
    assert [w.id for w in windows(SITE, "ktp", friday)] == ["jumat", "apel"]
    assert [w.id for w in windows(SITE, "skck", friday)] == ["jumat"]
    assert pause_now(SITE, "ktp", at(SITE, "2026-11-27 11:29")) is None
    assert pause_now(SITE, "ktp", at(SITE, "2026-11-27 11:30")).id == "jumat"
    assert pause_now(SITE, "ktp", at(SITE, "2026-11-27 13:00")) is None
    assert pause_now(SITE, "skck", at(SITE, "2026-11-23 14:10")) is None  # apel: ktp only
    assert [w.id for w in pauses_now(SITE, at(SITE, "2026-11-23 14:10"))] == ["apel"]


@pytest.mark.parametrize("seed", range(3))
def test_the_estimate_matches_a_brute_force_walk(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(40):
        now = at(SITE, "2026-11-27 10:00") + rng.uniform(-3 * 86400, 86400)
        avg, serving = rng.uniform(120, 1200), rng.randint(1, 3)
        for ahead in (0, 1, 3, 8):
            got = wait_estimate(
                SITE, "ktp", ahead=ahead, avg_service_s=avg, serving=serving, now=now
            )
            expected = brute_force("ktp", now, ahead * avg / serving) - now
            assert got is not None and abs(got - expected) <= 10, (now, ahead, avg, serving)


def test_many_places_at_once_equal_one_by_one() -> None:
    now = at(SITE, "2026-11-27 11:00")
    many = wait_estimates(SITE, "ktp", places=30, avg_service_s=400, serving=2, now=now)
    one = [
        wait_estimate(SITE, "ktp", ahead=a, avg_service_s=400, serving=2, now=now)
        for a in range(30)
    ]
    assert list(many) == one and (many[0], many[5]) == (0, 1000)  # 11:16:40, before it
    assert many[10] == 2000 + 90 * 60  # 1,800 s before the Friday pause, 200 s after it


def test_no_serving_counter_gives_no_estimate_unless_one_is_expected_back() -> None:
    now = at(SITE, "2026-11-23 09:00")
    kwargs = {"ahead": 2, "avg_service_s": 600, "serving": 0, "now": now}
    assert wait_estimate(SITE, "ktp", **kwargs) is None
    assert wait_estimate(SITE, "ktp", **kwargs, resumes_at=now + 900) == 900 + 1200


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('days = ["fri"]\ntime = "13:00-11:30"', "pauses.x.time: '13:00-11:30' ends before"),
        ('days = ["fri"]\ntime = "11:30"', "pauses.x.time: '11:30' is not a time span"),
        ('days = ["jum"]\ntime = "11:30-13:00"', "pauses.x.days.0"),
        ('days = ["fri"]\ntime = "11:30-13:00"\nservices = ["ktpp"]', "did you mean 'ktp'?"),
        (
            'days = ["fri"]\ntime = "11:30-13:00"\nservices = ["ktp"]\nkeep_issuing = ["kk"]',
            "pauses.x.keep_issuing[0]: 'kk' is not paused by pauses.x",
        ),
    ],
)
def test_a_wrong_pause_is_a_clear_error(table: str, problem: str) -> None:
    text = example_text() + f'\n[pauses.x]\nname = "X"\n{table}\n'
    with pytest.raises(InventoryError) as error:
        parse_site(text, "site.toml")
    assert problem in str(error.value)
