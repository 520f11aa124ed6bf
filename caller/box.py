"""The caller box controller: a press becomes one command to the hub, the answer becomes
feedback (LCD, LEDs, buzzer), and the counter's retained state keeps the display right.

It holds no queue state of its own: what it shows comes from the hub (retained
CounterState / ServiceState, or the result of a command). A press is sent at once or not
at all: with the broker unreachable it gets fault feedback and is never sent later.

    box = CallerBox(site, "caller-03", bus, panel=CallerPanel(device), display=FakeCharDisplay())
    box.start()
    box.press("next")         # what the panel calls on a button press
"""

from __future__ import annotations

import difflib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from caller.debounce import PressFilter
from caller.lcd import CharDisplay, LcdError
from caller.screen import Screen, Selection, View, message
from protocol import messages as m
from protocol.errors import (
    BadMessage,
    BrokerUnavailable,
    BusError,
    CommandRejected,
    MppError,
    RequestTimeout,
)
from protocol.mqtt import Bus, Incoming
from protocol.site import CallerDevice, Site

log = logging.getLogger("mpp.caller")

# Rating-pad buttons (inventory keys of [devices.ID.rating]) and their scores.
RATING_SCORES: dict[str, int] = {
    "very_satisfied": 4,  # Sangat puas
    "satisfied": 3,  # Puas
    "dissatisfied": 2,  # Kurang puas
    "very_dissatisfied": 1,  # Tidak puas
}
OFFICER_ACTIONS = ("next", "recall", "skip", "transfer", "open_close")
# What OPEN/CLOSE offers on an open counter (each press the next, NEXT confirms): closing,
# or a break with its reason.
LEAVE_OPTIONS: tuple[str, ...] = ("close", *m.BREAK_REASONS)
# Refusals the officer can act on; any other error code is a fault (technician's business).
REFUSALS = frozenset(
    {
        "queue_empty",
        "counter_closed",
        "no_ticket",
        "not_transferable",
        "bad_state",
        "unknown_ticket",
        "already_rated",
        "rating_closed",
        "paused",
    }
)
DEFAULT_OFFICER = "petugas"
# Feedback text after a command succeeded, by command kind (caller.screen.MESSAGES keys).
OK_MESSAGES = {
    "recall": "recalled",
    "skip": "skipped",
    "transfer": "transferred",
    "open": "opened",
    "close": "closed",
    "break": "break_started",
    "end_break": "break_ended",
    "rate": "rated",
}


class CallerConfigError(MppError, ValueError):
    """The device named on the command line is not a caller box of the inventory."""


def caller_device(site: Site, device_id: str) -> CallerDevice:
    """The inventory entry of caller box `device_id`; raises CallerConfigError naming the fix."""
    device = site.devices.get(device_id)
    if device is None:
        callers = {k: d for k, d in site.devices.items() if isinstance(d, CallerDevice)}
        digits = "".join(ch for ch in device_id if ch.isdigit())
        same_counter = [k for k, d in callers.items() if digits and d.counter == int(digits)]
        hint = same_counter or difflib.get_close_matches(device_id, sorted(callers), n=1)
        fix = f"did you mean {hint[0]!r}?" if hint else f"caller boxes: {', '.join(callers)}"
        raise CallerConfigError(f"{device_id!r} is not in [devices] of {site.source}; {fix}")
    if not isinstance(device, CallerDevice):
        raise CallerConfigError(
            f"{device_id!r} is a {device.role} in {site.source}, not a caller box; "
            'pass the id of a device with role = "caller"'
        )
    return device


class Panel(Protocol):
    """What the box needs of its buttons, LEDs and buzzer (caller.buttons.CallerPanel)."""

    def on_press(self, handler: Callable[[str], None]) -> None:
        """Call `handler(button_name)` on every press."""

    def light(self, name: str, on: bool) -> None:
        """Switch a status LED steadily on or off."""

    def blink(self, name: str, times: int = 1, on_s: float = 0.2, off_s: float = 0.2) -> None:
        """Blink a status LED."""

    def beep(self, times: int = 1, on_s: float = 0.08, off_s: float = 0.12) -> None:
        """Sound the buzzer."""


Status = Literal["ok", "refused", "fault", "ignored", "selecting", "cancelled"]


@dataclass(frozen=True)
class Outcome:
    """What became of one press: sent and answered, refused, failed, or not sent (and why)."""

    button: str
    status: Status
    code: str = ""  # the hub's error code, the fault, or why a press was ignored
    kind: str | None = None  # the command kind sent, if any
    request_id: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0


