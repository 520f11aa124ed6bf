"""The hub's durable state in SQLite: tickets, counters, applied requests, events, ratings.

One command = one `BEGIN IMMEDIATE` transaction, committed (WAL, synchronous=FULL) before any
reply or publish. `UNIQUE(issued_service, day, number)` makes a duplicate number impossible
even by mistake; `requests` makes every (device, request_id) apply once, across restarts.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

from hub.backup import DailyBackup, copies
from hub.rules import WAITING, Changes, CounterNow, Queue, Sound, Ticket
from protocol.errors import MppError
from protocol.messages import CONDITION_ALERTS

log = logging.getLogger("mpp.hub")
# The upkeep thread looks every UPKEEP_POLL_S; it checkpoints after CHECKPOINT_COMMITS commits,
# CHECKPOINT_EVERY_S or once the WAL outgrew WAL_LIMIT_BYTES, whichever comes first (under
# sustained load the hub writes ~30 MB of WAL a second here), and restarts such a WAL (see
# `_checkpoint`).
BUSY_TIMEOUT_MS = 10_000  # how long a connection waits for another's lock
RESTART_RETRY_S = 0.1  # after the worker's own RESTART checkpoint found the WAL busy
UPKEEP_POLL_S = 0.1
BACKUP_AFTER_START_S = 60.0  # the daily copy waits out the start (devices reconnecting)
CHECKPOINT_EVERY_S = 1.0
CHECKPOINT_COMMITS = 200

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tickets (
    id INTEGER PRIMARY KEY,
    day TEXT NOT NULL,
    issued_service TEXT NOT NULL,
    number INTEGER NOT NULL,
    label TEXT NOT NULL,
    service TEXT NOT NULL,
    priority TEXT,
    status TEXT NOT NULL,
    queue_key REAL NOT NULL,
    issued_at REAL NOT NULL,
    token TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    lang TEXT NOT NULL DEFAULT 'id',
    counter INTEGER,
    called_at REAL,
    started_at REAL,
    first_called_at REAL,
    finished_at REAL,
    call_count INTEGER NOT NULL DEFAULT 0,
    transfers INTEGER NOT NULL DEFAULT 0,
    printed INTEGER NOT NULL DEFAULT 0,
    officer TEXT,
    booking TEXT,
    UNIQUE (issued_service, day, number)
);
CREATE INDEX IF NOT EXISTS tickets_day ON tickets (day, status);
CREATE TABLE IF NOT EXISTS counters (
    number INTEGER PRIMARY KEY,
    open INTEGER NOT NULL,
    officer TEXT,
    call_seq INTEGER NOT NULL,
    current INTEGER,
    priority_streak INTEGER NOT NULL,
    served_today INTEGER NOT NULL,
    last_finished INTEGER,
    last_finished_at REAL,
    break_reason TEXT,
    break_since REAL,
    break_until REAL,
    idle_since REAL
);
CREATE TABLE IF NOT EXISTS requests (
    device TEXT NOT NULL,
    request_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    reply TEXT NOT NULL,
    PRIMARY KEY (device, request_id)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    ticket INTEGER,
    counter INTEGER,
    service TEXT,
    officer TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS events_at ON events (at);
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY,
    ticket INTEGER NOT NULL UNIQUE,
    label TEXT NOT NULL,
    counter INTEGER NOT NULL,
    officer TEXT,
    score INTEGER NOT NULL CHECK (score BETWEEN 1 AND 4),
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    raised_at REAL NOT NULL,
    payload TEXT NOT NULL,
    acked_by TEXT,
    acked_at REAL,
    cleared_at REAL
);
CREATE TABLE IF NOT EXISTS service_stats (
    service TEXT PRIMARY KEY,
    avg_service_s REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS closed_services (service TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS counter_services (counter INTEGER PRIMARY KEY, services TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS service_limits (
    service TEXT PRIMARY KEY, daily_quota INTEGER NOT NULL, cutoff TEXT
);
CREATE TABLE IF NOT EXISTS zone_sound (
    zone TEXT PRIMARY KEY,
    speech INTEGER NOT NULL,
    volume REAL NOT NULL,
    number_reading TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS survey_responses (
    id INTEGER PRIMARY KEY,
    ticket INTEGER NOT NULL UNIQUE REFERENCES tickets (id),
    day TEXT NOT NULL,
    label TEXT NOT NULL,
    service TEXT NOT NULL,
    agency TEXT NOT NULL,
    counter INTEGER,
    officer TEXT,
    at REAL NOT NULL,
    u1 INTEGER NOT NULL CHECK (u1 BETWEEN 1 AND 4),
    u2 INTEGER NOT NULL CHECK (u2 BETWEEN 1 AND 4),
    u3 INTEGER NOT NULL CHECK (u3 BETWEEN 1 AND 4),
    u4 INTEGER NOT NULL CHECK (u4 BETWEEN 1 AND 4),
    u5 INTEGER NOT NULL CHECK (u5 BETWEEN 1 AND 4),
    u6 INTEGER NOT NULL CHECK (u6 BETWEEN 1 AND 4),
    u7 INTEGER NOT NULL CHECK (u7 BETWEEN 1 AND 4),
    u8 INTEGER NOT NULL CHECK (u8 BETWEEN 1 AND 4),
    u9 INTEGER NOT NULL CHECK (u9 BETWEEN 1 AND 4),
    comment TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS survey_day ON survey_responses (day);
"""

