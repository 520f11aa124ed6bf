"""The live dashboard for staff: per service, per counter, the device fleet and alerts,
updated by server-sent events as the hub publishes (no manual refresh)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, current_app, render_template

from protocol import messages as m
from protocol.site import Counter, Service
from web import base, live
from web.hub_link import FleetEntry, HubLink
from web.live import Event, sse
from web.security import requires

bp = Blueprint("dashboard", __name__)


@dataclass(frozen=True)
class ServiceRow:
    """One service line of the dashboard."""

    code: str
    spec: Service
    state: m.ServiceState | None


@dataclass(frozen=True)
class CounterRow:
    """One counter line of the dashboard."""

    number: int
    spec: Counter
    state: m.CounterState | None
    waiting: int = 0  # for its services now, from their service states

    @property
    def services(self) -> tuple[str, ...]:
        """The services served here now (the admin may have changed the inventory's)."""
        return self.state.services if self.state and self.state.services else self.spec.services


@dataclass(frozen=True)
class DeviceRow:
    """One device of the inventory with its last presence message."""

    device: str
    role: str
    entry: FleetEntry | None


def service_row(service: HubLink, code: str) -> ServiceRow:
    """A service with its latest retained state."""
    state = service.retained.get(service.bus.topics.service_state(code))
    return ServiceRow(code, service.site.services[code], state)  # type: ignore[arg-type]


def counter_row(service: HubLink, number: int) -> CounterRow:
    """A counter with its latest retained state and how many wait for its services now."""
    topics = service.bus.topics
    state = service.retained.get(topics.counter_state(number))
    row = CounterRow(number, service.site.counters[number], state)  # type: ignore[arg-type]
    queues = (service.retained.get(topics.service_state(code)) for code in row.services)
    waiting = sum(q.waiting for q in queues if isinstance(q, m.ServiceState))
    return CounterRow(number, row.spec, row.state, waiting)


def device_rows(service: HubLink) -> list[DeviceRow]:
    """Every inventory device (and any unknown one that reported), with its presence."""
    fleet = dict(service.fleet)
    rows = [DeviceRow(d, spec.role, fleet.pop(d, None)) for d, spec in service.site.devices.items()]
    rows += [DeviceRow(d, e.status.role, e) for d, e in sorted(fleet.items())]
    return rows


def alerts(service: HubLink) -> list[m.Alert]:
    """Open alerts, oldest first."""
    found = [a for a in service.snapshot("alert") if isinstance(a, m.Alert)]
    return sorted(found, key=lambda a: a.raised_at)


def site_state(service: HubLink) -> m.SiteState | None:
    """The site summary."""
    state = service.retained.get(service.bus.topics.site_state())
    return state if isinstance(state, m.SiteState) else None


@bp.get("/dashboard")
@requires("officer")
def index() -> Any:
    """The whole dashboard, rendered from the hub's retained state."""
    service = base.hub()
    return render_template(
        "dashboard.html",
        services=[service_row(service, c) for c in service.site.services],
        counters=[counter_row(service, n) for n in service.site.counters],
        devices=device_rows(service),
        alerts=alerts(service),
        summary=site_state(service),
    )


def _fragment(kind: str, item: Any) -> str:
    return render_template("_dashboard_row.html", kind=kind, item=item)


def dashboard_updates(service: HubLink, events: list[Event]) -> list[str]:
    """SSE messages replacing the rows that changed (each row once per batch)."""
    out: dict[str, str] = {}
    for kind, message in events:
        if isinstance(message, m.ServiceState) and message.service in service.site.services:
            row = service_row(service, message.service)
            out[f"svc-{row.code}"] = _fragment("service", row)
            for number in service.site.counters:  # their waiting counts changed with it
                crow = counter_row(service, number)
                if message.service in crow.services:
                    out[f"ctr-{number}"] = _fragment("counter", crow)
        elif isinstance(message, m.CounterState) and message.counter in service.site.counters:
            crow = counter_row(service, message.counter)
            out[f"ctr-{crow.number}"] = _fragment("counter", crow)
        elif isinstance(message, m.SiteState):
            out["summary"] = _fragment("summary", site_state(service))
        elif isinstance(message, m.DeviceStatus):
            entry = service.fleet.get(message.device)
            spec = service.site.devices.get(message.device)
            role = spec.role if spec is not None else message.role
            out[f"dev-{message.device}"] = _fragment(
                "device", DeviceRow(message.device, role, entry)
            )
        elif isinstance(message, m.Alert) or kind == "alert_cleared":
            out["alerts"] = _fragment("alerts", alerts(service))
    return [sse("replace", {"id": key, "html": html}) for key, html in out.items()]


@bp.get("/dashboard/events")
@requires("officer")
def events() -> Any:
    """Server-sent events: rendered rows of whatever changed."""
    service = base.hub()
    return live.response(
        base.feed(),
        lambda: [sse("hello", {"seq": service.seq})],
        lambda batch: dashboard_updates(service, batch),
        current_app.config,
    )
