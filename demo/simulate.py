"""A day at a busy MPP, played through the real system: broker, hub, SQLite, MQTT devices.

Visitors arrive by hour on a morning-peak curve and press kiosk buttons; officers press NEXT,
RECALL, SKIP, TRANSFER, take a break once a day, and citizens rate the service. On a Friday
the counters pause for the Friday prayer (11:30-13:00); the report counts the service-level
alerts the hub raised. The hub runs in a process of its own, as on a site, on a virtual clock
so a day can be played at 1x or as fast as the machine allows; latencies are measured on the
real clock.

    result = simulate(SimConfig(visitors=8000, counters=60), out_dir=Path("sim-out"))
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import multiprocessing
import random
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hub.service import SWITCH_INTERVAL_S, HubService
from protocol import messages as m
from protocol.errors import CommandRejected, MppError
from protocol.logs import setup_logging
from protocol.mqtt import Bus, Incoming
from protocol.site import Site, parse_site
from protocol.synthetic import synthetic_site

log = logging.getLogger("mpp.simulate")
SPAWN = multiprocessing.get_context("spawn")  # a fork would copy the simulator's threads

# Share of the day's arrivals per local hour: the morning peak of an MPP.
ARRIVALS_BY_HOUR = {
    7: 0.04,
    8: 0.16,
    9: 0.19,
    10: 0.17,
    11: 0.13,
    12: 0.07,
    13: 0.11,
    14: 0.10,
    15: 0.03,
}
RATING_SCORES = (1, 2, 3, 4)
RATING_WEIGHTS = (0.02, 0.06, 0.42, 0.50)
BREAK_REASONS = ("istirahat", "sholat", "rapat")
BREAK_WEIGHTS = (0.6, 0.3, 0.1)
PRIORITY_SHARE = 0.06


@dataclass(frozen=True)
class SimConfig:
    """Size and behaviour of the simulated day."""

    visitors: int = 8000
    counters: int = 60
    services: int = 20
    displays: int = 6
    kiosks: int = 6
    speed: float | None = None  # None: as fast as possible; 1.0: real time
    seed: int = 20261123
    day: str = "2026-11-23"  # a Monday; a Friday (e.g. 2026-11-27) has the prayer pause
    no_show: float = 0.05
    transfer: float = 0.03
    rating: float = 0.6
    utilisation: float = 0.85
    tick_s: float = 10.0
    workers: int | None = None  # None: one per kiosk and counter, all of them at once
    wait_target_min: float = 30.0  # the waiting-time SLA: called within this many minutes
    breaks: bool = True  # every officer takes one break, at a time between 10:00 and 14:00


@dataclass
class Visitor:
    """One citizen of the simulated day."""

    arrives: float
    service: str
    priority: str | None
    kiosk: str
    no_show: bool
    transfer: bool
    rates: int | None
    label: str | None = None
    ticket_id: int | None = None
    request_id: str | None = None


@dataclass
class Desk:
    """What the simulated officer at one counter is doing."""

    number: int
    busy_until: float = 0.0
    current: Visitor | None = None
    called_at: float = 0.0
    recalled: bool = False
    next_try: float = 0.0
    break_at: float | None = None  # when the officer means to take a break
    break_reason: str = "istirahat"
    back_at: float | None = None  # set once the break is taken: when the officer is back


class VirtualClock:
    """The hub's clock during a simulation: set by the simulator, read by the hub (in shared
    memory: the hub runs in its own process, as on a site)."""

    def __init__(self, start: float) -> None:
        self.shared = SPAWN.RawValue("d", start)

    @property
    def now(self) -> float:
        return self.shared.value

    @now.setter
    def now(self, value: float) -> None:
        self.shared.value = value

    def __call__(self) -> float:
        return self.shared.value


class HubProcess:
    """The simulated site's hub in a process of its own, as `mpp hub` runs on a site (in the
    simulator's process it and 70 devices' threads took turns on one interpreter lock). It reads
    the virtual clock from shared memory; over a pipe the simulator tells it to look at its
    clock (`tick`) and asks for the services' waiting counts."""

    def __init__(self, site_file: Path, clock: VirtualClock) -> None:
        self.pipe, child = SPAWN.Pipe()
        levels = (logging.getLogger().level, logging.getLogger("mpp.hub").getEffectiveLevel())
        self.process = SPAWN.Process(
            target=_hub_main,
            args=(str(site_file), clock.shared, child, levels),
            name="simulated-hub",
            daemon=True,
        )

    def start(self) -> HubProcess:
        """Start the hub; MppError with its reason when it does not start."""
        self.process.start()
        try:
            self._ask("started")
        except MppError:
            self.process.join(10)
            raise
        return self

    def _ask(self, what: str) -> Any:
        if what != "started":
            self.pipe.send(what)
        if not self.pipe.poll(60):
            raise MppError(f"the simulated hub did not answer {what!r} within 60 s")
        failed, answer = self.pipe.recv()
        if failed:
            raise MppError(f"the simulated hub failed: {answer}")
        return answer

    def tick(self) -> None:
        """The hub looks at its clock now (the day, opening hours, pauses, alerts)."""
        self._ask("tick")

    def waiting(self) -> dict[str, int]:
        """People waiting per service, as the hub's retained service states say."""
        return self._ask("waiting")

    def stop(self) -> None:
        """Stop the hub (it finishes its queued work first)."""
        if self.process.is_alive():
            with contextlib.suppress(MppError, OSError):
                self._ask("stop")
        self.process.join(30)
        if self.process.is_alive():
            self.process.kill()