TICKET_COLUMNS = [f.name for f in fields(Ticket) if f.metadata.get("stored", True)]
QUEUE_KEYS = "sequence"  # meta 'queue_keys': what tickets.queue_key holds
COUNTER_COLUMNS = [f.name for f in fields(CounterNow)]
# Beside the database, this file allows a missing or empty database to be created, once (the
# hub's provisioning writes it; `mpp hub --first-start` does the same).
FIRST_START_SUFFIX = ".first-start"
WAL_LIMIT_BYTES = 16 * 1024 * 1024


def _row(obj: object, columns: list[str]) -> tuple[Any, ...]:
    return tuple(getattr(obj, c) for c in columns)


class StoreError(MppError, RuntimeError):
    """The hub database cannot be opened or written; `code` is the reply's error code."""

    code = "storage_error"


class StorageFull(StoreError):
    """The disk holding the hub database is full: the transaction was not stored."""

    code = "storage_full"


class DatabaseMissing(StoreError):
    """The hub database is missing or empty, and no first start was asked for."""


class DatabaseDamaged(StoreError):
    """The hub database fails SQLite's checks: it is never written."""


# SQLite's primary result codes (sqlite3.h) that say the storage failed, not our statement.
_FULL = (sqlite3.SQLITE_FULL,)
_DAMAGED = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
_STORAGE = (
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_BUSY,
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_NOMEM,
    sqlite3.SQLITE_PROTOCOL,
)