class CallerBox:
    """One counter's caller box and rating pad.

    Officer buttons: NEXT calls the next ticket (finishing the current one; with nobody
    waiting it just finishes it; on a break it ends the break), RECALL calls the current
    ticket again, SKIP marks it a no-show, TRANSFER sends it to a service of the counter's
    `transfer_to` list, OPEN/CLOSE opens a closed counter, ends a break, or on an open counter
    offers closing it or a break (istirahat, sholat, rapat, lainnya). With several transfer
    targets, each TRANSFER press shows the next target and NEXT confirms; SKIP on an idle
    counter with no-shows likewise picks a no-show to call back, and OPEN/CLOSE what to do.
    Any other officer button, or `selection_timeout_s` without a press, cancels the choice.
    Rating buttons send a Rate command (4 = Sangat puas .. 1 = Tidak puas); officer presses
    and ratings are independent of each other.
    """

    def __init__(
        self,
        site: Site,
        device_id: str,
        bus: Bus,
        *,
        panel: Panel | None = None,
        display: CharDisplay | None = None,
        officer: str | None = None,
        debounce_s: float = 0.6,
        request_timeout_s: float = 3.0,
        selection_timeout_s: float = 10.0,
        flash_s: float = 4.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.site = site
        self.device_id = device_id
        self.device = caller_device(site, device_id)
        self.counter = self.device.counter
        # What the counter serves: the inventory's until the hub's counter state says (the
        # admin may change it at any time).
        self.services = site.counters[self.counter].services
        self.transfer_to = site.counters[self.counter].transfer_to
        self.lang = self.device.lang
        self.bus = bus
        self.panel = panel
        self.display = display
        self.officer = officer
        self.request_timeout_s = request_timeout_s
        self.selection_timeout_s = selection_timeout_s
        self.flash_s = flash_s
        self.clock = clock
        self.screen = Screen(
            site,
            self.counter,
            self.lang,
            display.cols if display else 16,
            display.rows if display else 2,
        )
        self.state: m.CounterState | None = None
        self.service_states: dict[str, m.ServiceState] = {}
        self.selection: Selection | None = None
        self.recent: deque[Outcome] = deque(maxlen=100)
        self._presses = PressFilter(debounce_s)
        self._flash: tuple[str, float] | None = None
        self._busy: dict[str, bool] = {"officer": False, "rating": False}
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._shown: list[str] | None = None
        self._lcd_ok = True

    @property
    def debounce_s(self) -> float:
        """Presses of one button closer together than this are one press."""
        return self._presses.window_s

    @debounce_s.setter
    def debounce_s(self, value: float) -> None:
        self._presses.window_s = value

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> CallerBox:
        """Subscribe to this counter's retained state and wire the buttons (bus may be up)."""
        topics = self.bus.topics
        self.bus.subscribe(topics.counter_state(self.counter), self._on_counter_state)
        self.bus.subscribe(topics.all_of("service_state"), self._on_service_state)
        self.bus.on_connection_change(self._on_connection)
        if self.panel is not None:
            self.panel.on_press(self.press)
        self._on_connection(self.bus.connected)
        return self

    def close(self) -> None:
        """Blank the display (the bus and panel belong to whoever made them)."""
        if self.display is not None:
            try:
                self.display.close()
            except LcdError as exc:
                log.warning("display close failed", extra=self._extra(error=str(exc)))

    def wait_idle(self, timeout: float) -> bool:
        """Block until no command is in flight (True) or `timeout` passed (False)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while any(self._busy.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def tick(self) -> None:
        """Let feedback texts and an unconfirmed choice lapse (call a few times a second)."""
        with self._lock:
            now = self.clock()
            if self.selection is not None and now >= self.selection.until:
                self._record(self.selection.button, "cancelled", "timeout")
                self.selection = None
            if self._flash is not None and now >= self._flash[1]:
                self._flash = None
            self._render()

    # -- presses ---------------------------------------------------------------------------
    def press(self, button: str) -> bool:
        """Handle a button press; True if it was taken (sent, or moved a choice on).

        Returns at once: the command runs on its own thread. A press of the same button
        within the debounce window, or while this button group's last command is still
        in flight, is not sent (and never sent later).
        """
        now = self.clock()
        if button not in RATING_SCORES and button not in OFFICER_ACTIONS:
            log.warning("unknown button ignored", extra=self._extra(button=button))
            return False
        if not self._presses.accept(button, now):
            self._record(button, "ignored", "bounce")
            return False
        lane = "rating" if button in RATING_SCORES else "officer"
        with self._lock:
            if self._busy[lane]:
                self._record(button, "ignored", "busy")
                self._feedback("ignored", "busy")
                return False
            before = self.state
            command = self._command_for(button, now)
            if command is None:
                self._render()
                return True
            self._busy[lane] = True
        if self.panel is not None:
            self.panel.light("busy", True)
        threading.Thread(
            target=self._send,
            args=(button, lane, command, before),
            name=f"caller-{button}",
            daemon=True,
        ).start()
        return True

    def _command_for(self, button: str, now: float) -> m.Command | None:
        """The command a press means now, or None when it only changes a choice on screen."""
        ids = {"device": self.device_id, "counter": self.counter}
        if button in RATING_SCORES:
            return m.Rate(**ids, score=RATING_SCORES[button])
        selection = self.selection
        self.selection = None
        if selection is not None and now < selection.until:
            if button == selection.button:
                self._select(selection.advanced(now + self.selection_timeout_s))
                return None
            if button == "next":
                if selection.button == "transfer":
                    return m.Transfer(**ids, service=selection.chosen)
                if selection.button == "open_close":
                    if selection.chosen == "close":
                        return m.CloseCounter(**ids)
                    return m.StartBreak(**ids, reason=selection.chosen)  # type: ignore[arg-type]
                return m.CallSkipped(**ids, ticket=selection.chosen)
            self._record(button, "cancelled", "other_button")
            self._set_flash("cancelled")
            return None
        state = self.state
        if button == "next":
            return m.CallNext(**ids)
        if button == "recall":
            return m.Recall(**ids)
        if button == "skip":
            if state is not None and state.open and state.ticket is None and state.skipped:
                until = now + self.selection_timeout_s
                self._select(Selection("skip", state.skipped, 0, until))
                return None
            return m.Skip(**ids)
        if button == "transfer":
            if not self.transfer_to:
                self._record(button, "refused", "no_targets")
                self._feedback("refused", "no_targets")
                return None
            if len(self.transfer_to) == 1:
                return m.Transfer(**ids, service=self.transfer_to[0])
            until = now + self.selection_timeout_s
            self._select(Selection("transfer", self.transfer_to, 0, until))
            return None
        if state is not None and state.open:
            if state.on_break is not None:
                return m.EndBreak(**ids)
            until = now + self.selection_timeout_s
            self._select(Selection("open_close", LEAVE_OPTIONS, 0, until))
            return None
        officer = self.officer or (state.officer if state else None) or DEFAULT_OFFICER
        return m.OpenCounter(**ids, officer=officer)

    def _select(self, selection: Selection) -> None:
        """Show `selection` and signal which option it is."""
        self.selection = selection
        self._record(selection.button, "selecting", selection.chosen)
        if self.panel is not None:
            # Without a display the officer counts the beeps: n beeps = option n.
            self.panel.beep(selection.index + 1, 0.05, 0.15)

    def _send(
        self, button: str, lane: str, command: m.Command, before: m.CounterState | None
    ) -> None:
        extra = self._extra(button=button, request_id=command.request_id, kind=command.kind)
        try:
            outcome = self._request(button, command, before)
            log.info(
                "press handled",
                extra={**extra, "status": outcome.status, "code": outcome.code or "ok"},
            )
            ticket = before.ticket if before is not None and before.ticket else ""
            with self._lock:
                self.recent.append(outcome)
                self._feedback(outcome.status, self._flash_key(outcome), ticket=ticket)
        except Exception:
            log.exception("press handling failed", extra=extra)
        finally:
            with self._idle:
                self._busy[lane] = False
                busy = any(self._busy.values())
                self._idle.notify_all()
            if self.panel is not None and not busy:
                self.panel.light("busy", False)

    def _request(self, button: str, command: m.Command, before: m.CounterState | None) -> Outcome:
        """Send once (no retries: a late NEXT must not call anyone) and classify the answer."""
        sent = {"button": button, "kind": command.kind, "request_id": command.request_id}
        now = self.clock()
        try:
            raw = self.bus.request(command, timeout=self.request_timeout_s)
        except BrokerUnavailable:
            return Outcome(**sent, status="fault", code="offline", at=now)
        except RequestTimeout:
            return Outcome(**sent, status="fault", code="timeout", at=now)
        except CommandRejected as exc:
            status: Status = "refused" if exc.code in REFUSALS else "fault"
            return Outcome(**sent, status=status, code=exc.code, at=now)
        except BusError as exc:
            log.warning("bus error", extra=self._extra(error=str(exc)))
            return Outcome(**sent, status="fault", code="fault", at=now)
        try:
            if isinstance(command, m.Rate):
                result = m.RateResult.model_validate(raw).model_dump()
            else:
                counter = m.CounterResult.model_validate(raw)
                result = counter.model_dump()
                self._apply_counter_state(counter.counter, replace=False)
        except ValidationError as exc:
            log.error(
                "hub reply does not match the protocol",
                extra=self._extra(request_id=command.request_id, error=str(exc)[:300]),
            )
            return Outcome(**sent, status="fault", code="fault", at=now)
        return Outcome(**sent, status="ok", result=result, at=now)

    # -- feedback --------------------------------------------------------------------------
    @staticmethod
    def _flash_key(outcome: Outcome) -> str | None:
        """The feedback text for an answered press (None: the display says it already)."""
        if outcome.status != "ok":
            return outcome.code
        if outcome.kind == "next":
            return None if outcome.result.get("call") else "finished"
        return OK_MESSAGES.get(outcome.kind or "")

    def _feedback(self, status: Status, key: str | None, **values: str) -> None:
        """LCD text, buzzer and LEDs for an outcome. Caller holds the lock."""
        self._set_flash(key, **values)
        self._render()
        if self.panel is None:
            return
        connected = self.bus.connected
        if status == "ok":
            self.panel.beep(1, 0.08)
        elif status in ("refused", "ignored"):
            self.panel.beep(2, 0.08, 0.1)
            if connected:
                self.panel.blink("fault", 2, 0.15, 0.15)
        elif status == "fault":
            self.panel.beep(1, 0.6)
            if connected:  # while offline the fault LED is on steadily anyway
                self.panel.blink("fault", 1, self.flash_s, 0.05)

    def _set_flash(self, key: str | None, **values: str) -> None:
        if key is None:
            self._flash = None
            return
        self._flash = (message(key, self.lang, **values), self.clock() + self.flash_s)

    def _record(self, button: str, status: Status, code: str) -> None:
        with self._lock:
            self.recent.append(Outcome(button=button, status=status, code=code, at=self.clock()))
        log.debug("press not sent", extra=self._extra(button=button, status=status, code=code))

    def _render(self) -> None:
        """Write the display if what it should show changed. Caller holds the lock."""
        if self.display is None:
            return
        lines = self.screen.lines(self._view())
        if lines == self._shown:
            return
        try:
            self.display.write(lines)
        except LcdError as exc:
            if self._lcd_ok:
                log.error("display write failed", extra=self._extra(error=str(exc)))
                self.bus.set_health(lcd="error")
            self._lcd_ok = False
            self._shown = None
            return
        if not self._lcd_ok:
            self.bus.set_health(lcd="ok")
            self._lcd_ok = True
        self._shown = lines

    def _view(self) -> View:
        flash = self._flash[0] if self._flash and self.clock() < self._flash[1] else None
        by_prefix = tuple(
            (self.site.services[code].prefix, self.service_states[code].waiting)
            for code in self.services
            if code in self.service_states
        )
        return View(self.state, self.bus.connected, by_prefix, self.selection, flash, self.waiting)

    @property
    def waiting(self) -> int | None:
        """How many wait for this counter's services now: from their service states (the hub
        publishes those whenever a queue changes), else from the counter's own state."""
        known = [self.service_states[c].waiting for c in self.services if c in self.service_states]
        if len(known) == len(self.services):
            return sum(known)
        return self.state.waiting if self.state is not None else None

    @property
    def lines(self) -> list[str]:
        """What the display should show now (also without a display)."""
        with self._lock:
            return self.screen.lines(self._view())

    # -- state from the hub ----------------------------------------------------------------
    def _on_connection(self, connected: bool) -> None:
        if self.panel is not None:
            self.panel.light("ready", connected)
            self.panel.light("fault", not connected)
        with self._lock:
            if not connected:
                self._flash = None  # "offline" matters more than the last press's feedback
            self._render()

    def _on_counter_state(self, incoming: Incoming) -> None:
        if not incoming.payload:
            return  # a cleared retained topic: nothing to show from it
        try:
            state = m.decode(m.CounterState, incoming.payload)
        except BadMessage as exc:
            log.warning("bad counter state ignored", extra=self._extra(error=str(exc)))
            return
        if state.counter != self.counter:
            log.warning(
                "counter state for another counter ignored",
                extra=self._extra(got=state.counter),
            )
            return
        # A retained message is what the broker holds now (after a connect): take it even if
        # its seq is lower (a hub with a fresh database); live updates must not go backwards.
        self._apply_counter_state(state, replace=incoming.retained)

    def _apply_counter_state(self, state: m.CounterState, replace: bool) -> None:
        with self._lock:
            if replace or self.state is None or state.seq >= self.state.seq:
                self.state = state
                if state.services:
                    self.services = state.services
                self._render()

    def _on_service_state(self, incoming: Incoming) -> None:
        if not incoming.payload:
            return
        try:
            state = m.decode(m.ServiceState, incoming.payload)
        except BadMessage as exc:
            log.warning("bad service state ignored", extra=self._extra(error=str(exc)))
            return
        if state.service not in self.site.services:
            return
        with self._lock:
            known = self.service_states.get(state.service)
            if incoming.retained or known is None or state.seq >= known.seq:
                self.service_states[state.service] = state
                if state.service in self.services:
                    self._render()

    def _extra(self, **fields: Any) -> dict[str, Any]:
        return {"device": self.device_id, **fields}
