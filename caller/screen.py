"""What the caller box's character display shows, in Indonesian or English (pure functions).

Lines fit 16 or 20 columns: the called number and the counter on the first line (a priority
ticket: 'A012 Prioritas'), how many wait for this counter's services on the second, short
feedback after a press. While TRANSFER or SKIP offers a choice, a two-row display shows the
option and how to confirm or cancel ('C Akta Kelah 1/2', 'NEXT=ya lain=tdk').

    screen = Screen(site, counter=3, lang="id", cols=16, rows=2)
    screen.lines(View(state=state, connected=True))   # ['A012 -> Loket 3', 'Menunggu: 5']
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol import messages as m
from protocol.site import Site
from protocol.texts import break_text, mark_text

# Short texts (at most 16 characters) for feedback after a press: key -> (id, en).
# Keys are the hub's refusal codes plus the box's own outcomes.
MESSAGES: dict[str, tuple[str, str]] = {
    "busy": ("Tunggu...", "Please wait"),
    "offline": ("Tidak terhubung", "Offline"),
    "loading": ("Memuat data...", "Loading..."),
    "timeout": ("Hub tdk menjawab", "No hub reply"),
    "fault": ("Gangguan", "Fault"),
    "cancelled": ("Dibatalkan", "Cancelled"),
    "no_targets": ("Tak ada tujuan", "No target"),
    "finished": ("Selesai", "Done"),
    "recalled": ("Dipanggil ulang", "Called again"),
    "skipped": ("{ticket} dilewati", "{ticket} skipped"),
    "transferred": ("{ticket} dialihkan", "{ticket} moved"),
    "opened": ("Loket dibuka", "Counter open"),
    "closed": ("Loket ditutup", "Counter closed"),
    "break_started": ("Mulai istirahat", "Break started"),
    "break_ended": ("Selamat bekerja", "Welcome back"),
    "paused": ("Jeda layanan", "Service paused"),
    "rated": ("Terima kasih!", "Thank you!"),
    "queue_empty": ("Antrian kosong", "Queue empty"),
    "counter_closed": ("Loket tutup", "Counter closed"),
    "no_ticket": ("Belum ada nomor", "No ticket"),
    "not_transferable": ("Tak bisa dialih", "Not allowed"),
    "bad_state": ("Tidak bisa", "Not possible"),
    "unknown_ticket": ("Nomor tdk ada", "Unknown number"),
    "already_rated": ("Sudah dinilai", "Already rated"),
    "rating_closed": ("Waktu habis", "Too late"),
    "stale": ("Kedaluwarsa", "Expired"),
}
_FAILED = ("Gagal: {code}", "Failed: {code}")


def message(key: str, lang: str = "id", **values: str) -> str:
    """The short feedback text for `key` (an outcome or a hub error code)."""
    pair = MESSAGES.get(key)
    if pair is None:
        pair, values = _FAILED, {"code": key}
    return (pair[1] if lang == "en" else pair[0]).format(**values)


@dataclass(frozen=True)
class Selection:
    """A choice in progress: TRANSFER picks a target service, SKIP (when idle) a no-show.

    Pressing the same button again moves to the next option; NEXT confirms.
    """

    button: str  # "transfer", "skip" or "open_close"
    options: tuple[str, ...]
    index: int
    until: float  # clock time when the choice lapses

    @property
    def chosen(self) -> str:
        """The option shown now."""
        return self.options[self.index]

    def advanced(self, until: float) -> Selection:
        """The selection moved on to the next option (wrapping round)."""
        return Selection(self.button, self.options, (self.index + 1) % len(self.options), until)


@dataclass(frozen=True)
class View:
    """Everything the display depends on."""

    state: m.CounterState | None
    connected: bool
    waiting_by_prefix: tuple[tuple[str, int], ...] = ()
    selection: Selection | None = None
    flash: str | None = None
    waiting: int | None = None  # live count for the counter's services (else the state's)


class Screen:
    """Lays out a View for one counter's display of `cols` x `rows` in `lang`."""

    def __init__(self, site: Site, counter: int, lang: str, cols: int = 16, rows: int = 2) -> None:
        self.site, self.counter, self.lang = site, counter, lang
        self.cols, self.rows = cols, rows
        self.en = lang == "en"

    def lines(self, view: View) -> list[str]:
        """The display's lines (at most `rows`, each cut to `cols`)."""
        if view.selection is not None:
            lines = self._selection(view.selection)
        else:
            lines = [self.headline(view.state), self._second(view)]
            if self.rows == 4:
                lines += [self._by_service(view), view.flash or self._officer(view.state)]
            elif view.flash:
                lines[1] = view.flash
        return [line[: self.cols] for line in lines[: self.rows]]

    def headline(self, state: m.CounterState | None) -> str:
        """'A012 -> Loket 3', or the counter's name and whether it is open."""
        name = self.site.counter_name(self.counter, self.lang)
        if state is None:
            return name
        if not state.open:
            word = "Closed" if self.en else "Tutup"
            return self._fitting(f"{name} - {word}", f"{name}: {word}", f"{name} {word.lower()}")
        if state.on_break is not None:
            word = break_text(state.on_break.reason, self.lang)
            return self._fitting(f"{name} - {word}", f"{name}: {word}", word)
        if state.ticket is None and state.pause is not None:
            word = "Paused" if self.en else "Jeda"
            return self._fitting(f"{name} - {word}", f"{name}: {word}")
        if state.ticket is None:
            word = "Open" if self.en else "Buka"
            return self._fitting(f"{name} - {word}", f"{name}: {word}", f"{name} {word.lower()}")
        if state.priority:  # the officer sees why this ticket came before others
            mark = mark_text("priority", self.lang)
            return self._fitting(f"{state.ticket} -> {name} {mark}", f"{state.ticket} {mark}")
        return self._fitting(f"{state.ticket} -> {name}", f"{state.ticket}->{name}")

    def _fitting(self, *candidates: str) -> str:
        """The first candidate that fits the width (else the last, to be cut)."""
        return next((c for c in candidates if len(c) <= self.cols), candidates[-1])

    def _second(self, view: View) -> str:
        if not view.connected:
            return message("offline", self.lang)
        if view.state is None:
            return message("loading", self.lang)
        back = view.state.on_break.until if view.state.on_break else None
        if view.state.on_break is not None and back is None:
            return "NEXT = back" if self.en else "NEXT = kembali"
        if view.state.ticket is None and view.state.pause is not None:
            back = view.state.pause.until
        if back is not None:
            at = self.site.local_now(back).strftime("%H:%M")
            return f"Back at {at}" if self.en else f"Kembali {at}"
        waiting = view.state.waiting if view.waiting is None else view.waiting
        return f"{'Waiting' if self.en else 'Menunggu'}: {waiting}"

    def _by_service(self, view: View) -> str:
        return " ".join(f"{prefix}:{count}" for prefix, count in view.waiting_by_prefix)

    def _officer(self, state: m.CounterState | None) -> str:
        if state is None or not state.officer:
            return ""
        return f"{'Officer' if self.en else 'Petugas'}: {state.officer}"

    def _selection(self, selection: Selection) -> list[str]:
        position = f"{selection.index + 1}/{len(selection.options)}"
        if selection.button == "transfer":
            title, lead = ("Transfer to", "To") if self.en else ("Alihkan ke", "Ke")
            service = self.site.services[selection.chosen]
            option = f"{service.prefix} {service.name.get(self.lang)}"
        elif selection.button == "open_close":
            title, lead = ("Choose", "") if self.en else ("Pilih", "")
            if selection.chosen == "close":
                option = "Close counter" if self.en else "Tutup loket"
            else:
                option = break_text(selection.chosen, self.lang)
        else:
            title, lead = ("Call back", "Call") if self.en else ("Panggil lagi", "Panggil")
            option = selection.chosen
        confirm = "NEXT = yes" if self.en else "NEXT = ya"
        cancel = "Other = cancel" if self.en else "Lain = batal"
        if self.rows >= 4:
            return [f"{title} {position}", option, confirm, cancel]
        # Two rows: the option with its position, then how to confirm or cancel.
        room = self.cols - len(position) - 1
        choice = f"{lead} {option}" if lead and len(lead) + 1 + len(option) <= room else option
        first = f"{choice[:room]:<{room}} {position}"
        hint = self._fitting(
            *(
                ("NEXT = yes, other = cancel", "NEXT=yes other=cancel", "NEXT=yes else=no")
                if self.en
                else ("NEXT = ya, lain = batal", "NEXT=ya lain=batal", "NEXT=ya lain=tdk")
            )
        )
        return [first, hint]
