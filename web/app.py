"""The site web app (Flask); for now its health check while the pages move out of the hub."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify

from protocol.mqtt import Bus
from protocol.site import Site


def create_app(site: Site, bus: Bus) -> Flask:
    """The app for `site`, talking to the hub over `bus`."""
    app = Flask(__name__)
    app.extensions["mpp_bus"] = bus

    @app.get("/healthz")
    def health() -> Any:
        ok = bus.connected
        return jsonify(ok=ok, site=site.site.id), (200 if ok else 503)

    return app
