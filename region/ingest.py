"""Store what sites send (event batches, catalogs) in PostgreSQL, many messages per transaction.

Idempotent on (site, event id): a batch sent twice stores nothing the second time. A batch
says which ids it covers, (`after`, `last`]; the region acknowledges the highest id up to which
it holds every event, never past a gap: batches that arrive out of order are stored, and their
range kept in `ranges` until the gap before them fills. Only then are their events applied to
tickets and sums, in id order, so derived state is the same whatever order batches came in.
A malformed message is refused, logged and counted; nothing of it is stored.

    ingestor = Ingestor(conn)
    acks = ingestor.ingest([Received(topic, payload)])   # {site: acked} to publish, after COMMIT

Decoding may happen ahead, on the thread that receives (`parse`), while the ingest thread
waits for PostgreSQL: `ingest` takes `Parsed` messages as well.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg

from protocol import messages as m
from protocol.errors import BadMessage
from protocol.topics import ROOT, site_of
from region import bookings
from region import tickets as tk

log = logging.getLogger("mpp.region")

EVENT_COLUMNS = (
    "site",
    "id",
    "at",
    "kind",
    "ticket",
    "counter",
    "service",
    "officer",
    "detail",
    "label",
    "day",
    "issued_service",
    "token_sha256",
)
STAGING = """
CREATE TEMP TABLE IF NOT EXISTS stage_events (LIKE events) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_tickets (LIKE tickets) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_daily (LIKE daily) ON COMMIT DELETE ROWS;
"""
_TICKET_SET = ", ".join(f"{c} = excluded.{c}" for c in tk.TICKET_COLUMNS if c != "id")
_DAILY_SET = ", ".join(f"{c} = daily.{c} + excluded.{c}" for c in tk.SUM_FIELDS)
_DAILY_SUMS = ", ".join(f"sum({c})" for c in tk.SUM_FIELDS)


@dataclass(frozen=True)
class Received:
    """One MQTT message as it came from the regional broker."""

    topic: str
    payload: bytes


@dataclass(frozen=True)
class Parsed:
    """A received message decoded: a batch or catalog of `site`; `refused` when malformed
    (nothing of it is stored, the site's refusals are counted)."""

    site: str
    message: m.EventBatch | m.SiteCatalog | None

    @property
    def refused(self) -> bool:
        """Whether the message was malformed."""
        return self.message is None


def parse(message: Received, root: str = ROOT) -> Parsed | None:
    """Decode a site's batch or catalog (None: not a topic ingest stores); a malformed one
    is logged and comes back refused."""
    found = site_of(message.topic, root)
    if found is None:
        log.warning("message on an unknown topic ignored", extra={"topic": message.topic})
        return None
    site, row = found
    model = _MODELS.get(row)
    if model is None:
        return None
    try:
        decoded = m.decode(model, message.payload)
        if decoded.site != site:
            raise BadMessage(
                "invalid", f"payload names site {decoded.site!r} on site {site!r}'s topic"
            )
    except BadMessage as exc:
        log.warning(
            "malformed message refused; nothing stored",
            extra={"site": site, "topic": message.topic, "error": str(exc)},
        )
        return Parsed(site, None)
    return Parsed(site, decoded)


_MODELS: dict[str, type[m.EventBatch] | type[m.SiteCatalog]] = {
    "events": m.EventBatch,
    "catalog": m.SiteCatalog,
}


@dataclass
class _Site:
    """What one transaction does for one site."""

    batches: list[m.EventBatch] = field(default_factory=list)
    events: dict[int, m.OutboxEvent] = field(default_factory=dict)


@dataclass(frozen=True)
class Catalog:
    """The part of a site's catalog that ingest needs."""

    agency: dict[str, str]
    limit_s: dict[str, int]


class Ingestor:
    """Turns received messages into rows; one `ingest` call is one transaction."""

    def __init__(
        self,
        conn: psycopg.Connection,
        *,
        root: str = ROOT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.conn = conn
        self.root = root
        self.clock = clock
        self._catalogs: dict[str, Catalog] = {}
        self._waiting_logged: dict[str, float] = {}
        conn.commit()
        conn.autocommit = True  # each `ingest` is then exactly one transaction, never a savepoint
        conn.execute(STAGING)
        self._types = {
            table: dict(
                conn.execute(
                    "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                    "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                    (table,),
                ).fetchall()
            )
            for table in ("events", "stage_events", "tickets", "stage_tickets", "stage_daily")
        }

    @contextmanager
    def _copy(
        self, cur: psycopg.Cursor[Any], table: str, columns: Sequence[str]
    ) -> Iterator[psycopg.Copy]:
        """COPY in PostgreSQL's binary format (a fifth of the text format's cost per row),
        with the column types the table has."""
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([self._types[table][c] for c in columns])
            yield copy

    # -- entry point -------------------------------------------------------------------
    def ingest(self, received: Iterable[Received | Parsed | None]) -> dict[str, int]:
        """Store a group of messages in one transaction; returns {site: acked} for every
        site that sent a batch (duplicates and heartbeats included), to publish after it."""
        now = self.clock()
        catalogs: list[m.SiteCatalog] = []
        batches: dict[str, list[m.EventBatch]] = defaultdict(list)
        refused: dict[str, int] = defaultdict(int)
        for item in received:
            parsed = parse(item, self.root) if isinstance(item, Received) else item
            if parsed is None:
                continue
            if parsed.message is None:
                refused[parsed.site] += 1
            elif isinstance(parsed.message, m.SiteCatalog):
                catalogs.append(parsed.message)
            else:
                batches[parsed.site].append(parsed.message)
        try:
            return self._transaction(catalogs, batches, refused, now, careful=False)
        except psycopg.errors.UniqueViolation as exc:
            # A row the acknowledgement and `ranges` say is new was there already: stored by
            # something else than this code. Nothing of the group was kept; store it again,
            # tolerating what is there.
            log.warning(
                "rows already stored beyond the acknowledgement; group stored again, skipping them",
                extra={"sites": sorted(batches), "error": str(exc).strip()[:200]},
            )
            return self._transaction(catalogs, batches, refused, now, careful=True)

    def _transaction(
        self,
        catalogs: list[m.SiteCatalog],
        batches: dict[str, list[m.EventBatch]],
        refused: dict[str, int],
        now: float,
        *,
        careful: bool,
    ) -> dict[str, int]:
        """One transaction for a parsed group. Not `careful`: new events and tickets are
        copied straight into their tables (the acknowledgement and `ranges` say which rows
        exist); `careful`: through staging tables with ON CONFLICT, whatever is there."""
        with self.conn.transaction():
            for catalog in catalogs:
                self._save_catalog(catalog, now)
            if refused:
                self._count_refused(refused)
            ready = {
                site: _Site(list(parts))
                for site, parts in batches.items()
                if self._catalog(site, now)
            }
            return self._store(ready, now, careful) if ready else {}

    # -- catalogs ----------------------------------------------------------------------
    def _save_catalog(self, catalog: m.SiteCatalog, now: float) -> None:
        services = {code: s.model_dump(mode="json") for code, s in catalog.services.items()}
        self.conn.execute(
            "INSERT INTO sites (site, name, timezone, version, agencies, services, counters, "
            "updated_at, counter_names) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (site) DO UPDATE "
            "SET name = excluded.name, timezone = excluded.timezone, version = excluded.version, "
            "agencies = excluded.agencies, services = excluded.services, "
            "counters = excluded.counters, updated_at = excluded.updated_at, "
            "counter_names = excluded.counter_names",
            (
                catalog.site,
                catalog.name,
                catalog.timezone,
                catalog.version,
                json.dumps(catalog.agencies),
                json.dumps(services),
                catalog.counters,
                now,
                json.dumps({k: v.model_dump() for k, v in catalog.counter_names.items()}),
            ),
        )
        self._catalogs[catalog.site] = _catalog_of(services)

    def _catalog(self, site: str, now: float) -> Catalog | None:
        if site not in self._catalogs:
            row = self.conn.execute(
                "SELECT services FROM sites WHERE site = %s", (site,)
            ).fetchone()
            if row is None:
                if now - self._waiting_logged.get(site, 0.0) > 60:
                    self._waiting_logged[site] = now
                    log.warning(
                        "events held back until the site's catalog arrives", extra={"site": site}
                    )
                return None
            self._catalogs[site] = _catalog_of(row[0])
        return self._catalogs[site]

    def _count_refused(self, refused: dict[str, int]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO links (site, refused) VALUES (%s, %s) ON CONFLICT (site) DO UPDATE "
                "SET refused = links.refused + excluded.refused",
                sorted(refused.items()),
            )

    # -- events ------------------------------------------------------------------------
    def _store(self, sites: dict[str, _Site], now: float, careful: bool) -> dict[str, int]:
        names = sorted(sites)
        cur = self.conn.cursor()
        cur.execute(
            "INSERT INTO links (site) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING", (names,)
        )
        before = {
            site: acked
            for site, acked in cur.execute(
                "SELECT site, acked FROM links WHERE site = ANY(%s) ORDER BY site FOR UPDATE",
                (names,),
            )
        }
        pending: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for site, after, last in cur.execute(
            "SELECT site, after, last FROM ranges WHERE site = ANY(%s)", (names,)
        ):
            pending[site].append((after, last))
        # New events go in as they are, once: beyond the acknowledgement and outside the
        # ranges already held (those are stored; their events are still replayed from here).
        target = "stage_events" if careful else "events"
        with self._copy(cur, target, EVENT_COLUMNS) as copy:
            for site in names:
                work, acked, held = sites[site], before[site], pending[site]
                for batch in work.batches:
                    if batch.last <= acked:
                        continue
                    for event in batch.events:
                        i = event.id
                        if i > acked and i not in work.events:
                            work.events[i] = event
                            if not held or careful or not _within(i, held):
                                copy.write_row(_event_row(site, event))
        if careful:
            cur.execute("INSERT INTO events SELECT * FROM stage_events ON CONFLICT DO NOTHING")
        acks: dict[str, int] = {}
        to_apply: dict[str, list[m.OutboxEvent]] = {}
        link_rows = []
        rewrite: list[str] = []
        kept: list[tuple[str, int, int]] = []
        for site in names:
            work, acked = sites[site], before[site]
            received = [(b.after, b.last) for b in work.batches if b.last > max(b.after, acked)]
            upto, rest = advance(acked, pending[site] + received)
            if upto > acked:
                if all(r in received for r in _used(acked, upto, pending[site] + received)):
                    events = [e for i, e in sorted(work.events.items()) if i <= upto]
                else:
                    events = self._load_events(cur, site, acked, upto)
                to_apply[site] = events
            if rest != sorted(set(pending[site])) or received:
                rewrite.append(site)
                kept += [(site, a, b) for a, b in rest]
            acks[site] = upto
            newest = max(b.head for b in work.batches)
            last_at = max((e.at for e in to_apply.get(site, ())), default=None)
            link_rows.append(
                (upto, newest, now, last_at, work.batches[-1].sent_at, len(work.batches), site)
            )
        if rewrite:
            cur.execute("DELETE FROM ranges WHERE site = ANY(%s)", (rewrite,))
        if kept:
            cur.executemany("INSERT INTO ranges (site, after, last) VALUES (%s, %s, %s)", kept)
        if to_apply:
            self._apply(cur, to_apply, careful)
        cur.execute(
            "UPDATE links SET acked = u.acked, head = GREATEST(links.head, u.head), "
            "last_seen = u.seen, last_event_at = COALESCE(u.event_at, links.last_event_at), "
            "hub_time = u.hub_time, batches = links.batches + u.batches "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::float8[], %s::float8[], %s::float8[], "
            "%s::bigint[], %s::text[]) AS u(acked, head, seen, event_at, hub_time, batches, site) "
            "WHERE links.site = u.site",
            _columns(link_rows, 7),
        )
        return acks

    @staticmethod
    def _load_events(
        cur: psycopg.Cursor[Any], site: str, after: int, upto: int
    ) -> list[m.OutboxEvent]:
        rows = cur.execute(
            f"SELECT {', '.join(EVENT_COLUMNS[1:])} FROM events "
            "WHERE site = %s AND id > %s AND id <= %s ORDER BY id",
            (site, after, upto),
        ).fetchall()
        names = EVENT_COLUMNS[1:]
        return [
            m.OutboxEvent.model_construct(
                **{
                    k: (v.isoformat() if k == "day" and v is not None else v)
                    for k, v in zip(names, row, strict=True)
                }
            )
            for row in rows
        ]

    # -- derived state -----------------------------------------------------------------
    def _apply(
        self, cur: psycopg.Cursor[Any], events: dict[str, list[m.OutboxEvent]], careful: bool
    ) -> None:
        """Replay newly contiguous events on tickets, sums, counters, devices, alerts."""
        wanted = sorted(
            {
                (site, e.ticket)
                for site, evs in events.items()
                for e in evs
                if e.ticket is not None and e.kind != "issued"
            }
        )
        tickets: dict[tuple[str, int], tk.Ticket | None] = {}
        if wanted:
            rows = cur.execute(
                f"SELECT site, {', '.join(tk.TICKET_COLUMNS)} FROM tickets "
                "WHERE (site, id) IN (SELECT * FROM unnest(%s::text[], %s::bigint[]))",
                ([s for s, _ in wanted], [t for _, t in wanted]),
            ).fetchall()
            for row in rows:
                values = dict(zip(tk.TICKET_COLUMNS, row[1:], strict=True))
                values["day"] = values["day"].isoformat()
                tickets[(row[0], values["id"])] = tk.Ticket(**values)
        original = dict(tickets)
        ratings, surveys, raised, acked = [], [], [], []
        counters: dict[tuple[str, int], tuple[Any, ...]] = {}  # the last change of each
        devices: dict[tuple[str, str], tuple[Any, ...]] = {}
        for site, evs in events.items():
            catalog = self._catalogs[site]

            def agency_of(service: str, catalog: Catalog = catalog) -> str:
                return catalog.agency.get(service, "")

            for e in evs:
                key = (site, e.ticket or 0)
                if e.kind in tk.TICKET_KINDS:
                    try:
                        tickets[key] = tk.apply(tickets.get(key), e, agency_of)
                    except tk.EventOrderError as exc:
                        log.error("event not applied", extra={"site": site, "error": str(exc)})
                elif e.kind == "rated":
                    ticket = tickets.get(key) or self._ticket(cur, site, e.ticket)
                    if ticket is not None and e.detail and e.detail.isdigit():
                        ratings.append(
                            (
                                site,
                                ticket.id,
                                ticket.day,
                                ticket.service,
                                e.counter,
                                e.officer,
                                int(e.detail),
                                e.at,
                            )
                        )
                elif e.kind == "surveyed":
                    ticket = tickets.get(key) or self._ticket(cur, site, e.ticket)
                    scores = _scores(e.detail)
                    if ticket is not None and scores is not None:
                        surveys.append(
                            (
                                site,
                                ticket.id,
                                ticket.day,
                                ticket.service,
                                ticket.agency,
                                e.at,
                                list(scores),
                            )
                        )
                elif e.kind in ("opened", "closed") and e.counter is not None:
                    counters[(site, e.counter)] = (
                        site,
                        e.counter,
                        e.kind == "opened",
                        e.officer,
                        e.at,
                    )
                elif e.kind == "presence" and e.detail:
                    device, _, state = e.detail.partition(" ")
                    online, _, health = state.partition(" ")
                    devices[(site, device)] = (
                        site,
                        device,
                        online == "online",
                        health or None,
                        e.at,
                    )
                elif e.kind == "alert_raised" and e.detail:
                    raised.append((site, e.detail, e.at, e.counter, e.officer))
                elif e.kind == "alert_acked" and e.detail:
                    acked.append((e.officer, e.at, site, e.detail))
            bookings.site_events(cur, site, evs)
        changed = {k: t for k, t in tickets.items() if t is not None and t != original.get(k)}
        if changed:
            # Tickets issued in this group are new rows; the others are changed in place.
            new = {k: t for k, t in changed.items() if k not in original}
            columns = ("site", *tk.TICKET_COLUMNS)
            if new and not careful:
                with self._copy(cur, "tickets", columns) as copy:
                    for (site, _), ticket in new.items():
                        copy.write_row(_ticket_row(site, ticket))
            staged = changed if careful else {k: changed[k] for k in changed.keys() - new.keys()}
            if staged:
                with self._copy(cur, "stage_tickets", columns) as copy:
                    for (site, _), ticket in staged.items():
                        copy.write_row(_ticket_row(site, ticket))
                cur.execute(
                    "INSERT INTO tickets SELECT * FROM stage_tickets "
                    f"ON CONFLICT (site, id) DO UPDATE SET {_TICKET_SET}"
                )
            sums: dict[tuple[str, str, str], list[float]] = {}
            for (site, _), ticket in changed.items():
                limits = self._catalogs[site].limit_s
                delta: tk.Sums = {}
                tk.add_sums(delta, tk.contribution(ticket, limits))
                tk.add_sums(delta, tk.contribution(original.get((site, ticket.id)), limits), -1)
                for (day, service), values in delta.items():
                    target = sums.setdefault((site, day, service), [0.0] * len(tk.SUM_FIELDS))
                    for i, value in enumerate(values):
                        target[i] += value
            with self._copy(
                cur, "stage_daily", ("site", "day", "service", "agency", *tk.SUM_FIELDS)
            ) as copy:
                for (site, day, service), values in sums.items():
                    if any(values):
                        agency = self._catalogs[site].agency.get(service, "")
                        copy.write_row((site, _date(day), service, agency, *_sum_values(values)))
            cur.execute(
                f"INSERT INTO daily (site, day, service, agency, {', '.join(tk.SUM_FIELDS)}) "
                f"SELECT site, day, service, max(agency), {_DAILY_SUMS} FROM stage_daily "
                f"GROUP BY site, day, service ON CONFLICT (site, day, service) DO UPDATE SET "
                f"{_DAILY_SET}"
            )
        if ratings:
            cur.execute(
                "INSERT INTO ratings (site, ticket, day, service, counter, officer, score, at) "
                "SELECT * FROM unnest(%s::text[], %s::bigint[], %s::date[], %s::text[], "
                "%s::integer[], %s::text[], %s::smallint[], %s::float8[]) ON CONFLICT DO NOTHING",
                _columns(ratings, 8),
            )
        if surveys:
            cur.executemany(
                "INSERT INTO survey_responses (site, ticket, day, service, agency, at, scores) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                surveys,
            )
        if counters:
            cur.execute(
                "INSERT INTO counters (site, number, open, officer, at) "
                "SELECT * FROM unnest(%s::text[], %s::integer[], %s::boolean[], %s::text[], "
                "%s::float8[]) ON CONFLICT (site, number) DO UPDATE SET open = excluded.open, "
                "officer = excluded.officer, at = excluded.at",
                _columns(list(counters.values()), 5),
            )
        if devices:
            cur.execute(
                "INSERT INTO devices (site, device, online, detail, at) "
                "SELECT * FROM unnest(%s::text[], %s::text[], %s::boolean[], %s::text[], "
                "%s::float8[]) ON CONFLICT (site, device) DO UPDATE SET online = excluded.online, "
                "detail = excluded.detail, at = excluded.at",
                _columns(list(devices.values()), 5),
            )
        if raised:
            cur.execute(
                "INSERT INTO alerts (site, id, raised_at, counter, officer) "
                "SELECT * FROM unnest(%s::text[], %s::text[], %s::float8[], %s::integer[], "
                "%s::text[]) ON CONFLICT DO NOTHING",
                _columns(raised, 5),
            )
        if acked:
            cur.executemany(
                "UPDATE alerts SET acked_by = %s, acked_at = %s WHERE site = %s AND id = %s",
                acked,
            )

    @staticmethod
    def _ticket(cur: psycopg.Cursor[Any], site: str, ticket_id: int | None) -> tk.Ticket | None:
        if ticket_id is None:
            return None
        row = cur.execute(
            f"SELECT {', '.join(tk.TICKET_COLUMNS)} FROM tickets WHERE site = %s AND id = %s",
            (site, ticket_id),
        ).fetchone()
        if row is None:
            return None
        values = dict(zip(tk.TICKET_COLUMNS, row, strict=True))
        values["day"] = values["day"].isoformat()
        return tk.Ticket(**values)


def advance(acked: int, ranges: Iterable[tuple[int, int]]) -> tuple[int, list[tuple[int, int]]]:
    """(new acknowledgement, ranges still beyond it): ranges (after, last] that join up with
    what is acknowledged move it on; the others wait for the gap before them to fill."""
    upto = acked
    for after, last in sorted(set(ranges)):
        if after <= upto < last:
            upto = last
    return upto, sorted({(a, b) for a, b in ranges if b > upto})


def _within(event_id: int, ranges: list[tuple[int, int]]) -> bool:
    """Whether the id lies in one of the ranges (after, last]."""
    return any(after < event_id <= last for after, last in ranges)


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as `width` column lists, for one INSERT ... SELECT FROM unnest(...)."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width


def _used(acked: int, upto: int, ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The ranges that lie within (acked, upto]."""
    return [(a, b) for a, b in set(ranges) if b > acked and b <= upto]


def _event_row(site: str, e: m.OutboxEvent) -> tuple[Any, ...]:
    return (
        site,
        e.id,
        e.at,
        e.kind,
        e.ticket,
        e.counter,
        e.service,
        e.officer,
        e.detail,
        e.label,
        None if e.day is None else _date(e.day),
        e.issued_service,
        e.token_sha256,
    )


def _ticket_row(site: str, ticket: tk.Ticket) -> tuple[Any, ...]:
    row = list(tk.row_of(ticket))
    row[_TICKET_DAY] = _date(row[_TICKET_DAY])
    return (site, *row)


_TICKET_DAY = tk.TICKET_COLUMNS.index("day")


_date = date.fromisoformat


def _catalog_of(services: dict[str, Any]) -> Catalog:
    return Catalog(
        {code: s["agency"] for code, s in services.items()},
        {code: int(s["time_class_s"]) for code, s in services.items()},
    )


def _scores(detail: str | None) -> tuple[int, ...] | None:
    parts = (detail or "").split(",")
    if len(parts) != m.SURVEY_ELEMENTS or not all(p in ("1", "2", "3", "4") for p in parts):
        return None
    return tuple(int(p) for p in parts)


def _sum_values(values: list[float]) -> list[float | int]:
    return [
        v if tk.SUM_FIELDS[i] in ("wait_s", "service_s") else round(v) for i, v in enumerate(values)
    ]
