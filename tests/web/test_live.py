"""The live fan-out: never blocks the hub, a slow stream resyncs instead of growing."""

from __future__ import annotations

from web.live import RESYNC, Subscriber, sse


def test_slow_subscriber_gets_a_resync_instead_of_a_backlog() -> None:
    sub = Subscriber(size=3)
    for i in range(10):
        sub.offer(("CounterState", i))  # never blocks
    events = sub.wait(timeout=0.1)
    assert (RESYNC, None) in events and len(events) <= 3


def test_wait_returns_empty_on_timeout_and_everything_queued() -> None:
    sub = Subscriber(size=10)
    assert sub.wait(timeout=0.01) == []
    sub.offer(("a", 1))
    sub.offer(("b", 2))
    assert sub.wait(timeout=0.01) == [("a", 1), ("b", 2)]


def test_sse_format_is_one_json_line() -> None:
    assert sse("tile", {"html": "<p>\na</p>"}) == 'event: tile\ndata: {"html":"<p>\\na</p>"}\n\n'
