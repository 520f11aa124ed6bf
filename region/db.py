"""The region's PostgreSQL schema and connections (psycopg 3).

Events are stored as the sites sent them, once per (site, event id); tickets, counters,
devices, alerts, ratings and survey responses are the state those events lead to, and `daily`
holds per site/day/service the sums every report adds up. `links` is each site's
acknowledgement and whether it is in touch; `ranges` are received batches beyond a gap.

    conn = connect(dsn)
    create_schema(conn)
"""

from __future__ import annotations

import hashlib
import time

import psycopg

from protocol.errors import MppError

SCHEMA_KEY = "schema_sha256"  # web_meta: the DDL this database was last created with
SCHEMA_LOCK = 0x6D7070  # pg_advisory_xact_lock key: one schema change at a time
SCHEMA_ATTEMPTS = 5

SCHEMA = """
CREATE TABLE IF NOT EXISTS sites (
    site text PRIMARY KEY,
    name text NOT NULL,
    timezone text NOT NULL,
    version text NOT NULL,
    agencies jsonb NOT NULL,
    services jsonb NOT NULL,
    counters integer NOT NULL,
    updated_at double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS links (
    site text PRIMARY KEY,
    acked bigint NOT NULL DEFAULT 0,
    head bigint NOT NULL DEFAULT 0,
    last_seen double precision,
    last_event_at double precision,
    hub_time double precision,
    batches bigint NOT NULL DEFAULT 0,
    refused bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS ranges (
    site text NOT NULL,
    after bigint NOT NULL,
    last bigint NOT NULL,
    PRIMARY KEY (site, after, last)
);
CREATE TABLE IF NOT EXISTS events (
    site text NOT NULL,
    id bigint NOT NULL,
    at double precision NOT NULL,
    kind text NOT NULL,
    ticket bigint,
    counter integer,
    service text,
    officer text,
    detail text,
    label text,
    day date,
    issued_service text,
    token_sha256 text,
    PRIMARY KEY (site, id)
);
CREATE TABLE IF NOT EXISTS tickets (
    site text NOT NULL,
    id bigint NOT NULL,
    day date NOT NULL,
    label text NOT NULL,
    issued_service text NOT NULL,
    service text NOT NULL,
    agency text NOT NULL DEFAULT '',
    status text NOT NULL,
    priority text,
    issued_at double precision NOT NULL,
    called_at double precision,
    started_at double precision,
    first_called_at double precision,
    finished_at double precision,
    counter integer,
    officer text,
    call_count integer NOT NULL DEFAULT 0,
    transfers integer NOT NULL DEFAULT 0,
    token_sha256 text,
    PRIMARY KEY (site, id)
);
CREATE INDEX IF NOT EXISTS tickets_day ON tickets (day, site);
CREATE INDEX IF NOT EXISTS tickets_waiting ON tickets (day, site, issued_at)
    WHERE status = 'waiting';
CREATE INDEX IF NOT EXISTS tickets_token ON tickets (token_sha256);
CREATE TABLE IF NOT EXISTS daily (
    site text NOT NULL,
    day date NOT NULL,
    service text NOT NULL,
    agency text NOT NULL DEFAULT '',
    issued integer NOT NULL DEFAULT 0,
    voided integer NOT NULL DEFAULT 0,
    transferred integer NOT NULL DEFAULT 0,
    waits integer NOT NULL DEFAULT 0,
    wait_s double precision NOT NULL DEFAULT 0,
    served integer NOT NULL DEFAULT 0,
    no_shows integer NOT NULL DEFAULT 0,
    within_class integer NOT NULL DEFAULT 0,
    services integer NOT NULL DEFAULT 0,
    service_s double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (site, day, service)
);
CREATE INDEX IF NOT EXISTS daily_day ON daily (day);
CREATE TABLE IF NOT EXISTS counters (
    site text NOT NULL,
    number integer NOT NULL,
    open boolean NOT NULL,
    officer text,
    at double precision NOT NULL,
    PRIMARY KEY (site, number)
);
CREATE INDEX IF NOT EXISTS counters_open ON counters (site) WHERE open;
CREATE TABLE IF NOT EXISTS devices (
    site text NOT NULL,
    device text NOT NULL,
    online boolean NOT NULL,
    detail text,
    at double precision NOT NULL,
    PRIMARY KEY (site, device)
);
CREATE INDEX IF NOT EXISTS devices_offline ON devices (site) WHERE NOT online;
CREATE TABLE IF NOT EXISTS alerts (
    site text NOT NULL,
    id text NOT NULL,
    raised_at double precision NOT NULL,
    counter integer,
    officer text,
    acked_by text,
    acked_at double precision,
    PRIMARY KEY (site, id)
);
CREATE INDEX IF NOT EXISTS alerts_open ON alerts (site) WHERE acked_by IS NULL;
CREATE TABLE IF NOT EXISTS ratings (
    site text NOT NULL,
    ticket bigint NOT NULL,
    day date NOT NULL,
    service text NOT NULL,
    counter integer,
    officer text,
    score smallint NOT NULL CHECK (score BETWEEN 1 AND 4),
    at double precision NOT NULL,
    PRIMARY KEY (site, ticket)
);
CREATE TABLE IF NOT EXISTS survey_responses (
    site text NOT NULL,
    ticket bigint NOT NULL,
    day date NOT NULL,
    service text NOT NULL,
    agency text NOT NULL,
    at double precision NOT NULL,
    scores smallint[] NOT NULL CHECK (cardinality(scores) = 9),
    PRIMARY KEY (site, ticket)
);
CREATE INDEX IF NOT EXISTS survey_day ON survey_responses (day);
CREATE TABLE IF NOT EXISTS web_users (
    username text PRIMARY KEY,
    name text NOT NULL,
    role text NOT NULL CHECK (role IN ('viewer', 'supervisor', 'admin')),
    password_hash text NOT NULL,
    active boolean NOT NULL DEFAULT true,
    created_at double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS web_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS web_sessions (
    sid text PRIMARY KEY,
    username text NOT NULL REFERENCES web_users (username) ON DELETE CASCADE,
    expires_at double precision NOT NULL
);
"""


