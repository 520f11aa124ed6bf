"""The region's schema set-up beside a running ingest (region/db.py)."""

from __future__ import annotations

import psycopg

from region.db import SCHEMA_KEY, connect, create_schema


def test_a_current_schema_is_left_alone_while_the_ingest_writes(region_dsn: str) -> None:
    """A process starting beside the ingest (the regional web) takes no table lock: with a
    writer holding its row locks on `sites` and `tickets`, create_schema returns at once
    instead of waiting on (or deadlocking with) the writer."""
    with connect(region_dsn) as writer, connect(region_dsn) as starting:
        # What an INSERT takes, held in an open transaction.
        writer.execute("LOCK TABLE sites, tickets IN ROW EXCLUSIVE MODE")
        starting.execute("SET lock_timeout = '1s'")
        starting.commit()
        create_schema(starting)
        writer.rollback()


def test_an_older_schema_is_brought_up_to_date(region_dsn: str) -> None:
    """A database whose recorded schema differs (an upgrade) runs the DDL again and records
    the new version; the tables it had keep their rows."""
    with connect(region_dsn) as conn:
        conn.execute("INSERT INTO web_meta (key, value) VALUES ('kept', 'yes')")
        conn.execute("UPDATE web_meta SET value = 'older' WHERE key = %s", (SCHEMA_KEY,))
        conn.commit()
        create_schema(conn)
        version = conn.execute(
            "SELECT value FROM web_meta WHERE key = %s", (SCHEMA_KEY,)
        ).fetchone()
        assert version is not None and version[0] not in ("older", "")
        assert conn.execute("SELECT value FROM web_meta WHERE key = 'kept'").fetchone() == ("yes",)
        conn.rollback()


def test_a_locked_table_stops_an_upgrade_with_the_lock_error(region_dsn: str) -> None:
    """The upgrade itself does lock: proof that the first test's writer would have blocked a
    create_schema that ran the DDL (so that test can fail)."""
    with connect(region_dsn) as writer, connect(region_dsn) as starting:
        starting.execute("UPDATE web_meta SET value = 'older' WHERE key = %s", (SCHEMA_KEY,))
        starting.commit()
        writer.execute("LOCK TABLE sites IN ROW EXCLUSIVE MODE")
        starting.execute("SET lock_timeout = '300ms'")
        starting.commit()
        try:
            create_schema(starting)
        except psycopg.errors.LockNotAvailable:
            pass
        else:
            raise AssertionError("the upgrade's DDL did not wait for the writer's lock")
        finally:
            writer.rollback()
