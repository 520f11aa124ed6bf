"""The public view of a service's queue, for the citizens' ticket pages on the region.

Built by the hub's worker from its own queue (the authority on people ahead and estimates:
the region renders it, never re-derives it) whenever a service's state is published; the
outbox carries it up. No personal data: ticket ids only.

    view = queue_view(queue, "mpp-banjarbaru", "ktp", seq=seq, now=now, open_now=True)
"""

from __future__ import annotations

from hub.rules import Queue
from protocol import messages as m

MAX_WAITING = 600  # listed in one view (16 KiB); beyond: `more`


def queue_view(
    queue: Queue, site_id: str, service: str, *, seq: int, now: float, open_now: bool
) -> m.QueueView:
    """The view of `service` now: waiting ids in call order with the hub's estimate for each
    place, and the tickets at its counters."""
    order = queue.call_order(service)
    shown = order[:MAX_WAITING]
    called = [
        m.CalledTicket(ticket=c.current, counter=c.number, call_seq=c.call_seq)
        for c in queue.counters.values()
        if c.current is not None and queue.tickets[c.current].service == service
    ]
    return m.QueueView(
        site=site_id,
        service=service,
        seq=seq,
        at=now,
        open=open_now,
        waiting=tuple(t.id for t in shown),
        est_wait_s=queue.estimates(service, len(shown), now),
        called=tuple(called),
        more=len(order) - len(shown),
    )