class RegionDbError(MppError, RuntimeError):
    """The region's PostgreSQL database cannot be reached or set up."""


def connect(dsn: str, *, autocommit: bool = False, timeout: float = 5.0) -> psycopg.Connection:
    """A connection to the region's database; RegionDbError says where it failed."""
    try:
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=max(1, int(timeout)))
    except psycopg.OperationalError as exc:
        raise RegionDbError(
            f"cannot connect to the region database ({dsn_hint(dsn)}): {exc}"
        ) from None


def dsn_hint(dsn: str) -> str:
    """The connection string without a password, for messages and logs."""
    return " ".join(part for part in dsn.split() if not part.startswith("password="))


def create_schema(conn: psycopg.Connection) -> None:
    """Create every table that does not exist yet (idempotent).

    A database already at this schema is left alone: the DDL would lock tables the running
    ingest writes (ALTER TABLE takes an exclusive lock, CREATE INDEX a share lock), and a process
    starting beside it could be chosen as a deadlock's victim and exit. Processes that do change
    the schema take turns (an advisory lock) and retry when PostgreSQL breaks a deadlock."""
    from region import bookings, downlink

    ddl = SCHEMA + bookings.SCHEMA + downlink.SCHEMA
    version = hashlib.sha256(ddl.encode()).hexdigest()[:16]
    if _schema_version(conn) == version:
        return
    for attempt in range(1, SCHEMA_ATTEMPTS + 1):
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                conn.execute(ddl)
                conn.execute(
                    "INSERT INTO web_meta (key, value) VALUES (%s, %s)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (SCHEMA_KEY, version),
                )
            return
        except psycopg.errors.DeadlockDetected:
            if attempt == SCHEMA_ATTEMPTS:
                raise
            time.sleep(0.2 * attempt)


def _schema_version(conn: psycopg.Connection) -> str | None:
    """The schema version the database says it has (None before the first create_schema)."""
    with conn.transaction():
        exists = conn.execute("SELECT to_regclass('web_meta') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return None
        row = conn.execute("SELECT value FROM web_meta WHERE key = %s", (SCHEMA_KEY,)).fetchone()
    return row[0] if row else None
