"""All sites at a glance (live: the page refreshes itself), and one site's drill-down."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, g, render_template

from region import queries
from region.web import base
from region.web.security import requires

bp = Blueprint("pages", __name__)


@bp.get("/")
@requires("viewer")
def overview() -> Any:
    """Every site: link, waiting now, served today, longest wait, counters, devices, alerts."""
    cfg = base.config()
    with base.db() as conn:
        rows = queries.overview(
            conn,
            now=base.now(),
            link_timeout_s=cfg.web.link_timeout_s,
            expected=[(s.id, s.name) for s in cfg.sites],
        )
    totals = {
        "waiting": sum(r.waiting for r in rows),
        "served": sum(r.served for r in rows),
        "connected": sum(r.connected for r in rows),
    }
    return render_template(
        "overview.html",
        rows=rows,
        totals=totals,
        refresh=current_app.config["REFRESH_S"],
        minutes=base.minutes,
        clock_time=base.clock_time,
    )


@bp.get("/site/<site_id>")
@requires("viewer")
def site(site_id: str) -> Any:
    """One site now: link, per service today, counters, devices offline, open alerts."""
    cfg = base.config()
    with base.db() as conn:
        found = conn.execute(
            "SELECT name, timezone, services, agencies, "
            "(to_timestamp(%s) AT TIME ZONE timezone)::date FROM sites WHERE site = %s",
            (base.now(), site_id),
        ).fetchone()
        if found is None:
            abort(404)
        name, tz, services, _agencies, today = found
        row = next(
            r
            for r in queries.overview(conn, now=base.now(), link_timeout_s=cfg.web.link_timeout_s)
            if r.site == site_id
        )
        per_service = conn.execute(
            "SELECT d.service, sum(d.issued), sum(d.served), sum(d.waits), sum(d.wait_s), "
            "(SELECT count(*) FROM tickets t WHERE t.site = %(s)s AND t.day = %(d)s "
            " AND t.status = 'waiting' AND t.service = d.service) "
            "FROM daily d WHERE d.site = %(s)s AND d.day = %(d)s GROUP BY d.service "
            "ORDER BY d.service",
            {"s": site_id, "d": today},
        ).fetchall()
        counters = conn.execute(
            "SELECT number, open, officer, at FROM counters WHERE site = %s ORDER BY number",
            (site_id,),
        ).fetchall()
        devices = conn.execute(
            "SELECT device, detail, at FROM devices WHERE site = %s AND NOT online ORDER BY device",
            (site_id,),
        ).fetchall()
        alerts = conn.execute(
            "SELECT id, raised_at, counter, officer FROM alerts WHERE site = %s "
            "AND acked_by IS NULL ORDER BY raised_at DESC LIMIT 50",
            (site_id,),
        ).fetchall()
    lang = g.get("lang", "id")
    service_names = {
        code: spec["name"].get(lang) or spec["name"]["id"] for code, spec in services.items()
    }
    return render_template(
        "site.html",
        site_id=site_id,
        name=name,
        tz=tz,
        row=row,
        per_service=per_service,
        service_names=service_names,
        counters=counters,
        devices=devices,
        alerts=alerts,
        minutes=base.minutes,
        clock_time=base.clock_time,
        refresh=current_app.config["REFRESH_S"],
    )
