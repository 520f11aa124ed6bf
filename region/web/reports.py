"""Cross-site reports for a period (table, chart, CSV) and the IKM per service unit."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, render_template, request

from protocol.ikm import ELEMENTS
from region import bookings, queries
from region.web import base
from region.web.security import requires
from webcommon.charts import bar_chart
from webcommon.export import csv_download

bp = Blueprint("reports", __name__)


def _period() -> queries.Period:
    return queries.Period.parse(request.args.get("start"), request.args.get("end"), base.today())


def _said(exc: queries.QueryError) -> str:
    """The refusal in the page's language."""
    if exc.key:
        return f"{base.t('error.bad_period')}: " + base.t(f"error.period.{exc.key}").format(
            **exc.values
        )
    return f"{base.t('error.bad_period')}: {exc}"


def _site() -> str | None:
    return request.args.get("site") or None


def _sites() -> list[tuple[str, str]]:
    with base.db() as conn:
        return [tuple(r) for r in conn.execute("SELECT site, name FROM sites ORDER BY name")]


@bp.get("/reports")
@requires("supervisor")
def index() -> Any:
    """Visitors, waits, service times, SLA compliance and no-shows by site/agency/service."""
    group = request.args.get("group", "site")
    try:
        period = _period()
        with base.db() as conn:
            rep = queries.report(conn, period, group=group, site=_site(), lang=g.lang)
    except queries.QueryError as exc:
        return render_template("error.html", message=_said(exc)), 400
    chart = bar_chart(
        [(f.label, (f.wait_mean_s / 60 if f.wait_mean_s is not None else None,)) for f in rep.rows],
        (base.t("chart.wait"),),
        title=base.t("chart.wait"),
    )
    with base.db() as conn:
        names = dict(conn.execute("SELECT site, name FROM sites").fetchall())
        services = {
            (site, code): spec["name"].get(g.lang) or spec["name"]["id"]
            for site, specs in conn.execute("SELECT site, services FROM sites").fetchall()
            for code, spec in specs.items()
        }
        booked = bookings.funnel(conn, period.start, period.end, _site())
    return render_template(
        "reports.html", rep=rep, chart=chart, sites=_sites(), minutes=base.minutes,
        groups=queries.GROUPS, funnel=booked, site_names=names, service_names=services,
    )  # fmt: skip


@bp.get("/reports.csv")
@requires("supervisor")
def csv() -> Any:
    """The report as CSV."""
    try:
        period = _period()
        with base.db() as conn:
            rep = queries.report(
                conn, period, group=request.args.get("group", "site"), site=_site(), lang=g.lang
            )
    except queries.QueryError as exc:
        return Response(str(exc), status=400, mimetype="text/plain")
    name = f"laporan-{rep.group}-{period.start}-{period.end}.csv"
    return csv_download(queries.report_csv(rep), name)


@bp.get("/ikm")
@requires("supervisor")
def ikm() -> Any:
    """IKM per service unit and period: respondents, NRR per element, index, category."""
    unit = request.args.get("unit", "service")
    try:
        period = _period()
        with base.db() as conn:
            units = queries.ikm_by_unit(conn, period, unit=unit, site=_site(), lang=g.lang)
            site_names = dict(conn.execute("SELECT site, name FROM sites").fetchall())
    except queries.QueryError as exc:
        return render_template("error.html", message=_said(exc)), 400
    if request.args.get("format") == "csv":
        name = f"ikm-{unit}-{period.start}-{period.end}.csv"
        return csv_download(queries.ikm_csv(units), name)
    return render_template(
        "ikm.html", units=units, period=period, unit=unit, elements=ELEMENTS,
        sites=_sites(), site_names=site_names,
    )  # fmt: skip
