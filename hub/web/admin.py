"""Administration: services open/closed and counters (reaching every device at once over MQTT
through the hub), staff accounts and roles, featured products for the entrance screens.

Services, counters, zones and devices themselves are defined in the site inventory (TOML): the
provisioning tool builds every device's bundle and the broker ACL from it, so they are edited
there, not here; this page shows them."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for

from hub.web import base
from hub.web.dashboard import counter_row, device_rows, service_row
from hub.web.featured import FeaturedError, FeaturedStore
from hub.web.security import requires
from hub.web.users import ROLES, AccountError
from protocol import messages as m

log = logging.getLogger("mpp.web")
bp = Blueprint("admin", __name__, url_prefix="/admin")


def _featured() -> FeaturedStore:
    return current_app.extensions["mpp_featured"]


def _to_screens() -> None:
    """Publish the featured products to the displays (through the hub's single writer)."""
    try:
        base.hub().publish_featured()
    except TimeoutError:
        log.error("hub did not publish the featured products in time")
        base.flash_message("error", base.t("error.hub"))


def _done(reply: m.Reply) -> None:
    if reply.ok:
        base.flash_message("ok", base.t("admin.saved"))
    else:
        base.flash_message("error", base.reply_text(reply))


@bp.get("")
@requires("admin")
def index() -> Any:
    """Services, counters, zones and devices of the inventory, with their live state."""
    service = base.hub()
    return render_template(
        "admin.html",
        services=[service_row(service, c) for c in service.site.services],
        counters=[counter_row(service, n) for n in service.site.counters],
        devices=device_rows(service),
    )


@bp.post("/services/<code>/<action>")
@requires("admin")
def set_service(code: str, action: str) -> Any:
    """Close or reopen a service for new tickets (kiosks see it at once)."""
    if code not in base.site().services or action not in ("open", "close"):
        abort(404)
    user = base.current_user()
    assert user is not None
    model = m.OpenService if action == "open" else m.CloseService
    _done(base.submit(model(device="hub", service=code, by=user.name), user.username))
    return redirect(url_for("admin.index"))


@bp.post("/counters/<int:number>/close")
@requires("admin")
def close_counter(number: int) -> Any:
    """Close a counter left open (the current ticket is finished, no more calls there)."""
    if number not in base.site().counters:
        abort(404)
    user = base.current_user()
    assert user is not None
    _done(base.submit(m.CloseCounter(device="hub", counter=number), user.username))
    return redirect(url_for("admin.index"))


@bp.get("/users")
@requires("admin")
def users() -> Any:
    """Staff accounts."""
    return render_template("admin_users.html", accounts=base.users().all(), roles=ROLES)


@bp.post("/users")
@requires("admin")
def add_user() -> Any:
    """Create an account."""
    form = request.form
    try:
        base.users().add(
            form.get("username", ""),
            form.get("name", ""),
            form.get("role", ""),
            form.get("password", ""),
        )
        base.flash_message("ok", base.t("admin.saved"))
    except AccountError as exc:
        base.flash_message("error", str(exc))
    return redirect(url_for("admin.users"))


@bp.post("/users/<username>")
@requires("admin")
def update_user(username: str) -> Any:
    """Change an account's role, active flag or password."""
    form = request.form
    try:
        base.users().update(
            username,
            role=form.get("role") or None,
            active=form.get("active") == "1",
            password=form.get("password") or None,
        )
        base.flash_message("ok", base.t("admin.saved"))
    except AccountError as exc:
        base.flash_message("error", str(exc))
    return redirect(url_for("admin.users"))


@bp.get("/featured")
@requires("admin")
def featured() -> Any:
    """Featured products per entrance zone."""
    zones = {c: z for c, z in base.site().zones.items() if z.kind == "entrance"}
    return render_template("admin_featured.html", products=_featured().all(), zones=zones)


@bp.post("/featured")
@requires("admin")
def add_featured() -> Any:
    """Upload a product image with its captions."""
    zone = request.form.get("zone", "")
    upload = request.files.get("image")
    if zone not in base.site().zones:
        abort(400)
    try:
        _featured().add(
            zone,
            upload.read() if upload else b"",
            request.form.get("caption_id", ""),
            request.form.get("caption_en", ""),
        )
        base.flash_message("ok", base.t("admin.saved"))
        _to_screens()
    except FeaturedError as exc:
        base.flash_message("error", str(exc))
    return redirect(url_for("admin.featured"))


@bp.post("/featured/<int:product_id>/remove")
@requires("admin")
def remove_featured(product_id: int) -> Any:
    """Remove a product."""
    if not _featured().remove(product_id):
        abort(404)
    base.flash_message("ok", base.t("admin.saved"))
    _to_screens()
    return redirect(url_for("admin.featured"))
