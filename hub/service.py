"""The hub process's MQTT service: commands in, durable decisions, replies and retained state out.

One worker thread owns the queue, the database and the broker connection (the bus in polled
mode): it reads the commands that arrived, applies them in one transaction, commits, and writes
the new retained state and the replies to the socket itself. Commands from the web app (the
same path, `submit`) join through the inbox and wake it.

    service = HubService(site)          # database path from site.hub.database
    service.start()
    reply = service.submit(CallNext(device="hub", counter=3))
"""

from __future__ import annotations

import logging
import queue as queues
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub import alerts, bookings, states
from hub.clock import ClockTrust, ntp_synchronized
from hub.outbox import Outbox
from hub.presence import PresenceLog
from hub.queue_view import queue_view
from hub.rules import Changes, Queue, Refused, Sound, Ticket
from hub.store import DatabaseDamaged, Store, StoreError, damaged_text, storage_fault
from hub.survey import record_survey
from protocol import messages as m
from protocol.errors import BadMessage
from protocol.mqtt import Bus, Incoming
from protocol.pauses import pauses_now
from protocol.site import CallerDevice, KioskDevice, Site
from protocol.texts import CLOCK_UNSYNCED
from protocol.topics import COMMAND_ROLES, TOPIC

log = logging.getLogger("mpp.hub")

HUB_DEVICE = "hub"
WEB_DEVICE = "web"  # the site web process (`mpp web`): staff buttons, surveys
TICK_S = 5.0
WATCH_S = 1.0  # service-level alerts are looked at this often while commands change the queue
POLL_FAILED_PAUSE_S = 0.1  # after an unexpected error from the broker connection
POLL_S = 1.0  # longest wait for the broker between looks at the clock (keepalive, tick)
MAX_BATCH = 64
# The hub process's GIL switch interval (Python's default: 5 ms). The command worker shares the
# interpreter with the outbox, upkeep and MQTT threads; a shorter interval lets it in sooner
# when one of them is busy (bench/region_bench.py (d), site and region on a core each: issue
# p99 with the outbox uploading 1.16-1.25x of without at 5 ms, 1.05-1.09x at 1 ms).
SWITCH_INTERVAL_S = 0.001
RESUME_FREE_BYTES = 1024 * 1024  # a full disk is usable again once this much is free
REQUEST_MEMORY_S = 3 * 86400


@dataclass
class _Work:
    kind: str  # "mqtt" | "local" | "status" | "republish" | "storage_alert" | "reload"
    # | "refused" | "down" | "tick"
    incoming: Incoming | None = None
    command: m.Command | None = None
    future: Future[Any] | None = None
    # A command's, read before anything that can fail (`_parse`): every reply echoes it.
    request_id: str = ""
    device: str = HUB_DEVICE
    data: dict[str, Any] | None = None  # the JSON object of an MQTT command
    bad: BadMessage | None = None  # why its payload could not even be read
    site: Site | None = None  # "reload": the edited inventory
    refusal: str | None = None  # "refused": why an inventory could not be read


@dataclass
class _Fault:
    """A storage fault in progress: since when, what, how many commands it refused."""

    since: float
    code: str
    damaged: bool = False
    refused: int = 0


@dataclass
class _Dirty:
    counters: set[int] = field(default_factory=set)
    services: set[str] = field(default_factory=set)
    zones: set[str] = field(default_factory=set)  # their sound settings
    site: bool = False
    alerts: list[m.Alert] = field(default_factory=list)
    cleared_alerts: list[str] = field(default_factory=list)

    def any(self) -> bool:
        return bool(
            self.counters
            or self.services
            or self.zones
            or self.site
            or self.alerts
            or self.cleared_alerts
        )


STORAGE_ALERT_ID = "storage"  # the retained alert while the database cannot be written
# What a citizen or officer reads when the hub cannot store (kiosk notice, caller box, web).
STORAGE_TEXT = {
    "storage_full": {
        "id": "Sistem antrian tidak dapat menyimpan (disk penuh). Coba lagi sebentar lagi.",
        "en": "The queue system cannot store right now (disk full). Please try again shortly.",
    },
    "storage_error": {
        "id": "Sistem antrian tidak dapat menyimpan. Coba lagi sebentar lagi.",
        "en": "The queue system cannot store right now. Please try again shortly.",
    },
}


@dataclass
class FleetEntry:
    """The latest presence message of a device and when it arrived."""

    status: m.DeviceStatus
    seen_at: float


