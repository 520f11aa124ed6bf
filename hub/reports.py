"""Supervisor reports over the hub database (read-only): volumes, waiting and service times,
time-class compliance, busiest hours, satisfaction (IKM) and rating-pad results, CSV export.

Queries read rows; the figures are computed by plain functions over those rows, so tests can
check them by hand. Definitions (also in docs/web.md):

- issued: tickets taken (voided ones included), under the service they were issued for;
- served: tickets finished at a counter, under the service/counter that finished them;
- no-shows: tickets called but never served (skipped, and still skipped or expired);
- voided: tickets the kiosk could not print; transferred: issued tickets sent on at least once
  (per counter: transfers made at that counter);
- waiting time: issue -> first call; service time: call -> finish; median and p90 (nearest
  rank); compliance: served tickets whose issue -> finish fits the service's time class.

    report = build_report(conn, site, Period.of("month", date(2026, 11, 1)), group="service")
"""

from __future__ import annotations

import json
import math
import sqlite3
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timedelta
from typing import Literal

from hub.rules import SKIPPED, WAITING, duration
from protocol.errors import MppError
from protocol.ikm import IkmResult, ikm
from protocol.site import Site
from webcommon.export import csv_text

Bucket = Literal["day", "week", "month"]
Group = Literal["service", "agency", "counter"]
BUCKETS: tuple[str, ...] = ("day", "week", "month")
GROUPS: tuple[str, ...] = ("service", "agency", "counter")
MAX_DAYS = 400


class ReportError(MppError, ValueError):
    """A report asked for with an impossible period or grouping; `key` and `values` name the
    fault for a page that says it in the reader's language."""

    def __init__(self, message: str, key: str = "", **values: object) -> None:
        super().__init__(message)
        self.key, self.values = key, values


@dataclass(frozen=True)
class Period:
    """Local business days from `start` to `end`, both included."""

    start: date
    end: date

    @classmethod
    def of(cls, bucket: str, anchor: date) -> Period:
        """The day, the week (Monday to Sunday) or the calendar month containing `anchor`."""
        if bucket == "day":
            return cls(anchor, anchor)
        if bucket == "week":
            start = anchor - timedelta(days=anchor.weekday())
            return cls(start, start + timedelta(days=6))
        if bucket == "month":
            start = anchor.replace(day=1)
            following = (start + timedelta(days=32)).replace(day=1)
            return cls(start, following - timedelta(days=1))
        raise ReportError(f"period {bucket!r} is unknown; use one of {', '.join(BUCKETS)}")

    @classmethod
    def parse(cls, start: str, end: str) -> Period:
        """From two ISO dates (YYYY-MM-DD), checked: start <= end, at most MAX_DAYS long."""
        try:
            period = cls(date.fromisoformat(start), date.fromisoformat(end))
        except ValueError:
            raise ReportError(
                f"dates must be YYYY-MM-DD; got {start!r} and {end!r}", "bad_dates"
            ) from None
        if period.end < period.start:
            raise ReportError(
                f"the period ends ({end}) before it starts ({start})",
                "ends_before_start",
                start=start,
                end=end,
            )
        if (period.end - period.start).days >= MAX_DAYS:
            raise ReportError(
                f"a report covers at most {MAX_DAYS} days; shorten the period",
                "too_long",
                days=MAX_DAYS,
            )
        return period

    def days(self) -> list[date]:
        """Every day of the period."""
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def epoch_bounds(self, site: Site) -> tuple[float, float]:
        """[from, to) in epoch seconds: local midnight of the first day to after the last."""
        tz = site.site.tz
        first = datetime.combine(self.start, time(0), tz)
        after = datetime.combine(self.end + timedelta(days=1), time(0), tz)
        return first.timestamp(), after.timestamp()


@dataclass(frozen=True)
class TicketRow:
    """The columns of a ticket the reports use."""

    id: int
    day: str
    label: str
    issued_service: str
    service: str
    status: str
    issued_at: float
    first_called_at: float | None
    started_at: float | None
    finished_at: float | None
    counter: int | None
    officer: str | None
    transfers: int


