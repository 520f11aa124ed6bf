"""What the regional pages show, read from PostgreSQL (plain functions over a connection).

Figures follow the hub's report definitions (docs/web.md): issued under the service a ticket
was issued for, served / no-shows under the service that finished or lost it; waiting time =
issue -> first call, service time = call -> finish, compliance = served within the service's
published time class. The satisfaction index per service unit is `protocol.ikm.ikm`, the same
code as the hub's.

    rows = overview(conn, now=time.time(), link_timeout_s=35, expected=["mpp-banjarbaru"])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import psycopg

from protocol.errors import MppError
from protocol.ikm import ELEMENTS, IkmResult, ikm
from webcommon.export import csv_text

Group = Literal["site", "agency", "service"]
GROUPS: tuple[str, ...] = ("site", "agency", "service")
MAX_DAYS = 400


class QueryError(MppError, ValueError):
    """A report asked for with an impossible period or grouping; `key` and `values` name the
    fault for a page that says it in the reader's language."""

    def __init__(self, message: str, key: str = "", **values: object) -> None:
        super().__init__(message)
        self.key, self.values = key, values


@dataclass(frozen=True)
class Period:
    """Business days from `start` to `end`, both included."""

    start: date
    end: date

    @classmethod
    def parse(cls, start: str | None, end: str | None, today: date) -> Period:
        """From ISO dates (default: the last 7 days), checked."""
        try:
            last = date.fromisoformat(end) if end else today
            first = date.fromisoformat(start) if start else last - timedelta(days=6)
        except ValueError:
            raise QueryError(
                f"dates must be YYYY-MM-DD; got {start!r} and {end!r}", "bad_dates"
            ) from None
        if last < first:
            raise QueryError(
                f"the period ends ({last}) before it starts ({first})",
                "ends_before_start", start=first, end=last,
            )  # fmt: skip
        if (last - first).days >= MAX_DAYS:
            raise QueryError(
                f"a report covers at most {MAX_DAYS} days; shorten the period",
                "too_long", days=MAX_DAYS,
            )  # fmt: skip
        return cls(first, last)


@dataclass(frozen=True)
class SiteNow:
    """One site on the overview."""

    site: str
    name: str
    connected: bool
    last_seen: float | None
    behind: int
    last_event_at: float | None
    waiting: int
    served: int
    longest_wait_s: float | None
    counters_open: int
    counters: int
    devices_offline: int
    alerts: int
    refused: int


OVERVIEW_SQL = """
WITH w AS (
    SELECT site, day, count(*) AS waiting, min(issued_at) AS oldest
    FROM tickets WHERE status = 'waiting' AND day = ANY(%(days)s) GROUP BY site, day
), d AS (
    SELECT site, day, sum(served) AS served
    FROM daily WHERE day = ANY(%(days)s) GROUP BY site, day
), c AS (
    SELECT site, count(*) AS open FROM counters WHERE open GROUP BY site
), v AS (
    SELECT site, count(*) AS offline FROM devices WHERE NOT online GROUP BY site
), a AS (
    SELECT site, count(*) AS open FROM alerts WHERE acked_by IS NULL GROUP BY site
)
SELECT s.site, s.name, l.last_seen, GREATEST(COALESCE(l.head, 0) - COALESCE(l.acked, 0), 0),
       l.last_event_at, w.waiting, w.oldest, COALESCE(d.served, 0), COALESCE(c.open, 0),
       s.counters, COALESCE(v.offline, 0), COALESCE(a.open, 0), COALESCE(l.refused, 0)
FROM sites s
JOIN unnest(%(sites)s::text[], %(todays)s::date[]) AS today(site, day) ON today.site = s.site
LEFT JOIN links l ON l.site = s.site
LEFT JOIN w ON w.site = s.site AND w.day = today.day
LEFT JOIN d ON d.site = s.site AND d.day = today.day
LEFT JOIN c ON c.site = s.site
LEFT JOIN v ON v.site = s.site
LEFT JOIN a ON a.site = s.site
ORDER BY s.name
"""


