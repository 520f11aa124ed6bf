"""The caller box and rating pad at a counter: NEXT / RECALL / SKIP / TRANSFER / OPEN-CLOSE
buttons, status LEDs, a buzzer and a character display, and four rating buttons for the citizen.

Run one box with `mpp caller --site SITE.toml --device caller-03 [--officer NAME]`.

Buttons (pins from [devices.ID.buttons] and [devices.ID.rating] of the inventory):

- NEXT calls the next ticket to this counter and finishes the current one; with nobody
  waiting it only finishes the current one ("Selesai").
- RECALL calls the current ticket again (screens announce it again).
- SKIP marks the current ticket a no-show. On an idle counter with no-shows, SKIP instead
  chooses a no-show to call back: each SKIP shows the next one ("Panggil lagi 1/3"),
  NEXT confirms.
- TRANSFER sends the current ticket to a service of the counter's `transfer_to` list. With
  one target a press transfers. With several, each TRANSFER press shows the next target
  ("Alihkan ke 1/2" and the service) and NEXT confirms; without a display the buzzer beeps
  n times for target n. Any other officer button, or 10 s without a press, cancels.
- OPEN/CLOSE opens the counter (officer from --officer, else the last officer the hub
  reported, else "petugas") or closes it.
- Rating pad: Sangat puas (4), Puas (3), Kurang puas (2), Tidak puas (1). The hub attaches
  the rating to the ticket being served or just finished and to its officer; a second
  rating of the same ticket is refused ("Sudah dinilai").

Presses of one button within 600 ms (--debounce-ms) are one press. A press is sent at once
as one command with its own request id, or not at all: with the broker unreachable it gets
fault feedback (long beep, fault LED, "Tidak terhubung") and is never sent later.

Feedback: one short beep = done; two beeps and two fault-LED blinks = refused (the display
says why); one long beep and the fault LED on = fault (no broker, no hub answer). The ready
LED is on while the broker is reachable, the busy LED while a command is in flight.
"""
