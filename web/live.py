"""Live updates for browsers: the hub's retained states fanned out to server-sent-event streams.

The hub link calls `LiveFeed._on_change` for every state that arrives over MQTT; the feed only
puts the message into each subscriber's bounded queue (never blocks the network loop). A stream
that falls behind loses its backlog and is told to resync (render everything once). The feed
bounds how many streams are open, in all and per client address: one more is refused with
`StreamLimit` (the app answers 503 with Retry-After; the browser's EventSource tries again).
A citizen's ticket page follows one service and one ticket (`Interest`): the feed wakes it for
those states only, found through an index (with 2,000 pages open, asking every stream about
every state took a whole core and the pages fell 30 s behind).

    feed = LiveFeed(link, max_streams=4000, max_per_client=12)
    with feed.subscribe("192.168.10.31") as sub:
        events = sub.wait(timeout=15)     # [(kind, message), ...] or [] on timeout
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from werkzeug.exceptions import ServiceUnavailable

from protocol import messages as m
from web.hub_link import HubLink

RESYNC = "resync"
RETRY_AFTER_S = 30
Event = tuple[str, Any]


@dataclass(eq=False)
class Interest:
    """What a ticket page follows: the states of its service (`service` attribute) and the
    calls of its ticket (`ticket_id` attribute). `LiveFeed.follow` moves it to another service
    (a transfer). A `settled` page (its ticket waits, listed in the queue) is woken by its
    service's states only when they change its position and estimate or what it shows of the
    service (`shown_of`: the numbers served, a pause):
    a newcomer at the end of a queue changes nothing on the hundred pages ahead of it."""

    service: str
    ticket: int
    settled: bool = False
    subscriber: Subscriber | None = field(default=None, repr=False)


class Subscriber:
    """One browser stream's inbox."""

    def __init__(self, size: int) -> None:
        self._queue: queue.Queue[Event] = queue.Queue(maxsize=size)
        self.closed = False
        self.client = ""
        self.interest: Interest | None = None  # None: every state (dashboards, screens)

    def offer(self, event: Event) -> None:
        """Queue an event without blocking; on overflow keep only a resync marker."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self._drain()
            self._queue.put_nowait((RESYNC, None))

    def _drain(self) -> list[Event]:
        events = []
        while True:
            try:
                events.append(self._queue.get_nowait())
            except queue.Empty:
                return events

    def wait(self, timeout: float) -> list[Event]:
        """Every queued event, waiting up to `timeout` for the first one."""
        try:
            first = self._queue.get(timeout=timeout)
        except queue.Empty:
            return []
        return [first, *self._drain()]


class StreamLimit(ServiceUnavailable):
    """Too many live streams are open (in all, or from one address): 503 with Retry-After."""

    retry_after_s = RETRY_AFTER_S


class LiveFeed:
    """Fans the hub's state changes out to every open browser stream."""

    def __init__(
        self,
        link: HubLink,
        max_streams: int = 4000,
        max_per_client: int = 12,
        queue_size: int = 512,
    ) -> None:
        self.queue_size = queue_size
        self.max_streams, self.max_per_client = max_streams, max_per_client
        self._subscribers: set[Subscriber] = set()
        self._everything: set[Subscriber] = set()
        self._by_service: dict[str, set[Subscriber]] = {}
        self._by_ticket: dict[int, set[Subscriber]] = {}
        self._per_client: dict[str, int] = {}
        # Per service, what settled pages show from its last states: (ahead, estimate) per
        # waiting ticket; the numbers served, a pause and whether it is open.
        self._positions: dict[str, dict[int, tuple[int, int | None]]] = {}
        self._shown: dict[str, tuple[Any, ...]] = {}
        self._lock = threading.Lock()
        self.closed = False
        self.refused = 0
        link.on_change(self._on_change)

    def _on_change(self, kind: str, message: Any) -> None:
        service = getattr(message, "service", None)
        ticket = getattr(message, "ticket_id", None)
        with self._lock:
            subscribers = set(self._everything)
            if isinstance(ticket, int):
                subscribers |= self._by_ticket.get(ticket, set())
            if isinstance(service, str) and service in self._by_service:
                changed = self._changed_tickets(message)
                for subscriber in self._by_service[service]:
                    interest = subscriber.interest
                    if (
                        changed is None
                        or interest is None
                        or not interest.settled
                        or interest.ticket in changed
                    ):
                        subscribers.add(subscriber)
        for subscriber in subscribers:
            subscriber.offer((kind, message))

    def _changed_tickets(self, message: Any) -> set[int] | None:
        """The waiting tickets whose page a service's new state changes (None: every page)."""
        if isinstance(message, m.ServiceQueue):
            new = {t: (i, message.est_wait_s[i]) for i, t in enumerate(message.order)}
            old = self._positions.get(message.service)
            self._positions[message.service] = new
            if old is None:
                return None
            return {t for t, shown in new.items() if old.get(t) != shown} | (old.keys() - new)
        if isinstance(message, m.ServiceState):
            shown = shown_of(message)
            old_shown = self._shown.get(message.service)
            self._shown[message.service] = shown
            return None if old_shown != shown else set()
        return set()  # a counter's state: its own ticket's page is found by the ticket

    def admit(self, client: str, interest: Interest | None = None) -> Subscriber:
        """A subscriber for one stream from `client` (its address), or StreamLimit; with an
        `interest` it is given only the states of that service and ticket (None: all)."""
        subscriber = Subscriber(self.queue_size)
        with self._lock:
            mine = self._per_client.get(client, 0)
            if len(self._subscribers) >= self.max_streams or mine >= self.max_per_client:
                self.refused += 1
                raise StreamLimit()
            self._subscribers.add(subscriber)
            self._per_client[client] = mine + 1
            subscriber.interest = interest
            if interest is None:
                self._everything.add(subscriber)
            else:
                interest.subscriber = subscriber
                self._by_service.setdefault(interest.service, set()).add(subscriber)
                self._by_ticket.setdefault(interest.ticket, set()).add(subscriber)
        subscriber.client = client
        return subscriber

    def follow(self, interest: Interest, service: str) -> None:
        """The followed ticket moved to `service` (a transfer): its page follows it there."""
        with self._lock:
            subscriber = interest.subscriber
            if subscriber is not None and subscriber in self._subscribers:
                _discard(self._by_service, interest.service, subscriber)
                self._by_service.setdefault(service, set()).add(subscriber)
            interest.service = service

    def release(self, subscriber: Subscriber) -> None:
        """The stream ended."""
        with self._lock:
            if subscriber in self._subscribers:
                self._subscribers.discard(subscriber)
                self._everything.discard(subscriber)
                interest = subscriber.interest
                if interest is not None:
                    _discard(self._by_service, interest.service, subscriber)
                    _discard(self._by_ticket, interest.ticket, subscriber)
                left = self._per_client.get(subscriber.client, 1) - 1
                if left > 0:
                    self._per_client[subscriber.client] = left
                else:
                    self._per_client.pop(subscriber.client, None)

    @contextmanager
    def subscribe(self, client: str = "") -> Iterator[Subscriber]:
        """A subscriber for the duration of one stream (StreamLimit when full)."""
        subscriber = self.admit(client)
        try:
            yield subscriber
        finally:
            self.release(subscriber)

    @property
    def listeners(self) -> int:
        """How many streams are open."""
        with self._lock:
            return len(self._subscribers)

    def close(self) -> None:
        """End every stream (server shutdown)."""
        self.closed = True
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber.closed = True
            subscriber.offer((RESYNC, None))


