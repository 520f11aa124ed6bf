"""Who may open what (fail closed), forms that cannot be forged, throttled logins, headers:
the region's roles over the mechanics shared with the site's web (webcommon/security.py)."""

from __future__ import annotations

from typing import Any

from region.web.accounts import RANK
from webcommon import security as shared
from webcommon.security import csrf_token, public

__all__ = ["csrf_token", "headers", "public", "requires"]

requires = shared.role_marker(RANK)  # viewer < supervisor < admin


def headers(response: Any) -> Any:
    """The shared headers, with HSTS over https (the region serves nothing on plain http)."""
    return shared.security_headers(response, hsts=True)
