"""The hub's SQLite store: what it migrates when it opens an older database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hub.rules import Queue
from hub.store import Store
from tests.conftest import make_site
from tests.hub.test_rules import at


def test_wall_clock_queue_places_are_renumbered_once_in_the_same_order(tmp_path: Path) -> None:
    """Databases from before issue 23 hold issue times in tickets.queue_key: opening one
    renumbers the places from the queue's own sequence, keeping the order they gave."""
    site = make_site(always_open=True)
    path = tmp_path / "hub.sqlite"
    store, q = Store(path), Queue(site)
    now = at(site, "2026-11-23 10:00")
    q.open_counter(3, "Siti", now)
    tokens = iter(range(100))
    for offset, code in ((0, "ktp"), (10, "kk"), (20, "ktp"), (30, "kk")):
        q.issue(code, priority=None, device="hub", now=now + offset, token=f"t{next(tokens)}")
    q.call_next(3, now + 40)  # A001, first called at +40
    with store.transaction():
        store.persist(q, q.take_changes())
    store.close()
    old = sqlite3.connect(path)  # as the hub wrote it before: places are wall-clock times
    with old:
        old.execute("UPDATE tickets SET queue_key = issued_at")
        # B002 was put ahead of B001 (a transfer to the front, say)
        old.execute("UPDATE tickets SET queue_key = ? WHERE label = 'B002'", (now + 5,))
        old.execute("DELETE FROM meta WHERE key = 'queue_keys'")
    old.close()

    store, again = Store(path), Queue(site)
    store.load(again)
    keys = {t.label: t.queue_key for t in again.tickets.values()}
    # A001 was called at +40: a transfer would put it after the three issued before that.
    assert keys == {"A001": 4.5, "B002": 2.0, "B001": 3.0, "A002": 4.0}
    assert [t.label for t in again.waiting()] == ["B002", "B001", "A002"]
    later = again.issue("kk", priority=None, device="hub", now=now - 3600, token="late")
    assert [t.label for t in again.waiting("kk")] == ["B002", "B001", later.label]
    with store.transaction():
        store.persist(again, again.take_changes())
    store.close()

    store, third = Store(path), Queue(site)  # once only: the new places stay as they are
    store.load(third)
    assert {t.label: t.queue_key for t in third.tickets.values()} == {**keys, "B003": 5.0}
    store.close()