@dataclass
class Stats:
    """Figures of one group (a service, agency, counter or time bucket)."""

    key: str
    label: str
    issued: int = 0
    served: int = 0
    no_shows: int = 0
    voided: int = 0
    transferred: int = 0
    within_class: int = 0
    waits: list[float] = field(default_factory=list, repr=False)
    service_times: list[float] = field(default_factory=list, repr=False)

    @property
    def wait_median_s(self) -> float | None:
        """Median waiting time (issue -> first call), seconds."""
        return median(self.waits)

    @property
    def wait_p90_s(self) -> float | None:
        """90th percentile waiting time (nearest rank), seconds."""
        return percentile(self.waits, 90)

    @property
    def service_median_s(self) -> float | None:
        """Median service time (call -> finish), seconds."""
        return median(self.service_times)

    @property
    def service_p90_s(self) -> float | None:
        """90th percentile service time (nearest rank), seconds."""
        return percentile(self.service_times, 90)

    @property
    def compliance(self) -> float | None:
        """Share of served tickets done within their service's time class (0..1)."""
        return self.within_class / self.served if self.served else None


@dataclass(frozen=True)
class Report:
    """One report: totals, rows per group, rows per time bucket, busiest hours."""

    period: Period
    group: str
    bucket: str
    total: Stats
    rows: list[Stats]
    series: list[Stats]
    heatmap: tuple[tuple[int, ...], ...]  # 7 weekdays (Mon first) x 24 hours, tickets issued


def median(values: Sequence[float]) -> float | None:
    """The median, or None for no values."""
    return float(statistics.median(values)) if values else None


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least p % of values at or below."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return float(ordered[rank - 1])


def load_tickets(conn: sqlite3.Connection, period: Period) -> list[TicketRow]:
    """Tickets of the period's business days."""
    names = [f.name for f in fields(TicketRow)]
    rows = conn.execute(
        f"SELECT {', '.join(names)} FROM tickets WHERE day BETWEEN ? AND ? ORDER BY id",
        (period.start.isoformat(), period.end.isoformat()),
    ).fetchall()
    return [TicketRow(*row) for row in rows]


def load_transfers(conn: sqlite3.Connection, site: Site, period: Period) -> list[int]:
    """Counter of every transfer made in the period."""
    start, end = period.epoch_bounds(site)
    rows = conn.execute(
        "SELECT counter FROM events WHERE kind = 'transferred' AND at >= ? AND at < ?",
        (start, end),
    ).fetchall()
    return [row[0] for row in rows if row[0] is not None]


def bucket_of(day: str, bucket: str) -> str:
    """The key of the day/week/month a business day falls in ('2026-11-23', '2026-W48', ...)."""
    when = date.fromisoformat(day)
    if bucket == "day":
        return day
    if bucket == "week":
        year, week, _ = when.isocalendar()
        return f"{year}-W{week:02d}"
    if bucket == "month":
        return day[:7]
    raise ReportError(f"bucket {bucket!r} is unknown; use one of {', '.join(BUCKETS)}")


def _within(site: Site, row: TicketRow) -> bool:
    spec = site.services.get(row.service)
    if spec is None or row.finished_at is None:
        return False
    limit = site.time_classes[spec.time_class].max_duration.total_seconds()
    return (duration(row.issued_at, row.finished_at) or 0.0) <= limit


def _no_show(row: TicketRow) -> bool:
    return row.first_called_at is not None and row.status in ("skipped", "expired")


def _add(stats: Stats, row: TicketRow, site: Site, *, issued: bool, outcome: bool) -> None:
    """Count `row` in `stats`: its issue side and/or its outcome side."""
    if issued:
        stats.issued += 1
        stats.voided += row.status == "voided"
        stats.transferred += row.transfers > 0
        if (waited := duration(row.issued_at, row.first_called_at)) is not None:
            stats.waits.append(waited)
    if outcome:
        stats.no_shows += _no_show(row)
        if row.status == "done":
            stats.served += 1
            stats.within_class += _within(site, row)
            if (served := duration(row.started_at, row.finished_at)) is not None:
                stats.service_times.append(served)


def _labels(site: Site, group: str, lang: str) -> dict[str, str]:
    if group == "service":
        return {code: s.name.get(lang) for code, s in site.services.items()}
    if group == "agency":
        return {code: a.short for code, a in site.agencies.items()}
    if group == "counter":
        return {str(n): site.counter_name(n, lang) for n in site.counters}
    raise ReportError(f"grouping {group!r} is unknown; use one of {', '.join(GROUPS)}")


