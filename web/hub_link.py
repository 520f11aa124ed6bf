"""The web process's link to the hub: a client like any device, over MQTT.

It subscribes to the hub's retained state (counters, services, their waiting order, the site,
zone sound, alerts) and to every device's presence, keeps the latest of each, and tells the
live feed; it sends staff commands with request ids (applied once by the hub) and waits for
the reply; it publishes the web's own retained message, the featured products.

    link = HubLink(site, bus).start()
    reply = link.submit(m.CallNext(device="web", counter=3))
    link.retained[link.topics.counter_state(3)]       # the latest CounterState
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol import messages as m
from protocol.errors import BadMessage, BrokerUnavailable, CommandRejected, RequestTimeout
from protocol.mqtt import Bus, Incoming
from protocol.site import Site
from protocol.topics import Topics

log = logging.getLogger("mpp.web")

WEB_DEVICE = "web"
COMMAND_TIMEOUT_S = 4.0
# Rows of the topic table the web keeps the latest message of (retained state).
STATE_ROWS: dict[str, type[m.Message]] = {
    "counter_state": m.CounterState,
    "service_state": m.ServiceState,
    "service_queue": m.ServiceQueue,
    "site_state": m.SiteState,
    "zone_sound": m.ZoneSound,
    "alert": m.Alert,
    "featured": m.FeaturedState,
}


@dataclass
class FleetEntry:
    """The latest presence message of a device and when it arrived."""

    status: m.DeviceStatus
    seen_at: float


class HubLink:
    """What the web knows of the hub's state, and its way to ask the hub for changes."""

    def __init__(
        self,
        site: Site,
        bus: Bus,
        *,
        database: str | Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.site = site
        self.bus = bus
        self.topics: Topics = bus.topics
        self.database = Path(database or site.hub.database)  # the hub's, read-only
        self.clock = clock
        # The latest message per retained topic (immutable messages: safe to read anywhere).
        self.retained: dict[str, m.Message] = {}
        self.fleet: dict[str, FleetEntry] = {}
        self._listeners: list[Callable[[str, Any], None]] = []
        self._lock = threading.Lock()
        for row, model in STATE_ROWS.items():
            bus.subscribe(self.topics.all_of(row), self._state_handler(model))
        bus.subscribe(self.topics.all_of("status"), self._on_status)

    def start(self, wait: float | None = None) -> HubLink:
        """Connect (in the background; with `wait`, up to that long for the first connect)."""
        self.bus.start(wait=wait)
        return self

    def stop(self) -> None:
        """Disconnect (the broker publishes the web's presence as offline)."""
        self.bus.stop()

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up (so commands can reach the hub)."""
        return self.bus.connected

    @property
    def seq(self) -> int:
        """The newest version of the hub's state the web has seen."""
        state = self.retained.get(self.topics.site_state())
        return state.seq if isinstance(state, m.SiteState) else 0

    def on_change(self, listener: Callable[[str, Any], None]) -> None:
        """Call `listener(kind, message)` for every state received (on the network thread:
        hand the message over, never block)."""
        self._listeners.append(listener)

    def snapshot(self, row: str) -> list[m.Message]:
        """The latest messages of one topic-table row (e.g. 'alert')."""
        return [
            msg
            for topic, msg in list(self.retained.items())
            if (self.topics.parse(topic) or ("",))[0] == row
        ]

    # -- incoming ------------------------------------------------------------------------
    def _state_handler(self, model: type[m.Message]) -> Callable[[Incoming], None]:
        def handle(incoming: Incoming) -> None:
            if not incoming.payload:  # a cleared retained message (an acknowledged alert)
                gone = self.retained.pop(incoming.topic, None)
                if isinstance(gone, m.Alert):
                    self._tell("alert_cleared", gone.id)
                return
            try:
                message = m.decode(model, incoming.payload)
            except BadMessage as exc:
                log.warning("bad state ignored", extra={"topic": incoming.topic, "error": str(exc)})
                return
            with self._lock:
                known = self.retained.get(incoming.topic)
                seq = getattr(known, "seq", None)
                if seq is not None and getattr(message, "seq", seq) < seq:
                    return  # an older version arriving late (a retained copy after a live one)
                self.retained[incoming.topic] = message
            self._tell(type(message).__name__, message)

        return handle

    def _on_status(self, incoming: Incoming) -> None:
        if not incoming.payload:
            return
        try:
            status = m.decode(m.DeviceStatus, incoming.payload)
        except BadMessage as exc:
            log.warning("bad status ignored", extra={"topic": incoming.topic, "error": str(exc)})
            return
        self.fleet[status.device] = FleetEntry(status, self.clock())
        self._tell("status", status)

    def _tell(self, kind: str, message: Any) -> None:
        for listener in self._listeners:
            try:
                listener(kind, message)
            except Exception:  # one broken listener must not stop the others
                log.exception("live update listener failed", extra={"kind": kind})

    # -- outgoing ------------------------------------------------------------------------
    def submit(self, command: m.Command, timeout: float = COMMAND_TIMEOUT_S) -> m.Reply:
        """Send a command to the hub and wait for its reply. The command's request id makes
        the hub apply it once, however often it is sent (a resend, a replayed form). Not
        reaching the hub is a reply too (code 'internal')."""
        try:
            result = self.bus.request(command, timeout=timeout, retries=1)
        except CommandRejected as exc:
            text = m.Text(**exc.text) if exc.text else None
            error = m.ErrorInfo(code=exc.code, message=exc.message, text=text)
            return m.Reply(request_id=command.request_id, ok=False, error=error, hub_time=0.0)
        except (BrokerUnavailable, RequestTimeout) as exc:
            log.error(
                "hub did not answer",
                extra={"request_id": command.request_id, "kind": command.kind, "error": str(exc)},
            )
            error = m.ErrorInfo(code="internal", message=f"the hub did not answer: {exc}")
            return m.Reply(request_id=command.request_id, ok=False, error=error, hub_time=0.0)
        return m.Reply(request_id=command.request_id, ok=True, result=result, hub_time=0.0)

    def publish(self, topic: str, message: m.Message) -> None:
        """Publish one of the web's own retained messages (featured products)."""
        with self._lock:
            self.retained[topic] = message
        self.bus.publish(topic, message, retain=True)
        self._tell(type(message).__name__, message)
