"""The attention chime before each announcement, generated as a WAV (no audio asset to ship).

write_chime(Path("cache/chime.wav"))     # a soft two-note "ding-dong", about 1.3 s
"""

from __future__ import annotations

import math
import os
import sys
import wave
from array import array
from pathlib import Path

RATE = 22050
# (start s, frequency Hz, length s): E5 then C5, the familiar public-address interval.
NOTES = ((0.0, 659.25, 0.85), (0.45, 523.25, 0.85))
PARTIALS = ((1.0, 1.0), (2.0, 0.28), (3.0, 0.08))  # (multiple of the note, amplitude)
PEAK = 0.55


def chime_samples(rate: int = RATE) -> array:
    """16-bit mono samples of the chime."""
    length = max(start + dur for start, _f, dur in NOTES)
    mix = [0.0] * int(length * rate)
    for start, freq, dur in NOTES:
        first = int(start * rate)
        for i in range(int(dur * rate)):
            t = i / rate
            attack = min(1.0, t / 0.008)  # 8 ms attack: no click
            envelope = attack * math.exp(-4.2 * t)
            tone = sum(a * math.sin(2 * math.pi * freq * k * t) for k, a in PARTIALS)
            mix[first + i] += envelope * tone
    scale = PEAK * 32767 / max(abs(s) for s in mix)
    return array("h", (round(s * scale) for s in mix))


def write_chime(path: Path, rate: int = RATE) -> Path:
    """Write the chime to `path` (atomically) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        samples = chime_samples(rate)
        if sys.byteorder == "big":
            samples.byteswap()  # WAV samples are little-endian
        out.writeframes(samples.tobytes())
    os.replace(tmp, path)
    return path
