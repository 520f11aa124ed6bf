"""One display device at work: MQTT state in, pictures on the TV, calls spoken.

paho's network thread only puts messages on a queue; the main thread (which pygame owns)
takes them off, updates the model, starts announcements and redraws what changed. It sleeps
on the queue until a message arrives or the scene changes by the clock (a minute, a page, a
blink), so an idle screen costs next to nothing.

    app = DisplayApp(site, "tv-lobby-1", bus=bus, renderer=renderer, announcer=announcer)
    app.start()
    app.run()            # until stop() or the window is closed
    app.close()
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from display.announcer import Announcement, Announcer, AnnouncerEvent
from display.errors import NotADisplay
from display.featured import FeaturedImages
from display.layout import Layout, zone_layout
from display.scene import Highlights, Scene, SceneBuilder, Timing, zone_counters, zone_services
from display.speech_text import call_phrase
from display.state import ScreenModel
from protocol import messages as m
from protocol.errors import BadMessage, MppError
from protocol.mqtt import Bus, Incoming
from protocol.site import DisplayDevice, Site

log = logging.getLogger("mpp.display")

MAX_SLEEP_S = 0.5  # window events are looked at least this often


class Screen(Protocol):
    """What the app needs from a renderer (display.renderer.Renderer)."""

    def open(self) -> Layout:
        """Open the screen; the layout for its size."""

    def render(self, scene: Scene) -> list[str]:
        """Draw what changed; the regions redrawn."""

    def poll(self) -> bool:
        """Handle window events; True when asked to quit."""

    def close(self) -> None:
        """Close the screen."""


def display_device(site: Site, device_id: str) -> DisplayDevice:
    """The inventory entry of a display; NotADisplay says what is wrong with the name."""
    device = site.devices.get(device_id)
    if not isinstance(device, DisplayDevice):
        displays = ", ".join(d for d, spec in site.devices.items() if spec.role == "display")
        what = "not in the inventory" if device is None else f"a {device.role}, not a display"
        raise NotADisplay(f"device {device_id!r} is {what}; displays: {displays or 'none'}")
    return device


def layout_factory(site: Site, zone_id: str) -> Callable[[int, int], Layout]:
    """A function giving the zone's layout for any screen size (the TV decides the size)."""
    zone = site.zones[zone_id]
    counters = zone_counters(site, zone_id)
    services = zone_services(site, counters) if zone.kind == "lobby" else tuple(site.services)

    def make(width: int, height: int) -> Layout:
        return zone_layout(
            zone.kind,
            width,
            height,
            counters=len(counters),
            services=len(services),
            featured=bool(zone.featured),
        )

    return make


@dataclass(frozen=True)
class _Message:
    incoming: Incoming
    received_at: float  # time.monotonic() on the network thread


@dataclass(frozen=True)
class _Connection:
    connected: bool
    at: float


@dataclass(frozen=True)
class _ImageReady:
    sha256: str


