"""`mpp region run`: the regional service that stores every site's events in PostgreSQL.

It subscribes to every site's `up/events` and `up/catalog` on the regional broker (under the
region's prefix), stores what arrives in groups (one transaction per group, see
region/ingest.py) and, only after COMMIT, answers each site on its `down/ack` with the highest
event id it holds without a gap. On every (re)connect it tells every known site where it
stands, so a hub whose batches were lost while the region was away sends them again at once.
PostgreSQL going away stops nothing but the storing: the group waits and is stored once the
database is back (a hub's window bounds how much waits).

    service = RegionService(config, password="...").start()
    ...
    service.stop()

Several ingest workers (`[ingest] workers`, one process each, `mpp region run` starts them) share
the sites: each stores only the sites whose id hashes to its `Partition`, so one site's
batches are always stored by one worker, in order; worker 0 also serves the downlink.
"""

from __future__ import annotations

import contextlib
import logging
import queue as queues
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from protocol import messages as m
from protocol.errors import BadMessage
from protocol.mqtt import Bus, Incoming
from protocol.topics import Topics, every_site, site_of
from region import bookings, downlink
from region.config import RegionConfig
from region.db import RegionDbError, connect, create_schema, dsn_hint
from region.downlink import Downlink
from region.ingest import Ingestor, Parsed, Received, parse

log = logging.getLogger("mpp.region")

GROUP_MAX = 400  # messages stored in one transaction at most
GROUP_WAIT_S = 0.01  # after the first message, how long a group may wait for more
MAX_WAITING = 20000  # messages held while PostgreSQL is away; older ones are dropped (resent)
RETRY_MIN_S, RETRY_MAX_S = 0.2, 5.0
CLIENT_ID = "region"
PRUNE_EVERY_S = 3600.0


@dataclass(frozen=True)
class Partition:
    """The sites one ingest worker stores: those whose id hashes to `index` of `count`.
    Worker 0 also serves everything that is not a site's events: its acknowledgements of our
    downlink, its queue views and booking offers, the downlink itself, the hourly pruning."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"worker {self.index} of {self.count}: expected 0..{self.count - 1}")

    @property
    def first(self) -> bool:
        """Whether this worker also serves the downlink."""
        return self.index == 0

    def owns(self, site: str) -> bool:
        """Whether this worker stores `site`'s events (a stable hash: the same in every
        process and after every restart)."""
        return self.count == 1 or zlib.crc32(site.encode()) % self.count == self.index


def broker_password(config: RegionConfig) -> str | None:
    """The region account's broker password (its file, if the configuration names one)."""
    path = config.broker.password_file
    return Path(path).read_text(encoding="utf-8").strip() if path else None


