"""The hub's outbox: every committed event leaves the site for the region, in commit order.

The outbox is the hub's own `events` table: its ids number the events, nothing is copied to a
second store. A thread of its own, with its own read-only SQLite connection, reads what was
committed after the region's acknowledgement and publishes it in batches (bounded in events and
bytes) on `up/events` through the site broker, whose bridge carries them to the region. The
region answers on `down/ack` with the highest id it holds without a gap; the outbox sends a
window of batches ahead of that and goes back to the acknowledgement (sends again from there)
after a (re)connect or restart, when an answer shows a batch sent long ago was lost, or when no
answer came for a while. It never writes the database and never waits for the worker: commands
are not slowed by it, and a WAN outage of days only means a longer way to catch up.

    outbox = Outbox(site, database, bus)     # before bus.start: subscribes down/ack
    outbox.start()
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from hub.bookings import booking_offer
from hub.store import connect
from protocol import messages as m
from protocol.errors import BadMessage
from protocol.mqtt import Bus, Incoming
from protocol.site import Site

log = logging.getLogger("mpp.hub.outbox")

POLL_S = 0.1  # how often the outbox looks for newly committed events
LOST_AFTER_S = 3.0  # unacknowledged this long while the region answers: lost, send again
MAX_RESEND_S = 120.0  # the longest wait between sends without any answer from the region
BATCH_BYTES = m.MAX_PAYLOAD_BYTES - 1024  # room for the batch's own fields
FIRST_HEARTBEAT_S = 2.0  # until the region has answered once
VIEW_EXPIRY_S = 30  # a queue view waiting in the bridge this long is superseded anyway

EVENTS_SQL = (
    "SELECT e.id, e.at, e.kind, e.ticket, e.counter, e.service, e.officer, e.detail, "
    "t.label, t.day, t.issued_service, t.token "
    "FROM events e LEFT JOIN tickets t ON e.kind = 'issued' AND t.id = e.ticket "
    "WHERE e.id > ? ORDER BY e.id LIMIT ?"
)


def site_catalog(site: Site) -> m.SiteCatalog:
    """What the region needs to name and judge this site's services."""
    return m.SiteCatalog(
        site=site.site.id,
        name=site.site.name[:200],
        timezone=site.site.timezone,
        version=site.version,
        agencies={code: agency.short for code, agency in site.agencies.items()},
        services={
            code: m.CatalogService(
                name=m.Text(id=s.name.id, en=s.name.en or s.name.id),
                agency=s.agency,
                time_class_s=int(site.time_classes[s.time_class].max_duration.total_seconds()),
            )
            for code, s in site.services.items()
        },
        counters=len(site.counters),
        counter_names={
            str(number): m.Text(id=site.counter_name(number), en=site.counter_name(number, "en"))
            for number, counter in site.counters.items()
            if counter.name is not None
        },
    )


def read_batch(
    conn: sqlite3.Connection, site_id: str, after: int, *, head: int, max_events: int, now: float
) -> m.EventBatch:
    """The events committed after `after`, at most `max_events` and BATCH_BYTES of them."""
    events: list[m.OutboxEvent] = []
    size = 0
    for row in conn.execute(EVENTS_SQL, (after, max_events)):
        issued = row[2] == "issued" and row[8] is not None
        event = m.OutboxEvent(
            id=row[0],
            at=row[1],
            kind=row[2],
            ticket=row[3],
            counter=row[4],
            service=row[5],
            officer=row[6],
            detail=row[7],
            label=row[8] if issued else None,
            day=row[9] if issued else None,
            issued_service=row[10] if issued else None,
            token_sha256=m.token_sha256(row[11]) if issued else None,
        )
        size += len(event.model_dump_json(exclude_none=True)) + 1
        if events and size > BATCH_BYTES:
            break
        events.append(event)
    last = events[-1].id if events else after
    return m.EventBatch(
        site=site_id,
        after=after,
        last=last,
        head=max(head, last),
        sent_at=now,
        events=tuple(events),
    )


