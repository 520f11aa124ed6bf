"""The generated chime: a real WAV, audible, without clicks at the start or the end."""

from __future__ import annotations

import wave
from pathlib import Path

from display.chime import PEAK, RATE, chime_samples, write_chime


def test_chime_is_a_short_audible_wav(tmp_path: Path) -> None:
    path = write_chime(tmp_path / "sub" / "chime.wav")
    with wave.open(str(path)) as audio:
        assert (audio.getnchannels(), audio.getsampwidth(), audio.getframerate()) == (1, 2, RATE)
        seconds = audio.getnframes() / audio.getframerate()
    assert 1.0 < seconds < 2.0
    samples = chime_samples()
    peak = max(abs(s) for s in samples)
    assert abs(peak - PEAK * 32767) <= 1
    assert abs(samples[0]) < 500 and abs(samples[-1]) < 0.05 * peak  # soft start, faded end
    assert not list(tmp_path.glob("sub/*.tmp"))