def todays(conn: psycopg.Connection, now: float) -> dict[str, date]:
    """Each site's business day now, in its own time zone."""
    zones: dict[str, ZoneInfo] = {}
    out = {}
    for site, tz in conn.execute("SELECT site, timezone FROM sites"):
        zone = zones.setdefault(tz, ZoneInfo(tz))
        out[site] = datetime.fromtimestamp(now, zone).date()
    return out


def overview(
    conn: psycopg.Connection,
    *,
    now: float,
    link_timeout_s: float,
    expected: Sequence[tuple[str, str]] = (),
) -> list[SiteNow]:
    """Every site at a glance: link, waiting now, served today, longest wait, counters open,
    devices offline, open alerts; `expected` (id, name) sites that never sent anything too."""
    today = todays(conn, now)
    rows = conn.execute(
        OVERVIEW_SQL,
        {
            "days": sorted(set(today.values())),
            "sites": list(today),
            "todays": list(today.values()),
        },
    ).fetchall()
    out = []
    for row in rows:
        last_seen = row[2]
        out.append(
            SiteNow(
                site=row[0],
                name=row[1],
                connected=last_seen is not None and now - last_seen <= link_timeout_s,
                last_seen=last_seen,
                behind=int(row[3]),
                last_event_at=row[4],
                waiting=int(row[5] or 0),
                served=int(row[7]),
                longest_wait_s=(now - row[6]) if row[6] is not None else None,
                counters_open=int(row[8]),
                counters=int(row[9]),
                devices_offline=int(row[10]),
                alerts=int(row[11]),
                refused=int(row[12]),
            )
        )
    known = {s.site for s in out}
    for site, name in expected:
        if site not in known:
            out.append(SiteNow(site, name, False, None, 0, None, 0, 0, None, 0, 0, 0, 0, 0))
    return out


@dataclass
class Figures:
    """Sums of one group of a report and the figures made from them."""

    key: str
    label: str
    issued: int = 0
    served: int = 0
    no_shows: int = 0
    voided: int = 0
    transferred: int = 0
    waits: int = 0
    wait_s: float = 0.0
    services: int = 0
    service_s: float = 0.0
    within_class: int = 0

    @property
    def wait_mean_s(self) -> float | None:
        """Mean waiting time (issue -> first call), seconds."""
        return self.wait_s / self.waits if self.waits else None

    @property
    def service_mean_s(self) -> float | None:
        """Mean service time (call -> finish), seconds."""
        return self.service_s / self.services if self.services else None

    @property
    def compliance(self) -> float | None:
        """Share of served tickets done within their service's time class (0..1)."""
        return self.within_class / self.served if self.served else None


SUMS = (
    "sum(issued), sum(served), sum(no_shows), sum(voided), sum(transferred), sum(waits), "
    "sum(wait_s), sum(services), sum(service_s), sum(within_class)"
)


@dataclass(frozen=True)
class Report:
    """A cross-site report: totals, one row per group, one row per day."""

    period: Period
    group: str
    site: str | None
    total: Figures
    rows: list[Figures]
    days: list[Figures] = field(default_factory=list)


def _figures(key: str, label: str, values: Sequence[Any]) -> Figures:
    ints = [int(v or 0) for v in values]
    return Figures(
        key, label, ints[0], ints[1], ints[2], ints[3], ints[4], ints[5],
        float(values[6] or 0), ints[7], float(values[8] or 0), ints[9],
    )  # fmt: skip


def names(conn: psycopg.Connection, lang: str = "id") -> dict[str, dict[str, str]]:
    """{'site': {id: name}, 'agency': {code: short}, 'service': {code: name}} over all sites."""
    out: dict[str, dict[str, str]] = {"site": {}, "agency": {}, "service": {}}
    for site, name, agencies, services in conn.execute(
        "SELECT site, name, agencies, services FROM sites ORDER BY site"
    ):
        out["site"][site] = name
        for code, short in agencies.items():
            out["agency"].setdefault(code, short)
        for code, spec in services.items():
            out["service"].setdefault(code, spec["name"].get(lang) or spec["name"]["id"])
    return out