def _keys(site: Site, group: str, row: TicketRow) -> tuple[str | None, str | None]:
    """(group of the issue side, group of the outcome side) of a ticket."""
    if group == "service":
        return row.issued_service, row.service
    if group == "agency":
        issued = site.services.get(row.issued_service)
        final = site.services.get(row.service)
        return (issued.agency if issued else None), (final.agency if final else None)
    counter = str(row.counter) if row.counter is not None else None
    return counter, counter


def summarise(
    tickets: Iterable[TicketRow],
    site: Site,
    group: str,
    *,
    transfers: Iterable[int] = (),
    lang: str = "id",
) -> tuple[Stats, list[Stats]]:
    """(total, one Stats per group that has any ticket), groups in inventory order."""
    labels = _labels(site, group, lang)
    groups = {key: Stats(key, label) for key, label in labels.items()}
    total = Stats("total", "Total" if lang == "en" else "Jumlah")
    for row in tickets:
        _add(total, row, site, issued=True, outcome=True)
        issued_key, outcome_key = _keys(site, group, row)
        if group == "counter":
            # A counter does not issue tickets: it calls, serves, skips and transfers them.
            if outcome_key in groups:
                _add(groups[outcome_key], row, site, issued=False, outcome=True)
                if (waited := duration(row.issued_at, row.first_called_at)) is not None:
                    groups[outcome_key].waits.append(waited)
            continue
        if issued_key in groups:
            _add(groups[issued_key], row, site, issued=True, outcome=issued_key == outcome_key)
        if outcome_key in groups and outcome_key != issued_key:
            _add(groups[outcome_key], row, site, issued=False, outcome=True)
    if group == "counter":
        for counter in transfers:
            if str(counter) in groups:
                groups[str(counter)].transferred += 1
    used = [s for s in groups.values() if s.issued or s.served or s.no_shows or s.transferred]
    return total, used


def series(tickets: Iterable[TicketRow], site: Site, period: Period, bucket: str) -> list[Stats]:
    """Totals per day, week or month of the period (every bucket, empty ones too)."""
    out: dict[str, Stats] = {}
    for day in period.days():
        key = bucket_of(day.isoformat(), bucket)
        out.setdefault(key, Stats(key, key))
    for row in tickets:
        key = bucket_of(row.day, bucket)
        if key in out:
            _add(out[key], row, site, issued=True, outcome=True)
    return list(out.values())


def heatmap(tickets: Iterable[TicketRow], site: Site) -> tuple[tuple[int, ...], ...]:
    """Tickets issued per local weekday (Monday first) and hour of the day."""
    grid = [[0] * 24 for _ in range(7)]
    for row in tickets:
        moment = site.local_now(row.issued_at)
        grid[moment.weekday()][moment.hour] += 1
    return tuple(tuple(hours) for hours in grid)


def build_report(
    conn: sqlite3.Connection,
    site: Site,
    period: Period,
    *,
    group: str = "service",
    bucket: str = "day",
    lang: str = "id",
) -> Report:
    """The whole supervisor report for a period."""
    if group not in GROUPS:
        raise ReportError(f"grouping {group!r} is unknown; use one of {', '.join(GROUPS)}")
    if bucket not in BUCKETS:
        raise ReportError(f"bucket {bucket!r} is unknown; use one of {', '.join(BUCKETS)}")
    tickets = load_tickets(conn, period)
    transfers = load_transfers(conn, site, period) if group == "counter" else []
    total, rows = summarise(tickets, site, group, transfers=transfers, lang=lang)
    return Report(
        period,
        group,
        bucket,
        total,
        rows,
        series(tickets, site, period, bucket),
        heatmap(tickets, site),
    )


# -- satisfaction ------------------------------------------------------------------------
@dataclass(frozen=True)
class Comment:
    """A survey comment, shown with its day and service only (no ticket, no person)."""

    day: str
    service: str
    text: str


@dataclass(frozen=True)
class SurveySummary:
    """IKM of the responses matching a filter, and their comments (newest first)."""

    result: IkmResult
    comments: list[Comment]


