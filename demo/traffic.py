"""Visitors and officers for a demo left running on its own: a gentle, endless MPP morning.

Presses go through the demo's devices exactly as a person's would (mock GPIO pins).
"""

from __future__ import annotations

import logging
import random
import threading
import time

from demo.devices import DemoCaller, DemoKiosk

log = logging.getLogger("mpp.demo")
BREAK_SHARE = 0.03  # of an officer's moves: a break (istirahat on the caller box), 30-90 s


class Traffic:
    """Every few seconds a citizen takes a ticket; officers call, recall, skip, get rated and
    now and then take a short break (screens show "Loket 3 - istirahat")."""

    def __init__(
        self,
        kiosks: list[DemoKiosk],
        callers: list[DemoCaller],
        *,
        ticket_every_s: float = 4.0,
        serve_s: float = 12.0,
        seed: int | None = None,
    ) -> None:
        self.kiosks, self.callers = kiosks, callers
        self.ticket_every_s, self.serve_s = ticket_every_s, serve_s
        self.rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-traffic", daemon=True)
        self._next_call = {c.device_id: 0.0 for c in callers}
        self._back_at: dict[str, float] = {}  # officers on a break: when they come back

    def start(self) -> Traffic:
        """Open the officers' counters and start the day."""
        for caller in self.callers:
            if not caller.is_open:
                caller.press("open_close")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop pressing (devices stay up)."""
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        # A few citizens are already waiting when the doors open.
        for _ in range(6):
            kiosk = self.rng.choice(self.kiosks)
            kiosk.press(self.rng.choice(kiosk.services[:8]))
            time.sleep(1.1)
        next_ticket = time.monotonic()
        while not self._stop.wait(0.5):
            now = time.monotonic()
            try:
                if now >= next_ticket:
                    kiosk = self.rng.choice(self.kiosks)
                    kiosk.press(self.rng.choice(kiosk.services[:8]))
                    next_ticket = now + self.rng.uniform(0.5, 1.5) * self.ticket_every_s
                for caller in self.callers:
                    if now < self._back_at.get(caller.device_id, 0.0):
                        continue  # on a break; the next NEXT ends it
                    if now >= self._next_call[caller.device_id] and caller.is_open:
                        self._officer(caller)
                        self._next_call[caller.device_id] = (
                            now + self.rng.uniform(0.6, 1.4) * self.serve_s
                        )
            except Exception:  # the demo keeps going; the log says what happened
                log.exception("demo traffic step failed")

    def _officer(self, caller: DemoCaller) -> bool:
        """One officer's move; True if the counter is serving someone now."""
        state = caller.box.state
        if state is not None and state.ticket and self.rng.random() < 0.6:
            rating = self.rng.choices(
                ["very_satisfied", "satisfied", "dissatisfied", "very_dissatisfied"],
                weights=[5, 4, 1, 0.3],
            )[0]
            caller.press(rating)
            caller.box.wait_idle(3.0)  # the rating lands on this ticket, before NEXT
        if state is not None and state.on_break is None and self.rng.random() < BREAK_SHARE:
            self._take_break(caller)
            return False
        roll = self.rng.random()
        caller.press("recall" if roll < 0.08 and state and state.ticket else "next")
        caller.box.wait_idle(3.0)
        after = caller.box.state
        return bool(after and after.ticket)

    def _take_break(self, caller: DemoCaller) -> None:
        """OPEN/CLOSE twice ('Istirahat' on the LCD), then NEXT to confirm, as an officer does."""
        for button in ("open_close", "open_close", "next"):
            caller.press(button)
            caller.box.wait_idle(3.0)
            time.sleep(caller.box.debounce_s + 0.1)  # a new press, not a bounce
        self._back_at[caller.device_id] = time.monotonic() + self.rng.uniform(30, 90)
