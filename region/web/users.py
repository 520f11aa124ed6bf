"""Accounts of the regional web (admins only)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for

from region.web import base
from region.web.accounts import ROLES, AccountError
from region.web.security import requires

bp = Blueprint("users", __name__)


@bp.route("/users", methods=["GET", "POST"])
@requires("admin")
def index() -> Any:
    """List accounts; add one."""
    accounts = base.region()["accounts"]
    error = None
    if request.method == "POST":
        try:
            accounts.add(
                request.form.get("username", ""),
                request.form.get("name", ""),
                request.form.get("role", ""),
                request.form.get("password", ""),
            )
            return redirect(url_for("users.index", added=1))
        except AccountError as exc:
            error = str(exc)
    status = 400 if error else 200
    return render_template("users.html", users=accounts.all(), roles=ROLES, error=error), status
