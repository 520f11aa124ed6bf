"""The inventory's pauses in time (e.g. the Friday prayer) and the waiting estimate that counts
them.

The hub (service states, confirmed tickets) and the web's ticket page estimate with the same
`wait_estimate`, so a citizen reads one figure everywhere::

    window = pause_now(site, "ktp", now)        # PauseWindow('jumat', ...) or None
    wait_estimate(site, "ktp", ahead=4, avg_service_s=600, serving=2, now=now)   # seconds
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from protocol.site import WEEKDAYS, Pause, Site

LOOKAHEAD_DAYS = 8  # an estimate counts the pauses of the coming week


@dataclass(frozen=True)
class PauseWindow:
    """One pause on one day: from `start` to `end` (epoch seconds)."""

    id: str
    pause: Pause
    start: float
    end: float


_CACHE_SIZE = 4096  # days x services; the same few are asked for all day
_windows: dict[tuple[int, str, str | None, date], tuple[PauseWindow, ...]] = {}


def windows(site: Site, service: str | None, day: date) -> tuple[PauseWindow, ...]:
    """The pauses of `service` (None: any service) on a local calendar day, by start."""
    key = (id(site), site.version, service, day)
    found = _windows.get(key)
    if found is None:
        if len(_windows) >= _CACHE_SIZE:
            _windows.clear()
        found = _windows[key] = _day_windows(site, service, day)
    return found


def _day_windows(site: Site, service: str | None, day: date) -> tuple[PauseWindow, ...]:
    weekday = WEEKDAYS[day.weekday()]
    found = []
    for pause_id, pause in site.pauses.items():
        if weekday not in pause.days or (service is not None and not pause.covers(service)):
            continue
        start, end = pause.span
        tz = site.site.tz
        found.append(
            PauseWindow(
                pause_id,
                pause,
                datetime.combine(day, start, tzinfo=tz).timestamp(),
                datetime.combine(day, end, tzinfo=tz).timestamp(),
            )
        )
    return tuple(sorted(found, key=lambda w: (w.start, w.id)))


def pause_now(site: Site, service: str, now: float) -> PauseWindow | None:
    """The pause of `service` in force at `now` (the one ending last, if several overlap)."""
    if not site.pauses:
        return None
    current = [w for w in windows(site, service, site.local_now(now).date()) if w.start <= now]
    current = [w for w in current if now < w.end]
    return max(current, key=lambda w: w.end) if current else None


def pauses_now(site: Site, now: float) -> list[PauseWindow]:
    """Every pause in force at `now` (of the site or of some services)."""
    if not site.pauses:
        return []
    return [w for w in windows(site, None, site.local_now(now).date()) if w.start <= now < w.end]


def after_pauses(site: Site, service: str, start: float, work_s: float) -> float:
    """The moment `work_s` seconds of service have passed from `start`, the pauses of
    `service` not counting (a start inside a pause begins at its end)."""
    return _after_pauses(site, service, start, [work_s])[0]


def _after_pauses(site: Site, service: str, start: float, works: list[float]) -> list[float]:
    """`after_pauses` for several amounts of work, in ascending order (one walk)."""
    weekdays = {day for p in site.pauses.values() if p.covers(service) for day in p.days}
    if not weekdays:
        return [start + work for work in works]
    first = site.local_now(start).date()
    gaps: list[tuple[float, float]] = []  # the pauses after `start`, in order
    for offset in range(LOOKAHEAD_DAYS):
        if WEEKDAYS[(first.weekday() + offset) % 7] in weekdays:
            gaps += [
                (w.start, w.end)
                for w in windows(site, service, first + timedelta(days=offset))
                if w.end > start
            ]
    out, moment, done, index = [], start, 0.0, 0  # `done` seconds of work reach `moment`
    for work in works:
        while index < len(gaps):
            gap_start, gap_end = gaps[index]
            if gap_start > moment:  # serving until the pause begins
                if done + (gap_start - moment) >= work:  # reached before it
                    break
                done += gap_start - moment
            moment = max(moment, gap_end)  # (a start inside a pause waits for its end)
            index += 1
        out.append(moment + (work - done))
    return out


def wait_estimate(
    site: Site,
    service: str,
    *,
    ahead: int,
    avg_service_s: float,
    serving: int,
    now: float,
    resumes_at: float | None = None,
) -> int | None:
    """Seconds until a citizen with `ahead` people before them is called: their service time
    shared by the `serving` counters, pauses of the service added. With no counter serving,
    from the earliest expected return from a break (`resumes_at`), as if one counter came back;
    None when none is expected back (say so instead of a time)."""
    return wait_estimates(
        site,
        service,
        places=1,
        first=ahead,
        avg_service_s=avg_service_s,
        serving=serving,
        now=now,
        resumes_at=resumes_at,
    )[0]


def wait_estimates(
    site: Site,
    service: str,
    *,
    places: int,
    avg_service_s: float,
    serving: int,
    now: float,
    resumes_at: float | None = None,
    first: int = 0,
) -> tuple[int | None, ...]:
    """`wait_estimate` for `places` citizens with `first`, `first` + 1, ... people ahead."""
    start = now
    if serving <= 0:
        if resumes_at is None:
            return (None,) * places
        start, serving = max(now, resumes_at), 1
    works = [(first + i) * avg_service_s / serving for i in range(places)]
    return tuple(max(0, round(end - now)) for end in _after_pauses(site, service, start, works))