def storage_fault(exc: BaseException, path: Path) -> StoreError | None:
    """The StoreError an SQLite error means (None: not the storage's fault, e.g. a
    constraint our code broke)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(exc, sqlite3.Error) or code is None:
        return None
    primary = code & 0xFF
    if primary in _FULL:
        return StorageFull(
            f"the disk holding the hub database {path} is full ({exc}); nothing was stored. "
            f"Free space there (`df -h {path.parent}`): the hub resumes by itself"
        )
    if primary in _DAMAGED:
        return DatabaseDamaged(damaged_text(path, str(exc)))
    if primary in _STORAGE:
        return StoreError(f"the hub database {path} cannot be written ({exc}); nothing was stored")
    return None


def backup_dir_for(path: Path, configured: str | Path | None = None) -> Path:
    """Where the daily backups of the database at `path` go (default: `backups` beside it)."""
    return Path(configured) if configured else path.parent / "backups"


def damaged_text(path: Path, detail: str, backups: Path | None = None) -> str:
    """What a technician reads when the database is damaged: what and how to restore."""
    backups = backups or backup_dir_for(path)
    found = copies(path, backups)
    newest = f"the newest is {found[-1]}" if found else f"none found in {backups}"
    return (
        f"the hub database {path} is damaged ({detail}); the hub will not write to it. "
        f"Restore the latest daily backup ({newest}): stop the hub, move {path.name} and its "
        f"-wal and -shm files aside (keep them), copy the backup to {path}, start the hub. "
        "See docs/reliability.md, 'Restoring the hub database'"
    )


def check_database(path: Path, first_start: bool, backups: Path | None = None) -> bool:
    """Refuse a database that must not be written (DatabaseMissing, DatabaseDamaged);
    True when a new one is to be made (a first start, asked for)."""
    marker = path.with_name(path.name + FIRST_START_SUFFIX)
    first_start = first_start or marker.exists()
    how = (
        "If this is the site's first start, run `mpp hub --first-start` once (see "
        "docs/provisioning.md); otherwise restore the latest backup (docs/reliability.md)"
    )
    if not path.parent.is_dir():
        if first_start:
            return True
        raise DatabaseMissing(
            f"the hub database's directory {path.parent} does not exist. Is the disk that "
            f"holds it mounted (`findmnt --target {path.parent}`)? Is hub.database right? {how}"
        )
    if not path.exists() or path.stat().st_size == 0:
        if first_start:
            return True
        state = "missing" if not path.exists() else "empty (0 bytes)"
        raise DatabaseMissing(
            f"the hub database {path} is {state}: the hub will not start a new queue on its "
            f"own (numbering would start again at 001). Is the disk that holds it mounted "
            f"(`findmnt --target {path.parent}`)? Is hub.database right? {how}"
        )
    try:
        # Read-only: a damaged database is never written, not even by this check.
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
            ours = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tickets'"
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        fault = storage_fault(exc, path)
        if fault is not None and not isinstance(fault, DatabaseDamaged):
            raise type(fault)(f"cannot check the hub database {path}: {exc}") from None
        raise DatabaseDamaged(damaged_text(path, f"SQLite: {exc}", backups)) from None
    if problems != ["ok"]:
        detail = "quick_check: " + "; ".join(problems[:3])
        raise DatabaseDamaged(damaged_text(path, detail, backups))
    if ours is None:
        if first_start:
            return True
        raise DatabaseMissing(f"{path} holds no hub tables: is hub.database right? {how}")
    return False


def connect(path: str | Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the pragmas the hub relies on (WAL, FULL sync, busy timeout)."""
    try:
        if readonly:
            conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, timeout=10, check_same_thread=False
            )
        else:
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open hub database {path}: {exc}") from None
    conn.row_factory = sqlite3.Row
    return conn