class Outbox:
    """Uploads the hub's committed events to the region; see the module docstring."""

    def __init__(
        self,
        site: Site,
        database: str | Path,
        bus: Bus,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        assert site.region is not None, "the outbox needs the inventory's [region] table"
        self.site = site
        self.link = site.region
        self.database = Path(database)
        self.bus = bus
        self.clock = clock
        self.acked: int | None = None  # the region's acknowledgement, once it answered
        self.sent = 0  # highest id sent since the last rewind
        self.head = 0
        self.batches_sent = 0
        self._inflight: deque[tuple[int, float]] = deque()  # (last id, monotonic sent time)
        self._acks: deque[m.EventAck] = deque()
        self._rewind = True
        self._catalog_due = True
        self._last_answer = time.monotonic()
        self._last_send = 0.0
        self._resend_after = self.link.resend_after_s
        self._views: dict[str, m.QueueView] = {}  # the newest of each service
        self._views_due: set[str] = set()
        self._views_lock = threading.Lock()
        self.views_sent = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        bus.subscribe(bus.topics.ack(), self._on_ack)
        bus.on_connection_change(self._on_connection)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Outbox:
        """Start uploading on a thread of its own."""
        self._thread = threading.Thread(target=self._run, name="hub-outbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread (what is unacknowledged is sent again at the next start)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)

    def offer_view(self, view: m.QueueView) -> None:
        """A service's queue changed (from the hub's worker): its public view goes up next,
        superseding any not sent yet."""
        with self._views_lock:
            self._views[view.service] = view
            self._views_due.add(view.service)
        self._wake.set()

    def _all_views_due(self) -> None:
        with self._views_lock:
            self._views_due = set(self._views)

    def _send_views(self) -> None:
        """The views not sent since they changed. They expire in the bridge's queue: after an
        outage the newest go again (the region answering again makes them all due)."""
        with self._views_lock:
            due = [self._views[code] for code in sorted(self._views_due)]
            self._views_due.clear()
        expiry = self.bus.expiring(VIEW_EXPIRY_S)
        for view in due:
            self.bus.publish(self.bus.topics.queue_view(), view, properties=expiry)
            self.views_sent += 1

    # -- inputs (on the bus's network thread: hand over, never block) -----------------------
    def _on_ack(self, incoming: Incoming) -> None:
        try:
            ack = m.decode(m.EventAck, incoming.payload)
        except BadMessage as exc:
            log.warning("bad acknowledgement ignored", extra={"error": str(exc)})
            return
        if ack.site == self.site.site.id:
            self._acks.append(ack)
            self._wake.set()

    def _on_connection(self, connected: bool) -> None:
        if connected:
            self._rewind = True
            self._catalog_due = True
            self._all_views_due()
            self._wake.set()

    # -- the thread ------------------------------------------------------------------------
    def _run(self) -> None:
        conn = connect(self.database, readonly=True)
        try:
            while not self._stopping.is_set():
                self._wake.wait(POLL_S)
                self._wake.clear()
                try:
                    self._step(conn)
                except Exception:  # the outbox must never die: it retries at the next round
                    log.exception("outbox round failed; trying again")
                    time.sleep(1.0)
        finally:
            conn.close()

    def _step(self, conn: sqlite3.Connection) -> None:
        now = time.monotonic()
        while self._acks:
            self._take_ack(self._acks.popleft(), now)
        if not self.bus.connected:
            return
        if self._catalog_due:
            self._catalog_due = False
            self.bus.publish(self.bus.topics.catalog(), site_catalog(self.site), retain=True)
            self.bus.publish(self.bus.topics.booking_offer(), booking_offer(self.site), retain=True)
        self._send_views()
        self.head = conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
        if self.acked is None:
            if now - self._last_send >= min(FIRST_HEARTBEAT_S, self.link.heartbeat_s):
                self._heartbeat(now)
            return
        if self._inflight and now - self._last_answer >= self._resend_after:
            log.warning(
                "no answer from the region; sending again from its acknowledgement",
                extra={"acked": self.acked, "sent": self.sent, "wait_s": self._resend_after},
            )
            self._resend_after = min(MAX_RESEND_S, self._resend_after * 2)
            self._last_answer = now
            self._rewind = True
        if self._rewind:
            self._rewind = False
            self.sent = self.acked
            self._inflight.clear()
        sent_any = False
        while len(self._inflight) < self.link.window_batches and self.sent < self.head:
            batch = read_batch(
                conn,
                self.site.site.id,
                self.sent,
                head=self.head,
                max_events=self.link.batch_events,
                now=self.clock(),
            )
            if not batch.events:
                break
            self.bus.publish(self.bus.topics.events(), batch)
            self._inflight.append((batch.last, now))
            self.sent = batch.last
            self.batches_sent += 1
            self._last_send = now
            sent_any = True
        if not sent_any and now - self._last_send >= self.link.heartbeat_s:
            self._heartbeat(now)

    def _heartbeat(self, now: float) -> None:
        """An empty batch: tells the region the hub is there and how far it is; it answers."""
        after = self.sent if self.acked is not None else self.head
        batch = m.EventBatch(
            site=self.site.site.id,
            after=after,
            last=after,
            head=max(self.head, after),
            sent_at=self.clock(),
        )
        # Queued in the bridge while the WAN is down, a heartbeat would only pile up: it expires.
        expiry = max(1, round(2 * self.link.heartbeat_s))
        self.bus.publish(self.bus.topics.events(), batch, properties=self.bus.expiring(expiry))
        self._last_send = now

    def _take_ack(self, ack: m.EventAck, now: float) -> None:
        if now - self._last_answer > 2 * self.link.heartbeat_s + LOST_AFTER_S:
            self._all_views_due()  # the region was out of reach: it may lack the newest views
        self._last_answer = now
        self._resend_after = self.link.resend_after_s
        if self.acked is None:
            log.info("region answered", extra={"acked": ack.acked, "head": self.head})
            self.acked, self._rewind = ack.acked, True
            return
        if ack.acked < self.acked:
            log.warning(
                "the region holds less than it acknowledged before; sending again from there",
                extra={"acked": ack.acked, "before": self.acked},
            )
            self.acked, self._rewind = ack.acked, True
            return
        self.acked = ack.acked
        self.sent = max(self.sent, ack.acked)
        while self._inflight and self._inflight[0][0] <= ack.acked:
            self._inflight.popleft()
        if self._inflight and now - self._inflight[0][1] >= LOST_AFTER_S:
            log.info(
                "a batch was lost on the way; sending again from the acknowledgement",
                extra={"acked": ack.acked, "sent": self.sent},
            )
            self._rewind = True

    @property
    def behind(self) -> int:
        """Events committed but not yet acknowledged by the region (as far as known)."""
        return max(0, self.head - (self.acked or 0))
