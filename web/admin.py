"""Administration: services open/closed, their daily quota and cut-off, which services each
counter serves and in what order, closing counters, how each zone's screens speak (all through
the hub's command path, so every device sees the change at once over MQTT), staff accounts and
roles, featured products for the entrance screens.

Services, counters, zones and devices themselves are defined in the site inventory (TOML): the
provisioning tool builds every device's bundle, the printed tickets' texts and the broker ACL
from it, so adding or renaming them is done there; this page shows them and changes what can
change without a restart."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for

from protocol import messages as m
from web import base
from web.dashboard import counter_row, device_rows, service_row
from web.display import zone_sound as display_sound
from web.featured import FeaturedError, FeaturedPublisher, FeaturedStore
from web.hub_link import WEB_DEVICE
from web.security import requires
from web.users import ROLES, AccountError

log = logging.getLogger("mpp.web")
bp = Blueprint("admin", __name__, url_prefix="/admin")
MAX_QUOTA = 999  # ticket numbers have three digits
NUMBER = re.compile(r"[0-9]{1,3}")
CLOCK = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


def _featured() -> FeaturedStore:
    return current_app.extensions["mpp_featured"]


def _to_screens() -> None:
    """Publish the featured products to the displays (the web's own retained message)."""
    publisher: FeaturedPublisher = current_app.extensions["mpp_featured_out"]
    publisher.publish(changed=True)


def _saved(_reply: m.Reply) -> str:
    return base.t("admin.saved")


def _local(kind: str, back: str, apply: Callable[[], None]) -> Any:
    """A change the web makes itself (accounts, featured products), applied once per form:
    a replayed form is told it was done and changes nothing again."""
    user = base.current_user()
    assert user is not None
    try:
        request_id = base.form_request_id()
    except base.FormError as exc:
        base.flash_message("error", str(exc))
        return redirect(back)

    def run() -> str:
        apply()
        return "saved"

    try:
        base.users().once(request_id, user.username, kind, run)
        base.flash_message("ok", base.t("admin.saved"))
    except AccountError as exc:
        base.flash_message("error", base.t(exc.key, **exc.values))
    except FeaturedError as exc:
        base.flash_message("error", base.t(exc.key, **exc.values))
    log.info("web change", extra={"user": user.username, "kind": kind, "request_id": request_id})
    return redirect(back)


def closed_services() -> set[str]:
    """Services staff have closed for new tickets (the hub's table, read-only)."""
    return {row[0] for row in base.db().execute("SELECT service FROM closed_services")}


@bp.get("")
@requires("admin")
def index() -> Any:
    """Services, counters, zones and devices of the inventory, with their live state."""
    service = base.hub()
    return render_template(
        "admin.html",
        services=[service_row(service, c) for c in service.site.services],
        counters=[counter_row(service, n) for n in service.site.counters],
        sounds={z: display_sound(service, z) for z in service.site.zones},
        devices=device_rows(service),
        closed_services=closed_services(),
    )


@bp.post("/services/<code>/<action>")
@requires("admin")
def set_service(code: str, action: str) -> Any:
    """Close or reopen a service for new tickets (kiosks see it at once)."""
    if code not in base.site().services or action not in ("open", "close"):
        abort(404)
    model = m.OpenService if action == "open" else m.CloseService
    return base.submit_form(
        lambda by, rid: model(request_id=rid, device=WEB_DEVICE, service=code, by=by),
        url_for("admin.index"),
        _saved,
    )


@bp.post("/counters/<int:number>/close")
@requires("admin")
def close_counter(number: int) -> Any:
    """Close a counter left open (the current ticket is finished, no more calls there)."""
    if number not in base.site().counters:
        abort(404)
    return base.submit_form(
        lambda _by, rid: m.CloseCounter(request_id=rid, device=WEB_DEVICE, counter=number),
        url_for("admin.index"),
        _saved,
    )


def _change(command: Callable[[str, str], m.Command], form_url: str) -> Any:
    """Apply the command a form describes (`command(user's name, request id)`) through the
    hub; a form the command cannot be made from (FormError, in words) goes back to it,
    changing nothing; a replayed form is applied once (its request id)."""
    user = base.current_user()
    assert user is not None
    try:
        made = command(user.name, base.form_request_id())
    except base.FormError as exc:
        base.flash_message("error", str(exc))
        return redirect(form_url)
    reply = base.submit(made, user.username)
    if reply.ok:
        base.flash_message("ok", base.t("admin.saved"))
        return redirect(url_for("admin.index"))
    base.flash_message("error", base.reply_text(reply))
    return redirect(form_url)


@bp.route("/services/<code>", methods=["GET", "POST"])
@requires("admin")
def service_limits(code: str) -> Any:
    """A service's daily quota and its last time for tickets (the inventory's by default)."""
    site = base.site()
    if code not in site.services:
        abort(404)
    spec = site.services[code]
    if request.method == "GET":
        row = service_row(base.hub(), code)
        return render_template("admin_service.html", code=code, spec=spec, row=row)
    form = request.form

    def command(by: str, rid: str) -> m.Command:
        if form.get("reset") == "1":
            quota, cutoff = spec.daily_quota, spec.cutoff
        else:
            quota, cutoff = _limits(form.get("daily_quota", ""), form.get("cutoff", ""))
        return m.SetServiceLimits(
            request_id=rid, device=WEB_DEVICE, service=code, daily_quota=quota, cutoff=cutoff, by=by
        )

    return _change(command, url_for("admin.service_limits", code=code))


def _limits(quota_text: str, cutoff_text: str) -> tuple[int, str | None]:
    """The form's quota and cut-off, checked; ValueError says what is wrong in words."""
    quota_text, cutoff_text = quota_text.strip(), cutoff_text.strip()
    if not NUMBER.fullmatch(quota_text) or not 1 <= int(quota_text) <= MAX_QUOTA:
        raise base.FormError(base.t("admin.bad_quota"))
    if cutoff_text and not CLOCK.fullmatch(cutoff_text):
        raise base.FormError(base.t("admin.bad_cutoff"))
    return int(quota_text), cutoff_text or None


@bp.route("/counters/<int:number>", methods=["GET", "POST"])
@requires("admin")
def counter_services(number: int) -> Any:
    """The services a counter serves, in order of preference (the inventory's by default)."""
    site = base.site()
    if number not in site.counters:
        abort(404)
    spec = site.counters[number]
    if request.method == "GET":
        serving = counter_row(base.hub(), number).services
        return render_template(
            "admin_counter.html", number=number, spec=spec, serving=serving, services=site.services
        )
    form = request.form

    def command(by: str, rid: str) -> m.Command:
        reset = form.get("reset") == "1"
        chosen = spec.services if reset else _chosen(form, tuple(site.services))
        return m.AssignCounter(
            request_id=rid, device=WEB_DEVICE, counter=number, services=chosen, by=by
        )

    return _change(command, url_for("admin.counter_services", number=number))


@bp.route("/zones/<zone_code>", methods=["GET", "POST"])
@requires("admin")
def zone_sound(zone_code: str) -> Any:
    """How a zone's screens speak calls: on or off, volume, numbers as words or digits."""
    site = base.site()
    if zone_code not in site.zones:
        abort(404)
    zone = site.zones[zone_code]
    if request.method == "GET":
        now = display_sound(base.hub(), zone_code)
        return render_template("admin_zone.html", zone_code=zone_code, zone=zone, sound=now)
    form = request.form

    def command(by: str, rid: str) -> m.Command:
        if form.get("reset") == "1":
            speech, volume, reading = zone.speech, zone.volume, zone.number_reading
        else:
            speech = form.get("speech") == "1"
            volume_text, reading = form.get("volume", "").strip(), form.get("number_reading")
            if not NUMBER.fullmatch(volume_text) or int(volume_text) > 100:
                raise base.FormError(base.t("admin.bad_volume"))
            if reading not in ("words", "digits"):
                raise base.FormError(base.t("admin.bad_reading"))
            volume = int(volume_text) / 100
        return m.SetZoneSound(
            request_id=rid,
            device=WEB_DEVICE,
            zone=zone_code,
            speech=speech,
            volume=volume,
            number_reading=reading,  # type: ignore[arg-type]
            by=by,
        )

    return _change(command, url_for("admin.zone_sound", zone_code=zone_code))


def _chosen(form: Any, codes: tuple[str, ...]) -> tuple[str, ...]:
    """The ticked services ordered by their order field (then the inventory's order)."""
    picked = []
    for i, code in enumerate(codes):
        if form.get(f"serve-{code}") != "1":
            continue
        order = form.get(f"order-{code}", "").strip() or str(len(codes) + i)
        if not NUMBER.fullmatch(order):
            raise base.FormError(base.t("admin.bad_order"))
        picked.append((int(order), i, code))
    if not picked:
        raise base.FormError(base.t("admin.no_services"))
    return tuple(code for _, _, code in sorted(picked))


@bp.get("/users")
@requires("admin")
def users() -> Any:
    """Staff accounts."""
    return render_template("admin_users.html", accounts=base.users().all(), roles=ROLES)


@bp.post("/users")
@requires("admin")
def add_user() -> Any:
    """Create an account (once per form)."""
    form = request.form
    return _local(
        "add_user",
        url_for("admin.users"),
        lambda: base.users().add(
            form.get("username", ""), form.get("name", ""), form.get("role", ""),
            form.get("password", ""),
        ),
    )  # fmt: skip


@bp.post("/users/<username>")
@requires("admin")
def update_user(username: str) -> Any:
    """Change an account's role, active flag or password (once per form)."""
    form = request.form
    return _local(
        "update_user",
        url_for("admin.users"),
        lambda: base.users().update(
            username,
            role=form.get("role") or None,
            active=form.get("active") == "1",
            password=form.get("password") or None,
        ),
    )


@bp.get("/featured")
@requires("admin")
def featured() -> Any:
    """Featured products per entrance zone."""
    zones = {c: z for c, z in base.site().zones.items() if z.kind == "entrance"}
    return render_template("admin_featured.html", products=_featured().all(), zones=zones)


@bp.post("/featured")
@requires("admin")
def add_featured() -> Any:
    """Upload a product image with its captions (once per form), then to the screens."""
    zone = request.form.get("zone", "")
    upload = request.files.get("image")
    if zone not in base.site().zones:
        abort(400)

    def add() -> None:
        _featured().add(
            zone,
            upload.read() if upload else b"",
            request.form.get("caption_id", ""),
            request.form.get("caption_en", ""),
        )
        _to_screens()

    return _local("add_featured", url_for("admin.featured"), add)


@bp.post("/featured/<int:product_id>/remove")
@requires("admin")
def remove_featured(product_id: int) -> Any:
    """Remove a product (once per form), then from the screens."""
    if not any(p.id == product_id for p in _featured().all()):
        abort(404)

    def remove() -> None:
        if _featured().remove(product_id):
            _to_screens()

    return _local("remove_featured", url_for("admin.featured"), remove)