def _hub_main(site_file: str, shared: Any, pipe: Any, levels: tuple[int, int]) -> None:
    """The hub process's body (see HubProcess)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)  # as `mpp hub` runs
    setup_logging(logging.getLevelName(levels[0]))
    logging.getLogger("mpp.hub").setLevel(levels[1])
    try:
        site = parse_site(Path(site_file).read_text(), site_file)
        hub = HubService(site, clock=lambda: shared.value, first_start=True).start()
    except Exception as exc:  # said to the simulator, which stops
        pipe.send((True, repr(exc)))
        return
    pipe.send((False, None))
    while True:
        what = pipe.recv()
        try:
            if what == "tick":
                hub.tick()
                pipe.send((False, None))
            elif what == "waiting":
                states = hub.snapshot("service_state")
                pipe.send((False, {s.service: s.waiting for s in states}))
            elif what == "stop":
                hub.stop()
                pipe.send((False, None))
                return
        except Exception as exc:
            pipe.send((True, repr(exc)))


@dataclass
class Figures:
    """Everything measured on the real clock."""

    reply_s: dict[str, list[float]] = field(default_factory=dict)
    state_s: list[float] = field(default_factory=list)
    issued: int = 0
    refused: dict[str, dict[str, int]] = field(default_factory=dict)  # command kind -> code -> n
    queue_samples: list[tuple[float, dict[str, int]]] = field(default_factory=list)


def plan_day(site: Site, config: SimConfig, rng: random.Random) -> list[Visitor]:
    """Arrival time, service and behaviour of every visitor, reproducible from the seed."""
    tz = ZoneInfo(site.site.timezone)
    codes = list(site.services)
    popularity = [1 / (1 + 0.15 * i) for i in range(len(codes))]
    kiosks = [d for d, dev in site.devices.items() if dev.role == "kiosk"]
    hours = list(ARRIVALS_BY_HOUR)
    visitors = []
    for _ in range(config.visitors):
        hour = rng.choices(hours, weights=list(ARRIVALS_BY_HOUR.values()))[0]
        start = datetime.fromisoformat(f"{config.day} {hour:02d}:00").replace(tzinfo=tz).timestamp()
        visitors.append(
            Visitor(
                arrives=start + rng.uniform(0, 3600),
                service=rng.choices(codes, weights=popularity)[0],
                priority=rng.choice(["elderly", "disabled", "pregnant"])
                if rng.random() < PRIORITY_SHARE
                else None,
                kiosk=rng.choice(kiosks),
                no_show=rng.random() < config.no_show,
                transfer=rng.random() < config.transfer,
                rates=rng.choices(RATING_SCORES, weights=RATING_WEIGHTS)[0]
                if rng.random() < config.rating
                else None,
            )
        )
    return sorted(visitors, key=lambda v: v.arrives)


def mean_service_s(config: SimConfig) -> float:
    """Mean service time that keeps the counters at the configured utilisation."""
    open_s = 8 * 3600
    return config.counters * open_s * config.utilisation / max(1, config.visitors)


class Simulation:
    """Plays one day; `run()` returns the report dict."""

    def __init__(
        self,
        config: SimConfig,
        broker_port: int,
        workdir: Path,
        mqtt_version: int = 5,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.workdir = workdir
        self.rng = random.Random(config.seed)
        text = synthetic_site(
            counters=config.counters,
            services=config.services,
            kiosks=config.kiosks,
            displays=config.displays,
            port=broker_port,
            database=str(workdir / "hub.sqlite"),
            mqtt_version=mqtt_version,
            transfers=True,
            unprinted_hold_s=20,
            friday_pause=True,
        )
        (workdir / "site.toml").write_text(text)
        self.site = parse_site(text, str(workdir / "site.toml"))
        tz = ZoneInfo(self.site.site.timezone)
        start = datetime.fromisoformat(f"{config.day} 07:30").replace(tzinfo=tz).timestamp()
        self.clock = VirtualClock(start)
        self.end = datetime.fromisoformat(f"{config.day} 20:00").replace(tzinfo=tz).timestamp()
        self.last_arrival = (
            datetime.fromisoformat(f"{config.day} 16:00").replace(tzinfo=tz).timestamp()
        )
        self.visitors = plan_day(self.site, config, self.rng)
        self.by_label: dict[str, Visitor] = {}
        self.desks = {n: Desk(n) for n in self.site.counters}
        if config.breaks:
            ten = datetime.fromisoformat(f"{config.day} 10:00").replace(tzinfo=tz).timestamp()
            for desk in self.desks.values():
                desk.break_at = ten + self.rng.uniform(0, 4 * 3600)
                desk.break_reason = self.rng.choices(BREAK_REASONS, weights=BREAK_WEIGHTS)[0]
        self.mean_s = mean_service_s(config)
        self.figures = Figures()
        self.lock = threading.Lock()
        self.progress = progress or (lambda _line: None)
        self.buses: dict[str, Bus] = {}
        self.sent_calls: dict[tuple[int, int], float] = {}
        self.seen_calls: dict[tuple[int, int], float] = {}
        self.hub: HubProcess | None = None

    # -- plumbing ----------------------------------------------------------------------------
    def _request(self, device: str, command: m.Command) -> dict[str, Any] | None:
        bus = self.buses[device]
        bus.clock_offset = self.clock.now - time.time()  # the device's view of the hub clock
        started = time.perf_counter()
        try:
            result = bus.request(command, timeout=15)
        except CommandRejected as exc:
            with self.lock:
                codes = self.figures.refused.setdefault(command.kind, {})
                codes[exc.code] = codes.get(exc.code, 0) + 1
            return None
        finally:
            elapsed = time.perf_counter() - started
            with self.lock:
                self.figures.reply_s.setdefault(command.kind, []).append(elapsed)
        return result

    def _on_counter_state(self, incoming: Incoming) -> None:
        if not incoming.payload or incoming.retained:
            return
        state = m.decode(m.CounterState, incoming.payload)
        with self.lock:
            self.seen_calls.setdefault((state.counter, state.call_seq), time.time())

    # -- behaviour -----------------------------------------------------------------------------
    def _arrivals(self, visitors: list[Visitor]) -> None:
        for visitor in visitors:  # one kiosk serves one citizen at a time
            self._arrive(visitor)

    def _arrive(self, visitor: Visitor) -> None:
        command = m.IssueTicket(
            device=visitor.kiosk, service=visitor.service, priority=visitor.priority
        )
        result = self._request(visitor.kiosk, command)
        if result is None:
            return
        ticket = m.IssueResult.model_validate(result).ticket
        visitor.label, visitor.ticket_id, visitor.request_id = (
            ticket.number,
            ticket.id,
            command.request_id,
        )
        # The kiosk reports the ticket printed (until then the hub holds it back from calls).
        self._request(visitor.kiosk, m.TicketPrinted(device=visitor.kiosk, ticket_id=ticket.id))
        with self.lock:
            self.by_label[ticket.number] = visitor
            self.figures.issued += 1

    def _due(self, desk: Desk, now: float, waiting: dict[str, int]) -> bool:
        """Whether the officer at `desk` has something to do at `now` (see `_desk`). An idle
        officer presses NEXT when the box shows someone waiting (`waiting`: per service)."""
        visitor = desk.current
        if visitor is not None and visitor.no_show:
            return (not desk.recalled and now - desk.called_at >= 60) or (
                now - desk.called_at >= 180
            )
        if visitor is not None:
            return now >= desk.busy_until
        services = self.site.counters[desk.number].services
        return now >= desk.next_try and any(waiting.get(code, 0) for code in services)

    def _desk(self, desk: Desk, now: float) -> None:
        device = f"caller-{desk.number:03d}"
        counter = desk.number
        visitor = desk.current
        if visitor is not None and visitor.no_show:
            if not desk.recalled and now - desk.called_at >= 60:
                self._request(device, m.Recall(device=device, counter=counter))
                desk.recalled = True
                return
            if now - desk.called_at >= 180:
                self._request(device, m.Skip(device=device, counter=counter))
                desk.current = None
            return
        if visitor is not None and now < desk.busy_until:
            return
        if visitor is not None:
            if visitor.rates is not None:
                # Before the NEXT: the hub rates the ticket being served (or just finished).
                self._request(device, m.Rate(device=device, counter=counter, score=visitor.rates))
                visitor.rates = None  # one rating per ticket, also after a transfer
            targets = self.site.counters[counter].transfer_to
            if visitor.transfer and targets:
                visitor.transfer = False  # once
                self._request(
                    device, m.Transfer(device=device, counter=counter, service=targets[0])
                )
                desk.current = None
        if desk.break_at is not None and now >= desk.break_at and desk.back_at is None:
            # The officer steps away (the hub finishes the current ticket); NEXT ends it.
            reason = desk.break_reason
            self._request(
                device,
                m.StartBreak(device=device, counter=counter, reason=reason),  # type: ignore[arg-type]
            )
            desk.current = None
            desk.back_at = now + 60 * self.site.hub.break_minutes.get(reason, 30)  # type: ignore[call-overload]
            return
        if desk.back_at is not None and now < desk.back_at:
            return
        if now < desk.next_try:
            return
        sent = time.time()
        result = self._request(device, m.CallNext(device=device, counter=counter))
        if result is None:  # nobody waiting: look again in a minute
            desk.current, desk.next_try = None, now + 60
            return
        call = m.CounterResult.model_validate(result).call
        if call is None:
            desk.current, desk.next_try = None, now + 60
            return
        with self.lock:
            self.sent_calls[(counter, call.call_seq)] = sent
            desk.current = self.by_label.get(call.ticket)
        desk.called_at, desk.recalled = now, False
        desk.busy_until = now + self.rng.expovariate(1 / self.mean_s)

    # -- the day -------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Play the day and return the report (also written to the work directory)."""
        cfg = self.config
        self.hub = HubProcess(self.workdir / "site.toml", self.clock).start()
        devices = [d for d in self.site.devices if not d.startswith("tv-")] + ["tv-01"]
        for device in devices:
            self.buses[device] = Bus.for_device(self.site, device)
            if device.startswith("tv-"):
                bus = self.buses[device]
                bus.subscribe(bus.topics.all_of("counter_state"), self._on_counter_state)
            if not self.buses[device].start(wait=15):
                raise MppError(f"simulated {device} could not connect to the broker")
        wall_started = time.perf_counter()
        pool = ThreadPoolExecutor(max_workers=cfg.workers or len(self.desks) + cfg.kiosks)
        try:
            for n in self.desks:
                self._request(
                    f"caller-{n:03d}",
                    m.OpenCounter(device=f"caller-{n:03d}", counter=n, officer=f"Petugas {n}"),
                )
            pending = list(reversed(self.visitors))
            next_report = 0.0
            waiting: dict[str, int] = {}  # per service, as the screens showed it last tick
            while self.clock.now < self.end:
                tick_started = time.perf_counter()
                now = self.clock.now
                arrivals: dict[str, list[Visitor]] = {}
                while pending and pending[-1].arrives <= now:
                    visitor = pending.pop()
                    arrivals.setdefault(visitor.kiosk, []).append(visitor)
                # One step per tick, all at once: each kiosk's citizens in turn, each officer
                # with something to do (the tick lasts as long as its longest chain of commands).
                steps = [partial(self._arrivals, batch) for batch in arrivals.values()]
                due = [d for d in self.desks.values() if self._due(d, now, waiting)]
                steps += [partial(self._desk, desk, now) for desk in due]
                list(pool.map(_call, steps))
                waiting = self.hub.waiting()
                self.figures.queue_samples.append((now, waiting))
                if time.perf_counter() >= next_report:
                    local = datetime.fromtimestamp(now, self.site.site.tz).strftime("%H:%M")
                    self.progress(
                        f"{local}  issued {self.figures.issued:>5}/{cfg.visitors}  "
                        f"waiting {sum(waiting.values()):>4}  "
                        f"busy desks {sum(1 for d in self.desks.values() if d.current):>3}"
                    )
                    next_report = time.perf_counter() + 1.0
                idle = not pending and all(d.current is None for d in self.desks.values())
                if idle and now > self.last_arrival and not sum(waiting.values()):
                    break
                self.clock.now += cfg.tick_s
                if self.clock.now // 60 != now // 60:
                    # The hub looks at its clock every few real seconds; on the virtual clock
                    # a minute passes sooner: let it look each virtual minute (pauses, alerts).
                    self.hub.tick()
                if cfg.speed:
                    time.sleep(
                        max(0.0, cfg.tick_s / cfg.speed - (time.perf_counter() - tick_started))
                    )
            time.sleep(0.5)  # last states reach the screen
            wall = time.perf_counter() - wall_started
        finally:
            pool.shutdown()
            for bus in self.buses.values():
                bus.stop()
            self.hub.stop()
        return self.report(wall)

    # -- the report ------------------------------------------------------------------------------
    def report(self, wall_s: float) -> dict[str, Any]:
        """Outcomes of the day and system figures, checked against the database."""
        db = sqlite3.connect(self.workdir / "hub.sqlite")
        db.row_factory = sqlite3.Row
        tickets = db.execute("SELECT * FROM tickets").fetchall()
        by_status: dict[str, int] = {}
        for t in tickets:
            by_status[t["status"]] = by_status.get(t["status"], 0) + 1
        waits: dict[str, list[float]] = {}
        sla_ok = sla_all = 0
        target = self.config.wait_target_min
        for t in tickets:
            if t["first_called_at"] is not None:
                waits.setdefault(t["issued_service"], []).append(
                    (t["first_called_at"] - t["issued_at"]) / 60
                )
            if t["status"] == "done":
                limit = self.site.time_classes[
                    self.site.services[t["service"]].time_class
                ].max_duration
                sla_all += 1
                sla_ok += (t["finished_at"] - t["issued_at"]) <= limit.total_seconds()
        duplicates = db.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM tickets GROUP BY issued_service, day, number "
            "HAVING COUNT(*) > 1)"
        ).fetchone()[0]
        stored = {t["id"]: t["label"] for t in tickets}
        confirmed = [v for v in self.visitors if v.ticket_id is not None]
        lost = sum(1 for v in confirmed if stored.get(v.ticket_id) != v.label)
        double_called = _called_at_two_counters(db)
        breaks = db.execute("SELECT detail FROM events WHERE kind = 'break_ended'").fetchall()
        by_reason: dict[str, float] = {}
        for (detail,) in breaks:
            reason, _, seconds = (detail or "").partition(",")
            by_reason[reason] = by_reason.get(reason, 0.0) + float(seconds or 0) / 60
        pauses = [
            (row[0], row[1], datetime.fromtimestamp(row[2], self.site.site.tz).strftime("%H:%M"))
            for row in db.execute(
                "SELECT kind, detail, at FROM events WHERE kind LIKE 'pause_%' ORDER BY id"
            )
        ]
        alerts_raised = dict(
            db.execute("SELECT kind, COUNT(*) FROM alerts GROUP BY kind ORDER BY kind").fetchall()
        )
        alerts_open = db.execute("SELECT COUNT(*) FROM alerts WHERE cleared_at IS NULL").fetchone()[
            0
        ]
        db.close()
        state_lat = [
            self.seen_calls[k] - t for k, t in self.sent_calls.items() if k in self.seen_calls
        ]
        issue_lat = self.figures.reply_s.get("issue", [])
        all_lat = [x for values in self.figures.reply_s.values() for x in values]
        refused = {kind: dict(codes) for kind, codes in self.figures.refused.items()}
        next_refused = refused.pop("next", {})
        all_waits = [w for values in waits.values() for w in values]
        result = {
            "config": asdict(self.config),
            "tickets": {
                "issued": len(tickets) - by_status.get("voided", 0),
                "served": by_status.get("done", 0),
                "no_show": by_status.get("skipped", 0) + by_status.get("expired", 0),
                "by_status": by_status,
                "refused": refused.pop("issue", {}),  # tickets a kiosk asked for and did not get
            },
            "next_presses": {
                "calls": len(self.sent_calls),
                "empty_queue": next_refused.pop("queue_empty", 0),  # nobody waiting: no call
                "refused": next_refused,
            },
            "other_refusals": refused,  # by command kind (rate, recall, skip, ...) and code
            "waiting_minutes": {
                code: {
                    "name": self.site.services[code].name.id,
                    "p50": _pct(v, 50),
                    "p90": _pct(v, 90),
                    "max": max(v),
                    "n": len(v),
                    "within_target": sum(w <= target for w in v) / len(v),
                }
                for code, v in sorted(waits.items())
            },
            "waiting_sla": {
                "target_min": target,
                "within": sum(w <= target for w in all_waits) / len(all_waits)
                if all_waits
                else None,
                "called": len(all_waits),
            },
            "sla_compliance": sla_ok / sla_all if sla_all else None,
            "breaks": {
                "count": len(breaks),
                "minutes": round(sum(by_reason.values()), 1),
                "minutes_by_reason": {k: round(v, 1) for k, v in sorted(by_reason.items())},
            },
            "pauses": [f"{at} {kind} {pause}" for kind, pause, at in pauses],
            "alerts": {"raised": alerts_raised, "open_at_end": alerts_open},
            "system": {
                "wall_s": wall_s,
                "tickets_per_wall_s": self.figures.issued / wall_s,
                "commands": len(all_lat),
                "press_to_reply_ms": _summary(all_lat),
                "issue_to_reply_ms": _summary(issue_lat),
                "next_to_screen_state_ms": _summary(state_lat),
                "calls_seen_on_screen": f"{len(state_lat)}/{len(self.sent_calls)}",
            },
            "integrity": {
                "numbers_issued_twice": duplicates,
                "confirmed_tickets_lost": lost,
                "tickets_called_at_two_counters": double_called,
            },
        }
        (self.workdir / "simulation.json").write_text(json.dumps(result, indent=2))
        queue_chart(self.figures.queue_samples, self.site, self.workdir / "queue-lengths.png")
        return result


