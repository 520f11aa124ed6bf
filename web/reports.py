"""Supervisor pages: the service report with charts and CSV, the satisfaction index (IKM) with
rating-pad results per officer, and alerts to acknowledge."""

from __future__ import annotations

import sqlite3
from datetime import date
from typing import Any

from flask import Blueprint, Response, render_template, request, url_for

from hub import bookings
from hub import reports as r
from protocol import messages as m
from protocol.ikm import ELEMENTS
from protocol.texts import DAYS, break_text
from web import base
from web.hub_link import WEB_DEVICE
from web.security import requires
from webcommon.charts import bar_chart, heatmap
from webcommon.export import csv_download, csv_text

bp = Blueprint("reports", __name__)


def _today() -> date:
    service = base.hub()
    return service.site.local_now(service.clock()).date()


def _period() -> tuple[r.Period, str | None]:
    """The period asked for (default: today), or today's with the reason it was refused."""
    start, end = request.args.get("start"), request.args.get("end")
    today = _today()
    if not start and not end:
        return r.Period.of(
            request.args.get("preset", "day") if request.args.get("preset") in r.BUCKETS else "day",
            today,
        ), None
    try:
        return r.Period.parse(start or end or "", end or start or ""), None
    except r.ReportError as exc:
        said = base.t(f"rep.err.{exc.key}", **exc.values) if exc.key else str(exc)
        return r.Period.of("day", today), said


def _choice(name: str, allowed: tuple[str, ...], default: str) -> str:
    value = request.args.get(name, default)
    return value if value in allowed else default


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 60


@bp.get("/reports")
@requires("supervisor")
def index() -> Any:
    """The service report for a period, grouped and bucketed as asked."""
    period, error = _period()
    group = _choice("group", r.GROUPS, "service")
    bucket = _choice("bucket", r.BUCKETS, "day")
    report = r.build_report(
        base.db(), base.site(), period, group=group, bucket=bucket, lang=base.lang()
    )
    chart = bar_chart(
        [
            (row.label, (_minutes(row.wait_median_s), _minutes(row.wait_p90_s)))
            for row in report.rows
        ],
        ("median", "p90"),
        unit="′",
        title=base.t("rep.chart_wait", group=base.t(f"rep.{group}")),
    )
    volume = bar_chart(
        [(row.label, (row.issued, row.served)) for row in report.series],
        (base.t("rep.issued"), base.t("rep.served")),
        title=base.t("rep.series", bucket=base.t(f"rep.{bucket}")),
    )
    hours = heatmap(report.heatmap, [d[:3] for d in DAYS[base.lang()]], title=base.t("rep.heatmap"))
    presets = {p: r.Period.of(p, _today()) for p in r.BUCKETS}
    try:
        booked = bookings.funnel(base.db(), str(period.start), str(period.end))
    except sqlite3.OperationalError:  # a database no hub with bookings has opened yet
        booked = []
    return render_template(
        "reports.html",
        funnel=booked,
        breaks=r.breaks(base.db(), base.site(), period),
        break_reasons=[(reason, break_text(reason, base.lang())) for reason in m.BREAK_REASONS],
        service_name=lambda code: (
            base.site().services[code].name.get(base.lang())
            if code in base.site().services
            else code
        ),
        report=report,
        error=error,
        chart=chart,
        volume=volume,
        hours=hours,
        presets=presets,
        groups=r.GROUPS,
        buckets=r.BUCKETS,
    )


@bp.get("/reports/export.csv")
@requires("supervisor")
def export() -> Any:
    """The report's table as CSV (`table=groups`, `series` or `breaks`)."""
    period, error = _period()
    if error:
        return Response(error + "\n", status=400, mimetype="text/plain")
    group = _choice("group", r.GROUPS, "service")
    bucket = _choice("bucket", r.BUCKETS, "day")
    report = r.build_report(
        base.db(), base.site(), period, group=group, bucket=bucket, lang=base.lang()
    )
    table = request.args.get("table", "groups")
    if table == "breaks":
        text = r.breaks_csv(r.breaks(base.db(), base.site(), period), m.BREAK_REASONS)
        return csv_download(text, f"istirahat-{period.start}-{period.end}.csv")
    rows = report.series if table == "series" else [*report.rows, report.total]
    name = (
        f"laporan-{table}-{group if table != 'series' else bucket}-{period.start}-{period.end}.csv"
    )
    return csv_download(r.to_csv(rows), name)


def _ikm_filters() -> tuple[str | None, str | None]:
    site = base.site()
    service = request.args.get("service") or None
    agency = request.args.get("agency") or None
    return (service if service in site.services else None), (
        agency if agency in site.agencies else None
    )


@bp.get("/reports/ikm")
@requires("supervisor")
def ikm() -> Any:
    """IKM by period, service and agency; comments; rating-pad results per officer."""
    period, error = _period()
    service, agency = _ikm_filters()
    summary = r.survey_summary(base.db(), period, service=service, agency=agency)
    ratings = r.ratings_by_officer(base.db(), base.site(), period)
    chart = None
    if summary.result.respondents:
        chart = bar_chart(
            [
                (e.code + " " + e.name.get(base.lang()), (float(n),))
                for e, n in zip(ELEMENTS, summary.result.nrr, strict=True)
            ],
            (base.t("ikm.nrr"),),
            title=base.t("ikm.title"),
        )
    return render_template(
        "ikm.html",
        period=period,
        error=error,
        summary=summary,
        elements=ELEMENTS,
        ratings=ratings,
        chart=chart,
        service=service,
        agency=agency,
        presets={p: r.Period.of(p, _today()) for p in r.BUCKETS},
    )


@bp.get("/reports/ikm.csv")
@requires("supervisor")
def ikm_csv() -> Any:
    """NRR per element, the index and its category as CSV."""
    period, error = _period()
    if error:
        return Response(error + "\n", status=400, mimetype="text/plain")
    service, agency = _ikm_filters()
    result = r.survey_summary(base.db(), period, service=service, agency=agency).result
    rows: list[list[object]] = []
    for i, element in enumerate(ELEMENTS):
        nrr = float(result.nrr[i]) if result.nrr else None
        figures = ["", ""] if nrr is None else [f"{nrr:.4f}", f"{nrr / 9:.4f}"]
        rows.append([element.code, element.name.id, *figures])
    rows.append(["respondents", result.respondents, "", ""])
    rows.append(["ikm", result.value, "", ""])
    rows.append(["category", result.category.letter if result.category else "", "", ""])
    text = csv_text(["element", "name", "nrr", "weighted_nrr"], rows)
    name = f"ikm-{service or agency or 'semua'}-{period.start}-{period.end}.csv"
    return csv_download(text, name)


@bp.get("/alerts")
@requires("supervisor")
def alerts() -> Any:
    """Open alerts (consecutive complaints...) and the latest acknowledged ones."""
    return render_template("alerts.html", alerts=r.alerts(base.db()))


@bp.post("/alerts/<alert_id>/ack")
@requires("supervisor")
def ack(alert_id: str) -> Any:
    """Acknowledge an alert through the hub (clears its retained topic for every screen)."""
    return base.submit_form(
        lambda by, request_id: m.AckAlert(
            request_id=request_id, device=WEB_DEVICE, alert_id=alert_id, by=by
        ),
        url_for("reports.alerts"),
        lambda _reply: base.t("admin.saved"),
    )