def report(
    conn: psycopg.Connection,
    period: Period,
    *,
    group: str = "site",
    site: str | None = None,
    lang: str = "id",
) -> Report:
    """Visitors, waiting and service times, SLA compliance and no-shows for a period, by
    site, agency or service (optionally of one site)."""
    if group not in GROUPS:
        raise QueryError(f"grouping {group!r} is unknown; use one of {', '.join(GROUPS)}")
    where = "day BETWEEN %(start)s AND %(end)s" + (" AND site = %(site)s" if site else "")
    args = {"start": period.start, "end": period.end, "site": site}
    label = names(conn, lang)[group]
    rows = [
        _figures(row[0], label.get(row[0], row[0]), row[1:])
        for row in conn.execute(
            f"SELECT {group}, {SUMS} FROM daily WHERE {where} GROUP BY {group} ORDER BY {group}",
            args,
        )
    ]
    total_row = conn.execute(f"SELECT {SUMS} FROM daily WHERE {where}", args).fetchone()
    total = _figures("total", "Total" if lang == "en" else "Jumlah", total_row or [0] * 10)
    by_day = {
        row[0]: _figures(row[0].isoformat(), row[0].isoformat(), row[1:])
        for row in conn.execute(
            f"SELECT day, {SUMS} FROM daily WHERE {where} GROUP BY day ORDER BY day", args
        )
    }
    days = []
    for i in range((period.end - period.start).days + 1):
        day = period.start + timedelta(days=i)
        days.append(by_day.get(day) or Figures(day.isoformat(), day.isoformat()))
    rows.sort(key=lambda f: (-f.issued, f.label))
    return Report(period, group, site, total, rows, days)


@dataclass(frozen=True)
class UnitIkm:
    """The satisfaction index of one service unit over a period."""

    key: str
    label: str
    site: str
    result: IkmResult


def ikm_by_unit(
    conn: psycopg.Connection,
    period: Period,
    *,
    unit: str = "service",
    site: str | None = None,
    lang: str = "id",
) -> list[UnitIkm]:
    """IKM per service unit (service or agency) of each site: respondents, NRR per element,
    index and category, as Permenpan RB 14/2017 lays it out."""
    if unit not in ("service", "agency"):
        raise QueryError(f"unit {unit!r} is unknown; use service or agency")
    where = "day BETWEEN %(start)s AND %(end)s" + (" AND site = %(site)s" if site else "")
    rows = conn.execute(
        f"SELECT site, {unit}, scores FROM survey_responses WHERE {where} ORDER BY site, {unit}",
        {"start": period.start, "end": period.end, "site": site},
    ).fetchall()
    groups: dict[tuple[str, str], list[Sequence[int]]] = {}
    for row_site, key, scores in rows:
        groups.setdefault((row_site, key), []).append(tuple(scores))
    label = names(conn, lang)[unit]
    return [
        UnitIkm(key, label.get(key, key), row_site, ikm(responses))
        for (row_site, key), responses in sorted(groups.items())
    ]


def report_csv(rep: Report) -> str:
    """The report's rows and total as CSV."""
    header = [
        rep.group, "name", "issued", "served", "no_shows", "voided", "transferred",
        "wait_mean_s", "service_mean_s", "within_time_class", "compliance",
    ]  # fmt: skip
    return csv_text(
        header,
        (
            (
                f.key,
                f.label,
                f.issued,
                f.served,
                f.no_shows,
                f.voided,
                f.transferred,
                f.wait_mean_s,
                f.service_mean_s,
                f.within_class,
                f.compliance,
            )
            for f in [*rep.rows, rep.total]
        ),
    )


def ikm_csv(units: list[UnitIkm]) -> str:
    """IKM per unit as CSV: site, unit, respondents, NRR U1..U9, IKM, category."""
    header = ["site", "unit", "name", "respondents", *(e.code for e in ELEMENTS), "ikm", "category"]
    return csv_text(
        header,
        (
            (
                u.site,
                u.key,
                u.label,
                u.result.respondents,
                *u.result.nrr_decimal(),
                u.result.value,
                u.result.category.letter if u.result.category else "",
            )
            for u in units
        ),
    )
