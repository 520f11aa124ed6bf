"""The retained state messages the hub publishes, built from the queue (pure functions)."""

from __future__ import annotations

from hub.rules import CounterNow, Queue, duration
from protocol import messages as m
from protocol.pauses import PauseWindow, pauses_now
from protocol.site import Site

RECENT_CALLS = 6


def pause_info(window: PauseWindow) -> m.PauseInfo:
    """A pause in force, as states carry it."""
    name = window.pause.name
    return m.PauseInfo(
        id=window.id,
        name=m.Text(id=name.get("id"), en=name.get("en")),
        since=window.start,
        until=window.end,
    )


def break_info(counter: CounterNow) -> m.BreakInfo | None:
    """The officer's break at a counter, if on one."""
    if counter.break_reason is None or counter.break_since is None:
        return None
    return m.BreakInfo(
        reason=counter.break_reason,  # type: ignore[arg-type]
        since=counter.break_since,
        until=counter.break_until,
    )


def counter_state(queue: Queue, number: int, seq: int, now: float) -> m.CounterState:
    """What counter `number` shows: its called ticket, call sequence, its services, a break
    or a pause."""
    counter = queue.counters[number]
    services = queue.services_of(number)
    ticket = queue.tickets.get(counter.current) if counter.current is not None else None
    waiting = sum(queue.waiting_count(code) for code in services)
    return m.CounterState(
        seq=seq,
        counter=number,
        open=counter.open,
        officer=counter.officer,
        call_seq=counter.call_seq,
        ticket=ticket.label if ticket else None,
        ticket_id=ticket.id if ticket else None,
        service=ticket.service if ticket else None,
        priority=bool(ticket and ticket.priority),
        called_at=ticket.called_at if ticket else None,
        waiting=waiting,
        served_today=counter.served_today,
        skipped=tuple(t.label for t in queue.skipped(services)[-m.MAX_SKIPPED_LISTED :]),
        services=services,
        on_break=break_info(counter),
        pause=pause_info(p) if (p := queue.counter_pause(number, now)) else None,
    )


def service_state(queue: Queue, code: str, seq: int, now: float) -> m.ServiceState:
    """Queue of one service: waiting, estimate for a newcomer, quota, open or not, counters
    serving it, a pause."""
    waiting = queue.queued[code].values()
    called = (queue.tickets[c.current] for c in queue.counters.values() if c.current is not None)
    serving = sorted((t for t in called if t.service == code), key=lambda t: -(t.called_at or 0))
    number = queue.last_number.get(code)
    last = f"{queue.site.services[code].prefix}{number:03d}" if number else None
    counters = queue.serving_counters(code)
    return m.ServiceState(
        seq=seq,
        service=code,
        open=queue.service_open(code, now) is None,
        waiting=len(waiting),
        priority_waiting=len(queue.queued_priority[code]),
        last_issued=last,
        now_serving=tuple(t.label for t in serving),
        est_wait_s=queue.estimate(code, len(waiting), now),
        longest_wait_s=round(duration(min(t.issued_at for t in waiting), now) or 0)
        if waiting
        else 0,
        quota_left=queue.quota_left(code),
        open_counters=queue.open_counters(code),
        serving_counters=counters,
        on_break=queue.on_break(code),
        resumes_at=queue.break_return(code) if not counters else None,
        avg_service_s=round(queue.avg_service_s[code]),
        daily_quota=queue.daily_quota(code),
        cutoff=cutoff.strftime("%H:%M") if (cutoff := queue.cutoff(code)) else None,
        pause=pause_info(p) if (p := queue.pause_of(code, now)) else None,
    )


def service_queue(queue: Queue, code: str, seq: int, now: float) -> m.ServiceQueue:
    """Every waiting ticket of a service in call order with its estimated wait (the ticket
    page's figures: people ahead is the position; no estimate when no counter serves it)."""
    order = [t.id for t in queue.call_order(code)][: m.MAX_QUEUE_LISTED]
    return m.ServiceQueue(
        seq=seq,
        service=code,
        order=tuple(order),
        est_wait_s=queue.estimates(code, len(order), now),
    )


def site_state(
    queue: Queue, seq: int, now: float, clock_ok: bool = True, *, config_refused: str | None = None
) -> m.SiteState:
    """The site summary with the latest calls (for canteen screens and dashboards), and
    whether the hub trusts its clock (it issues no tickets while it does not)."""
    calls = []
    for ticket_id, counter, call_seq, at in queue.recent_calls[:RECENT_CALLS]:
        ticket = queue.tickets.get(ticket_id)
        if ticket is not None:
            calls.append(
                m.CallInfo(
                    ticket=ticket.label,
                    service=ticket.service,
                    counter=counter,
                    call_seq=call_seq,
                    called_at=at,
                    priority=bool(ticket.priority),
                )
            )
    return m.SiteState(
        seq=seq,
        day=queue.day,
        now=now,
        config_version=queue.site.version,
        config_refused=config_refused,
        issued=sum(queue.issued_count.values()),
        served=sum(c.served_today for c in queue.counters.values()),
        waiting=sum(len(q) for q in queue.queued.values()),
        recent_calls=tuple(calls),
        clock_ok=clock_ok,
        pauses=tuple(pause_info(w) for w in pauses_now(queue.site, now)),
    )


def call_info(queue: Queue, number: int) -> m.CallInfo | None:
    """The call now shown at counter `number`, if any."""
    counter = queue.counters[number]
    if counter.current is None:
        return None
    ticket = queue.tickets[counter.current]
    return m.CallInfo(
        ticket=ticket.label,
        service=ticket.service,
        counter=number,
        call_seq=counter.call_seq,
        called_at=ticket.called_at or 0.0,
        priority=bool(ticket.priority),
    )


def zone_sound(queue: Queue, zone: str, seq: int) -> m.ZoneSound:
    """How a zone's screens speak calls now."""
    sound = queue.sound_of(zone)
    return m.ZoneSound(
        seq=seq,
        zone=zone,
        speech=sound.speech,
        volume=sound.volume,
        number_reading=sound.number_reading,  # type: ignore[arg-type]
    )


def inventory_change_problem(old: Site, new: Site, queue: Queue) -> str | None:
    """Why the running hub cannot take `new` in place of `old` now, or None.

    Today's tickets stay: a service that has tickets today, or a counter serving one, must
    stay in the inventory until the day is over.
    """
    if new.site.id != old.site.id:
        return f"site.id is {new.site.id!r}, the hub runs {old.site.id!r}; that is another site"
    if new.region != old.region:
        return "[region] changed: restart the hub for that (systemctl restart mpp-hub)"
    removed = set(old.services) - set(new.services)
    today: dict[str, int] = {}
    for ticket in queue.tickets.values():
        if ticket.service in removed:
            today[ticket.service] = today.get(ticket.service, 0) + 1
    if today:
        listed = ", ".join(f"services.{code} ({n} tickets)" for code, n in sorted(today.items()))
        return f"{listed}: has tickets today; remove it after closing time"
    gone = set(old.counters) - set(new.counters)
    busy = [n for n in gone if queue.counters[n].current is not None]
    if busy:
        return f"counters.{min(busy)}: is serving a ticket now; remove it when it is free"
    return None
