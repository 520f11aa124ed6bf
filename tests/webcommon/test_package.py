"""Who may import whom (DESIGN.md, Layout): the hub never the site web nor Flask, the region's
web never the site's web package, and webcommon neither of them."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def loaded_after(imports: str) -> set[str]:
    """The top-level packages loaded in a fresh interpreter after `imports`."""
    code = f"import json, sys; {imports}; print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout))


def test_the_hub_uses_webcommon_without_flask_or_the_web() -> None:
    loaded = loaded_after("import hub.service, hub.reports")
    assert "webcommon" in loaded  # the report CSV
    assert not loaded & {"web", "region", "flask", "werkzeug", "gevent"}


def test_the_region_web_shares_webcommon_not_the_site_web() -> None:
    loaded = loaded_after("import region.web")
    assert "webcommon" in loaded and "web" not in loaded


def test_webcommon_stands_alone() -> None:
    loaded = loaded_after("import webcommon.security, webcommon.charts, webcommon.export")
    assert not loaded & {"web", "region", "hub"}