def _call(step: Callable[[], None]) -> None:
    step()


def _called_at_two_counters(db: sqlite3.Connection) -> int:
    """Tickets called at a counter while still held (called, not released) by another one."""
    holder: dict[int, int] = {}
    bad = 0
    for row in db.execute(
        "SELECT kind, ticket, counter FROM events WHERE ticket IS NOT NULL ORDER BY id"
    ):
        kind, ticket, counter = row["kind"], row["ticket"], row["counter"]
        if kind in ("called", "called_back", "recalled"):
            if ticket in holder and holder[ticket] != counter:
                bad += 1
            holder[ticket] = counter
        elif kind in ("finished", "skipped", "transferred", "voided"):
            holder.pop(ticket, None)
    return bad


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.floor(p / 100 * len(ordered)))] if ordered else 0.0


def _summary(seconds: list[float]) -> dict[str, float | None]:
    if not seconds:
        return {"p50": None, "p99": None, "max": None}
    return {
        "p50": round(_pct(seconds, 50) * 1000, 2),
        "p99": round(_pct(seconds, 99) * 1000, 2),
        "max": round(max(seconds) * 1000, 2),
    }


def queue_chart(samples: list[tuple[float, dict[str, int]]], site: Site, path: Path) -> None:
    """A PNG line chart of people waiting over the day (total and the five busiest services),
    with labelled axes and a legend in type readable on a laptop screen or a printed page."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = 1200, 600
    left, right, top, bottom = 100, 40, 70, 80
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font, small = ImageFont.load_default(size=20), ImageFont.load_default(size=16)
    if not samples:
        image.save(path)
        return
    totals = [sum(w.values()) for _, w in samples]
    peak = max(*totals, 1)
    busiest = sorted(site.services, key=lambda c: -max(w.get(c, 0) for _, w in samples))[:5]
    t0, t1 = samples[0][0], samples[-1][0]
    span = max(t1 - t0, 1.0)
    plot_w, plot_h = width - left - right, height - top - bottom

    def xy(t: float, value: float) -> tuple[float, float]:
        return left + (t - t0) / span * plot_w, top + plot_h - value / peak * plot_h

    step = _nice_step(peak / 5)
    for value in range(0, peak + 1, step):  # value gridlines and labels
        _, y = xy(t0, value)
        draw.line([(left, y), (width - right, y)], fill="#dddddd")
        draw.text((left - 10, y), str(value), fill="black", font=small, anchor="rm")
    tz = site.site.tz
    for hour_t in range(int(t0 // 3600 + 1) * 3600, int(t1) + 1, 3600):  # hours of the day
        x, _ = xy(hour_t, 0)
        draw.line([(x, top + plot_h), (x, top + plot_h + 6)], fill="black")
        label = datetime.fromtimestamp(hour_t, tz).strftime("%H:%M")
        draw.text((x, top + plot_h + 10), label, fill="black", font=small, anchor="mt")
    draw.line([(left, top), (left, top + plot_h), (width - right, top + plot_h)], fill="black")
    colours = ["#c0392b", "#2980b9", "#27ae60", "#8e44ad", "#d35400"]
    series = [("Total", "black", totals)] + [
        (f"{code} {site.services[code].name.id}", colours[i], [w.get(code, 0) for _, w in samples])
        for i, code in enumerate(busiest)
    ]
    for i, (name, colour, values) in enumerate(series):
        points = [xy(t, v) for (t, _), v in zip(samples, values, strict=True)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=3 if i == 0 else 2)
        y = top + 10 + 24 * i  # legend, top right
        draw.line([(width - right - 250, y), (width - right - 220, y)], fill=colour, width=3)
        draw.text((width - right - 212, y), name, fill=colour, font=small, anchor="lm")
    zone = datetime.fromtimestamp(t0, tz).strftime("%Z")
    draw.text(
        (left, 20),
        f"Orang menunggu / people waiting, {site.site.name} (puncak / peak {peak})",
        fill="black",
        font=font,
    )
    draw.text(
        (left + plot_w / 2, height - 25),
        f"Jam / time of day ({zone})",
        fill="black",
        font=font,
        anchor="mm",
    )
    axis = Image.new("RGB", (plot_h, 30), "white")  # the value axis' label, turned upright
    ImageDraw.Draw(axis).text(
        (plot_h / 2, 15), "Orang menunggu / people waiting", fill="black", font=font, anchor="mm"
    )
    image.paste(axis.rotate(90, expand=True), (8, top))
    image.save(path)


def _nice_step(rough: float) -> int:
    """1, 2, 5, 10, 20, 50, ... at least `rough`."""
    magnitude = 10 ** max(0, math.floor(math.log10(max(rough, 1))))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= rough)
