"""The regional web's live feed for open ticket pages: one listener for the whole process.

The region service NOTIFYs `mpp_view` with 'site/service' whenever a site's queue view
arrives. One thread here LISTENs, loads that view once into a cache, and wakes the pages of
that service; it also reads every site's link every few seconds and wakes a site's pages when
its link goes down or comes back (their pages then say since when the figures are old). A
page's stream waits on its (site, service) key: thousands of open pages cost one query per
change, not one each.

    feed = ViewFeed(dsn).start()
    view, seen = feed.view("bjb", "ktp")
    feed.wait("bjb", "ktp", generation, timeout=15)
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

import psycopg
from psycopg_pool import ConnectionPool

from protocol import messages as m
from region import public
from region.db import RegionDbError, connect
from region.downlink import VIEW_CHANNEL

log = logging.getLogger("mpp.region.web")

LINKS_EVERY_S = 2.0


class ViewFeed:
    """Cached queue views and wake-ups for the streams of open ticket pages."""

    def __init__(
        self,
        dsn: str,
        *,
        link_timeout_s: float = 35.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.dsn = dsn
        self.link_timeout_s = link_timeout_s
        self.clock = clock
        self._views: dict[tuple[str, str], tuple[m.QueueView, dict[int, int]]] = {}
        self._generation: dict[tuple[str, str], int] = {}
        self._loading: dict[tuple[str, str], threading.Lock] = {}
        self._changed: dict[tuple[str, str], threading.Event] = {}  # set at the next change
        self._live: dict[str, bool] = {}
        self.last_seen: dict[str, float] = {}  # when the region last heard from each site
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.updates = 0

    def start(self) -> ViewFeed:
        """Start listening (a daemon thread; a greenlet under gevent); again: nothing."""
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="region-view-feed", daemon=True
                )
                self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        self._stopping.set()
        with self._cond:
            self._bump(list(self._changed))
        if self._thread is not None:
            self._thread.join(5)

    # -- for the pages -----------------------------------------------------------------------
    def view(
        self, pool: ConnectionPool, site: str, service: str
    ) -> tuple[m.QueueView | None, dict[int, int]]:
        """The latest view of a service and its {ticket id: place} (read from the database,
        with a connection of `pool`, only the first time)."""
        key = (site, service)
        cached = self._views.get(key)
        if cached is not None:
            return cached
        with self._loading.setdefault(key, threading.Lock()):  # one load; the others wait
            cached = self._views.get(key)
            if cached is not None:
                return cached
            with pool.connection() as conn:
                loaded = public.load_view(conn, site, service)
            if loaded is None:
                return None, {}
            cached = (loaded[0], {t: i for i, t in enumerate(loaded[0].waiting)})
            with self._cond:
                self._views.setdefault(key, cached)
        return cached

    def generation(self, site: str, service: str) -> int:
        """How many times the (site, service) pages were woken so far."""
        return self._generation.get((site, service), 0)

    def wait(self, site: str, service: str, seen: int, timeout: float) -> int:
        """Wait until (site, service) changes after generation `seen`, or `timeout`; returns
        the generation now. Only that key's pages wake (an event per key: thousands of open
        pages of other services sleep on)."""
        key = (site, service)
        with self._cond:
            if self._generation.get(key, 0) != seen or self._stopping.is_set():
                return self._generation.get(key, 0)
            changed = self._changed.setdefault(key, threading.Event())
        changed.wait(timeout)
        return self._generation.get(key, 0)

    # -- the listener ------------------------------------------------------------------------
    def _run(self) -> None:
        conn: psycopg.Connection | None = None
        next_links = 0.0
        while not self._stopping.is_set():
            try:
                if conn is None:
                    conn = connect(self.dsn, autocommit=True)
                    conn.execute(f"LISTEN {VIEW_CHANNEL}")
                    self._forget_all()  # views that came while not listening are reloaded
                # The first notification ends the wait at once; those that came with it too.
                notes = list(conn.notifies(timeout=0.5, stop_after=1))
                if notes:
                    notes += list(conn.notifies(timeout=0.001, stop_after=500))
                keys = {tuple(note.payload.partition("/")[::2]) for note in notes}
                for site, service in sorted(keys):
                    self._load(conn, site, service)
                if time.monotonic() >= next_links:
                    next_links = time.monotonic() + LINKS_EVERY_S
                    self._links(conn)
            except (psycopg.Error, RegionDbError) as exc:
                log.warning("live feed lost the database; reconnecting", extra={"error": str(exc)})
                if conn is not None:
                    with contextlib.suppress(psycopg.Error):
                        conn.close()
                conn = None
                self._stopping.wait(1.0)
        if conn is not None:
            conn.close()

    def _load(self, conn: psycopg.Connection, site: str, service: str) -> None:
        loaded = public.load_view(conn, site, service)
        if loaded is None:
            return
        view = loaded[0]
        index = {t: i for i, t in enumerate(view.waiting)}
        with self._cond:
            self._views[(site, service)] = (view, index)
            self._bump([(site, service)])
        self.updates += 1

    def _links(self, conn: psycopg.Connection) -> None:
        now = self.clock()
        rows = conn.execute("SELECT site, last_seen FROM links").fetchall()
        changed = []
        for site, last_seen in rows:
            if last_seen is not None:
                self.last_seen[site] = last_seen
            live = last_seen is not None and now - last_seen <= self.link_timeout_s
            if self._live.get(site, live) != live:
                changed.append(site)
            self._live[site] = live
        if changed:
            with self._cond:
                self._bump([key for key in self._generation if key[0] in changed])

    def _forget_all(self) -> None:
        with self._cond:
            self._views.clear()
            self._bump(list(self._generation))

    def _bump(self, keys: list[tuple[str, str]]) -> None:
        """Wake the pages of `keys` (caller holds the condition)."""
        for key in keys:
            self._generation[key] = self._generation.get(key, 0) + 1
            changed = self._changed.pop(key, None)
            if changed is not None:
                changed.set()
