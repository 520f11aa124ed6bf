"""User-facing texts every part shows the same way: time class, cost, waiting time, dates.

Indonesian first; English when a device or zone is set to `en`.

    time_class_text(site.time_classes["fast"], "id")   # 'Selesai maks. 3 jam'
    cost_text(site.services["skck"], "id")              # 'Rp 30.000'
"""

from __future__ import annotations

from datetime import datetime

from protocol.site import Service, TimeClass

_UNITS = {
    "id": {"m": "menit", "h": "jam", "d": "hari"},
    "en": {"m": ("minute", "minutes"), "h": ("hour", "hours"), "d": ("day", "days")},
}
DAYS = {
    "id": ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
MONTHS = {
    "id": ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus",
           "September", "Oktober", "November", "Desember"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
}  # fmt: skip
# What the ticket, the kiosk's notices and the staff pages call each priority category.
PRIORITY_TEXT: dict[str, dict[str, str]] = {
    "elderly": {"id": "Lansia", "en": "Elderly"},
    "disabled": {"id": "Penyandang disabilitas", "en": "Person with disability"},
    "pregnant": {"id": "Ibu hamil", "en": "Pregnant woman"},
    "child": {"id": "Anak-anak", "en": "Child"},
}


# Marks every screen shows the same way: TVs, the caller box's display, the kiosk's menu.
MARKS: dict[str, dict[str, str]] = {
    "priority": {"id": "Prioritas", "en": "Priority"},
    "closed": {"id": "Tutup", "en": "Closed"},
    "quota": {"id": "Kuota habis", "en": "Quota used up"},
}


def mark_text(mark: str, lang: str = "id") -> str:
    """'Prioritas', 'Tutup', 'Kuota habis' (or in English)."""
    return MARKS[mark].get(lang, MARKS[mark]["id"])


def service_mark(open_now: bool, quota_left: int) -> str | None:
    """Why a service takes no tickets now: 'closed', 'quota' (its daily quota is used up), or
    None. Closed wins: a closed service's quota does not matter."""
    if not open_now:
        return "closed"
    return "quota" if quota_left <= 0 else None


# The hub issues no tickets while its clock is not trustworthy (hub/clock.py): what kiosks and
# the hub's refusal say, and the short mark screens show.
CLOCK_UNSYNCED: dict[str, str] = {
    "id": "Jam sistem antrian belum sinkron. Pengambilan nomor antrian ditunda sebentar; "
    "mohon tunggu atau hubungi petugas.",
    "en": "The queue system's clock is not synchronised yet. Tickets are paused for a moment; "
    "please wait or ask the staff.",
}
CLOCK_UNSYNCED_MARK: dict[str, str] = {"id": "● Jam belum sinkron", "en": "● Clock not synced"}


def priority_text(category: str, lang: str = "id") -> str:
    """'Lansia' / 'Elderly'; an unknown category as it is."""
    return PRIORITY_TEXT.get(category, {}).get(lang, category)


def time_class_text(time_class: TimeClass, lang: str = "id") -> str:
    """'Selesai maks. 3 jam' / 'Done within 3 hours'."""
    amount, unit = time_class.amount, time_class.unit
    if lang == "en":
        singular, plural = _UNITS["en"][unit]
        return f"Done within {amount} {singular if amount == 1 else plural}"
    return f"Selesai maks. {amount} {_UNITS['id'][unit]}"


def rupiah(amount: int) -> str:
    """30000 -> 'Rp 30.000' (Indonesian thousands separator)."""
    return "Rp " + f"{amount:,}".replace(",", ".")


def cost_text(service: Service, lang: str = "id") -> str:
    """'Gratis' / 'Free', 'Rp 30.000', or the service's own cost note."""
    if service.cost_note is not None:
        return service.cost_note.get(lang)
    if service.cost == 0:
        return "Free" if lang == "en" else "Gratis"
    return rupiah(service.cost)


def wait_text(seconds: int, lang: str = "id") -> str:
    """An estimated wait rounded for people: '± 15 menit', '± 1 jam 20 menit', 'tidak ada'."""
    minutes = max(0, round(seconds / 60))
    if minutes == 0:
        return "No wait" if lang == "en" else "Tanpa antri"
    hours, rest = divmod(minutes, 60)
    if lang == "en":
        parts = ([f"{hours} h"] if hours else []) + ([f"{rest} min"] if rest else [])
    else:
        parts = ([f"{hours} jam"] if hours else []) + ([f"{rest} menit"] if rest else [])
    return "± " + " ".join(parts)


def date_text(moment: datetime, lang: str = "id") -> str:
    """'Senin, 23 November 2026' / 'Monday, 23 November 2026'."""
    return (
        f"{DAYS[lang][moment.weekday()]}, {moment.day} {MONTHS[lang][moment.month - 1]} "
        f"{moment.year}"
    )