class HubService:
    """The queue authority of one site."""

    def __init__(
        self,
        site: Site,
        *,
        database: str | Path | None = None,
        bus: Bus | None = None,
        clock: Callable[[], float] = time.time,
        steady: Callable[[], float] = time.monotonic,
        clock_synced: Callable[[], bool | None] = ntp_synchronized,
        new_token: Callable[[], str] = lambda: secrets.token_urlsafe(16),
        first_start: bool = False,
    ) -> None:
        self.site = site
        self.database = Path(database or site.hub.database)
        # A missing or empty database is made only when asked (hub.store.check_database).
        self.first_start = first_start
        self.bus = bus or Bus.for_device(site, HUB_DEVICE)
        self.clock = clock  # the wall clock: stamps, the day, opening hours (it may step)
        self.steady = steady  # never steps: the hold on unprinted tickets
        self.trust = ClockTrust(synchronized=clock_synced)
        self.clock_ok = True  # as published: tickets are issued on this clock
        self.config_refused: str | None = None  # why the latest inventory was refused
        self.new_token = new_token
        self.queue = Queue(site)
        self.store: Store | None = None
        self.seq = 0
        self.fleet: dict[str, FleetEntry] = {}
        # The latest retained message per topic, as published (immutable; safe to read from
        # other threads, e.g. the web app's).
        self.retained: dict[str, m.Message] = {}
        self._inbox: queues.Queue[_Work | None] = queues.Queue()
        self._dirty = _Dirty()
        self._worker: threading.Thread | None = None
        self._last_service_flags: dict[str, tuple[bool, int]] = {}
        self._last_loop = time.monotonic()
        self._listeners: list[Callable[[str, Any], None]] = []
        self.outbox: Outbox | None = None
        self._presence = PresenceLog()
        self._alert_book = alerts.AlertBook()
        self._watched = 0.0  # steady time of the last look at the service-level alerts
        self._watch_due = False  # the queue changed since (looked at within WATCH_S)
        self.started = threading.Event()
        self._subscribed = threading.Event()  # the broker has our subscriptions (see start)
        # Set while the database cannot be written: commands are refused with its code, and
        # a write is tried again before each batch and every tick (hub.store.StoreError).
        self.storage_fault: StoreError | None = None
        self._fault: _Fault | None = None
        self._damage_reported: str | None = None  # what the daily integrity check found
        # Why the worker stopped for good (the process then exits; systemd restarts it).
        self.failed: str | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, wait_connected: float | None = 10.0) -> HubService:
        """Check and open the database, restore the queue, connect, republish all retained
        state. Raises StoreError when the database is missing, empty or damaged."""
        self.store = Store(
            self.database, first_start=self.first_start, backups=self.site.hub.backup_dir
        )
        try:
            self._reload()
        except Exception as exc:  # quick_check passed, yet the rows cannot be read
            self.store.close()
            fault = storage_fault(exc, self.database)
            raise fault or DatabaseDamaged(
                damaged_text(self.database, f"the queue cannot be loaded: {exc!r}")
            ) from None
        midnight = self.site.day_start(self.queue.day) if self.queue.day else 0.0
        self.trust.committed(max(self.store.last_committed_at(), midnight))
        self._check_clock(self.clock())
        try:
            self._roll_to_today(self.clock())
            with self.store.transaction():  # can it write? (a full disk: say so at once)
                self.store.set_seq(self.seq)
        except StoreError as exc:  # the hub starts, refusing commands until it can write
            self._storage_failed(exc, self._dirty_mark())
        self._presence = PresenceLog.load(self.store.conn)
        bookings.create_schema(self.store.conn)
        if self.site.region is not None and self.site.region.upload:
            self.outbox = Outbox(self.site, self.database, self.bus, clock=self.clock)
        topics = self.bus.topics
        # QoS 0 from the broker to the hub: on loopback TCP nothing is lost while connected, and
        # with a clean session nothing is kept while not; it spares a PUBACK per command.
        self.bus.subscribe(topics.all_of("command"), self._on_command, qos=0)
        self.bus.subscribe(topics.all_of("status"), self._on_status)
        # A storage alert an earlier process left retained, its fault over: cleared.
        self.bus.subscribe(topics.alert(STORAGE_ALERT_ID), self._on_storage_alert)
        if self.site.region is not None:
            self.bus.subscribe(topics.down_messages(), self._on_down)
        self.bus.on_connection_change(self._on_connection)
        self.bus.start_polled()
        self._worker = threading.Thread(target=self._run, name="hub-worker", daemon=True)
        self._worker.start()
        self.started.wait(10)
        if self.outbox is not None:
            self.outbox.start()
        if wait_connected is not None and self.bus.wait_connected(wait_connected):
            # Connected is not yet subscribed: a command sent now could pass the broker before
            # the hub's SUBSCRIBE and be lost. Our own presence, published after it on the same
            # connection, comes back once the subscriptions are in place.
            self._subscribed.wait(wait_connected)
        log.info(
            "hub started",
            extra={"site": self.site.site.id, "database": str(self.database), "seq": self.seq},
        )
        return self

    def stop(self) -> None:
        """Finish queued work, then disconnect and close the database."""
        if self.outbox is not None:
            self.outbox.stop()
        self._put(None)
        if self._worker is not None:
            self._worker.join(10)
        self.bus.stop()
        if self.store is not None:
            self.store.close()

    def alive(self, within_s: float = 3 * TICK_S) -> bool:
        """True while the worker thread runs and went round its loop recently."""
        worker = self._worker
        return (
            self.failed is None
            and bool(worker and worker.is_alive())
            and time.monotonic() - self._last_loop < within_s
        )

    def on_change(self, listener: Callable[[str, Any], None]) -> None:
        """Call `listener(kind, message)` for every state published (web live updates).

        Runs on the hub's worker thread: hand the message over, never block.
        """
        self._listeners.append(listener)

    def snapshot(self, name: str) -> list[m.Message]:
        """The latest published messages of one topic-table row (e.g. 'counter_state')."""
        topics = self.bus.topics
        return [
            msg
            for topic, msg in list(self.retained.items())
            if (topics.parse(topic) or ("",))[0] == name
        ]

    # -- inputs ----------------------------------------------------------------------------
    def _put(self, work: _Work | None) -> None:
        self._inbox.put(work)
        if self._worker is None or threading.get_ident() != self._worker.ident:
            self.bus.wake()  # from another thread (web app, stop): the worker may be polling
        if self.failed is not None:
            self._abandon()  # the worker stopped meanwhile: nobody else will answer it

    def _on_command(self, incoming: Incoming) -> None:
        if self.bus.topics.parse(incoming.topic) is not None:
            self._put(_Work("mqtt", incoming=incoming))

    def _on_status(self, incoming: Incoming) -> None:
        if incoming.topic == self.bus.topics.status(HUB_DEVICE):
            self._subscribed.set()
        self._put(_Work("status", incoming=incoming))

    def _on_storage_alert(self, incoming: Incoming) -> None:
        if incoming.payload:
            self._put(_Work("storage_alert"))

    def _on_down(self, incoming: Incoming) -> None:
        self._put(_Work("down", incoming=incoming))

    def _on_connection(self, connected: bool) -> None:
        # On every (re)connect: screens resync from exactly what the database holds.
        if connected:
            self._put(_Work("republish"))
            if self.site.region is not None:
                self._put(_Work("down"))  # tell the region how far its messages are applied

    def reload_site(self, site: Site, timeout: float = 10.0) -> str | None:
        """Swap in an edited inventory (`mpp-provision apply`) without dropping the queue: the
        day's tickets, counters and settings stay. Returns why it was refused (the running
        inventory then stays, and the site state says why), or None."""
        future: Future[str | None] = Future()
        self._put(_Work("reload", future=future, site=site))
        return future.result(timeout)

    def refuse_site(self, refusal: str) -> None:
        """An inventory that could not even be read or validated: say so in the site state
        ("VERSION: reason"); the running inventory stays."""
        self._put(_Work("refused", refusal=refusal))

    def tick(self, timeout: float = 10.0) -> None:
        """Look at the clock now, as the worker does every TICK_S: the day, opening hours,
        pauses, service-level alerts (tests with an injected clock call it)."""
        future: Future[None] = Future()
        self._put(_Work("tick", future=future))
        future.result(timeout)

    def submit(self, command: m.Command, timeout: float = 10.0) -> m.Reply:
        """Apply a command from inside the hub process (web caller, admin): same path."""
        if self.failed is not None:
            return self._error_reply(command.request_id, "internal", "the hub has stopped")
        future: Future[m.Reply] = Future()
        self._put(_Work("local", command=command, future=future))
        return future.result(timeout)

    # -- worker ----------------------------------------------------------------------------
    def _run(self) -> None:
        self.started.set()
        try:
            self._loop()
        except BaseException as exc:
            log.critical("the hub's worker stopped on an unexpected error", exc_info=True)
            self._fatal(f"the worker stopped on an unexpected error: {exc!r}")
        if self.failed is not None:
            self._abandon()

    def _loop(self) -> None:
        next_tick = time.monotonic() + TICK_S
        stopping = False
        while not stopping and self.failed is None:
            self._last_loop = time.monotonic()
            busy = self._dirty.any() or not self._inbox.empty()
            try:
                self.bus.poll(0 if busy else min(POLL_S, max(0.0, next_tick - time.monotonic())))
            except Exception:  # the broker connection's trouble must not stop the queue
                log.exception("broker connection poll failed; the queue goes on")
                time.sleep(POLL_FAILED_PAUSE_S)
            # Group commit: commands that arrived together share one COMMIT (each still in
            # its own savepoint-free step, and every reply only after that COMMIT).
            batch: list[_Work | None] = []
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._inbox.get_nowait())
                except queues.Empty:
                    break
            stopping = None in batch
            works = [w for w in batch if w is not None]
            # A reconnect's republish goes before the commands that came with it: a command's
            # reply promises that every retained state it could see is already out.
            if any(w.kind == "republish" for w in works):
                self._publish_all()
            self._commands([w for w in works if w.kind in ("mqtt", "local")])
            for work in works:
                if work.kind == "status" and work.incoming is not None:
                    self._handle_status(work.incoming)
                elif work.kind == "storage_alert" and self._fault is None:
                    self._dirty.cleared_alerts.append(STORAGE_ALERT_ID)
                elif work.kind == "reload" and work.site is not None and work.future:
                    work.future.set_result(self._swap_site(work.site))
                elif work.kind == "refused":
                    self.config_refused = work.refusal
                    self._dirty.site = True
                elif work.kind == "down":
                    self._apply_down(work.incoming)
                elif work.kind == "tick" and work.future is not None:
                    self._tick()
                    work.future.set_result(None)
            self._publish_dirty()
            if self._watch_due and time.monotonic() - self._watched >= WATCH_S:
                self._watch(self.clock())
            if time.monotonic() >= next_tick:
                self._tick()
                next_tick = time.monotonic() + TICK_S

    def _commands(self, works: list[_Work]) -> None:
        """Apply commands and answer each, only once what it changed is committed."""
        if not works:
            return
        for work in works:
            self._parse(work)
        replies = self._decide(works)
        # The new state goes out before the replies: whoever gets a reply can rely on the
        # retained state (and the web's snapshot) already showing its effect.
        self._publish_dirty()
        for work, reply in zip(works, replies, strict=True):
            self._send_reply(work, reply)

    def _parse(self, work: _Work) -> None:
        """Read a command's request id (and device, and JSON) before anything can fail."""
        if work.command is not None:
            work.request_id = work.command.request_id
            return
        assert work.incoming is not None
        work.device = self.bus.topics.parse(work.incoming.topic)[1]["device"]  # type: ignore[index]
        try:
            work.data = m.decode_json(work.incoming.payload)
        except BadMessage as exc:
            work.bad = exc
            return
        work.request_id = m.request_fields(work.data)[0] or ""

    def _decide(self, works: list[_Work]) -> list[m.Reply]:
        """One reply per command: all in one transaction (group commit); after a failure of
        their own (a bug), each alone; when the storage fails, none applied, each told so."""
        assert self.store is not None
        if self.storage_fault is not None and not self._recover():
            return [self._storage_refusal(work) for work in works]
        mark = self._dirty_mark()
        try:
            self._roll_to_today(self.clock())  # no command acts on yesterday's tickets
            with self.store.transaction():
                replies = [self._one(work) for work in works]
                self.store.set_seq(self.seq)
            return replies  # committed: only now may anyone be told
        except StoreError as exc:
            self._storage_failed(exc, mark)
            return [self._storage_refusal(work) for work in works]
        except Exception:
            log.exception("command batch failed; applying its commands one by one")
            self._undo(mark)
        return [self._alone(work) for work in works]

    def _alone(self, work: _Work) -> m.Reply:
        """Apply one command in its own transaction; its reply (given after the COMMIT)."""
        assert self.store is not None
        if self.storage_fault is not None:
            return self._storage_refusal(work)
        mark = self._dirty_mark()
        try:
            self._roll_to_today(self.clock())
            with self.store.transaction():
                reply = self._one(work)
                self.store.set_seq(self.seq)
            return reply
        except StoreError as exc:
            self._storage_failed(exc, mark)
            return self._storage_refusal(work)
        except Exception:
            log.exception(
                "command failed; nothing was changed",
                extra={"device": work.device, "request_id": work.request_id},
            )
            self._undo(mark)
            return self._error_reply(work.request_id, "internal", "hub error")

    def _send_reply(self, work: _Work, reply: m.Reply) -> None:
        try:
            if work.future is not None:
                work.future.set_result(reply)
            elif work.incoming is not None:
                # Always the device's own reply topic: a payload's reply_to must not steer the
                # hub's writes to other topics.
                self.bus.publish(
                    self.bus.topics.reply(work.device),
                    reply,
                    qos=TOPIC["reply"].qos,
                    correlation=work.incoming.correlation,
                )
        except Exception:  # one unsendable reply must not stop the queue
            log.exception("reply not sent", extra={"request_id": reply.request_id})

    def _one(self, work: _Work) -> m.Reply:
        """The reply to one command (applied inside the caller's transaction)."""
        if work.command is not None:
            device, kind, command = HUB_DEVICE, work.command.kind, work.command
        else:
            assert work.incoming is not None
            device, kind = self.bus.topics.parse(work.incoming.topic)[1].values()  # type: ignore[index]
            command = None
        request_id = work.request_id
        try:
            if command is None:
                if work.bad is not None:
                    raise work.bad
                model = m.COMMANDS.get(kind)
                if model is None:
                    raise BadMessage("unknown_kind", f"{kind!r} is not a command kind")
                command = m.decode(model, work.data)  # type: ignore[arg-type]
            reply = self._execute(command, device, kind)
        except BadMessage as exc:
            log.warning(
                "bad command refused",
                extra={"device": device, "kind": kind, "request_id": request_id, "error": str(exc)},
            )
            reply = self._error_reply(request_id, exc.code, exc.message)
        if command is not None and command.sent_at is not None:
            reply = reply.model_copy(update={"sent_at": command.sent_at})
        return reply

    def _error_reply(
        self, request_id: str, code: str, message: str, text: dict[str, str] | None = None
    ) -> m.Reply:
        return m.Reply(
            request_id=request_id,
            ok=False,
            error=m.ErrorInfo(code=code, message=message, text=m.Text(**text) if text else None),
            hub_time=self.clock(),
        )

    # -- commands --------------------------------------------------------------------------
    def _authorise(self, command: m.Command, device: str, kind: str) -> None:
        if command.device != device:
            raise BadMessage(
                "device_mismatch", f"payload device {command.device!r} but topic device {device!r}"
            )
        if device in (HUB_DEVICE, WEB_DEVICE):
            role = device
        elif device in self.site.devices:
            role = self.site.devices[device].role
        else:
            raise BadMessage("forbidden", f"{device!r} is not a device of this site's inventory")
        if role not in COMMAND_ROLES[kind]:
            raise BadMessage("forbidden", f"a {role} may not send {kind!r}")
        spec = self.site.devices.get(device)
        if isinstance(spec, CallerDevice) and getattr(command, "counter", None) != spec.counter:
            raise BadMessage(
                "forbidden",
                f"{device} commands counter {spec.counter} only",
            )
        if isinstance(spec, KioskDevice) and isinstance(command, m.IssueTicket):
            menu = spec.services or (tuple(self.site.services) if spec.screen else ())
            if command.service not in set(menu) | set(spec.buttons):
                raise BadMessage("forbidden", f"{device} does not offer {command.service!r}")

    def _check_fresh(self, command: m.Command, now: float) -> None:
        """A new command its sender has given up on is not applied (a repeat of one that was
        applied is answered from the log before this, however late it comes)."""
        if command.expires_at is not None and now > command.expires_at:
            raise BadMessage(
                "stale", f"arrived {now - command.expires_at:.1f}s after its sender gave up"
            )
        if command.sent_at is not None and now - command.sent_at > self.site.hub.command_max_age_s:
            raise BadMessage(
                "stale",
                f"sent {now - command.sent_at:.1f}s ago; the limit is "
                f"{self.site.hub.command_max_age_s:g}s (queued while offline?)",
            )

    def _execute(self, command: m.Command, device: str, kind: str) -> m.Reply:
        """Apply one command exactly once (inside the caller's transaction); its reply."""
        assert self.store is not None
        now = self.clock()
        self._authorise(command, device, kind)
        stored = self.store.reply_for(device, command.request_id)
        if stored is None:
            if not command.fate_report:  # a ticket's fate is news however late it comes
                self._check_fresh(command, now)
        else:
            log.info(
                "repeat request answered from the log",
                extra={"device": device, "request_id": command.request_id, "kind": kind},
            )
            # The first answer, on today's clock: devices learn the hub's time from hub_time,
            # and an answer stored before a restart would set their clocks back.
            return m.decode(m.Reply, stored).model_copy(update={"hub_time": now})
        self.seq += 1
        try:
            result = self._apply(command, now)
            reply = m.Reply(request_id=command.request_id, ok=True, result=result, hub_time=now)
        except Refused as refusal:
            reply = self._error_reply(
                command.request_id, refusal.code, refusal.message, refusal.text
            )
        changes = self.queue.take_changes()
        changed = reply.ok or changes != Changes()
        if not changed:
            self.seq -= 1  # a refusal that touched nothing is no new version of any state
        self.store.persist(self.queue, changes)
        for alert in changes.alerts:
            message = self._complaint_alert(alert)
            self.store.save_alert(alert.id, message.kind, alert.at, message.model_dump(mode="json"))
            self._dirty.alerts.append(message)
        self.store.save_reply(device, command.request_id, kind, now, m.encode(reply).decode())
        self.trust.committed(now)
        if changed:
            self._mark(changes.counters, changes.services)
            self._dirty.zones |= changes.zones
        log.info(
            "command applied" if reply.ok else "command refused",
            extra={
                "device": device,
                "request_id": command.request_id,
                "kind": kind,
                "code": reply.error.code if reply.error else "ok",
            },
        )
        return reply

    def _apply(self, command: m.Command, now: float) -> dict[str, Any]:
        q = self.queue
        match command:
            case m.IssueTicket():
                if not self._check_clock(now):
                    raise Refused(
                        "clock_unsynced",
                        f"the hub's clock is not NTP-synchronised and reads {now:.0f}, before "
                        f"its last record at {self.trust.floor:.0f}",
                        CLOCK_UNSYNCED["id"],
                        CLOCK_UNSYNCED["en"],
                    )
                ticket = q.issue(
                    command.service,
                    priority=command.priority,
                    device=command.device,
                    now=now,
                    token=self.new_token(),
                    lang=command.lang,
                    steady=self.steady(),
                )
                return m.IssueResult(ticket=self._ticket_info(ticket)).model_dump()
            case m.TicketPrinted():
                return self._ticket_result(q.printed(command.ticket_id))
            case m.VoidTicket(cancels=str() as cancels):
                return self._cancel(command.device, cancels, now)
            case m.VoidTicket(ticket_id=int() as ticket_id):
                return self._ticket_result(q.void(ticket_id, command.device, now))
            case m.RevokePriority():
                return self._ticket_result(q.revoke_priority(command.ticket_id, command.by, now))
            case m.CallNext():
                q.call_next(command.counter, now, self.steady())
            case m.Recall():
                q.recall(command.counter, now)
            case m.Skip():
                q.skip(command.counter, now)
            case m.CallSkipped():
                q.call_skipped(command.counter, command.ticket, now)
            case m.Transfer():
                q.transfer(command.counter, command.service, now)
            case m.Finish():
                q.finish(command.counter, now)
            case m.OpenCounter():
                q.open_counter(command.counter, command.officer, now)
            case m.CloseCounter():
                q.close_counter(command.counter, now)
            case m.StartBreak():
                q.start_break(command.counter, command.reason, now, command.minutes)
            case m.EndBreak():
                q.end_break(command.counter, now)
            case m.Rate():
                rating = q.rate(command.counter, command.score, now)
                return m.RateResult(
                    ticket=rating.label,
                    counter=rating.counter,
                    officer=rating.officer,
                    score=rating.score,
                ).model_dump()
            case m.AckAlert():
                return self._ack_alert(command, now)
            case m.OpenService() | m.CloseService():
                closed = isinstance(command, m.CloseService)
                q.close_service(command.service, closed, now, command.by)
                return m.ServiceResult(service=command.service, closed=closed).model_dump()
            case m.AssignCounter():
                q.assign(command.counter, command.services, now, command.by)
            case m.SetServiceLimits():
                q.set_limits(command.service, command.daily_quota, command.cutoff, now, command.by)
                return m.LimitsResult(
                    service=command.service,
                    daily_quota=q.daily_quota(command.service),
                    cutoff=command.cutoff,
                ).model_dump()
            case m.SetZoneSound():
                sound = Sound(command.speech, command.volume, command.number_reading)
                q.set_sound(command.zone, sound, now, command.by)
                return states.zone_sound(q, command.zone, self.seq).model_dump()
            case m.SubmitSurvey():
                assert self.store is not None
                return record_survey(self.store, self.site, command, now).model_dump()
            case m.CheckIn():
                return self._check_in(command, now)
            case _:
                raise BadMessage("unknown_kind", f"no rule for {type(command).__name__}")
        number = command.counter  # type: ignore[attr-defined]
        call = (
            states.call_info(q, number)
            if isinstance(command, m.CallNext | m.Recall | m.CallSkipped)
            else None
        )
        return m.CounterResult(
            counter=states.counter_state(q, number, self.seq, now), call=call
        ).model_dump()

    def _ack_alert(self, command: m.AckAlert, now: float) -> dict[str, Any]:
        """A supervisor saw an alert: a one-off one ends, a service-level one stays (with who
        saw it) until its condition ends."""
        assert self.store is not None
        payload = self.store.ack_alert(command.alert_id, command.by, now)
        if payload is None:
            raise Refused(
                "bad_state",
                f"no open alert {command.alert_id!r} waiting for an acknowledgement",
                "Peringatan tidak ditemukan atau sudah ditangani",
                "No such open alert",
            )
        alert = m.Alert.model_validate(payload)
        if alert.kind in m.CONDITION_ALERTS:
            self._dirty.alerts.append(alert)
        else:
            self._dirty.cleared_alerts.append(alert.id)
        return m.AckResult(alert_id=command.alert_id).model_dump()

    def _cancel(self, device: str, request_id: str, now: float) -> dict[str, Any]:
        """Void whatever an unanswered `issue` request created; if it has not arrived yet,
        answer it in advance with a refusal so it never creates a ticket."""
        assert self.store is not None
        stored = self.store.reply_for(device, request_id)
        if stored is None:
            refusal = self._error_reply(
                request_id,
                "cancelled",
                "cancelled by the device before the hub received it",
                {"id": "Dibatalkan", "en": "Cancelled"},
            )
            self.store.save_reply(device, request_id, "issue", now, m.encode(refusal).decode())
            return m.TicketResult(ticket_id=None, number=None, status="cancelled").model_dump()
        reply = m.decode(m.Reply, stored)
        if not reply.ok or not reply.result or "ticket" not in reply.result:
            return m.TicketResult(ticket_id=None, number=None, status="nothing").model_dump()
        ticket_id = m.IssueResult.model_validate(reply.result).ticket.id
        return self._ticket_result(self.queue.void(ticket_id, device, now))

    def _check_in(self, command: m.CheckIn, now: float) -> dict[str, Any]:
        """A booking code at a kiosk: an ordinary ticket joining the queue now, marked as a
        reservation, or the same ticket again (see hub/bookings.py)."""
        assert self.store is not None

        def issue(service: str, code: str) -> Ticket:
            if not self._check_clock(now):
                raise Refused(
                    "clock_unsynced", "the hub's clock is not trusted", *CLOCK_UNSYNCED.values()
                )
            return self.queue.issue(
                service,
                priority=None,
                device=command.device,
                now=now,
                token=self.new_token(),
                lang=command.lang,
                steady=self.steady(),
                booking=code,
            )

        ticket, reprint = bookings.check_in(
            self.store.conn, self.queue, self.site, command, now=now, issue=issue
        )
        info = self._ticket_info(ticket).model_copy(update={"reprint": reprint})
        return m.IssueResult(ticket=info).model_dump()

    def _apply_down(self, incoming: Incoming | None) -> None:
        """The region's messages (bookings, cancellations, surveys), each applied once in its
        own transaction; the acknowledgement goes back after COMMIT. No message: only say how
        far they are applied (after a reconnect)."""
        assert self.store is not None
        topics = self.bus.topics
        now = self.clock()
        try:
            if incoming is None:
                upto = bookings.applied_upto(self.store.conn)
            else:
                batch = m.decode(m.DownBatch, incoming.payload)
                if batch.site != self.site.site.id:
                    raise BadMessage("invalid", f"batch for site {batch.site!r}")
                with self.store.transaction():
                    upto = bookings.apply_batch(self.store, self.site, batch, now)
        except BadMessage as exc:
            log.warning("bad region message refused", extra={"error": str(exc)})
            return
        except Exception:  # the region's messages must not stop the queue; they come again
            log.exception("region messages not applied; the region sends them again")
            self._reload()
            return
        ack = m.DownAck(site=self.site.site.id, applied=upto, at=now)
        self.bus.publish(topics.down_ack(), ack)

    def _ticket_info(self, ticket: Ticket) -> m.TicketInfo:
        ahead = self.queue.people_ahead(ticket)
        pause = self.queue.pause_of(ticket.service, ticket.issued_at)
        return m.TicketInfo(
            id=ticket.id,
            number=ticket.label,
            service=ticket.service,
            priority=ticket.priority,
            issued_at=ticket.issued_at,
            token=ticket.token,
            people_ahead=ahead,
            est_wait_s=self.queue.estimate(ticket.service, ahead, ticket.issued_at),
            resumes_at=pause.end if pause is not None else None,
            booking=ticket.booking,
        )

    @staticmethod
    def _ticket_result(ticket: Ticket) -> dict[str, Any]:
        return m.TicketResult(
            ticket_id=ticket.id, number=ticket.label, status=ticket.status
        ).model_dump()

    def _complaint_alert(self, alert: Any) -> m.Alert:
        counter = self.site.counter_name(alert.counter)
        counter_en = self.site.counter_name(alert.counter, "en")
        return m.Alert(
            id=alert.id,
            kind="consecutive_complaints",
            raised_at=alert.at,
            counter=alert.counter,
            officer=alert.officer,
            text=m.Text(
                id=f"{counter} ({alert.officer}): {alert.count} kali 'Tidak puas' berturut-turut",
                en=f"{counter_en} ({alert.officer}): {alert.count} 'very dissatisfied' in a row",
            ),
        )

    # -- device presence -------------------------------------------------------------------
    def _handle_status(self, incoming: Incoming) -> None:
        parsed = self.bus.topics.parse(incoming.topic)
        if parsed is None or not incoming.payload:
            return
        try:
            status = m.decode(m.DeviceStatus, incoming.payload)
        except BadMessage as exc:
            log.warning("bad status ignored", extra={"topic": incoming.topic, "error": str(exc)})
            return
        self.fleet[status.device] = FleetEntry(status, self.clock())
        if status.device in self.site.devices:  # the fleet's log: not tools or test clients
            self._record_presence(status)
        for listener in self._listeners:
            listener("status", status)

    def _record_presence(self, status: m.DeviceStatus) -> None:
        """A device's change of presence goes into the event log (and so to the region)."""
        detail = self._presence.change(status)
        if detail is None or self.store is None:
            return
        try:
            with self.store.transaction():
                self.store.add_event("presence", self.clock(), detail=detail)
        except StoreError as exc:  # a full disk: the storage alert says it once
            log.error("presence change not recorded", extra={"error": str(exc)})
        except Exception:  # a presence record must not stop the queue
            log.exception("presence change not recorded", extra={"device": status.device})

    # -- state publishing ------------------------------------------------------------------
    def _mark(self, counters: set[int], services: set[str]) -> None:
        self._dirty.counters |= counters
        self._dirty.services |= services
        self._dirty.site = True
        self._watch_due = True  # the service-level alerts may have changed with them
        # Only the counters a command touched: a queue that grew or shrank is news on its
        # service's state, which every device that counts waiting people reads (one fact, one
        # topic); republishing every counter of the service would send a call's screens a
        # burst of unchanged counters.

    def _publish_dirty(self) -> None:
        if not self._dirty.any():
            return
        dirty, self._dirty = self._dirty, _Dirty()
        now, topics = self.clock(), self.bus.topics
        for number in sorted(dirty.counters):
            self._publish(
                topics.counter_state(number),
                states.counter_state(self.queue, number, self.seq, now),
            )
        for code in sorted(dirty.services):
            state = states.service_state(self.queue, code, self.seq, now)
            self._last_service_flags[code] = (state.open, state.quota_left)
            self._publish(topics.service_state(code), state)
            self._publish(
                topics.service_queue(code), states.service_queue(self.queue, code, self.seq, now)
            )
            if self.outbox is not None:
                self.outbox.offer_view(
                    queue_view(
                        self.queue,
                        self.site.site.id,
                        code,
                        seq=self.seq,
                        now=now,
                        open_now=state.open,
                    )
                )
        for zone in sorted(dirty.zones):
            self._publish(topics.zone_sound(zone), states.zone_sound(self.queue, zone, self.seq))
        if dirty.site:
            self._publish(
                topics.site_state(),
                states.site_state(
                    self.queue, self.seq, now, self.clock_ok, config_refused=self.config_refused
                ),
            )
        for alert in dirty.alerts:
            self._publish(topics.alert(alert.id), alert)
        for alert_id in dirty.cleared_alerts:
            self.retained.pop(topics.alert(alert_id), None)
            self.bus.publish(topics.alert(alert_id), b"", retain=True)
            for listener in self._listeners:
                listener("alert_cleared", alert_id)

    def _publish(self, topic: str, message: m.Message) -> None:
        self.retained[topic] = message
        self.bus.publish(topic, message, retain=True)
        for listener in self._listeners:
            listener(type(message).__name__, message)

    def _publish_all(self) -> None:
        """Every retained topic, exactly as the database holds it (start and reconnect)."""
        self._dirty.counters |= set(self.site.counters)
        self._dirty.services |= set(self.site.services)
        self._dirty.zones |= set(self.site.zones)
        self._dirty.site = True
        assert self.store is not None
        for payload in self.store.open_alerts():
            self._dirty.alerts.append(m.Alert.model_validate(payload))
        if self._fault is not None:
            self._dirty.alerts.append(self._storage_alert())
        self._publish_dirty()

    def _check_clock(self, now: float) -> bool:
        """Whether the wall clock may be believed now; a change goes out in the site state."""
        ok = self.trust.trusted(now)
        if ok != self.clock_ok:
            self.clock_ok = ok
            self._dirty.site = True
            if ok:
                log.warning("clock trusted again: issuing tickets", extra={"now": now})
            else:
                log.error(
                    "clock not trusted: no tickets until NTP synchronises it (check "
                    "`timedatectl timesync-status` and the NTP server) or it passes the last "
                    "recorded moment",
                    extra={"now": now, "last_recorded": self.trust.floor},
                )
        return ok

    def _tick(self) -> None:
        """Periodic: day rollover, services opening/closing with the clock, clock trust,
        pauses, service-level alerts."""
        assert self.store is not None
        now = self.clock()
        self._check_clock(now)
        if self.storage_fault is not None:
            self._recover()  # also with no command coming: the alert and health clear
        if self.storage_fault is None:
            mark = self._dirty_mark()
            try:
                self._roll_to_today(now)
                self._expire_bookings(now)
                self._update_pauses(now)
            except StoreError as exc:
                self._storage_failed(exc, mark)
        self._report_damage_found(now)
        for code in self.site.services:
            flags = (self.queue.service_open(code, now) is None, self.queue.quota_left(code))
            if self._last_service_flags.get(code) != flags:
                self._dirty.services.add(code)
        self._publish_dirty()
        self._watch(now)

    def _update_pauses(self, now: float) -> None:
        """A pause of the inventory began or ended: record it and publish the states it
        changes (with a new seq, so screens take them)."""
        assert self.store is not None
        if {w.id for w in pauses_now(self.site, now)} == self.queue.active_pauses:
            return
        with self.store.transaction():
            self.queue.update_pauses(now)
            changes = self.queue.take_changes()
            self.seq += 1
            self.store.set_seq(self.seq)
            self.store.persist(self.queue, changes)
        self._mark(changes.counters, changes.services)
        log.info("pauses changed", extra={"pauses": sorted(self.queue.active_pauses)})

    def _watch(self, now: float) -> None:
        """Raise the service-level alerts whose condition began, clear those whose condition
        ended (each stored, an event, and its retained topic)."""
        assert self.store is not None
        self._watched, self._watch_due = time.monotonic(), False
        if self.storage_fault is not None:
            return  # nothing can be recorded now; looked at again once it can
        raised, cleared = self._alert_book.update(alerts.conditions(self.queue, now), now)
        if not raised and not cleared:
            return
        messages = [self._condition_alert(alert_id, c, now) for alert_id, c in raised]
        mark = self._dirty_mark()
        try:
            with self.store.transaction():
                for alert in messages:
                    payload = alert.model_dump(mode="json")
                    self.store.save_alert(alert.id, alert.kind, now, payload)
                    self.store.add_event(
                        "alert_raised",
                        now,
                        service=alert.service,
                        counter=alert.counter,
                        officer=alert.officer,
                        detail=alert.id,
                    )
                for alert_id in cleared:
                    self.store.clear_alert(alert_id, now)
        except StoreError as exc:  # e.g. a full disk: the book is read back from the store
            self._storage_failed(exc, mark)
            return
        for alert in messages:
            log.warning("alert raised", extra={"alert": alert.id, "text": alert.text.id})
        self._dirty.alerts.extend(messages)
        self._dirty.cleared_alerts.extend(cleared)
        self._publish_dirty()

    def _condition_alert(self, alert_id: str, condition: alerts.Condition, now: float) -> m.Alert:
        counter = self.queue.counters.get(condition.counter) if condition.counter else None
        return m.Alert(
            id=alert_id,
            kind=condition.kind,  # type: ignore[arg-type]
            raised_at=now,
            text=m.Text(**condition.text),
            service=condition.service,
            counter=condition.counter,
            officer=counter.officer if counter is not None else None,
        )

    def _open_alert_book(self) -> alerts.AlertBook:
        """The service-level alerts the store holds open."""
        assert self.store is not None
        found = (m.Alert.model_validate(p) for p in self.store.open_alerts())
        return alerts.AlertBook(
            {alerts.key_of(a): a.id for a in found if a.kind in m.CONDITION_ALERTS}
        )

    def _swap_site(self, site: Site) -> str | None:
        """The new inventory in place of the running one, with the queue rebuilt from the
        database under it; or the reason it cannot be (nothing changed then)."""
        old = self.site
        reason = states.inventory_change_problem(old, site, self.queue)
        if reason is None:
            self.site = site
            try:
                self._reload()
            except Exception as exc:  # the database's day does not fit the new inventory
                log.exception("the new inventory does not fit the database; keeping the old one")
                self.site = old
                self._reload()
                reason = f"today's database does not fit it ({type(exc).__name__}: {exc})"
        if reason is not None:
            self.config_refused = f"{site.version}: {reason}"[:200]
            log.error("new inventory refused", extra={"version": site.version, "error": reason})
            self._dirty.site = True
            return reason
        self.config_refused = None
        if self.outbox is not None:
            self.outbox.site = site
        topics = self.bus.topics
        gone = [topics.counter_state(n) for n in set(old.counters) - set(site.counters)]
        gone += [topics.service_state(c) for c in set(old.services) - set(site.services)]
        gone += [topics.zone_sound(z) for z in set(old.zones) - set(site.zones)]
        for topic in gone:  # no screen keeps showing a counter or service that is no more
            self.retained.pop(topic, None)
            self.bus.publish(topic, b"", retain=True)
        log.info(
            "inventory reloaded",
            extra={"version": site.version, "previous": old.version, "devices": len(site.devices)},
        )
        self._publish_all()
        return None

    def _expire_bookings(self, now: float) -> None:
        """No-shows expire at the end of their check-in window; old bookings are deleted."""
        assert self.store is not None
        try:
            with self.store.transaction():
                expired = bookings.expire_no_shows(self.store, self.site, now)
        except Exception:  # bookings must not stop the queue: the next tick tries again
            log.exception("bookings not expired")
            return
        if expired:
            log.info("bookings expired (no-shows)", extra={"count": len(expired)})

    def _reload(self) -> None:
        """(Re)build the in-memory queue and seq from exactly what the database holds."""
        assert self.store is not None
        self.queue = Queue(self.site)
        self.store.load(self.queue)
        self.queue.resume_holds(self.clock(), self.steady())
        self.seq = self.store.seq()
        self._alert_book = self._open_alert_book()

    # -- when the database cannot be written -----------------------------------------------
    def _dirty_mark(self) -> tuple[int, int]:
        """Where the alerts waiting to be published end now (see `_undo`)."""
        return len(self._dirty.alerts), len(self._dirty.cleared_alerts)

    def _undo(self, mark: tuple[int, int]) -> None:
        """After a transaction that was not committed: memory as the database holds it again
        (queue, seq), and nothing of it published (alerts raised or cleared since `mark`)."""
        del self._dirty.alerts[mark[0] :]
        del self._dirty.cleared_alerts[mark[1] :]
        try:
            self._reload()
        except Exception as exc:
            log.critical("the queue could not be read back from the database", exc_info=True)
            self._fatal(f"the queue could not be read back from the database: {exc}")

    def _storage_failed(self, exc: StoreError, mark: tuple[int, int]) -> None:
        """A write failed for the storage's sake: undo it in memory, refuse until it works."""
        self._undo(mark)
        damaged = isinstance(exc, DatabaseDamaged)
        if damaged:  # never written again: `mpp hub` exits, and its restart checks it
            log.critical("hub database damaged", extra={"error": str(exc)})
            self._fatal(str(exc))
        if self._fault is None or (damaged and not self._fault.damaged):
            log.error(
                "hub database cannot be written: commands are refused until it can",
                extra={"database": str(self.database), "code": exc.code, "error": str(exc)},
            )
            self._fault = _Fault(self.clock(), exc.code, damaged=damaged)
            self._dirty.alerts.append(self._storage_alert())
            self._set_storage_health(exc.code, str(exc))
        self.storage_fault = exc

    def _storage_refusal(self, work: _Work) -> m.Reply:
        """The answer to a command not applied because the database cannot be written; a
        repeat of one applied before still gets its first answer (reading still works)."""
        fault = self.storage_fault
        assert fault is not None
        if self._fault is not None:
            self._fault.refused += 1
        if work.request_id and self.store is not None and self.failed is None:
            try:
                stored = self.store.reply_for(work.device, work.request_id)
            except sqlite3.Error:
                stored = None
            if stored is not None:
                return m.decode(m.Reply, stored).model_copy(update={"hub_time": self.clock()})
        return self._error_reply(
            work.request_id, fault.code, m.ERROR_CODES[fault.code], STORAGE_TEXT.get(fault.code)
        )

    def _recover(self) -> bool:
        """Try to store the fault's alert: once that is committed, the fault is over (the
        alert stays, as a record, until acknowledged). True when recovered."""
        if self.failed is not None or self._fault is None:
            return False
        assert self.store is not None
        if self._fault.code == "storage_full" and self.store.free_bytes() < RESUME_FREE_BYTES:
            return False  # a few free bytes let a small write through, not the next batch
        record = self._storage_alert(ended=self.clock())
        try:
            with self.store.transaction():
                self.store.save_alert(
                    record.id, record.kind, record.raised_at, record.model_dump(mode="json")
                )
        except StoreError as exc:
            self.storage_fault = exc
            return False
        log.warning(
            "hub database writable again; commands are applied",
            extra={"database": str(self.database), "refused": self._fault.refused},
        )
        self.storage_fault, self._fault = None, None
        self._dirty.alerts.append(record)
        self._dirty.cleared_alerts.append(STORAGE_ALERT_ID)
        self._set_storage_health("ok", None)
        return True

    def _storage_alert(self, ended: float | None = None) -> m.Alert:
        """The supervisors' alert of the current storage fault: while it lasts, the retained
        `storage` alert (it cannot be stored); once `ended`, a record kept until acknowledged."""
        fault = self._fault
        assert fault is not None
        since = self.site.local_now(fault.since).strftime("%H:%M")
        full = fault.code == "storage_full"
        what_id = "Disk server antrian penuh" if full else "Database server antrian gagal ditulis"
        what_en = "The queue server's disk is full" if full else "The queue server cannot write"
        if fault.damaged:
            text = m.Text(
                id=f"Database server antrian rusak (sejak {since}): hub berhenti dan tidak "
                "menulisnya lagi. Pulihkan cadangan harian (docs/reliability.md).",
                en=f"The queue server's database is damaged (since {since}): the hub stopped "
                "and writes nothing more to it. Restore the daily backup (docs/reliability.md).",
            )
        elif ended is None:
            text = m.Text(
                id=f"{what_id} sejak {since}: tiket dan panggilan ditolak. Kosongkan ruang disk "
                f"di server ({self.database.parent}); antrian berjalan lagi dengan sendirinya.",
                en=f"{what_en} since {since}: tickets and calls are refused. Free disk space on "
                f"the server ({self.database.parent}); the queue resumes by itself.",
            )
        else:
            until = self.site.local_now(ended).strftime("%H:%M")
            text = m.Text(
                id=f"{what_id} {since}-{until}: {fault.refused} perintah ditolak (tidak ada yang "
                "tersimpan, perangkat diberi tahu). Sudah normal; periksa ruang disk server.",
                en=f"{what_en} {since}-{until}: {fault.refused} commands refused (none stored, "
                "devices told). Working again; check the server's disk space.",
            )
        return m.Alert(
            id=STORAGE_ALERT_ID if ended is None else f"{STORAGE_ALERT_ID}-{round(fault.since)}",
            kind="storage",
            raised_at=fault.since,
            text=text,
            device=HUB_DEVICE,
        )

    def _report_damage_found(self, now: float) -> None:
        """The daily backup's integrity check found damage: tell the supervisors, once."""
        assert self.store is not None
        found = self.store.backup.damaged
        if found is None or found == self._damage_reported:
            return
        self._damage_reported = found
        alert = m.Alert(
            id=f"database-check-{round(now)}",
            kind="storage",
            raised_at=now,
            device=HUB_DEVICE,
            text=m.Text(
                id="Pemeriksaan harian menemukan kerusakan pada database server antrian "
                f"({found[:120]}). Hubungi teknisi: pulihkan cadangan terakhir yang baik "
                "(docs/reliability.md).",
                en="The daily check found damage in the queue server's database "
                f"({found[:120]}). Call a technician: restore the last good backup "
                "(docs/reliability.md).",
            ),
        )
        try:
            with self.store.transaction():
                self.store.save_alert(alert.id, alert.kind, now, alert.model_dump(mode="json"))
        except StoreError:
            log.exception("alert not stored; published all the same")
        self._dirty.alerts.append(alert)

    def _set_storage_health(self, state: str, detail: str | None) -> None:
        """The hub's own presence says whether its database disk works."""
        health = {"ok": "ok", "storage_full": "full"}.get(state, "error")
        try:
            self.bus.set_health(storage=health, detail=detail[:200] if detail else None)
        except Exception:  # the broker's trouble must not stop the queue
            log.exception("hub health not published")

    def _fatal(self, reason: str) -> None:
        """Stop for good: refuse everything, end the worker; `mpp hub` then exits, so systemd
        restarts it (and the start checks the database)."""
        if self.failed is None:
            self.failed = reason
            self.storage_fault = self.storage_fault or StoreError(reason)

    def _abandon(self) -> None:
        """The worker has stopped for good: answer what waits in the inbox in this process."""
        while True:
            try:
                work = self._inbox.get_nowait()
            except queues.Empty:
                return
            if work is None or work.future is None or work.future.done():
                continue
            if work.kind == "local" and work.command is not None:
                reply = self._error_reply(work.command.request_id, "internal", "hub stopped")
                work.future.set_result(reply)
            else:
                work.future.set_exception(StoreError(f"the hub has stopped: {self.failed}"))

    def _roll_to_today(self, now: float) -> None:
        """At the first moment of a new local day: expire leftovers, restart numbering. The
        day only moves forward: a clock stepped back across midnight changes nothing."""
        assert self.store is not None
        if self.site.business_day(now) <= self.queue.day:
            return
        with self.store.transaction():
            self.queue.roll_day(now)
            changes = self.queue.take_changes()
            self.seq += 1
            self.store.set_seq(self.seq)
            self.store.persist(self.queue, changes)
            self.store.prune_requests(now - REQUEST_MEMORY_S)
        self._mark(changes.counters, changes.services)
        log.info("new business day", extra={"day": self.queue.day, "seq": self.seq})