def survey_summary(
    conn: sqlite3.Connection,
    period: Period,
    *,
    service: str | None = None,
    agency: str | None = None,
    max_comments: int = 200,
) -> SurveySummary:
    """IKM by period, optionally for one service or agency."""
    sql = (
        "SELECT day, service, u1, u2, u3, u4, u5, u6, u7, u8, u9, comment "
        "FROM survey_responses WHERE day BETWEEN ? AND ?"
    )
    args: list[object] = [period.start.isoformat(), period.end.isoformat()]
    if service:
        sql += " AND service = ?"
        args.append(service)
    if agency:
        sql += " AND agency = ?"
        args.append(agency)
    rows = conn.execute(sql + " ORDER BY at DESC, id DESC", args).fetchall()
    result = ikm(tuple(row[2:11]) for row in rows)
    comments = [Comment(row[0], row[1], row[11]) for row in rows if row[11]][:max_comments]
    return SurveySummary(result, comments)


@dataclass(frozen=True)
class OfficerRatings:
    """Rating-pad presses for one officer: count per score (4 = sangat puas .. 1 = tidak puas)."""

    officer: str
    counters: tuple[int, ...]
    counts: dict[int, int]

    @property
    def total(self) -> int:
        """How many ratings."""
        return sum(self.counts.values())

    @property
    def mean(self) -> float | None:
        """Mean score 1..4."""
        return sum(s * n for s, n in self.counts.items()) / self.total if self.total else None

    @property
    def satisfied_share(self) -> float | None:
        """Share of ratings 3 or 4."""
        good = self.counts.get(3, 0) + self.counts.get(4, 0)
        return good / self.total if self.total else None


def ratings_by_officer(
    conn: sqlite3.Connection, site: Site, period: Period
) -> list[OfficerRatings]:
    """Rating-pad results per officer over the period, most ratings first."""
    start, end = period.epoch_bounds(site)
    rows = conn.execute(
        "SELECT officer, counter, score FROM ratings WHERE at >= ? AND at < ?", (start, end)
    ).fetchall()
    found: dict[str, tuple[set[int], dict[int, int]]] = {}
    for officer, counter, score in rows:
        key = officer or f"({site.counter_name(counter)})"
        counters, counts = found.setdefault(key, (set(), {4: 0, 3: 0, 2: 0, 1: 0}))
        counters.add(counter)
        counts[score] += 1
    out = [OfficerRatings(k, tuple(sorted(c)), n) for k, (c, n) in found.items()]
    return sorted(out, key=lambda r: (-r.total, r.officer))


@dataclass(frozen=True)
class BreakStats:
    """An officer's breaks at one counter on one day: how many, how long, by reason."""

    day: str
    officer: str
    counter: int
    count: int
    total_s: float
    by_reason: dict[str, float]


def breaks(conn: sqlite3.Connection, site: Site, period: Period) -> list[BreakStats]:
    """Breaks that ended in the period, per day (of their start), officer and counter.

    Each `break_ended` event holds the reason and the seconds it took (a break running at
    midnight ends with the day)."""
    start, end = period.epoch_bounds(site)
    rows = conn.execute(
        "SELECT at, counter, officer, detail FROM events WHERE kind = 'break_ended' "
        "AND at >= ? AND at < ? ORDER BY id",
        (start, end + 86400),  # a break that ended just after the last midnight
    ).fetchall()
    found: dict[tuple[str, str, int], list[tuple[str, float]]] = {}
    for at, counter, officer, detail in rows:
        reason, _, seconds = (detail or "").partition(",")
        took = float(seconds or 0)
        day = site.business_day(at - took)
        if not period.start.isoformat() <= day <= period.end.isoformat():
            continue
        who = officer or f"({site.counter_name(counter)})"
        found.setdefault((day, who, counter), []).append((reason, took))
    out = []
    for (day, who, counter), items in sorted(found.items()):
        by_reason: dict[str, float] = {}
        for reason, took in items:
            by_reason[reason] = by_reason.get(reason, 0.0) + took
        out.append(BreakStats(day, who, counter, len(items), sum(t for _, t in items), by_reason))
    return out


def breaks_csv(rows: Iterable[BreakStats], reasons: Sequence[str]) -> str:
    """Break figures as CSV: one row per day, officer and counter; seconds per reason."""
    return csv_text(
        ["day", "officer", "counter", "breaks", "total_s", *reasons],
        (
            [row.day, row.officer, row.counter, row.count, row.total_s]
            + [row.by_reason.get(reason, 0.0) for reason in reasons]
            for row in rows
        ),
    )