class Store:
    """Reads and writes the queue's state; used from the hub's one worker thread.

    Opening checks the database first (`check_database`): a missing or empty one is made only
    on a first start, a damaged one is refused. A thread of its own checkpoints the WAL and
    keeps a daily backup (hub.backup).
    """

    def __init__(
        self, path: str | Path, *, first_start: bool = False, backups: str | Path | None = None
    ) -> None:
        self.path = Path(path)
        self.backups = backup_dir_for(self.path, backups)
        created = check_database(self.path, first_start, self.backups)
        if created:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = connect(self.path)
        try:
            self.conn.executescript(SCHEMA)
            self._add_missing_columns()
            # No checkpoint inside a command's COMMIT (SQLite's default, every 1000 pages, puts
            # a write + fsync of the database file in front of one unlucky reply): a thread of
            # its own copies the WAL into the database file, off the command path (WAL mode
            # lets the worker keep committing meanwhile).
            self.conn.execute("PRAGMA wal_autocheckpoint=0")
            # Once a checkpoint has caught up, the next commit cuts the WAL file back to this.
            self.conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        except sqlite3.Error as exc:
            self.conn.close()
            raise storage_fault(exc, self.path) or StoreError(
                f"cannot prepare the hub database {self.path}: {exc}"
            ) from None
        self.commits_since_checkpoint = 0
        self.wal_peak_bytes = 0
        self._restart_due = False  # set by the upkeep thread, done by the worker
        self._restart_again_at = 0.0
        try:
            self._migrate_queue_keys()
            self._add_columns()
        except (StoreError, sqlite3.Error) as exc:  # quick_check passed, yet it cannot be read
            self.conn.close()
            if isinstance(exc, StoreError):
                raise
            raise storage_fault(exc, self.path) or DatabaseDamaged(
                damaged_text(self.path, f"SQLite: {exc}", self.backups)
            ) from None
        if created:
            log.warning("new hub database created (first start)", extra={"database": str(path)})
        self.path.with_name(self.path.name + FIRST_START_SUFFIX).unlink(missing_ok=True)
        self.backup = DailyBackup(self.path, self.backups)
        self._backup_thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._upkeep_loop, name="hub-checkpoint", daemon=True
        )
        self._checkpointer.start()

    def close(self) -> None:
        """Stop checkpointing and close the connection."""
        self._closing.set()
        self._checkpointer.join(5)
        self.conn.close()

    def free_bytes(self) -> int:
        """Free space on the database's disk for this process (0 when it cannot be read)."""
        try:
            stat = os.statvfs(self.path.parent)
        except OSError:
            return 0
        return stat.f_bavail * stat.f_frsize

    def wal_bytes(self) -> int:
        """The WAL file's size now (0 when there is none)."""
        try:
            return self.path.with_name(self.path.name + "-wal").stat().st_size
        except OSError:
            return 0

    def _upkeep_loop(self) -> None:
        conn = connect(self.path)
        # The RESTART checkpoint below holds writers off while it waits for readers to leave
        # the old WAL: never long (a reply waits at most about this).
        conn.execute("PRAGMA busy_timeout=20")
        started = last = time.monotonic()
        try:
            while not self._closing.wait(UPKEEP_POLL_S):
                commits = self.commits_since_checkpoint
                if commits and (
                    commits >= CHECKPOINT_COMMITS
                    or time.monotonic() - last >= CHECKPOINT_EVERY_S
                    or self.wal_bytes() > WAL_LIMIT_BYTES
                ):
                    self.commits_since_checkpoint = 0
                    last = time.monotonic()
                    self._checkpoint(conn)
                if time.monotonic() - started >= BACKUP_AFTER_START_S:
                    self._start_backup()
        finally:
            conn.close()

    def _start_backup(self) -> None:
        """Today's copy, when due, in a thread of its own: its integrity check takes seconds
        on a big database (6.9 s for 169 MB measured) and checkpoints must go on meanwhile."""
        if self._backup_thread is not None and self._backup_thread.is_alive():
            return
        if self.backup.due() is None:
            return
        self._backup_thread = threading.Thread(
            target=self.backup.run, name="hub-backup", daemon=True
        )
        self._backup_thread.start()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        """Copy the WAL into the database file (PASSIVE: the worker goes on committing). Under
        sustained load the worker commits during every checkpoint, so the WAL is never wholly
        copied and never starts again from its beginning: once the file outgrew
        WAL_LIMIT_BYTES, a RESTART checkpoint takes the write lock for a moment (a few ms
        measured), and the next commit cuts the file back (journal_size_limit). When the worker
        never leaves it the lock, the worker restarts the WAL itself before its next
        transaction (`transaction`)."""
        wal = self.wal_bytes()
        self.wal_peak_bytes = max(self.wal_peak_bytes, wal)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            if wal > WAL_LIMIT_BYTES:
                busy = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0]
                self._restart_due = bool(busy)
        except sqlite3.Error as exc:  # e.g. a full disk: the next round retries
            log.error("WAL checkpoint failed", extra={"error": str(exc)})

    def _restart_wal(self) -> None:
        """RESTART checkpoint on the worker's own connection, between two transactions, when
        the upkeep thread could not get the write lock or has fallen behind (the WAL is past
        twice WAL_LIMIT_BYTES); waits at most 20 ms for readers."""
        self._restart_due = False
        try:
            self.conn.execute("PRAGMA busy_timeout=20")
            if self.conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0]:
                # Busy (the upkeep thread is copying, or a reader is slow): not before every
                # command, but again a little later.
                self._restart_again_at = time.monotonic() + RESTART_RETRY_S
        except sqlite3.Error as exc:
            log.error("WAL checkpoint failed", extra={"error": str(exc)})
        finally:
            self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    def _add_missing_columns(self) -> None:
        """Columns added since a database was made (CREATE TABLE IF NOT EXISTS leaves an
        existing table as it was)."""
        have = {row[1] for row in self.conn.execute("PRAGMA table_info(tickets)")}
        if "booking" not in have:
            self.conn.execute("ALTER TABLE tickets ADD COLUMN booking TEXT")

    def _migrate_queue_keys(self) -> None:
        """Databases written before queue places came from the queue's own sequence hold wall
        clock times in tickets.queue_key (a clock stepped back put later tickets first).
        Renumber them once, in the same order: waiting ones by their place, called ones just
        after the places given before their first call (where a transfer puts them back)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'queue_keys'").fetchone()
        if row is not None and row[0] == QUEUE_KEYS:
            return
        with self.transaction():
            rows = self.conn.execute(
                "SELECT id, queue_key, status, first_called_at FROM tickets ORDER BY queue_key, id"
            ).fetchall()
            old = [r["queue_key"] for r in rows]
            keys = [
                (rank + 1.0 if r["status"] == WAITING or r["first_called_at"] is None
                 else bisect.bisect_right(old, r["first_called_at"]) + 0.5, r["id"])
                for rank, r in enumerate(rows)
            ]  # fmt: skip
            self.conn.executemany("UPDATE tickets SET queue_key = ? WHERE id = ?", keys)
            self.conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('queue_keys', ?)", (QUEUE_KEYS,)
            )
        if rows:
            log.warning(
                "queue places renumbered from wall-clock times", extra={"tickets": len(rows)}
            )

    def _add_columns(self) -> None:
        """Columns added since a database was created (breaks and idle times of counters, when
        an alert was cleared). One-off alerts acknowledged before alerts had `cleared_at`
        ended with their acknowledgement."""
        added = {
            "counters": {
                "break_reason": "TEXT",
                "break_since": "REAL",
                "break_until": "REAL",
                "idle_since": "REAL",
            },
            "alerts": {"cleared_at": "REAL"},
        }
        with self.transaction():
            for table, columns in added.items():
                have = {row[1] for row in self.conn.execute(f"PRAGMA table_info({table})")}
                for name, kind in columns.items():
                    if name not in have:
                        self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
                        if (table, name) == ("alerts", "cleared_at"):
                            self.conn.execute(
                                "UPDATE alerts SET cleared_at = acked_at WHERE acked_by IS NOT NULL"
                            )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error.

        Raises StoreError (StorageFull...) when the storage failed: then nothing of the
        transaction is in the database (SQLite has rolled it back, or this did).
        """
        if (self._restart_due or self.wal_bytes() > 2 * WAL_LIMIT_BYTES) and (
            time.monotonic() >= self._restart_again_at
        ):
            self._restart_wal()  # the upkeep thread could not (or is starved: a stat is cheap)
        try:
            if self.conn.in_transaction:  # a ROLLBACK that failed before
                self.conn.execute("ROLLBACK")
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise storage_fault(exc, self.path) or exc from None
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as exc:
            # A failed COMMIT (a full disk...) may have been rolled back by SQLite already.
            if self.conn.in_transaction:
                try:
                    self.conn.execute("ROLLBACK")
                except sqlite3.Error as again:
                    log.error("ROLLBACK failed", extra={"error": str(again)})
            fault = storage_fault(exc, self.path)
            if fault is not None:
                raise fault from exc
            raise
        self.commits_since_checkpoint += 1

    # -- requests (idempotency) ----------------------------------------------------------
    def reply_for(self, device: str, request_id: str) -> str | None:
        """The stored reply of an already-applied request, if any."""
        row = self.conn.execute(
            "SELECT reply FROM requests WHERE device = ? AND request_id = ?", (device, request_id)
        ).fetchone()
        return row[0] if row else None

    def save_reply(self, device: str, request_id: str, kind: str, at: float, reply: str) -> None:
        """Remember the reply given to a request (inside the command's transaction)."""
        self.conn.execute(
            "INSERT INTO requests (device, request_id, kind, at, reply) VALUES (?, ?, ?, ?, ?)",
            (device, request_id, kind, at, reply),
        )

    def prune_requests(self, before: float) -> None:
        """Forget request ids older than `before` (a retry never comes days later)."""
        self.conn.execute("DELETE FROM requests WHERE at < ?", (before,))

    def last_committed_at(self) -> float:
        """The latest moment the database records (an event or an answered request): a wall
        clock reading earlier than this is certainly wrong."""
        row = self.conn.execute(
            "SELECT MAX(at) FROM (SELECT MAX(at) AS at FROM events "
            "UNION ALL SELECT MAX(at) FROM requests)"
        ).fetchone()
        return float(row[0] or 0.0)

    # -- sequence ------------------------------------------------------------------------
    def seq(self) -> int:
        """The hub's event sequence (never decreases)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
        return int(row[0]) if row else 0

    def set_seq(self, seq: int) -> None:
        """Store the sequence reached (inside the current transaction)."""
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('seq', ?)", (str(seq),))

    # -- queue state -----------------------------------------------------------------------
    def persist(self, queue: Queue, changes: Changes) -> None:
        """Write what a command changed (inside its transaction)."""
        if changes.tickets:
            columns = ", ".join(TICKET_COLUMNS)
            marks = ", ".join("?" for _ in TICKET_COLUMNS)
            updates = ", ".join(f"{c} = excluded.{c}" for c in TICKET_COLUMNS if c != "id")
            sql = (
                f"INSERT INTO tickets ({columns}) VALUES ({marks}) "
                f"ON CONFLICT (id) DO UPDATE SET {updates}"
            )
            rows = [_row(t, TICKET_COLUMNS) for _, t in sorted(changes.tickets.items())]
            self.conn.executemany(sql, rows)
        if changes.counters:
            columns = ", ".join(COUNTER_COLUMNS)
            marks = ", ".join("?" for _ in COUNTER_COLUMNS)
            self.conn.executemany(
                f"INSERT OR REPLACE INTO counters ({columns}) VALUES ({marks})",
                [_row(queue.counters[n], COUNTER_COLUMNS) for n in sorted(changes.counters)],
            )
        if changes.events:
            self.conn.executemany(
                "INSERT INTO events (at, kind, ticket, counter, service, officer, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (e.at, e.kind, e.ticket, e.counter, e.service, e.officer, e.detail)
                    for e in changes.events
                ],
            )
        for rating in changes.ratings:
            self.conn.execute(
                "INSERT INTO ratings (ticket, label, counter, officer, score, at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    rating.ticket,
                    rating.label,
                    rating.counter,
                    rating.officer,
                    rating.score,
                    rating.at,
                ),
            )
        for code in changes.stats:
            self.conn.execute(
                "INSERT OR REPLACE INTO service_stats (service, avg_service_s) VALUES (?, ?)",
                (code, queue.avg_service_s[code]),
            )
        if changes.day:
            self.conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('day', ?)", (queue.day,)
            )
        if changes.closed_services:
            self.conn.execute("DELETE FROM closed_services")
            self.conn.executemany(
                "INSERT INTO closed_services (service) VALUES (?)",
                [(code,) for code in sorted(queue.closed_services)],
            )
        if changes.settings:
            self.conn.execute("DELETE FROM counter_services")
            self.conn.executemany(
                "INSERT INTO counter_services (counter, services) VALUES (?, ?)",
                [(n, ",".join(codes)) for n, codes in sorted(queue.assigned.items())],
            )
            self.conn.execute("DELETE FROM service_limits")
            self.conn.executemany(
                "INSERT INTO service_limits (service, daily_quota, cutoff) VALUES (?, ?, ?)",
                [(code, *value) for code, value in sorted(queue.limits.items())],
            )
            self.conn.execute("DELETE FROM zone_sound")
            self.conn.executemany(
                "INSERT INTO zone_sound (zone, speech, volume, number_reading) VALUES (?, ?, ?, ?)",
                [
                    (zone, int(v.speech), v.volume, v.number_reading)
                    for zone, v in sorted(queue.sound.items())
                ],
            )

    def load(self, queue: Queue) -> None:
        """Restore the queue after a (re)start: exactly what the database holds.

        The queue comes back on the day it was saved; the caller then rolls it to today.
        """
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'day'").fetchone()
        day = row[0] if row else ""
        rows = self.conn.execute("SELECT * FROM tickets WHERE day = ?", (day,)).fetchall()
        tickets = [Ticket(**{k: row[k] for k in TICKET_COLUMNS}) for row in rows]
        for ticket in tickets:
            ticket.printed = bool(ticket.printed)
        next_id = 1 + (self.conn.execute("SELECT MAX(id) FROM tickets").fetchone()[0] or 0)
        queue.load(day, tickets, next_id)
        for row in self.conn.execute("SELECT * FROM counters"):
            if row["number"] in queue.counters:
                values = {k: row[k] for k in COUNTER_COLUMNS}
                values["open"] = bool(values["open"])
                queue.counters[row["number"]] = CounterNow(**values)
        for row in self.conn.execute("SELECT service, avg_service_s FROM service_stats"):
            if row[0] in queue.avg_service_s:
                queue.avg_service_s[row[0]] = row[1]
        queue.closed_services = {
            row[0] for row in self.conn.execute("SELECT service FROM closed_services")
        } & set(queue.site.services)
        dropped = queue.restore_settings(
            {
                n: tuple(codes.split(","))
                for n, codes in self.conn.execute("SELECT counter, services FROM counter_services")
            },
            {
                code: (quota, cutoff)
                for code, quota, cutoff in self.conn.execute(
                    "SELECT service, daily_quota, cutoff FROM service_limits"
                )
            },
            {
                zone: Sound(bool(speech), volume, reading)
                for zone, speech, volume, reading in self.conn.execute(
                    "SELECT zone, speech, volume, number_reading FROM zone_sound"
                )
            },
        )
        for what in dropped:
            log.warning(
                "a staff change no longer fits the inventory and is left out; set it again "
                "in the admin page if still wanted",
                extra={"change": what},
            )
        queue.rated = {
            r[0]
            for r in self.conn.execute(
                "SELECT ticket FROM ratings WHERE ticket IN (SELECT id FROM tickets WHERE day = ?)",
                (day,),
            )
        }
        queue.complaint_streak = self._complaint_streaks()
        queue.recent_calls = self._recent_calls(queue)
        queue.active_pauses = self._active_pauses(queue)

    def _active_pauses(self, queue: Queue) -> set[str]:
        """The pauses whose start was recorded on the queue's day and their end not yet (the
        hub's first look at the clock records the end of one that ended while it was down)."""
        if not queue.day:
            return set()
        since = datetime.fromisoformat(queue.day).replace(tzinfo=queue.site.site.tz).timestamp()
        active: set[str] = set()
        rows = self.conn.execute(
            "SELECT kind, detail FROM events WHERE at >= ? "
            "AND kind IN ('pause_started', 'pause_ended') ORDER BY id",
            (since,),
        )
        for kind, detail in rows:
            (active.add if kind == "pause_started" else active.discard)(detail)
        return active

    def _complaint_streaks(self) -> dict[str, int]:
        streaks: dict[str, int] = {}
        for row in self.conn.execute("SELECT officer, counter, score FROM ratings ORDER BY id"):
            key = row["officer"] or f"counter-{row['counter']}"
            streaks[key] = streaks.get(key, 0) + 1 if row["score"] == 1 else 0
        return streaks

    def _recent_calls(self, queue: Queue) -> list[tuple[int, int, int, float]]:
        calls: list[tuple[int, int, int, float]] = []
        seen: set[int] = set()
        rows = self.conn.execute(
            "SELECT ticket, counter, at, detail FROM events WHERE kind IN ('called', 'recalled', "
            "'called_back') AND ticket IN (SELECT id FROM tickets WHERE day = ?) "
            "ORDER BY id DESC LIMIT 50",
            (queue.day,),
        )
        for row in rows:
            if row["ticket"] in seen or row["counter"] not in queue.counters:
                continue
            seen.add(row["ticket"])
            calls.append((row["ticket"], row["counter"], int(row["detail"] or 0), row["at"]))
        return calls[:10]

    # -- satisfaction survey ---------------------------------------------------------------
    def ticket_by_token(self, token: str) -> sqlite3.Row | None:
        """Any day's ticket by its unguessable token (the citizen's ticket page and survey)."""
        return self.conn.execute("SELECT * FROM tickets WHERE token = ?", (token,)).fetchone()

    def survey_answered(self, ticket_id: int) -> bool:
        """Whether the ticket's survey has a response already."""
        row = self.conn.execute(
            "SELECT 1 FROM survey_responses WHERE ticket = ?", (ticket_id,)
        ).fetchone()
        return row is not None

    def save_survey(
        self, ticket: sqlite3.Row, agency: str, scores: tuple[int, ...], comment: str, at: float
    ) -> None:
        """Store one survey response (inside the command's transaction)."""
        self.conn.execute(
            "INSERT INTO survey_responses (ticket, day, label, service, agency, counter, officer, "
            "at, u1, u2, u3, u4, u5, u6, u7, u8, u9, comment) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                ticket["id"],
                ticket["day"],
                ticket["label"],
                ticket["service"],
                agency,
                ticket["counter"],
                ticket["officer"],
                at,
                *scores,
                comment,
            ),
        )
        self.add_event(
            "surveyed",
            at,
            ticket=ticket["id"],
            service=ticket["service"],
            detail=",".join(str(score) for score in scores),
        )  # the comment stays at the site (free text may name people)

    # -- alerts ----------------------------------------------------------------------------
    def save_alert(
        self, alert_id: str, kind: str, raised_at: float, payload: dict[str, Any]
    ) -> None:
        """Store a raised alert (inside the command's transaction)."""
        self.conn.execute(
            "INSERT OR IGNORE INTO alerts (id, kind, raised_at, payload) VALUES (?, ?, ?, ?)",
            (alert_id, kind, raised_at, json.dumps(payload)),
        )

    def ack_alert(self, alert_id: str, by: str, at: float) -> dict[str, Any] | None:
        """Record who acknowledged an open alert (inside the command's transaction); it also
        clears a one-off alert (a service-level one ends with its condition). Its payload with
        `acked_by` and `acked_at`, or None if there is no open, unacknowledged alert with that
        id."""
        row = self.conn.execute(
            "SELECT payload FROM alerts WHERE id = ? AND acked_by IS NULL AND cleared_at IS NULL",
            (alert_id,),
        ).fetchone()
        if row is None:
            return None
        payload = {**json.loads(row[0]), "acked_by": by, "acked_at": at}
        ends = payload.get("kind") not in CONDITION_ALERTS
        self.conn.execute(
            "UPDATE alerts SET acked_by = ?, acked_at = ?, cleared_at = ?, payload = ? "
            "WHERE id = ?",
            (by, at, at if ends else None, json.dumps(payload), alert_id),
        )
        self.add_event("alert_acked", at, officer=by, detail=alert_id)
        return payload

    def clear_alert(self, alert_id: str, at: float) -> None:
        """An alert's condition ended (inside the current transaction)."""
        self.conn.execute(
            "UPDATE alerts SET cleared_at = ? WHERE id = ? AND cleared_at IS NULL", (at, alert_id)
        )
        self.add_event("alert_cleared", at, detail=alert_id)

    def add_event(self, kind: str, at: float, **columns: object) -> None:
        """One row of the event log (inside the current transaction); columns: ticket,
        counter, service, officer, detail."""
        names = ["at", "kind", *columns]
        self.conn.execute(
            f"INSERT INTO events ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
            (at, kind, *columns.values()),
        )

    def open_alerts(self) -> list[dict[str, Any]]:
        """Alerts not yet cleared, oldest first (payload dicts)."""
        rows = self.conn.execute(
            "SELECT payload FROM alerts WHERE cleared_at IS NULL ORDER BY raised_at"
        ).fetchall()
        return [json.loads(row[0]) for row in rows]