class DisplayApp:
    """A display device: bus -> queue -> main-thread render loop -> announcer."""

    def __init__(
        self,
        site: Site,
        device_id: str,
        *,
        bus: Bus,
        renderer: Screen,
        announcer: Announcer,
        images: FeaturedImages | None = None,
        base_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
        max_age_s: float = 30.0,
        offline_after_s: float = 5.0,
        timing: Timing | None = None,
    ) -> None:
        self.site = site
        self.device_id = device_id
        self.device = display_device(site, device_id)
        self.zone_id = self.device.zone
        self.zone = site.zones[self.zone_id]
        self.lang = self.device.lang or self.zone.lang
        self.bus = bus
        self.renderer = renderer
        self.announcer = announcer
        self.images = images
        self.base_dir = base_dir if base_dir is not None else Path(site.source).parent
        self.clock = clock
        self.offline_after_s = offline_after_s
        self.timing = timing or Timing()
        self.model = ScreenModel(site, zone_counters(site, self.zone_id), max_age_s=max_age_s)
        self.highlights = Highlights()
        self.inbox: queue.Queue[Any] = queue.Queue()
        # How calls are spoken: the inventory's until the hub's zone sound says otherwise.
        self.sound = m.ZoneSound.of_inventory(self.zone_id, self.zone)
        self._announcer_started = False
        self.received = 0  # state messages taken off the queue
        self.ignored = 0  # ... refused (malformed, unknown counter, ...)
        self.replayed = 0  # ... not newer than what the screen has (retained replays)
        self.first_frame_at: float | None = None
        self.builder: SceneBuilder | None = None
        self._connected = False
        self._disconnected_at = time.monotonic()
        self._stop = False
        self._extra = {"device": device_id}
        announcer.listener = self._on_announcer_event
        if images is not None:
            images.on_ready = self._on_image_ready

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Open the screen, draw the first frame, start speech, then connect."""
        layout = self.renderer.open()
        self.builder = SceneBuilder(
            self.site,
            self.zone_id,
            layout,
            self.lang,
            self.base_dir,
            self.timing,
            image_for=self._image_for,
        )
        self._render()
        self.first_frame_at = time.monotonic()
        log.info("first frame drawn", extra={**self._extra, "zone": self.zone_id})
        self._start_speech()
        if self.images is not None:
            self.images.start()
        topics = self.bus.topics
        for name in ("counter_state", "service_state", "site_state"):
            self.bus.subscribe(topics.all_of(name), self._on_incoming)
        self.bus.subscribe(topics.featured(self.zone_id), self._on_incoming)
        self.bus.subscribe(topics.zone_sound(self.zone_id), self._on_incoming)
        self.bus.on_connection_change(self._on_connection)
        self.bus.start()

    def stop(self) -> None:
        """Ask the loop to end (from any thread or a signal handler)."""
        self._stop = True
        self.inbox.put(None)

    def close(self) -> None:
        """Disconnect, finish speaking, close the screen."""
        self.bus.stop()
        if self.images is not None:
            self.images.close()
        if self._announcer_started:
            self.announcer.close()
        self.renderer.close()

    # -- inputs (other threads) ------------------------------------------------------------
    def _on_incoming(self, incoming: Incoming) -> None:
        self.inbox.put(_Message(incoming, time.monotonic()))

    def _on_connection(self, connected: bool) -> None:
        self.inbox.put(_Connection(connected, time.monotonic()))

    def _on_announcer_event(self, event: AnnouncerEvent) -> None:
        self.inbox.put(event)

    def _on_image_ready(self, sha256: str) -> None:
        self.inbox.put(_ImageReady(sha256))  # the loop redraws; the slide now has its image

    # -- the loop (main thread) ------------------------------------------------------------
    def run(
        self,
        until: Callable[[], bool] | None = None,
        timeout: float | None = None,
        on_loop: Callable[[], None] | None = None,
    ) -> None:
        """Serve until stop(), the window closes, `until()` holds, or `timeout` seconds pass.

        `on_loop` runs once per turn of the loop (the systemd watchdog ping).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stop and not (until is not None and until()):
            if on_loop is not None:
                on_loop()
            wait = self._sleep_time()
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                wait = min(wait, left)
            self.step(wait)

    def step(self, timeout: float = 0.0) -> None:
        """Wait up to `timeout` for input, handle everything queued, redraw what changed."""
        try:
            items = [self.inbox.get(timeout=timeout) if timeout > 0 else self.inbox.get_nowait()]
        except queue.Empty:
            items = []
        while True:
            try:
                items.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        for item in items:
            self._handle(item)
        if self.renderer.poll():
            self._stop = True
        self._render()

    def _handle(self, item: Any) -> None:
        if isinstance(item, _Message):
            self._on_state(item)
        elif isinstance(item, _Connection):
            if item.connected and not self._connected:
                log.info("broker reachable; resyncing from retained state", extra=self._extra)
            self._connected = item.connected
            if not item.connected:
                self._disconnected_at = item.at
        elif isinstance(item, AnnouncerEvent):
            if item.kind == "started":
                self.highlights.started(item.key, item.at)
            else:
                self.highlights.finished(item.key, item.at)

    def _on_state(self, message: _Message) -> None:
        incoming = message.incoming
        self.received += 1
        try:
            state = self.model.parse(incoming.topic, incoming.payload)
        except BadMessage as exc:
            self.ignored += 1
            log.warning(
                "state message ignored",
                extra={**self._extra, "topic": incoming.topic, "error": str(exc)},
            )
            return
        update = self.model.apply(state, self.clock(), retained=incoming.retained)
        if not update.applied:
            self.replayed += 1
            log.debug("older state ignored", extra={**self._extra, "note": update.note})
        elif update.note:
            log.info(update.note, extra=self._extra)
        if isinstance(state, m.FeaturedState) and update.applied:
            self._featured(state)
        if isinstance(state, m.ZoneSound) and update.applied and state.zone == self.zone_id:
            self.sound = state
            log.info(
                "zone sound set",
                extra={**self._extra, "speech": state.speech, "volume": state.volume},
            )
            self._start_speech()
        for call in update.new_calls:
            self.highlights.add(call.key, time.monotonic(), self.speaks)
            log.info(
                "new call",
                extra={**self._extra, "ticket": call.ticket, "counter": call.counter},
            )
            if not self.speaks:
                continue
            words = (self.site, call.ticket, call.counter, self.lang, self.sound.number_reading)
            try:
                phrase, short = call_phrase(*words), call_phrase(*words, short=True)
            except MppError as exc:
                log.error("call cannot be spoken", extra={**self._extra, "error": str(exc)})
                continue
            # Spoken while it is news: no later than max_age_s after the call was made.
            age = self.clock() + self.model.clock_offset - call.called_at
            stale_at = time.monotonic() + self.model.max_age_s - max(0.0, age)
            self.announcer.announce(
                Announcement(
                    call.key,
                    phrase,
                    self.sound.volume,
                    message.received_at,
                    stale_at=stale_at,
                    short=short,
                )
            )

    @property
    def speaks(self) -> bool:
        """Whether calls are spoken now (speech on, volume above zero)."""
        return self.sound.speech and self.sound.volume > 0

    def _start_speech(self) -> None:
        """Start the announcer the first time speech is on; report audio health."""
        if self.speaks and not self._announcer_started:
            self.announcer.start()
            self._announcer_started = True
        audio_ok = getattr(self.announcer, "audio_ok", True)
        audio = "muted" if not self.speaks else ("ok" if audio_ok else "error")
        if audio == self.bus.health.audio:
            return
        if self.bus.connected:
            self.bus.set_health(audio=audio)  # the dashboard sees the change at once
        else:
            self.bus.health = self.bus.health.model_copy(update={"audio": audio})

    def _featured(self, state: m.FeaturedState) -> None:
        """The admin's featured products changed: fetch their images (in the background)."""
        log.info(
            "featured products received",
            extra={**self._extra, "seq": state.seq, "slides": len(state.slides)},
        )
        if self.images is not None:
            self.images.want(state.slides)
        elif state.slides:
            log.warning("no image cache given: featured products show captions", extra=self._extra)

    def _image_for(self, sha256: str) -> str | None:
        path = self.images.path(sha256) if self.images is not None else None
        return None if path is None else str(path)

    @property
    def connected(self) -> bool:
        """True while the main loop knows the broker connection to be up."""
        return self._connected

    @property
    def offline(self) -> bool:
        """True once the broker has been unreachable for more than offline_after_s."""
        return (
            not self._connected and time.monotonic() - self._disconnected_at > self.offline_after_s
        )

    def _render(self) -> list[str]:
        assert self.builder is not None
        scene = self.builder.build(
            self.model, self.clock(), self.highlights.lit(time.monotonic()), self.offline
        )
        return self.renderer.render(scene)

    def _sleep_time(self) -> float:
        """Seconds until the screen would change without new input (at most MAX_SLEEP_S)."""
        assert self.builder is not None
        mono, now = time.monotonic(), self.clock()
        waits = [MAX_SLEEP_S, self.builder.next_change(now) - now]
        blink = self.highlights.next_change(mono)
        if blink is not None:
            waits.append(blink - mono)
        if not self._connected and not self.offline:
            waits.append(self._disconnected_at + self.offline_after_s - mono + 0.01)
        return max(0.005, min(waits))
