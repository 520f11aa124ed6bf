"""Service-level alerts (pure): which conditions hold now, and which alerts that raises or
clears.

Each alert is raised once when its condition becomes true and cleared when it ends; a
supervisor's acknowledgement records who saw it (hub.store) and changes neither. The
thresholds are the inventory's `[alerts]` table (and a service's `wait_target_minutes`).

    book = AlertBook(store_open_alerts)           # {(kind, service, counter): alert id}
    raised, cleared = book.update(conditions(queue, now), now)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from hub.rules import Queue
from protocol import messages as m
from protocol.pauses import PauseWindow, windows
from protocol.site import parse_hhmm
from protocol.texts import alert_text

Key = tuple[str, str | None, int | None]  # kind, service, counter
SHORT = {"long_wait": "wait", "no_counter": "nocounter", "idle_counter": "idle"}
SHORT["quota_nearly_used"] = "quota"


@dataclass(frozen=True)
class Condition:
    """A service-level condition that holds now, with its texts. `may_raise` False: it keeps
    an open alert but raises none (the quota share reached only after `quota_before`)."""

    kind: str
    service: str | None = None
    counter: int | None = None
    text: dict[str, str] = field(default_factory=dict, compare=False)
    may_raise: bool = True

    @property
    def key(self) -> Key:
        """What makes it the same condition from one look to the next."""
        return (self.kind, self.service, self.counter)


def alert_id(kind: str, subject: str, at: float) -> str:
    """An alert id within the protocol's 40 characters for any subject."""
    digest = hashlib.sha256(subject.encode()).hexdigest()[:8]
    return f"{SHORT.get(kind, kind[:10])}-{round(at)}-{digest}"


def key_of(alert: m.Alert) -> Key:
    """The condition an alert stands for."""
    return (alert.kind, alert.service, alert.counter)


def _texts(queue: Queue, kind: str, code: str, **values: object) -> dict[str, str]:
    """An alert's texts about service `code`, in Indonesian and English."""
    name = queue.site.services[code].name
    return {lang: alert_text(kind, lang, service=name.get(lang), **values) for lang in ("id", "en")}


def _pauses_so_far(queue: Queue, services: tuple[str, ...], now: float) -> list[PauseWindow]:
    """Today's pauses, begun by `now`, that stopped every one of `services`."""
    if not queue.site.pauses:
        return []
    today = queue.site.local_now(now).date()
    return [
        w
        for w in windows(queue.site, None, today)
        if w.start < now and all(w.pause.covers(code) for code in services)
    ]


def _net(pauses: list[PauseWindow], since: float, now: float) -> float:
    """Seconds from `since` to `now` less the planned pauses in between (a wait through the
    Friday prayer is not a wait the supervisors could have shortened)."""
    paused = sum(max(0.0, min(now, w.end) - max(since, w.start)) for w in pauses)
    return now - since - paused


def conditions(queue: Queue, now: float) -> list[Condition]:
    """Every service-level condition that holds at `now`."""
    site, settings = queue.site, queue.site.alerts
    found: list[Condition] = []
    oldest: dict[str, float] = {}
    for code, waiting in queue.queued.items():
        if not waiting:
            continue
        issued = [t.issued_at for t in waiting.values()]
        oldest[code] = min(issued)
        target = site.wait_target_s(code)
        pauses = _pauses_so_far(queue, (code,), now)
        over = [at for at in issued if _net(pauses, at, now) > target]
        if over:
            found.append(
                Condition(
                    "long_wait",
                    service=code,
                    text=_texts(
                        queue,
                        "long_wait",
                        code,
                        count=len(over),
                        target=target // 60,
                        longest=round(_net(pauses, min(over), now) / 60),
                    ),
                )
            )
        if queue.open_counters(code) == 0:
            found.append(
                Condition(
                    "no_counter",
                    service=code,
                    text=_texts(queue, "no_counter", code, count=len(waiting)),
                )
            )
    idle_s = settings.idle_minutes * 60
    for number, counter in queue.counters.items():
        if not counter.serving or counter.current is not None or counter.idle_since is None:
            continue
        services = queue.services_of(number)
        queued = [
            oldest[code]
            for code in services
            if code in oldest and queue.pause_of(code, now) is None
        ]
        since = max(counter.idle_since, min(queued)) if queued else now
        if queued and _net(_pauses_so_far(queue, services, now), since, now) > idle_s:
            found.append(
                Condition(
                    "idle_counter",
                    counter=number,
                    text={
                        lang: alert_text(
                            "idle_counter",
                            lang,
                            counter=site.counter_name(number, lang),
                            officer=counter.officer or "-",
                            minutes=settings.idle_minutes,
                        )
                        for lang in ("id", "en")
                    },
                )
            )
    before = parse_hhmm(settings.quota_before)
    early = site.local_now(now).time() < before
    for code in site.services:
        quota, issued = queue.daily_quota(code), queue.issued_today(code)
        if issued and issued >= settings.quota_share * quota:
            found.append(
                Condition(
                    "quota_nearly_used",
                    service=code,
                    may_raise=early,
                    text=_texts(
                        queue,
                        "quota_nearly_used",
                        code,
                        share=round(100 * issued / quota),
                        before=settings.quota_before,
                        issued=issued,
                        quota=quota,
                    ),
                )
            )
    return found


class AlertBook:
    """The open service-level alerts, by condition: raises each once, clears it when its
    condition no longer holds."""

    def __init__(self, open_alerts: dict[Key, str] | None = None) -> None:
        self.open: dict[Key, str] = dict(open_alerts or {})

    def update(
        self, found: list[Condition], now: float
    ) -> tuple[list[tuple[str, Condition]], list[str]]:
        """([(new alert id, condition)], [ids of alerts whose condition ended])."""
        current = {c.key: c for c in found}
        raised = []
        for key, condition in current.items():
            if key not in self.open and condition.may_raise:
                subject = condition.service or f"counter-{condition.counter}"
                self.open[key] = alert_id(condition.kind, subject, now)
                raised.append((self.open[key], condition))
        cleared = [self.open.pop(key) for key in list(self.open) if key not in current]
        return raised, cleared
