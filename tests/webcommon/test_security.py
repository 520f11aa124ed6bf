"""The shared web mechanics: role marks fail closed, login throttling with an injected clock,
rate limits, memory bounded under a flood of addresses."""

from __future__ import annotations

import pytest

from webcommon.security import LoginThrottle, RateLimit, role_marker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_role_that_the_app_does_not_know_is_refused_at_import() -> None:
    requires = role_marker({"viewer": 1, "admin": 2})
    assert requires("admin")(lambda: None)._audience == "admin"
    with pytest.raises(ValueError, match="unknown role 'officer'"):
        requires("officer")


def test_login_throttle_blocks_per_key_until_the_window_passes() -> None:
    clock = Clock()
    throttle = LoginThrottle(limit=3, window_s=60, clock=clock)
    for _ in range(3):
        throttle.failed("ip:10.0.0.9")
    assert throttle.blocked_for("ip:10.0.0.9") == pytest.approx(60)
    assert throttle.blocked_for("ip:10.0.0.8") == 0  # another address is not locked out
    clock.now += 45
    assert throttle.blocked_for("ip:10.0.0.9") == pytest.approx(15)
    clock.now += 16
    assert throttle.blocked_for("ip:10.0.0.9") == 0
    throttle.failed("ip:10.0.0.9")
    throttle.succeeded("ip:10.0.0.9")
    assert throttle.blocked_for("ip:10.0.0.9") == 0


def test_rate_limit_counts_only_allowed_actions() -> None:
    clock = Clock()
    limit = RateLimit(2, 3600, clock=clock)
    assert [limit.allow("a") for _ in range(3)] == [True, True, False]
    clock.now += 3601
    assert limit.allow("a")


def test_memory_stays_bounded_under_a_flood_of_addresses() -> None:
    clock = Clock()
    throttle = LoginThrottle(limit=5, window_s=300, clock=clock)
    for i in range(3 * LoginThrottle.MAX_KEYS):
        clock.now += 0.001
        throttle.failed(f"ip:{i}")
    assert len(throttle._times) <= LoginThrottle.MAX_KEYS + 1
    throttle.failed("ip:victim-check")
    assert throttle.blocked_for("ip:victim-check") == 0