@dataclass(frozen=True)
class AlertRow:
    """An alert as stored, with who acknowledged it and when it ended (a service-level alert
    ends with its condition, a one-off one with its acknowledgement)."""

    id: str
    kind: str
    raised_at: float
    text_id: str
    text_en: str
    acked_by: str | None
    acked_at: float | None
    cleared_at: float | None = None


def alerts(conn: sqlite3.Connection, limit: int = 100) -> list[AlertRow]:
    """Open alerts first (those nobody acknowledged yet before the others), then the latest
    ended ones."""
    rows = conn.execute(
        "SELECT id, kind, raised_at, payload, acked_by, acked_at, cleared_at FROM alerts "
        "ORDER BY cleared_at IS NOT NULL, acked_by IS NOT NULL, raised_at DESC LIMIT ?",
        (limit,),
    ).fetchall()
    out = []
    for row in rows:
        text = json.loads(row[3]).get("text", {})
        out.append(
            AlertRow(
                row[0],
                row[1],
                row[2],
                text.get("id", ""),
                text.get("en", ""),
                row[4],
                row[5],
                row[6],
            )
        )
    return out


@dataclass(frozen=True)
class PriorityRow:
    """A ticket of the day with priority, still waiting: who granted it (the device) and when."""

    ticket_id: int
    label: str
    service: str
    priority: str
    status: str
    issued_at: float
    granted_by: str


@dataclass(frozen=True)
class RevokedRow:
    """A priority a supervisor took away today."""

    label: str
    service: str
    at: float
    by: str
    granted: str  # 'pregnant by kiosk-1', as the grant was logged

    @property
    def granted_priority(self) -> str:
        """The priority that was granted ('pregnant'), from the logged grant."""
        return self.granted.partition(" by ")[0]

    @property
    def granted_by(self) -> str:
        """The device that granted it ('kiosk-1'), from the logged grant."""
        return self.granted.partition(" by ")[2]


def waiting_priority(conn: sqlite3.Connection, day: str) -> list[PriorityRow]:
    """The day's priority tickets that a supervisor may still revoke (waiting or no-show)."""
    rows = conn.execute(
        "SELECT id, label, service, priority, status, issued_at, source FROM tickets "
        "WHERE day = ? AND priority IS NOT NULL AND status IN (?, ?) ORDER BY issued_at",
        (day, WAITING, SKIPPED),
    ).fetchall()
    return [PriorityRow(*row) for row in rows]


def revoked_priority(conn: sqlite3.Connection, day: str) -> list[RevokedRow]:
    """The day's revocations, the latest first, with the grant each one undid."""
    rows = conn.execute(
        "SELECT t.label, t.service, e.at, e.detail, COALESCE(g.detail, '') FROM events e "
        "JOIN tickets t ON t.id = e.ticket "
        "LEFT JOIN events g ON g.ticket = e.ticket AND g.kind = 'priority_granted' "
        "WHERE e.kind = 'priority_revoked' AND t.day = ? ORDER BY e.at DESC",
        (day,),
    ).fetchall()
    return [RevokedRow(*row) for row in rows]


# -- CSV ---------------------------------------------------------------------------------
CSV_COLUMNS: tuple[tuple[str, Callable[[Stats], object]], ...] = (
    ("key", lambda s: s.key),
    ("name", lambda s: s.label),
    ("issued", lambda s: s.issued),
    ("served", lambda s: s.served),
    ("no_shows", lambda s: s.no_shows),
    ("voided", lambda s: s.voided),
    ("transferred", lambda s: s.transferred),
    ("wait_median_s", lambda s: s.wait_median_s),
    ("wait_p90_s", lambda s: s.wait_p90_s),
    ("service_median_s", lambda s: s.service_median_s),
    ("service_p90_s", lambda s: s.service_p90_s),
    ("within_time_class", lambda s: s.within_class),
    ("compliance", lambda s: s.compliance),
)


def to_csv(stats: Iterable[Stats]) -> str:
    """Rows of Stats as CSV with a header line (UTF-8 text; seconds as numbers)."""
    return csv_text(
        [name for name, _ in CSV_COLUMNS], ([get(row) for _, get in CSV_COLUMNS] for row in stats)
    )
