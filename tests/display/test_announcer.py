"""Announcements: espeak-ng speech written to WAV and measured, played one after the other."""

from __future__ import annotations

import threading
import time
import wave
from pathlib import Path

import pytest

from display.announcer import (
    Announcement,
    AnnouncerEvent,
    EspeakSynthesizer,
    RecordingAnnouncer,
    SpeechAnnouncer,
    wav_seconds,
)
from display.chime import write_chime
from display.errors import AudioError, SpeechError
from display.renderer import MixerPlayer
from display.speech_text import Phrase, call_phrase
from tests.conftest import make_site
from tests.timing import wait_until

site = make_site()


class Events:
    """Collects announcer events (they arrive on the playback thread)."""

    def __init__(self) -> None:
        self.items: list[AnnouncerEvent] = []
        self.lock = threading.Lock()

    def __call__(self, event: AnnouncerEvent) -> None:
        with self.lock:
            self.items.append(event)


def test_a_call_is_spoken_after_the_chime_and_cached(tmp_path: Path) -> None:
    events = Events()
    announcer = SpeechAnnouncer(MixerPlayer(), tmp_path / "cache", listener=events)
    announcer.start()
    try:
        phrase = call_phrase(site, "A012", 3)
        announcer.announce(Announcement((3, 1), phrase, volume=0.9))
        assert wait_until(lambda: len(announcer.spoken) == 1, 20)
        spoken = announcer.spoken[0]
        assert spoken.error is None
        assert spoken.text == "Nomor antrian a dua belas, silakan menuju loket tiga"
        chime, speech = spoken.wavs
        assert chime == tmp_path / "cache" / "chime.wav"
        assert speech.parent == tmp_path / "cache" / "phrases"
        with wave.open(str(speech)) as audio:
            assert audio.getnchannels() == 1 and audio.getsampwidth() == 2
        duration = wav_seconds(speech)
        assert duration > 1.0
        # It played for as long as the chime and the speech last, and no longer than needed.
        played = spoken.ended_at - spoken.started_at
        assert wav_seconds(chime) + duration - 0.1 <= played <= wav_seconds(chime) + duration + 1
        assert [(e.kind, e.key) for e in events.items] == [
            ("started", (3, 1)),
            ("finished", (3, 1)),
        ]
        assert announcer.synthesized == 1
        assert announcer.speech_wavs(phrase) == (speech,)  # from the cache
        assert announcer.synthesized == 1
    finally:
        announcer.close()


@pytest.mark.slow
def test_two_announcements_never_overlap(tmp_path: Path) -> None:
    announcer = SpeechAnnouncer(MixerPlayer(), tmp_path)
    announcer.start()
    try:
        announcer.announce(Announcement((3, 1), call_phrase(site, "A001", 3)))
        time.sleep(0.1)
        announcer.announce(Announcement((4, 1), call_phrase(site, "B001", 4)))
        assert wait_until(lambda: len(announcer.spoken) == 2, 30)
        first, second = announcer.spoken
        assert (first.key, second.key) == ((3, 1), (4, 1))
        assert second.started_at >= first.ended_at
        assert first.ended_at - first.started_at > 2.0  # chime + speech really played
        assert second.text.startswith("Nomor antrian be satu")
    finally:
        announcer.close()


def test_english_speech_uses_an_english_voice(tmp_path: Path) -> None:
    synthesizer = EspeakSynthesizer()
    assert synthesizer.voice_for("id") == "poz/id"
    assert synthesizer.voice_for("en").endswith("/en")
    phrase = call_phrase(site, "A012", 3, "en")
    announcer = SpeechAnnouncer(MixerPlayer(), tmp_path, synthesizer=synthesizer)
    (path,) = announcer.speech_wavs(phrase)
    assert path.name.startswith("en-") and wav_seconds(path) > 1.0
    with pytest.raises(SpeechError, match="no voice 'zz'"):
        synthesizer.voice_for("zz")


