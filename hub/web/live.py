"""Live updates for browsers: the hub's published states fanned out to server-sent-event streams.

The hub calls `LiveFeed._on_change` on its worker thread for every state it publishes; the feed
only puts the message into each subscriber's bounded queue (never blocks the hub). A stream
that falls behind loses its backlog and is told to resync (render everything once).

    feed = LiveFeed(service)
    with feed.subscribe() as sub:
        events = sub.wait(timeout=15)     # [(kind, message), ...] or [] on timeout
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from hub.service import HubService

RESYNC = "resync"
Event = tuple[str, Any]


class Subscriber:
    """One browser stream's inbox."""

    def __init__(self, size: int) -> None:
        self._queue: queue.Queue[Event] = queue.Queue(maxsize=size)
        self.closed = False

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


class LiveFeed:
    """Fans the hub's state changes out to every open browser stream."""

    def __init__(self, service: HubService, queue_size: int = 512) -> None:
        self.queue_size = queue_size
        self._subscribers: set[Subscriber] = set()
        self._lock = threading.Lock()
        self.closed = False
        service.on_change(self._on_change)

    def _on_change(self, kind: str, message: Any) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber.offer((kind, message))

    @contextmanager
    def subscribe(self) -> Iterator[Subscriber]:
        """A subscriber for the duration of one stream."""
        subscriber = Subscriber(self.queue_size)
        with self._lock:
            self._subscribers.add(subscriber)
        try:
            yield subscriber
        finally:
            with self._lock:
                self._subscribers.discard(subscriber)

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


def sse(event: str, data: Any) -> str:
    """One server-sent event (JSON data on one line)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def stream(
    feed: LiveFeed,
    initial: Callable[[], list[str]],
    update: Callable[[list[Event]], list[str]],
    *,
    keepalive_s: float,
    max_s: float,
) -> Iterator[str]:
    """An SSE body: the initial events, then updates as the hub publishes, for at most `max_s`
    (the browser's EventSource reconnects by itself), with keep-alive comments in between."""
    with feed.subscribe() as subscriber:
        yield "retry: 2000\n\n"
        yield from initial()
        deadline = time.monotonic() + max_s
        while time.monotonic() < deadline and not subscriber.closed and not feed.closed:
            events = subscriber.wait(min(keepalive_s, max(0.01, deadline - time.monotonic())))
            if not events:
                yield ": keep-alive\n\n"
                continue
            if any(kind == RESYNC for kind, _ in events):
                yield from initial()
                continue
            yield from update(events)
