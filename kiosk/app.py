"""The kiosk's flow: a press becomes a request to the hub; only a confirmed number is printed.

* Press -> `IssueTicket` to the hub (timeout; retries reuse the request id, so the hub issues
  once) -> print exactly the ticket the hub confirmed -> `TicketPrinted`.
* Broker or hub unreachable, or no answer in time: nothing is printed, the fault LED and the
  screen say so, and the press is dropped: it is never sent later. The kiosk cancels the
  unanswered request (`VoidTicket(cancels=request_id)`, re-sent when the broker is back), so
  the hub voids a ticket it may have created, or refuses the request if it arrives later; a
  reply that still comes late makes the kiosk void that ticket too.
* Printer offline, out of paper, or failing while printing: the kiosk VOIDS the ticket at the
  hub (it does not reprint: a printer that just failed is likely to fail again, and a citizen
  should not wait at the kiosk for a second try), reports the printer's state in its retained
  health, and shows the fault. Reports that cannot reach the hub (printed, void) are kept and
  re-sent with their request id when the broker is back, after the next ticket the hub
  confirms, and every few seconds while any wait; they are reports, not presses.
* One ticket at a time: presses while a ticket is requested or printed are answered "busy"
  and dropped; a double press yields one ticket (`kiosk.presses`).

    app = KioskApp(site, "kiosk-3", bus, printer, panel=panel)
    app.start()
    app.press("ktp")        # 'accept'; the ticket prints on the app's worker thread
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from kiosk.buttons import PRIORITY
from kiosk.errors import KioskConfigError, KioskError, PaperOut, PrinterError, PrintFailed
from kiosk.notices import Notice, notice, priority_notice
from kiosk.presses import PressGate, PrioritySelector
from kiosk.scanner import parse_scan
from kiosk.ticket import ticket_layout
from protocol import messages as m
from protocol.errors import BadMessage, BrokerUnavailable, CommandRejected, RequestTimeout
from protocol.mqtt import Bus, Incoming
from protocol.site import KioskDevice, Site
from protocol.texts import CLOCK_UNSYNCED

log = logging.getLogger("mpp.kiosk")

MAX_PENDING_REPORTS = 50
PENDING_RETRY_S = 5.0  # while reports wait for the hub, try again at least this often


def offered_services(site: Site, device: KioskDevice) -> tuple[str, ...]:
    """The services this kiosk offers: its buttons, then its menu (all services on a screen)."""
    menu = device.services or (tuple(site.services) if device.screen is not None else ())
    return tuple(dict.fromkeys([*device.buttons, *menu]))


@dataclass(frozen=True)
class _Job:
    service: str  # "" for a check-in: the booking says which
    priority: str | None
    request_id: str
    pressed_at: float
    lang: str  # the ticket's language: the device's, or the one the citizen chose on screen
    booking: tuple[str | None, str] | None = None  # a check-in: (site the QR names, code)


@dataclass(frozen=True)
class _LateTicket:
    """A ticket the hub confirmed after the kiosk had stopped waiting (never printed)."""

    ticket: m.TicketInfo
    request_id: str


class KioskApp:
    """One ticket kiosk: presses in, confirmed tickets out of the printer, health to the hub.

    Collaborators come in through the constructor: the `Bus`, a `TicketPrinter`, and
    optionally a `KioskPanel` (GPIO) and a `TouchMenu` (screen).
    """

    def __init__(
        self,
        site: Site,
        device_id: str,
        bus: Bus,
        printer: Any,
        *,
        panel: Any = None,
        menu: Any = None,
        request_timeout: float = 2.0,
        retries: int = 1,
        lockout_s: float = 1.0,
        bounce_s: float = 0.05,
        priority_window_s: float = 15.0,
        status_every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        spec = site.devices.get(device_id)
        if not isinstance(spec, KioskDevice):
            kiosks = ", ".join(d for d, s in site.devices.items() if isinstance(s, KioskDevice))
            raise KioskConfigError(f"{device_id!r} is not a kiosk of {site.source}; use {kiosks}")
        self.site = site
        self.device_id = device_id
        self.spec = spec
        self.bus = bus
        self.printer = printer
        self.panel = panel
        self.menu = menu
        self.lang = spec.lang
        self.services = offered_services(site, spec)
        self.request_timeout = request_timeout
        self.retries = retries
        self.status_every_s = status_every_s
        self.clock = clock
        self.gate = PressGate(bounce_s=bounce_s, lockout_s=lockout_s, clock=clock)
        self.priority = PrioritySelector(window_s=priority_window_s, clock=clock)
        self.states: dict[str, m.ServiceState] = {}
        self.notices: deque[Notice] = deque(maxlen=200)
        self.printed: list[m.TicketInfo] = []
        self.voided: list[m.TicketInfo] = []
        self.pending_reports: list[m.Command] = []
        self.printer_state: str | None = None
        self.hub_clock_ok = True  # the hub's site state: False, it issues no tickets for now
        self._indicated = "ready"  # what the LEDs show now
        # Jobs: presses, late tickets, and "connected" / "priority" / "lapse" / "tick" events.
        self._jobs: queue.Queue[_Job | _LateTicket | str | None] = queue.Queue()
        self._abandoned: dict[str, float] = {}  # issue request id -> when the kiosk gave up
        self._abandoned_lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._state_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        bus.subscribe(bus.topics.all_of("service_state"), self._on_service_state)
        bus.subscribe(bus.topics.site_state(), self._on_site_state)
        bus.subscribe(bus.topics.reply(device_id), self._on_late_reply)
        bus.on_connection_change(self._on_connection)
        if panel is not None:
            panel.on_press(self._on_panel_press)
        if menu is not None:
            bookable = any(service.booking for service in site.services.values())
            if bookable and site.region is not None:  # bookings come from the region
                menu.on_check_in(self.check_in)  # the menu shows the check-in button
            menu.on_choose(self.press)
            menu.on_priority(self.choose_priority)
            menu.bind_priority(self.priority.armed)  # the screen shows what the ticket carries

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, wait_connected: float | None = None) -> KioskApp:
        """Connect to the broker and start serving presses."""
        self._worker = threading.Thread(target=self._run, name="kiosk-worker", daemon=True)
        self._worker.start()
        self._indicate("ready" if self.bus.start(wait=wait_connected) else "offline")
        log.info("kiosk started", extra={"device": self.device_id, "services": len(self.services)})
        return self

    def stop(self) -> None:
        """Finish the ticket in progress, then disconnect."""
        self._jobs.put(None)
        if self._worker is not None:
            self._worker.join(10)
        self.bus.stop()

    def wait_idle(self, timeout: float) -> bool:
        """Block until no ticket is being served (tests, benchmarks, orderly shutdown)."""
        return self._idle.wait(timeout)

    # -- inputs -----------------------------------------------------------------------------
    def press(self, service: str) -> str:
        """A citizen chose `service`: 'accept', 'busy' (told to wait), 'bounce' or 'unknown'."""
        if service not in self.services:
            log.warning(
                "press of a service this kiosk does not offer",
                extra={"device": self.device_id, "service": service},
            )
            return "unknown"
        verdict = self._admit(service)
        if verdict == "accept":
            job = _Job(
                service, self.priority.take(), m.new_request_id(), self.clock(), self._lang()
            )
            self._jobs.put(job)
        return verdict

    def _admit(self, key: str) -> str:
        """The press gate's verdict on `key`; busy is told; accepted, the kiosk is not idle."""
        verdict = self.gate.offer(key)
        if verdict == "busy":
            self._tell(notice("busy"))
            self._beep("busy")
        if verdict == "accept":
            self._idle.clear()
        return verdict

    def _lang(self) -> str:
        """The ticket's language: the one on the screen, else the device's."""
        return self.menu.lang if self.menu is not None else self.lang

    def check_in(self, text: str) -> str:
        """A booking's QR scanned or its code typed: 'accept' (the hub checks it in and the
        ticket prints, or the citizen is told why not), 'busy', 'bounce', or 'invalid' (no
        booking code in it; the citizen is told so, nothing is sent)."""
        parsed = parse_scan(text)
        if parsed is None:
            log.info("scan is no booking code", extra={"device": self.device_id})
            self._tell(notice("refused", "not_a_code"))
            self._beep("refused")
            return "invalid"
        verdict = self._admit("check_in")
        if verdict == "accept":
            job = _Job("", None, m.new_request_id(), self.clock(), self._lang(), booking=parsed)
            self._jobs.put(job)
        return verdict

    def press_priority(self) -> str | None:
        """The PRIORITY button: arm (or step) the category for the next service press."""
        if self.gate.chatter(PRIORITY):
            return self.priority.current()
        category = self.priority.press()
        self._priority_armed(category)
        return category

    def choose_priority(self, category: str | None) -> str | None:
        """A category tapped on the screen (tapping it again clears it)."""
        chosen = self.priority.choose(category)
        if chosen is None:
            self._indicate("ready")
        else:
            self._priority_armed(chosen)
        return chosen

    def _priority_armed(self, category: str) -> None:
        # Not a notice over the menu: the citizen taps the service next (the menu shows the
        # armed category in its priority line, read from self.priority at every frame).
        self.notices.append(priority_notice(category))
        self._indicate("priority")
        self._beep(m.PRIORITIES.index(category) + 1)
        self._jobs.put("priority")  # the worker wakes when the window ends (the ready LED)

    def _on_panel_press(self, key: str) -> None:
        if key == PRIORITY:
            self.press_priority()
        else:
            self.press(key)

    def _on_service_state(self, incoming: Incoming) -> None:
        parsed = self.bus.topics.parse(incoming.topic)
        if parsed is None or parsed[0] != "service_state":
            return
        code = parsed[1]["service"]
        if code not in self.services:
            return
        with self._state_lock:
            if not incoming.payload:
                self.states.pop(code, None)
            else:
                try:
                    state = m.decode(m.ServiceState, incoming.payload)
                except BadMessage as exc:
                    log.warning(
                        "bad service state ignored",
                        extra={
                            "device": self.device_id,
                            "topic": incoming.topic,
                            "error": str(exc),
                        },
                    )
                    return
                old = self.states.get(code)
                if state.service != code or (old is not None and state.seq < old.seq):
                    return
                self.states[code] = state
            states = dict(self.states)
        if self.menu is not None:
            self.menu.set_states(states)

    def _on_site_state(self, incoming: Incoming) -> None:
        """The hub says whether it trusts its clock (no tickets while it does not)."""
        if not incoming.payload:
            return
        try:
            state = m.decode(m.SiteState, incoming.payload)
        except BadMessage as exc:
            log.warning(
                "bad site state ignored", extra={"device": self.device_id, "error": str(exc)}
            )
            return
        if state.clock_ok == self.hub_clock_ok:
            return
        self.hub_clock_ok = state.clock_ok
        log.warning(
            "hub clock trusted again" if state.clock_ok else "hub clock not trusted: no tickets",
            extra={"device": self.device_id},
        )
        if self.menu is not None:
            self.menu.set_banner(self._banner())

    def _on_late_reply(self, incoming: Incoming) -> None:
        """A reply to an issue the kiosk gave up on: that ticket exists but was not printed."""
        try:
            reply = m.decode(m.Reply, incoming.payload)
        except BadMessage:
            return  # the bus logs bad replies
        with self._abandoned_lock:
            if self._abandoned.pop(reply.request_id, None) is None:
                return
        if not reply.ok or not reply.result:
            return
        try:
            ticket = m.IssueResult.model_validate(reply.result).ticket
        except ValidationError:
            return
        self._jobs.put(_LateTicket(ticket, reply.request_id))

    def _abandon(self, request_id: str) -> None:
        """Remember an issue the kiosk stopped waiting for (its reply may still come)."""
        now = self.clock()
        keep = 2 * self.site.hub.command_max_age_s + self.request_timeout * (self.retries + 1)
        with self._abandoned_lock:
            for old in [rid for rid, at in self._abandoned.items() if now - at > keep]:
                del self._abandoned[old]
            self._abandoned[request_id] = now

    def _on_connection(self, connected: bool) -> None:
        # Runs on paho's thread: only hand over.
        if connected:
            self._jobs.put("connected")
        else:
            self._indicate("offline")
            if self.menu is not None:
                self.menu.set_banner(notice("offline"))

    # -- worker -----------------------------------------------------------------------------
    def _run(self) -> None:
        with contextlib.suppress(Exception):
            self._refresh_printer()
        while True:
            # A kept report may be a cancel whose ticket still waits in the queue: retry soon,
            # not only after a quiet status period (a hub restart brings no reconnect).
            wait = self.status_every_s
            if self.pending_reports:
                wait = min(wait, PENDING_RETRY_S)
            armed = self.priority.armed()
            lapse = armed[1] + 0.01 if armed is not None else wait
            try:
                job = self._jobs.get(timeout=min(wait, lapse))
            except queue.Empty:
                job = "lapse" if lapse < wait else "tick"
            if job is None:
                return
            try:
                self._step(job)
            except Exception:
                # The worker must outlive any single failure: log it and tell the citizen.
                request_id = job.request_id if isinstance(job, _Job | _LateTicket) else None
                log.exception(
                    "kiosk step failed", extra={"device": self.device_id, "request_id": request_id}
                )
                if isinstance(job, _Job):
                    with contextlib.suppress(Exception):
                        self._fail(notice("error"))
            finally:
                if isinstance(job, _Job):
                    self.gate.done()
                    self._idle.set()

    def _step(self, job: _Job | _LateTicket | str) -> None:
        if isinstance(job, _Job):
            self._serve(job)
        elif isinstance(job, _LateTicket):
            log.warning(
                "hub confirmed a ticket after the kiosk gave up; voiding it",
                extra={
                    "device": self.device_id,
                    "request_id": job.request_id,
                    "ticket": job.ticket.number,
                },
            )
            self.voided.append(job.ticket)
            reason = "not printed: the kiosk had stopped waiting for the hub's answer"
            self._report(
                m.VoidTicket(device=self.device_id, ticket_id=job.ticket.id, reason=reason)
            )
        elif job == "connected":
            if self.menu is not None:
                self.menu.set_banner(self._banner())
            self._indicate("fault" if self._printer_bad() else "ready")
            self._send_pending()
        elif job == "lapse":  # the priority window ended: the LEDs stop showing it
            if self._indicated == "priority" and self.priority.current() is None:
                self._indicate("ready")
        elif job == "priority":  # armed: the loop now waits at most until the window ends
            pass
        elif job == "tick":  # nothing happened for a while
            self._refresh_printer()
            self._send_pending()

    def _serve(self, job: _Job) -> None:
        extra = {"device": self.device_id, "request_id": job.request_id, "service": job.service}
        self._indicate("busy")
        self._tell(notice("printing"))
        if self._printer_bad() and self.printer.status() in ("paper_out", "offline"):
            state = self.printer.last_status
            log.warning("press refused: printer not ready", extra={**extra, "printer": state})
            self._set_printer_health(state, f"{state} before printing")
            self._fail(notice("printer", "paper_out" if state == "paper_out" else "printer"))
            return
        command: m.Command
        if job.booking is not None:
            command = m.CheckIn(
                request_id=job.request_id,
                device=self.device_id,
                site=job.booking[0],
                code=job.booking[1],
                lang=job.lang,
            )
        else:
            command = m.IssueTicket(
                request_id=job.request_id,
                device=self.device_id,
                service=job.service,
                priority=job.priority,
                lang=job.lang,
            )
        try:
            result = self.bus.request(command, timeout=self.request_timeout, retries=self.retries)
        except BrokerUnavailable as exc:
            log.warning("no ticket: broker unreachable", extra={**extra, "error": str(exc)})
            self._fail(notice("offline"), state="offline")
            if job.booking is None:  # a check-in needs no cancel: scanning again is the same
                self._cancel_issue(job.request_id, "broker unreachable")
            return
        except RequestTimeout as exc:
            log.warning("no ticket: hub did not answer", extra={**extra, "error": str(exc)})
            self._fail(notice("timeout"))
            if job.booking is None:
                self._cancel_issue(job.request_id, "no answer in time")
            return
        except CommandRejected as exc:
            log.info("ticket refused by the hub", extra={**extra, "code": exc.code})
            text = exc.text if exc.text.get("id") else notice("refused").text
            self._tell(Notice("refused", dict(text), code=exc.code))
            self._indicate("fault" if self._printer_bad() else "ready")
            self._beep("refused")
            return
        try:
            ticket = m.IssueResult.model_validate(result).ticket
        except ValidationError as exc:
            log.error(
                "hub answered an issue with a malformed ticket",
                extra={**extra, "error": str(exc).splitlines()[0]},
            )
            self._fail(notice("error"))
            return
        extra["ticket"] = ticket.number
        try:
            if job.booking is None and ticket.service != job.service:
                raise KioskError(
                    f"hub confirmed {ticket.number} for {ticket.service!r}, "
                    f"but {job.service!r} was pressed"
                )
            layout = ticket_layout(self.site, ticket, job.lang)
            paper = self.printer.print_ticket(layout)
        except (PrinterError, KioskError) as exc:
            self._not_printed(ticket, exc, extra, job)
            return
        except Exception as exc:  # any other failure while printing: the ticket did not come out
            log.exception("unexpected printer failure", extra=extra)
            failure = PrintFailed(f"unexpected {type(exc).__name__}: {exc}")
            self._not_printed(ticket, failure, extra, job)
            return
        took_ms = round((self.clock() - job.pressed_at) * 1e3, 1)
        log.info("ticket printed", extra={**extra, "ms": took_ms})
        self.printed.append(ticket)
        self._set_printer_health(paper if paper != "unknown" else "ok", None)
        self._report(m.TicketPrinted(device=self.device_id, ticket_id=ticket.id))
        self._tell(self._printed_notice(ticket))
        self._indicate("ready")
        if self.menu is not None:
            self.menu.set_banner(self._banner())
        self._beep("ok")
        self._send_pending()  # the hub answers again: reports kept while it did not go now

    def _not_printed(
        self, ticket: m.TicketInfo, exc: KioskError, extra: dict[str, Any], job: _Job
    ) -> None:
        """A walk-in's ticket that did not come out is voided; a booking's stays in the queue
        (scanning the code again prints the same ticket)."""
        if job.booking is None:
            self._void(ticket, exc, extra)
            return
        log.error(
            "checked-in ticket not printed; it stays in the queue, a new scan prints it",
            extra={**extra, "error": str(exc)},
        )
        if isinstance(exc, PrinterError):
            self._set_printer_health(exc.state, str(exc))
        self._fail(notice("printer", "reprint", number=ticket.number), state="fault")
        if self.menu is not None:
            self.menu.set_banner(self._banner())

    def _printed_notice(self, ticket: m.TicketInfo) -> Notice:
        """'Take your ticket', and why the wait is open-ended when it is: no counter serves
        the service now, or a pause (with the time service resumes)."""
        if ticket.est_wait_s is None:
            return notice("printed", "printed_no_counter", number=ticket.number)
        state = self.states.get(ticket.service)
        if ticket.resumes_at is not None and state is not None and state.pause is not None:
            at = self.site.local_now(ticket.resumes_at).strftime("%H:%M")
            pause = {"id": state.pause.name.id, "en": state.pause.name.en}
            return notice("printed", "printed_paused", number=ticket.number, at=at, pause=pause)
        return notice("printed", number=ticket.number)

    def _void(self, ticket: m.TicketInfo, exc: KioskError, extra: dict[str, Any]) -> None:
        state = exc.state if isinstance(exc, PrinterError) else "error"
        detail = str(exc)
        log.error("ticket not printed; voiding it", extra={**extra, "error": detail})
        self.voided.append(ticket)
        if isinstance(exc, PrinterError):
            self._set_printer_health(state, detail)
        reason = f"{state}: {detail}"[:200]
        self._report(m.VoidTicket(device=self.device_id, ticket_id=ticket.id, reason=reason))
        text_key = "paper_out" if isinstance(exc, PaperOut) else "voided"
        told = notice("printer", text_key, number=ticket.number)
        self._fail(told, state="fault")
        if self.menu is not None:
            self.menu.set_banner(self._banner())

    def _fail(self, told: Notice, state: str = "fault") -> None:
        self._tell(told)
        self._indicate(state)  # type: ignore[arg-type]
        self._beep("fault")

    # -- reports to the hub -----------------------------------------------------------------
    def _cancel_issue(self, request_id: str, why: str) -> None:
        """The kiosk gave up on an issue: whatever it created is voided, and if it has not
        reached the hub yet it never will create a ticket (`VoidTicket.cancels`)."""
        self._abandon(request_id)
        cancel = m.VoidTicket(
            device=self.device_id, cancels=request_id, reason=f"not printed: {why}"
        )
        result = self._report(cancel, retries=0)
        if result is not None and result.get("number"):
            with self._abandoned_lock:  # the cancel voided it: a late reply needs nothing
                self._abandoned.pop(request_id, None)

    def _report(self, command: m.Command, retries: int | None = None) -> dict[str, Any] | None:
        """Send printed/void; keep it for later (same request id) if the hub is unreachable."""
        delivered, result = self._deliver(command, retries)
        if not delivered and len(self.pending_reports) < MAX_PENDING_REPORTS:
            self.pending_reports.append(command)
        return result

    def _deliver(
        self, command: m.Command, retries: int | None = None
    ) -> tuple[bool, dict[str, Any] | None]:
        """(delivered, result) of one report; not delivered: broker or hub unreachable, or a
        refusal after which the same report may still succeed (m.TRY_AGAIN_CODES)."""
        extra = {"device": self.device_id, "request_id": command.request_id, "kind": command.kind}
        tries = self.retries if retries is None else retries
        try:
            return True, self.bus.request(command, timeout=self.request_timeout, retries=tries)
        except (BrokerUnavailable, RequestTimeout) as exc:
            log.warning("report not delivered; kept for later", extra={**extra, "error": str(exc)})
            return False, None
        except CommandRejected as exc:
            if exc.code in m.TRY_AGAIN_CODES:  # nothing was done: the report still has to go
                log.warning(
                    "report refused for now; kept for later", extra={**extra, "code": exc.code}
                )
                return False, None
            log.warning("report refused by the hub", extra={**extra, "code": exc.code})
            return True, None

    def _send_pending(self) -> None:
        """Re-send kept reports in order; each leaves the list only once the hub answered."""
        while self.pending_reports and self.bus.connected:
            if not self._deliver(self.pending_reports[0])[0]:
                return
            self.pending_reports.pop(0)

    # -- printer health ---------------------------------------------------------------------
    def _refresh_printer(self) -> None:
        state = self.printer.status()
        if state == "unknown":
            if self.printer_state is None:
                self._set_printer_health("unknown", None)
            return
        was_bad = self._printer_bad()
        self._set_printer_health(state, None)
        if was_bad and not self._printer_bad():
            self._indicate("ready" if self.bus.connected else "offline")
        if self.menu is not None:
            self.menu.set_banner(self._banner())

    def _printer_bad(self) -> bool:
        return self.printer_state in ("paper_out", "offline", "error")

    def _banner(self) -> Notice | None:
        """The standing message under the menu: offline, hub clock not trusted, printer."""
        if not self.bus.connected:
            return notice("offline")
        if not self.hub_clock_ok:
            return Notice("refused", dict(CLOCK_UNSYNCED), code="clock_unsynced")
        if self.printer_state == "paper_out":
            return notice("printer", "paper_out")
        if self._printer_bad():
            return notice("printer")
        return None

    def _set_printer_health(self, state: str, detail: str | None) -> None:
        if state == self.printer_state and detail is None:
            return
        self.printer_state = state
        self.bus.set_health(printer=state, detail=detail[:200] if detail else None)

    # -- feedback ---------------------------------------------------------------------------
    def _tell(self, told: Notice) -> None:
        self.notices.append(told)
        if self.menu is not None:
            self.menu.show(told)

    def _indicate(self, state: str) -> None:
        self._indicated = state
        if self.panel is not None:
            self.panel.indicate(state)

    def _beep(self, pattern: str | int) -> None:
        if self.panel is not None:
            self.panel.beep(pattern)
