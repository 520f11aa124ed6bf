"""Region fixtures: one real PostgreSQL cluster per test session (Debian's packages, started
as the `postgres` user when we are root), a fresh database per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import psycopg
import pytest

from demo.postgres import LocalPostgres
from region.db import connect, create_schema

_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """The session's PostgreSQL cluster (about 3 s to create and start)."""
    with LocalPostgres() as pg:
        yield pg


@pytest.fixture
def region_dsn(postgres: LocalPostgres) -> Iterator[str]:
    """A new, empty region database with the schema; dropped after the test."""
    name = f"region_{next(_databases)}"
    with psycopg.connect(postgres.dsn(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    dsn = postgres.dsn(name)
    with connect(dsn) as conn:
        create_schema(conn)
    yield dsn
    with psycopg.connect(postgres.dsn(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def region_conn(region_dsn: str) -> Iterator[psycopg.Connection]:
    """A connection to this test's region database."""
    conn = connect(region_dsn)
    yield conn
    conn.close()
