"""Who may open what, forms that cannot be forged, login throttling and safe responses.

Every view declares its audience with `@public` or `@requires(role)`; a view that declares
neither is refused (fail closed). Every POST carries the session's CSRF token. The mechanics
are shared with the region's web (webcommon/security.py); the site's roles and its https rule
for staff are here.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request

from web.users import RANK
from webcommon import security as shared
from webcommon.security import PUBLIC, LoginThrottle, audience, csrf_token, public

__all__ = ["LoginThrottle", "csrf_token", "needs_https", "public", "requires", "security_headers"]

requires = shared.role_marker(RANK)  # officer < supervisor < admin

STAFF_ON_HTTPS_PUBLIC = ("auth.login", "auth.index")  # public, but where passwords are typed


def needs_https(app: Flask) -> bool:
    """Whether this request is for staff (or the login) but came over plain http while the
    web has TLS: it is redirected to the https listener."""
    if not app.config.get("STAFF_HTTPS") or request.scheme == "https":
        return False
    who = audience(app, request.endpoint)
    return who != PUBLIC or request.endpoint in STAFF_ON_HTTPS_PUBLIC


def security_headers(response: Any) -> Any:
    """The shared headers; media files may be cached. No HSTS: the same host serves the
    citizens' ticket pages over plain http on another port."""
    return shared.security_headers(response, cached=("/media/",))