def tone(path: Path, seconds: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\x10\x00\xf0\xff" * int(8000 * seconds))
    return path


def test_voice_pack_clips_replace_synthesised_fragments(tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    chime = write_chime(pack / "chime.wav")
    intro = tone(pack / "id" / "intro.wav", 0.8)
    letter = tone(pack / "id" / "letter-a.wav", 0.3)
    announcer = SpeechAnnouncer(MixerPlayer(), tmp_path / "cache", voice_pack=pack)
    assert announcer.chime == chime
    wavs = announcer.speech_wavs(call_phrase(site, "A012", 3))
    assert wavs[:2] == (intro, letter)
    rest = wavs[2:]  # dua, belas, silakan menuju loket, tiga: synthesised fragment by fragment
    assert len(rest) == 4 and all(p.parent == tmp_path / "cache" / "fragments" for p in rest)
    assert all(wav_seconds(p) > 0.1 for p in rest)
    # An English phrase with no English clips in the pack is synthesised whole.
    (whole,) = announcer.speech_wavs(call_phrase(site, "A012", 3, "en"))
    assert whole.parent.name == "phrases"


def test_cache_is_pruned_to_its_limit(tmp_path: Path) -> None:
    announcer = SpeechAnnouncer(MixerPlayer(), tmp_path, max_cached=3, prune_every=1)
    made = []
    for number in range(1, 7):
        (path,) = announcer.speech_wavs(call_phrase(site, f"A{number:03d}", 3))
        made.append(path)
        time.sleep(0.01)  # distinct modification times
    left = sorted((tmp_path / "phrases").glob("*.wav"))
    assert len(left) == 3 and set(left) == set(made[-3:])


def test_failed_synthesis_still_rings_the_chime(tmp_path: Path) -> None:
    events = Events()
    announcer = SpeechAnnouncer(MixerPlayer(), tmp_path, listener=events)
    announcer.start()
    try:
        odd = Phrase(lang="zz", text="?", shown="?", fragments=())
        announcer.announce(Announcement((9, 1), odd))
        assert wait_until(lambda: len(announcer.spoken) == 1, 20)
        spoken = announcer.spoken[0]
        assert spoken.wavs == (announcer.chime,) and "no voice 'zz'" in (spoken.error or "")
        assert [e.kind for e in events.items] == ["started", "finished"]
    finally:
        announcer.close()


class DeadSpeakers:
    """Speakers that cannot be opened (HDMI without audio, wrong ALSA device)."""

    def open(self) -> None:
        raise AudioError("cannot open the speakers (no such device)")

    def play(self, wavs, volume, on_start) -> None:
        raise AssertionError("must not be called")

    def close(self) -> None:
        pass


def test_missing_speakers_are_reported_and_nothing_crashes(tmp_path: Path) -> None:
    events = Events()
    announcer = SpeechAnnouncer(DeadSpeakers(), tmp_path, listener=events)
    announcer.start()
    try:
        assert announcer.audio_ok is False
        announcer.announce(Announcement((3, 1), call_phrase(site, "A012", 3)))
        assert wait_until(lambda: len(announcer.spoken) == 1, 20)
        assert "speakers unavailable" in (announcer.spoken[0].error or "")
        assert events.items[-1].kind == "finished" and events.items[-1].error
    finally:
        announcer.close()


def test_recording_announcer_records_what_it_is_given() -> None:
    events = Events()
    fake = RecordingAnnouncer(listener=events)
    fake.announce(Announcement((3, 2), call_phrase(site, "A012", 3)))
    assert [s.text for s in fake.spoken] == ["Nomor antrian a dua belas, silakan menuju loket tiga"]
    assert [e.kind for e in events.items] == ["started", "finished"]


class ManualClock:
    """The announcer's clock, moved by the player as long as the sounds last."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


class TimedPlayer:
    """Plays nothing, but lets the clock run for exactly as long as the WAV files last
    (measured), so a 3-minute backlog takes a second of the test's time."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.played: list[tuple[Path, ...]] = []

    def open(self) -> None:
        pass

    def play(self, wavs, volume, on_start) -> None:
        on_start(self.clock.now)
        self.played.append(tuple(wavs))
        self.clock.now += sum(wav_seconds(Path(w)) for w in wavs)

    def close(self) -> None:
        pass


class SlowPlayer:
    """A player that takes 0.3 s of real time per announcement."""

    def __init__(self) -> None:
        self.played: list[tuple[Path, ...]] = []

    def open(self) -> None:
        pass

    def play(self, wavs, volume, on_start) -> None:
        on_start(time.monotonic())
        self.played.append(tuple(wavs))
        time.sleep(0.3)

    def close(self) -> None:
        pass


def news(clock: ManualClock, counter: int, ticket: str) -> Announcement:
    """A call received now, news for 30 s, with its short form."""
    return Announcement(
        (counter, 1),
        call_phrase(site, ticket, counter),
        received_at=clock.now,
        stale_at=clock.now + 30.0,
        short=call_phrase(site, ticket, counter, short=True),
    )


def test_a_counters_superseded_call_is_never_spoken(tmp_path: Path) -> None:
    events = Events()
    announcer = SpeechAnnouncer(SlowPlayer(), tmp_path, listener=events)
    announcer.start()
    try:
        announcer.announce(Announcement((1, 1), call_phrase(site, "A001", 1)))
        announcer.announce(Announcement((3, 1), call_phrase(site, "A002", 3)))
        announcer.announce(Announcement((3, 2), call_phrase(site, "A003", 3)))  # NEXT again
        assert wait_until(lambda: [e.kind for e in events.items].count("finished") == 3, 20)
        assert [s.key for s in announcer.spoken] == [(1, 1), (3, 2)]
        assert [(d.key, d.reason) for d in announcer.dropped] == [((3, 1), "superseded")]
        dropped = [e for e in events.items if e.key == (3, 1)]
        assert [e.kind for e in dropped] == ["finished"]  # its blink stops; nothing played
    finally:
        announcer.close()


def test_an_opening_burst_of_30_calls_is_heard_while_it_is_news(tmp_path: Path) -> None:
    clock = ManualClock()
    player = TimedPlayer(clock)
    announcer = SpeechAnnouncer(player, tmp_path, clock=clock)
    announcer.start()
    try:
        for counter in range(1, 31):  # every counter presses NEXT at opening time
            announcer.announce(news(clock, counter, f"A{counter:03d}"))
        assert wait_until(lambda: len(announcer.spoken) + len(announcer.dropped) == 30, 60)
        spoken, dropped = announcer.spoken, announcer.dropped
        first = spoken[0]
        assert not first.short and first.wavs[0] == announcer.chime  # the run starts in full
        assert first.text == "Nomor antrian a satu, silakan menuju loket satu"
        assert all(s.short and announcer.chime not in s.wavs for s in spoken[1:])
        assert spoken[1].text == "a dua, loket dua"
        short = wav_seconds(spoken[1].wavs[0])
        full = wav_seconds(first.wavs[0]) + wav_seconds(first.wavs[1])
        assert short < full / 2  # measured: what makes the burst heard sooner
        delays = [s.started_at - s.received_at for s in spoken]
        assert max(delays) <= 30.0  # none heard after it stopped being news
        assert len(spoken) >= 10
        assert [s.key[0] for s in spoken] == list(range(1, len(spoken) + 1))  # in order
        assert {d.reason for d in dropped} == {"stale"}
        assert sorted(d.key[0] for d in dropped) == list(range(len(spoken) + 1, 31))
    finally:
        announcer.close()


def test_a_call_alone_is_spoken_in_full_with_the_chime(tmp_path: Path) -> None:
    clock = ManualClock()
    announcer = SpeechAnnouncer(TimedPlayer(clock), tmp_path, clock=clock)
    announcer.start()
    try:
        for counter in (4, 5):
            announcer.announce(news(clock, counter, f"B{counter:03d}"))
            assert wait_until(lambda n=counter: len(announcer.spoken) == n - 3, 20)
            clock.now += 5.0  # a quiet moment between the calls
        assert [s.short for s in announcer.spoken] == [False, False]
        assert all(s.wavs[0] == announcer.chime for s in announcer.spoken)
    finally:
        announcer.close()
