"""Shared user-facing texts."""

from __future__ import annotations

from datetime import datetime

from protocol.messages import PRIORITIES
from protocol.site import TimeClass, load_site
from protocol.texts import (
    PRIORITY_TEXT,
    cost_text,
    date_text,
    priority_text,
    rupiah,
    time_class_text,
    wait_text,
)
from tests.conftest import EXAMPLE


def test_time_class() -> None:
    assert time_class_text(TimeClass(within="3h")) == "Selesai maks. 3 jam"
    assert time_class_text(TimeClass(within="3d")) == "Selesai maks. 3 hari"
    assert time_class_text(TimeClass(within="3d"), "en") == "Done within 3 days"
    assert time_class_text(TimeClass(within="1h"), "en") == "Done within 1 hour"


def test_cost() -> None:
    site = load_site(EXAMPLE)
    assert rupiah(350000) == "Rp 350.000"
    assert cost_text(site.services["ktp"]) == "Gratis"
    assert cost_text(site.services["ktp"], "en") == "Free"
    assert cost_text(site.services["skck"]) == "Rp 30.000"
    assert cost_text(site.services["pkb"]) == "Sesuai ketetapan PKB"


def test_wait() -> None:
    assert wait_text(0) == "Tanpa antri"
    assert wait_text(None) == "Belum ada loket yang melayani saat ini"
    assert wait_text(None, "en") == "No counter serves this now"
    assert wait_text(15 * 60) == "± 15 menit"
    assert wait_text(80 * 60) == "± 1 jam 20 menit"
    assert wait_text(120 * 60, "en") == "± 2 h"


def test_date() -> None:
    assert date_text(datetime(2026, 11, 23)) == "Senin, 23 November 2026"
    assert date_text(datetime(2026, 8, 17), "en") == "Monday, 17 August 2026"


def test_every_priority_category_has_its_names() -> None:
    assert tuple(PRIORITY_TEXT) == PRIORITIES
    assert all(set(names) == {"id", "en"} for names in PRIORITY_TEXT.values())
    assert priority_text("pregnant") == "Ibu hamil"
    assert priority_text("pregnant", "en") == "Pregnant woman"
