"""What the kiosk tells the citizen after a press: one record drives the LEDs, buzzer and screen.

The app keeps the notices it showed (`KioskApp.notices`), so tests and technicians can read
exactly what a citizen was told.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from protocol.texts import PRIORITY_TEXT

Kind = Literal[
    "printing", "printed", "busy", "refused", "offline", "timeout", "printer", "priority", "error"
]
Level = Literal["info", "ok", "warn", "fault"]

TEXTS: dict[str, dict[str, str]] = {
    "printing": {"id": "Mencetak tiket, mohon tunggu...", "en": "Printing your ticket..."},
    "printed": {"id": "Silakan ambil tiket Anda", "en": "Please take your ticket"},
    "printed_no_counter": {
        "id": "Silakan ambil tiket Anda. Belum ada loket yang melayani layanan ini saat ini; "
        "nomor Anda dipanggil setelah loket dibuka.",
        "en": "Please take your ticket. No counter serves this service right now; your "
        "number is called once one opens.",
    },
    "printed_paused": {
        "id": "Silakan ambil tiket Anda. {pause}: layanan dilanjutkan pukul {at}.",
        "en": "Please take your ticket. {pause}: service resumes at {at}.",
    },
    "busy": {
        "id": "Mohon tunggu, tiket sedang dicetak",
        "en": "Please wait, a ticket is being printed",
    },
    "refused": {
        "id": "Layanan ini tidak dapat dipilih saat ini",
        "en": "This service cannot be chosen now",
    },
    "offline": {
        "id": "Sistem antrian sedang tidak terhubung. Tiket tidak dicetak. "
        "Silakan hubungi petugas.",
        "en": "The queue system is not connected. No ticket was printed. Please ask the staff.",
    },
    "timeout": {
        "id": "Sistem antrian tidak menjawab. Tiket tidak dicetak. Silakan coba lagi.",
        "en": "The queue system did not answer. No ticket was printed. Please try again.",
    },
    "printer": {
        "id": "Printer bermasalah. Tiket tidak dapat dicetak. Silakan hubungi petugas.",
        "en": "Printer problem. The ticket cannot be printed. Please ask the staff.",
    },
    "paper_out": {
        "id": "Kertas tiket habis. Silakan hubungi petugas.",
        "en": "Ticket paper has run out. Please ask the staff.",
    },
    "voided": {
        "id": "Nomor {number} dibatalkan karena tiket gagal dicetak. Silakan hubungi petugas.",
        "en": "Number {number} was cancelled because the ticket could not be printed. "
        "Please ask the staff.",
    },
    "priority": {
        "id": "Layanan prioritas: {category}. Silakan pilih layanan.",
        "en": "Priority service: {category}. Please choose your service.",
    },
    "not_a_code": {
        "id": "Kode tidak dikenali. Pindai QR reservasi Anda atau ketik kodenya (8 huruf/angka).",
        "en": "Code not recognised. Scan your booking's QR or type its code (8 characters).",
    },
    "reprint": {
        "id": "Nomor {number} tercatat, tetapi tiket gagal dicetak. Pindai kode reservasi lagi "
        "untuk mencetak ulang, atau hubungi petugas.",
        "en": "Number {number} is in the queue, but the ticket could not be printed. Scan your "
        "booking code again to reprint it, or ask the staff.",
    },
    "error": {
        "id": "Terjadi gangguan. Tiket tidak dicetak. Silakan hubungi petugas.",
        "en": "Something went wrong. No ticket was printed. Please ask the staff.",
    },
}

LEVELS: dict[str, Level] = {
    "printing": "info",
    "printed": "ok",
    "busy": "info",
    "refused": "warn",
    "offline": "fault",
    "timeout": "fault",
    "printer": "fault",
    "priority": "info",
    "error": "fault",
}


@dataclass(frozen=True)
class Notice:
    """One message to the citizen: its kind, the text in Indonesian and English, a number."""

    kind: Kind
    text: dict[str, str]
    number: str | None = None
    code: str | None = None

    @property
    def in_progress(self) -> bool:
        """True while the ticket is being requested or printed (a tap must wait)."""
        return self.kind in ("printing", "busy")

    @property
    def level(self) -> Level:
        """How the LEDs and the screen colour it."""
        return LEVELS[self.kind]

    def get(self, lang: str) -> str:
        """The text in `lang`, falling back to Indonesian."""
        return self.text.get(lang) or self.text["id"]


def notice(kind: Kind, text_key: str | None = None, **values: str | dict[str, str]) -> Notice:
    """A notice with one of the standard texts (`text_key` defaults to `kind`); a value may
    be given per language ({'id': ..., 'en': ...})."""
    template = TEXTS[text_key or kind]
    text = {
        lang: words.format(**{k: v[lang] if isinstance(v, dict) else v for k, v in values.items()})
        for lang, words in template.items()
    }
    number = values.get("number")
    return Notice(kind, text, number=number if isinstance(number, str) else None)


def priority_notice(category: str) -> Notice:
    """'Layanan prioritas: Lansia. Silakan pilih layanan.'"""
    names = PRIORITY_TEXT[category]
    template = TEXTS["priority"]
    text = {lang: template[lang].format(category=names[lang]) for lang in template}
    return Notice("priority", text, code=category)
