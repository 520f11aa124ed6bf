"""The live fan-out: never blocks the hub, a slow stream resyncs instead of growing."""

from __future__ import annotations

from protocol import messages as m
from web.live import RESYNC, Interest, LiveFeed, Subscriber, sse


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


class Link:
    """What LiveFeed needs of the hub link: a place to hang its listener."""

    def on_change(self, listener) -> None:
        self.tell = listener


def test_a_ticket_page_is_woken_for_its_service_and_ticket_only_and_follows_a_transfer() -> None:
    link = Link()
    feed = LiveFeed(link, max_streams=10_000, max_per_client=10_000)
    page = feed.admit("10.0.0.1", Interest("ktp", 7))
    others = [feed.admit(f"10.0.1.{i % 250}", Interest("kk", 100 + i)) for i in range(2000)]
    dashboard = feed.admit("10.0.0.2")
    ktp = m.ServiceQueue(seq=1, service="ktp", order=(7,), est_wait_s=(60,))
    called = m.CounterState(seq=2, counter=3, open=True, call_seq=1, ticket="B001", ticket_id=7,
                            service="kk", waiting=0)  # fmt: skip
    site = m.SiteState(seq=3, day="2026-12-07", now=1.0, config_version="x", issued=1,
                       served=0, waiting=1)  # fmt: skip
    for message in (ktp, called, site):
        link.tell(type(message).__name__, message)
    assert [e for _, e in page.wait(0.01)] == [ktp, called]  # not the site's state
    assert [e for _, e in dashboard.wait(0.01)] == [ktp, called, site]
    assert [e for _, e in others[0].wait(0.01)] == [called]  # kk's states only
    interest = page.interest
    assert interest is not None
    feed.follow(interest, "kk")  # transferred to kk: kk's queue now, ktp's no more
    kk = m.ServiceQueue(seq=4, service="kk", order=(7,), est_wait_s=(30,))
    link.tell("ServiceQueue", ktp)
    link.tell("ServiceQueue", kk)
    assert [e for _, e in page.wait(0.01)] == [kk]
    feed.release(page)
    link.tell("ServiceQueue", kk)
    assert page.wait(0.01) == [] and feed.listeners == 2001


def test_a_settled_page_is_woken_only_when_its_figures_change() -> None:
    """A waiting page (settled) is not woken by a newcomer joining behind it, nor by a
    service state that leaves the numbers served as they were; it is by a NEXT that moves it
    up, by a newcomer who goes ahead of it (priority), and by a change of the numbers served.
    A page not settled (its ticket called, or not yet rendered) gets every state."""
    link = Link()
    feed = LiveFeed(link)
    front, back = (feed.admit(f"10.0.0.{i}", Interest("ktp", t)) for i, t in ((1, 1), (2, 2)))
    called = feed.admit("10.0.0.3", Interest("ktp", 9))
    for sub in (front, back):
        assert sub.interest is not None
        sub.interest.settled = True

    def queue(seq: int, *order: int) -> m.ServiceQueue:
        return m.ServiceQueue(seq=seq, service="ktp", order=order, est_wait_s=order)

    def state(seq: int, *serving: str) -> m.ServiceState:
        return m.ServiceState(
            seq=seq, service="ktp", open=True, waiting=2, quota_left=9, now_serving=serving
        )

    def woken(sub: Subscriber) -> list[int]:
        return [message.seq for _, message in sub.wait(0.01)]

    link.tell("ServiceQueue", queue(1, 1, 2))  # the first states the feed sees: everyone
    link.tell("ServiceState", state(2))
    assert woken(front) == [1, 2] and woken(back) == [1, 2] and woken(called) == [1, 2]
    link.tell("ServiceQueue", queue(3, 1, 2, 3))  # a newcomer behind both
    link.tell("ServiceState", state(4))  # the waiting count moved, the numbers served did not
    assert woken(front) == [] and woken(back) == [] and woken(called) == [3, 4]
    link.tell("ServiceQueue", queue(5, 1, 4, 2, 3))  # a priority newcomer ahead of ticket 2
    assert woken(front) == [] and woken(back) == [5]
    link.tell("ServiceQueue", queue(6, 4, 2, 3))  # NEXT called ticket 1: both pages change
    link.tell("ServiceState", state(7, "A001"))
    assert woken(front) == [6, 7] and woken(back) == [6, 7]
    prayer = m.PauseInfo(id="jumat", name=m.Text(id="Sholat Jumat", en="Friday prayer"),
                         since=1.0, until=2.0)  # fmt: skip
    paused = state(8, "A001").model_copy(update={"pause": prayer})
    link.tell("ServiceState", paused)  # a pause begins: every page says so
    assert woken(front) == [8] and woken(back) == [8]
