"""The booking report's shape, the same at the site and the region: per day and service,
booked -> checked in -> called -> served, and the walk-ins beside them.

Each tier counts from what it holds (the site its bookings and tickets, the region the
bookings it took and the tickets the site sent); `merge` lays the two kinds of count side by
side.

    rows = merge(booked_rows, walk_in_rows)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class FunnelRow:
    """One day and service (of one site, at the region)."""

    day: str
    service: str
    site: str = ""
    booked: int = 0  # bookings not cancelled
    checked_in: int = 0
    called: int = 0  # of the checked-in tickets
    served: int = 0
    no_shows: int = 0  # bookings whose check-in window ended without a check-in
    walk_ins: int = 0  # ordinary tickets (not voided), with what became of them
    walk_ins_called: int = 0
    walk_ins_served: int = 0


def merge(
    booked: Iterable[tuple[str, str, str, int, int, int, int, int]],
    walk_ins: Iterable[tuple[str, str, str, int, int, int]],
) -> list[FunnelRow]:
    """Rows from (site, day, service, booked, checked_in, called, served, no_shows) and
    (site, day, service, walk_ins, called, served), sorted by site, day and service."""
    rows: dict[tuple[str, str, str], FunnelRow] = {}
    for site, day, service, *counts in booked:
        row = rows.setdefault((site, str(day), service), FunnelRow(str(day), service, site))
        row.booked, row.checked_in, row.called, row.served, row.no_shows = map(int, counts)
    for site, day, service, *counts in walk_ins:
        row = rows.setdefault((site, str(day), service), FunnelRow(str(day), service, site))
        row.walk_ins, row.walk_ins_called, row.walk_ins_served = map(int, counts)
    return [rows[key] for key in sorted(rows)]