def shown_of(state: m.ServiceState) -> tuple[Any, ...]:
    """What a waiting ticket's page shows from its service's state (the numbers served, a
    pause and its end, whether the service is open): a state that changes none of it changes
    no waiting page."""
    return state.now_serving, state.pause, state.open


def _discard(index: dict[Any, set[Subscriber]], key: Any, subscriber: Subscriber) -> None:
    found = index.get(key)
    if found is not None:
        found.discard(subscriber)
        if not found:
            del index[key]


def sse(event: str, data: Any) -> str:
    """One server-sent event (JSON data on one line)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def stream(
    subscriber: Subscriber,
    feed: LiveFeed,
    initial: Callable[[], list[str]],
    update: Callable[[list[Event]], list[str]],
    *,
    keepalive_s: float,
    max_s: float,
) -> Iterator[str]:
    """An SSE body for an admitted `subscriber`: the initial events, then updates as the hub
    publishes, for at most `max_s` (the browser's EventSource reconnects by itself), with a
    keep-alive comment whenever `keepalive_s` passed without one (a write to a phone that left
    fails within the server's socket timeouts, and the stream ends)."""
    try:
        yield "retry: 2000\n\n"
        yield from initial()
        now = last_write = time.monotonic()
        deadline = now + max_s
        while now < deadline and not subscriber.closed and not feed.closed:
            wait = min(keepalive_s - (now - last_write), deadline - now)
            events = subscriber.wait(max(0.01, wait))
            out: list[str] = []
            if any(kind == RESYNC for kind, _ in events):
                out = initial()
            elif events:
                out = update(events)
            now = time.monotonic()
            if out:
                yield from out
                last_write = now
            elif now - last_write >= keepalive_s:
                yield ": keep-alive\n\n"
                last_write = now
    finally:
        feed.release(subscriber)


def response(
    feed: LiveFeed,
    initial: Callable[[], list[str]],
    update: Callable[[list[Event]], list[str]],
    config: Any,
    *,
    cleanup: Callable[[], None] | None = None,
    interest: Interest | None = None,
) -> Any:
    """The SSE response of a live view, or 503 + Retry-After when the stream limits are
    reached (checked before the response starts, so the browser gets a clear status)."""
    from flask import Response, request, stream_with_context

    subscriber = feed.admit(request.remote_addr or "", interest)

    def body() -> Iterator[str]:
        try:
            yield from stream(
                subscriber,
                feed,
                initial,
                update,
                keepalive_s=config["SSE_KEEPALIVE_S"],
                max_s=config["SSE_MAX_S"],
            )
        finally:
            feed.release(subscriber)
            if cleanup is not None:
                cleanup()

    out = Response(
        stream_with_context(body()),
        mimetype="text/event-stream",
        headers={"X-Accel-Buffering": "no", "Cache-Control": "no-store"},
    )
    # Also when the body never started (the client left at once): the slot is given back.
    out.call_on_close(lambda: feed.release(subscriber))
    return out
