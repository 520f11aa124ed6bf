"""User-facing texts every part shows the same way: time class, cost, waiting time, dates.

Indonesian first; English when a device or zone is set to `en`.

    time_class_text(site.time_classes["fast"], "id")   # 'Selesai maks. 3 jam'
    cost_text(site.services["skck"], "id")              # 'Rp 30.000'
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from protocol.messages import CounterState, ServiceState
from protocol.site import Service, Site, TimeClass

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


def wait_text(seconds: int | None, lang: str = "id") -> str:
    """An estimated wait rounded for people: '± 15 menit', '± 1 jam 20 menit', 'Tanpa antri';
    no estimate (None: no counter serves the service now) says so instead of a time."""
    if seconds is None:
        return no_counter_text(lang)
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


# Why an officer is away from an open counter (the caller box's and web caller's choices).
BREAK_TEXT: dict[str, dict[str, str]] = {
    "istirahat": {"id": "Istirahat", "en": "Break"},
    "sholat": {"id": "Sholat", "en": "Prayer"},
    "rapat": {"id": "Rapat", "en": "Meeting"},
    "lainnya": {"id": "Lainnya", "en": "Other"},
}
# How screens say it after the counter's name ("Loket 3 - istirahat").
BREAK_SHOWN: dict[str, dict[str, str]] = {
    "istirahat": {"id": "istirahat", "en": "on a break"},
    "sholat": {"id": "sholat", "en": "at prayer"},
    "rapat": {"id": "rapat", "en": "in a meeting"},
    "lainnya": {"id": "sedang keluar", "en": "away"},
}


def break_text(reason: str, lang: str = "id") -> str:
    """'Istirahat' / 'Break': the choice an officer picks."""
    return BREAK_TEXT.get(reason, {}).get(lang, reason)


def back_text(back: datetime, lang: str = "id") -> str:
    """'kembali 12:30' / 'back at 12:30'."""
    return f"back at {back:%H:%M}" if lang == "en" else f"kembali {back:%H:%M}"


def counter_break_text(counter_name: str, reason: str, lang: str = "id") -> str:
    """'Loket 3 - istirahat' / 'Counter 3 - on a break': a counter whose officer is away."""
    return f"{counter_name} - {BREAK_SHOWN.get(reason, {}).get(lang, reason)}"


def counter_paused_text(counter_name: str, lang: str = "id") -> str:
    """'Loket 3 - jeda' / 'Counter 3 - paused': a counter whose services are in a pause."""
    return f"{counter_name} - {'paused' if lang == 'en' else 'jeda'}"


def away_texts(
    site: Site, number: int, state: CounterState | None, lang: str = "id"
) -> tuple[str, str] | None:
    """('Loket 3 - istirahat', 'kembali 12:30') for an open counter whose officer is on a
    break (the second '—' without a return time), ('Loket 13 - jeda', 's.d. 13:00') for one
    whose services are all in a pause; None when it is not away or a ticket is called there."""
    if state is None or not state.open or state.ticket is not None:
        return None
    name = site.counter_name(number, lang)
    if state.on_break is not None:
        back = state.on_break.until
        when = back_text(site.local_now(back), lang) if back is not None else "—"
        return counter_break_text(name, state.on_break.reason, lang), when
    if state.pause is not None:
        until = site.local_now(state.pause.until)
        return counter_paused_text(name, lang), until_text(until, lang)
    return None


def until_text(until: datetime, lang: str = "id") -> str:
    """'s.d. 13:00' / 'until 13:00'."""
    return f"until {until:%H:%M}" if lang == "en" else f"s.d. {until:%H:%M}"


def paused_until_text(until: datetime, lang: str = "id") -> str:
    """'jeda s.d. 13:00' / 'paused until 13:00': a service in a pause."""
    return f"{'paused' if lang == 'en' else 'jeda'} {until_text(until, lang)}"


def resume_text(at: datetime, lang: str = "id") -> str:
    """'Layanan dilanjutkan pukul 13:00' / 'Service resumes at 13:00'."""
    if lang == "en":
        return f"Service resumes at {at:%H:%M}"
    return f"Layanan dilanjutkan pukul {at:%H:%M}"


def pause_text(name: str, until: datetime, issuing: bool | None, lang: str = "id") -> str:
    """What a kiosk or a screen says during a pause: its name, when service resumes, and
    whether tickets are still issued (None: for some services only)."""
    tails = {
        True: ("tiket tetap dapat diambil", "tickets are still issued"),
        False: ("tiket dapat diambil lagi pukul itu", "tickets again from then"),
        None: ("sebagian layanan tetap menerima tiket", "some services still issue tickets"),
    }
    tail = tails[issuing][1 if lang == "en" else 0]
    return f"{name}: {resume_text(until, lang).lower()}; {tail}"


def pause_notice(site: Site, states: Iterable[ServiceState | None], lang: str = "id") -> str | None:
    """What a screen says while a pause holds some of the services it shows (`states`):
    'Istirahat sholat Jumat: layanan dilanjutkan pukul 13:00; tiket tetap dapat diambil'
    (tickets for all, none or some of them); None without a pause."""
    known = [s for s in states if s is not None]
    first = next((s.pause for s in known if s.pause is not None), None)
    if first is None:
        return None
    paused = [s for s in known if s.pause is not None and s.pause.id == first.id]
    issuing = (
        True if all(s.open for s in paused) else (None if any(s.open for s in paused) else False)
    )
    name = first.name.en if lang == "en" else first.name.id
    return pause_text(name, site.local_now(first.until), issuing, lang)


def no_counter_text(lang: str = "id") -> str:
    """What replaces the waiting time when no counter serves a service now."""
    if lang == "en":
        return "No counter serves this now"
    return "Belum ada loket yang melayani saat ini"


# Texts of the service-level alerts (dashboard, screens); fields filled by the hub.
ALERT_TEXT: dict[str, dict[str, str]] = {
    "long_wait": {
        "id": "{service}: {count} warga menunggu lebih dari {target} menit (terlama {longest} "
        "menit)",
        "en": "{service}: {count} waiting longer than {target} min (longest {longest} min)",
    },
    "no_counter": {
        "id": "{service}: {count} warga menunggu, tidak ada loket yang buka",
        "en": "{service}: {count} waiting and no counter open",
    },
    "idle_counter": {
        "id": "{counter} ({officer}) buka tanpa memanggil lebih dari {minutes} menit, "
        "antrian menunggu",
        "en": "{counter} ({officer}) open without calling for over {minutes} min while "
        "citizens wait",
    },
    "quota_nearly_used": {
        "id": "{service}: {share}% kuota harian terpakai sebelum pukul {before} ({issued}/{quota})",
        "en": "{service}: {share}% of the daily quota used before {before} ({issued}/{quota})",
    },
}


def alert_text(kind: str, lang: str = "id", **values: object) -> str:
    """The text of a service-level alert in `lang`."""
    return ALERT_TEXT[kind][lang].format(**values)
