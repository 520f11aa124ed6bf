"""The public queue view is the hub's own figures: a ticket's place in it is its people_ahead,
with priority tickets, transfers and calls mixed in; and it carries ids only."""

from __future__ import annotations

import random

from demo.site import EXAMPLE, local_inventory
from hub.queue_view import MAX_WAITING, queue_view
from hub.rules import Queue
from protocol import messages as m
from protocol.site import Site, parse_site

NOW = 1_796_601_000.0


def big_site() -> Site:
    """The example, open around the clock, every service's daily quota 999."""
    text = EXAMPLE.read_text(encoding="utf-8")
    return parse_site(local_inventory(text, port=1883, database="unused.sqlite", quota=999))


def test_a_tickets_place_in_the_view_is_its_people_ahead() -> None:
    site = big_site()
    queue = Queue(site)
    rng = random.Random(7)
    queue.open_counter(1, "Siti", NOW)
    queue.open_counter(3, "Budi", NOW)
    for i in range(300):
        service = rng.choice(["ktp", "kk"])
        priority = "elderly" if rng.random() < 0.15 else None
        queue.issue(service, priority=priority, device="hub", now=NOW + i, token=f"token-{i:010d}")
        if rng.random() < 0.3:
            queue.call_next(rng.choice([1, 3]), NOW + i)
        if rng.random() < 0.05 and queue.counters[1].current is not None:
            queue.transfer(1, "akta", NOW + i)
    for service in ("ktp", "kk", "akta"):
        view = queue_view(queue, site.site.id, service, seq=5, now=NOW, open_now=True)
        assert len(view.waiting) == queue.waiting_count(service)
        for place, ticket_id in enumerate(view.waiting):
            ticket = queue.tickets[ticket_id]
            assert queue.people_ahead(ticket) == place
            assert view.est_wait_s[place] == queue.estimate(service, place, NOW)
        called = {c.ticket for c in view.called}
        assert called == {
            c.current
            for c in queue.counters.values()
            if c.current is not None and queue.tickets[c.current].service == service
        }
        assert len(m.encode(view)) <= m.MAX_PAYLOAD_BYTES


def test_a_queue_longer_than_one_message_says_how_many_more() -> None:
    site = big_site()
    queue = Queue(site)
    for i in range(MAX_WAITING + 25):
        for service in ("ktp", "kk"):  # two services: 999 numbers each
            if len(queue.waiting("ktp")) < MAX_WAITING + 25:
                queue.issue(
                    service, priority=None, device="hub", now=NOW, token=f"t-{service}-{i:08d}"
                )
    view = queue_view(queue, site.site.id, "ktp", seq=1, now=NOW, open_now=True)
    assert (len(view.waiting), view.more) == (MAX_WAITING, 25)
    assert len(m.encode(view)) <= m.MAX_PAYLOAD_BYTES
