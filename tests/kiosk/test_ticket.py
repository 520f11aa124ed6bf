"""The ticket layout: what a citizen holds, built from the inventory and the hub's ticket."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kiosk.errors import KioskError
from kiosk.ticket import (
    Cut,
    Field,
    Logo,
    Number,
    Qr,
    Text,
    logo_path,
    sample_ticket,
    ticket_layout,
    ticket_url,
)
from protocol.messages import TicketInfo
from protocol.site import load_site, parse_site
from tests.conftest import EXAMPLE, example_text

SITE = load_site(EXAMPLE)
# Monday 23 November 2026, 08:05 in Banjarbaru (WITA, UTC+8)
ISSUED = datetime(2026, 11, 23, 8, 5, tzinfo=ZoneInfo("Asia/Makassar")).timestamp()


def info(service: str = "ktp", **changes: object) -> TicketInfo:
    base = {
        "id": 7,
        "number": f"{SITE.services[service].prefix}012",
        "service": service,
        "issued_at": ISSUED,
        "token": "Zq3-token_ABC",
        "people_ahead": 4,
        "est_wait_s": 32 * 60,
    }
    return TicketInfo(**{**base, **changes})


def texts(layout: list) -> list[str]:
    """Every text of the layout; a field as 'label: value'."""
    return [
        block.text if isinstance(block, Text) else f"{block.label}: {block.value}"
        for block in layout
        if isinstance(block, Text | Field)
    ]


def test_indonesian_ticket_holds_what_the_citizen_needs() -> None:
    layout = ticket_layout(SITE, info("skck"), "id")
    lines = texts(layout)
    assert lines[0] == "MAL PELAYANAN PUBLIK KOTA BANJARBARU"
    assert "Kepolisian Resor Banjarbaru" in lines
    assert "SKCK" in lines
    assert [b.text for b in layout if isinstance(b, Number)] == ["H012"]
    assert "Senin, 23 November 2026  08:05 WITA" in lines
    assert "Antrian di depan Anda: 4" in lines
    assert "Perkiraan waktu tunggu: ± 32 menit" in lines
    assert "Waktu layanan: Selesai maks. 3 jam" in lines
    assert "Biaya: Rp 30.000" in lines
    assert lines[-1] == "Simpan tiket ini sampai layanan selesai. Pantau antrian lewat QR."
    assert isinstance(layout[-1], Cut)
    assert not any("PRIORITAS" in line for line in lines)


def test_with_no_counter_serving_the_ticket_says_so_instead_of_a_time() -> None:
    lines = texts(ticket_layout(SITE, info("paspor", est_wait_s=None), "id"))
    assert "Perkiraan waktu tunggu: Belum ada loket yang melayani saat ini" in lines
    lines = texts(ticket_layout(SITE, info("paspor", est_wait_s=None), "en"))
    assert "Estimated wait: No counter serves this now" in lines


def test_during_a_pause_the_ticket_says_when_service_resumes() -> None:
    resumes = datetime(2026, 11, 27, 13, 0, tzinfo=ZoneInfo("Asia/Makassar")).timestamp()
    lines = texts(ticket_layout(SITE, info("ktp", est_wait_s=5400, resumes_at=resumes), "id"))
    assert "Perkiraan waktu tunggu: ± 1 jam 30 menit" in lines
    assert "Layanan dilanjutkan pukul 13:00" in lines
    assert not any("dilanjutkan" in line for line in texts(ticket_layout(SITE, info(), "id")))


def test_english_ticket_and_free_service() -> None:
    lines = texts(ticket_layout(SITE, info("ktp", people_ahead=0, est_wait_s=0), "en"))
    assert "e-ID card (KTP-el) recording and printing" in lines
    assert "Monday, 23 November 2026  08:05 WITA" in lines
    assert "People ahead of you: 0" in lines
    assert "Estimated wait: No wait" in lines
    assert "Service time: Done within 3 hours" in lines
    assert "Cost: Free" in lines
    assert "Keep this ticket until you are served. Follow the queue via the QR code." in lines


def test_long_service_and_cost_note() -> None:
    lines = texts(ticket_layout(SITE, info("tanah"), "id"))
    assert "Waktu layanan: Selesai maks. 3 hari" in lines
    assert "Biaya: Sesuai PP 128/2015" in lines


def test_the_english_ticket_gives_the_cost_note_in_english() -> None:
    noted = [code for code, s in SITE.services.items() if s.cost_note is not None]
    assert len(noted) >= 5
    for code in noted:
        note = SITE.services[code].cost_note
        assert note.en and note.en != note.id, code  # the example says it in both languages
        assert f"Cost: {note.en}" in texts(ticket_layout(SITE, info(code), "en"))
        assert f"Biaya: {note.id}" in texts(ticket_layout(SITE, info(code), "id"))
    assert "Cost: As set by Government Regulation 128/2015" in texts(
        ticket_layout(SITE, info("tanah"), "en")
    )


def test_priority_category_is_printed() -> None:
    lines = texts(ticket_layout(SITE, info(priority="pregnant"), "id"))
    assert "PRIORITAS: Ibu hamil" in lines
    assert "PRIORITY: Pregnant woman" in texts(ticket_layout(SITE, info(priority="pregnant"), "en"))


def test_qr_links_to_the_ticket_page_by_token_only() -> None:
    layout = ticket_layout(SITE, info(), "id")
    qrs = [b.payload for b in layout if isinstance(b, Qr)]
    assert qrs == ["http://192.168.10.2:8080/t/Zq3-token_ABC"]
    # A token with characters that would change the URL is escaped, never interpreted.
    assert ticket_url(SITE, "a/b?c=1") == "http://192.168.10.2:8080/t/a%2Fb%3Fc%3D1"


def test_ticket_for_a_service_missing_from_the_inventory_is_an_error() -> None:
    with pytest.raises(KioskError, match=r"'nope'.*provision the kiosk"):
        ticket_layout(SITE, info().model_copy(update={"service": "nope"}), "id")


def test_logo_is_resolved_next_to_the_inventory(tmp_path: Path) -> None:
    assert logo_path(SITE) is None
    text = example_text().replace(
        'address = "Jl.',
        'logo = "logo.png"\naddress = "Jl.',
    )
    site = parse_site(text, str(tmp_path / "site.toml"))
    assert logo_path(site) == tmp_path / "logo.png"
    layout = ticket_layout(site, info(), "id")
    assert layout[0] == Logo(tmp_path / "logo.png")


def test_sample_ticket_for_previews() -> None:
    sample = sample_ticket(SITE, "paspor", ISSUED)
    assert sample.number == "M012" and sample.people_ahead == 5
    with pytest.raises(KioskError, match="no service 'x'"):
        sample_ticket(SITE, "x", ISSUED)