class RegionService:
    """Regional broker in, PostgreSQL out; see the module docstring."""

    def __init__(
        self,
        config: RegionConfig,
        *,
        password: str | None = None,
        clock: Callable[[], float] = time.time,
        partition: Partition = Partition(),
    ) -> None:
        self.config = config
        self.clock = clock
        self.partition = partition
        broker = config.broker
        self.root = broker.prefix
        client_id = CLIENT_ID if broker.username is None else broker.username
        if not partition.first:
            client_id = f"{client_id}-ingest-{partition.index}"
        self.bus = Bus(
            config.region.id,
            client_id,
            "region",
            host=broker.host,
            port=broker.port,
            username=broker.username,
            password=password if password is not None else broker_password(config),
            tls_ca=broker.ca_file if broker.tls else None,
            mqtt_version=broker.mqtt_version,
            presence=False,
            root=self.root,
            max_unacked=1000,
        )
        self._inbox: queues.Queue[Received | Parsed | None] = queues.Queue()
        self._hello = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None
        self._ingestor: Ingestor | None = None
        self.downlink = Downlink(config.database.dsn, self.bus, clock=clock)
        self._pruned_at = 0.0
        self.stored_groups = 0
        self.dropped = 0
        self.started = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, wait_connected: float | None = 10.0) -> RegionService:
        """Connect to PostgreSQL (creating the schema) and the broker; start storing."""
        self._open_db()
        self.bus.subscribe(every_site("events", self.root), self._on_message)
        self.bus.subscribe(every_site("catalog", self.root), self._on_message)
        if self.partition.first:
            for row in downlink.SITE_ROWS:
                self.bus.subscribe(every_site(row, self.root), self._on_message)
        self.bus.on_connection_change(self._on_connection)
        self._thread = threading.Thread(target=self._run, name="region-ingest", daemon=True)
        self._thread.start()
        if self.partition.first:
            self.downlink.start()
        self.bus.start(wait=wait_connected)
        self.started.set()
        log.info(
            "region service started",
            extra={
                "region": self.config.region.id,
                "db": dsn_hint(self.config.database.dsn),
                "worker": f"{self.partition.index + 1}/{self.partition.count}",
            },
        )
        return self

    def stop(self) -> None:
        """Store what has arrived, then disconnect."""
        self._stopping.set()
        self.downlink.stop()
        self._inbox.put(None)
        if self._thread is not None:
            self._thread.join(10)
        self.bus.stop()
        if self._conn is not None:
            self._conn.close()

    def _open_db(self) -> None:
        self._conn = connect(self.config.database.dsn)
        create_schema(self._conn)
        self._ingestor = Ingestor(self._conn, root=self.root, clock=self.clock)

    # -- inputs (paho's thread: hand over only) ---------------------------------------------
    def _on_message(self, incoming: Incoming) -> None:
        found = site_of(incoming.topic, self.root)
        site = found[0] if found is not None and found[1] in ("events", "catalog") else None
        if site is not None and not self.partition.owns(site):
            return  # another worker's site
        if self._inbox.qsize() >= MAX_WAITING:
            self.dropped += 1
            return  # the hub sends it again from our acknowledgement
        received = Received(incoming.topic, incoming.payload)
        # Decoded here, while the ingest thread waits for PostgreSQL with the previous group.
        parsed = parse(received, self.root) if site is not None else None
        self._inbox.put(parsed or received)

    def _on_connection(self, connected: bool) -> None:
        if connected:
            self._hello.set()
            if self.partition.first:
                self.downlink.rewind()

    # -- the ingest thread -----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            if self._hello.is_set():
                self._hello.clear()
                self._tell_every_site()
            if self.partition.first and self.clock() - self._pruned_at > PRUNE_EVERY_S:
                self._prune()
            try:
                first = self._inbox.get(timeout=0.5)
            except queues.Empty:
                if self._stopping.is_set():
                    return
                continue
            group = [first]
            deadline = time.monotonic() + GROUP_WAIT_S
            while len(group) < GROUP_MAX:
                try:
                    group.append(self._inbox.get(timeout=max(0.0, deadline - time.monotonic())))
                except queues.Empty:
                    break
            stopping = None in group
            received = [r for r in group if r is not None]
            if received:
                self._store(received)
            if stopping:
                return

    def _prune(self) -> None:
        """Bookings past each site's retention are deleted (hourly)."""
        self._pruned_at = self.clock()
        try:
            if self._conn is None:
                self._open_db()
            assert self._conn is not None
            deleted = bookings.prune(self._conn, self.clock(), self.config.region.timezone)
        except (psycopg.Error, RegionDbError) as exc:
            log.warning("bookings not pruned", extra={"error": str(exc)})
            self._drop_db()
            return
        if deleted:
            log.info("old bookings deleted", extra={"count": deleted})

    def _store_site_messages(self, received: list[Received | Parsed]) -> list[Received | Parsed]:
        """The sites' acknowledgements, queue views and booking offers (one transaction);
        returns the rest, for ingest. Malformed ones are refused and logged."""
        rest, acked, mine = [], [], []
        assert self._conn is not None
        now = self.clock()
        for message in received:
            found = site_of(message.topic, self.root) if isinstance(message, Received) else None
            if found is None or found[1] not in downlink.SITE_ROWS:
                rest.append(message)
            else:
                mine.append((message, found))
        if not mine:
            return rest
        with self._conn.transaction():
            for message, found in mine:
                try:
                    site = downlink.handle(self._conn, found[0], found[1], message.payload, now)
                except BadMessage as exc:
                    log.warning(
                        "malformed message refused; nothing stored",
                        extra={"site": found[0], "topic": message.topic, "error": str(exc)},
                    )
                    continue
                if site is not None:
                    acked.append(site)
        for site in acked:
            self.downlink.wake(site)
        return rest

    def _store(self, received: list[Received | Parsed]) -> None:
        """Store a group, retrying while PostgreSQL is away; then acknowledge."""
        delay = RETRY_MIN_S
        while True:
            try:
                if self._ingestor is None:
                    self._open_db()
                assert self._ingestor is not None
                received = self._store_site_messages(received)
                acks = self._ingestor.ingest(received) if received else {}
                break
            except (psycopg.OperationalError, psycopg.InterfaceError, RegionDbError) as exc:
                log.warning(
                    "PostgreSQL unavailable; the group waits",
                    extra={"messages": len(received), "error": str(exc).strip()[:200]},
                )
                self._drop_db()
                if self._stopping.is_set():
                    return
                time.sleep(delay)
                delay = min(RETRY_MAX_S, delay * 2)
            except psycopg.Error:
                if len(received) == 1:
                    log.exception("message could not be stored; refused", extra={})
                    return
                log.exception("group failed; storing its messages one by one")
                for one in received:
                    self._store([one])
                return
        self.stored_groups += 1
        self._acknowledge(acks)

    def _drop_db(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = self._ingestor = None

    def _acknowledge(self, acks: dict[str, int]) -> None:
        now = self.clock()
        for site, acked in sorted(acks.items()):
            ack = m.EventAck(site=site, acked=acked, at=now)
            self.bus.publish(Topics(site, self.root).ack(), ack)

    def _tell_every_site(self) -> None:
        """After a (re)connect: every known site learns where the region stands."""
        try:
            if self._conn is None:
                self._open_db()
            assert self._conn is not None
            rows = self._conn.execute("SELECT site, acked FROM links").fetchall()
        except (psycopg.Error, RegionDbError) as exc:
            log.warning("cannot read the links to greet the sites", extra={"error": str(exc)})
            self._drop_db()
            return
        self._acknowledge({site: acked for site, acked in rows if self.partition.owns(site)})
