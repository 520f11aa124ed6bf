"""Region -> site: the numbered messages of `down_queue` (bookings, cancellations, survey
answers) sent to each site on `down/messages`, until the site's hub acknowledges them on
`up/received`; and what else the sites send for citizens (queue views, booking offers).

Stop-and-wait per site, a batch at a time: after the site's acknowledgement the next batch
goes; without an answer the same batch goes again after `RESEND_S` (the hub applies each id
once). A hub says where it stands whenever it (re)connects, so the region resends from there.

    link = Downlink(dsn, bus).start()       # its own thread and connection
    handle(conn, site, row, payload, now)   # from the ingest thread: acks, views, offers
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable

import psycopg

from protocol import messages as m
from protocol.errors import BadMessage
from protocol.mqtt import Bus
from protocol.topics import Topics
from region import bookings
from region.db import RegionDbError, connect

log = logging.getLogger("mpp.region.downlink")

RESEND_S = 3.0  # no acknowledgement this long: send the batch again
POLL_S = 0.5  # the longest wait between looks at the queue (a NOTIFY wakes it sooner)
VIEW_CHANNEL = "mpp_view"  # NOTIFY 'site/service': a queue view changed (the web listens)
SITE_ROWS = ("down_ack", "queue_view", "booking_offer")
SCHEMA = """
CREATE TABLE IF NOT EXISTS queue_views (
    site text NOT NULL,
    service text NOT NULL,
    seq bigint NOT NULL,
    at double precision NOT NULL,
    received_at double precision NOT NULL,
    view jsonb NOT NULL,
    PRIMARY KEY (site, service)
);
ALTER TABLE sites ADD COLUMN IF NOT EXISTS counter_names jsonb NOT NULL DEFAULT '{}';
"""


class Downlink:
    """Sends each site its pending messages; see the module docstring."""

    def __init__(
        self, dsn: str, bus: Bus, *, clock: Callable[[], float] = time.time, batch: int = 50
    ) -> None:
        self.dsn = dsn
        self.bus = bus
        self.root = bus.topics.root
        self.clock = clock
        self.batch = min(batch, m.MAX_DOWN_MESSAGES)
        self._sent: dict[str, tuple[int, float]] = {}  # site -> (last id sent, monotonic)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.batches_sent = 0

    def start(self) -> Downlink:
        """Start sending on a thread of its own."""
        self._thread = threading.Thread(target=self._run, name="region-downlink", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)

    def wake(self, site: str | None = None) -> None:
        """Look again now (an acknowledgement came; `site` answered: resend from its ack)."""
        if site is not None:
            self._sent.pop(site, None)
        self._wake.set()

    def rewind(self) -> None:
        """After the region's reconnect: every site's pending messages go again."""
        self._sent.clear()
        self._wake.set()

    def _run(self) -> None:
        conn: psycopg.Connection | None = None
        while not self._stopping.is_set():
            try:
                if conn is None:
                    conn = connect(self.dsn, autocommit=True)
                    conn.execute(f"LISTEN {bookings.DOWN_CHANNEL}")
                self._send_due(conn)
                self._wait(conn)
            except (psycopg.Error, RegionDbError) as exc:
                log.warning("cannot read the messages to the sites", extra={"error": str(exc)})
                if conn is not None:
                    with contextlib.suppress(psycopg.Error):
                        conn.close()
                conn = None
                self._stopping.wait(1.0)
            except Exception:  # never die: the next round tries again
                log.exception("downlink round failed")
                self._stopping.wait(1.0)
        if conn is not None:
            conn.close()

    def _wait(self, conn: psycopg.Connection) -> None:
        """Until a NOTIFY, a wake or POLL_S."""
        deadline = time.monotonic() + POLL_S
        while not self._stopping.is_set() and not self._wake.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for _ in conn.notifies(timeout=min(left, 0.1), stop_after=1):
                return
        self._wake.clear()

    def _send_due(self, conn: psycopg.Connection) -> None:
        if not self.bus.connected:
            return
        now = time.monotonic()
        rows = conn.execute(
            "SELECT site, applied, last_id FROM down_links WHERE last_id > applied"
        ).fetchall()
        for site, applied, last_id in rows:
            sent = self._sent.get(site)
            if sent is not None and sent[0] > applied and now - sent[1] < RESEND_S:
                continue  # in flight: wait for the answer
            messages = [
                m.DownMessage(id=i, at=at, body=body)
                for i, at, body in conn.execute(
                    "SELECT id, at, body FROM down_queue WHERE site = %s AND id > %s "
                    "ORDER BY id LIMIT %s",
                    (site, applied, self.batch),
                ).fetchall()
            ]
            if not messages or messages[0].id != applied + 1:
                log.error(
                    "messages to a site are missing; they cannot be sent",
                    extra={"site": site, "applied": applied, "last_id": last_id},
                )
                continue
            batch = m.DownBatch(
                site=site, after=applied, last=messages[-1].id, messages=tuple(messages)
            )
            self.bus.publish(Topics(site, self.root).down_messages(), batch)
            self._sent[site] = (batch.last, now)
            self.batches_sent += 1


def handle(conn: psycopg.Connection, site: str, row: str, payload: bytes, now: float) -> str | None:
    """Store one of the sites' other messages (inside the caller's transaction): an
    acknowledgement of the region's messages, a queue view, a booking offer. Returns the site
    when it acknowledged (the downlink then sends on), else None; raises BadMessage."""
    model = {"down_ack": m.DownAck, "queue_view": m.QueueView, "booking_offer": m.BookingOffer}[row]
    message = m.decode(model, payload)
    if message.site != site:
        raise BadMessage("invalid", f"payload names site {message.site!r} on {site!r}'s topic")
    if isinstance(message, m.DownAck):
        conn.execute("INSERT INTO down_links (site) VALUES (%s) ON CONFLICT DO NOTHING", (site,))
        conn.execute(
            "UPDATE down_links SET applied = LEAST(%s, last_id), answered_at = %s WHERE site = %s",
            (message.applied, now, site),
        )
        # What a citizen wrote stays at the site once it has it (free text may name people).
        conn.execute(
            "UPDATE down_queue SET body = body - 'comment' WHERE site = %s AND id <= %s "
            "AND body ? 'comment'",
            (site, message.applied),
        )
        return site
    if isinstance(message, m.QueueView):
        conn.execute(
            "INSERT INTO queue_views (site, service, seq, at, received_at, view) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (site, service) DO UPDATE SET "
            "seq = excluded.seq, at = excluded.at, received_at = excluded.received_at, "
            "view = excluded.view WHERE queue_views.seq <= excluded.seq",
            (site, message.service, message.seq, message.at, now,
             json.dumps(message.model_dump(mode="json"))),
        )  # fmt: skip
        conn.execute("SELECT pg_notify(%s, %s)", (VIEW_CHANNEL, f"{site}/{message.service}"))
        return None
    bookings.save_offer(conn, message, now)
    return None
