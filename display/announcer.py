"""Spoken calls: a chime, then the phrase, synthesised off the render thread, never overlapping.

The only module that imports pyttsx3. Speech is made by a synthesis thread (cached as WAV,
one file per phrase, or per fragment when a recorded voice pack is used) and played by one
playback thread through a player (the pygame mixer, see display.renderer.MixerPlayer), one
announcement after the other. What waits is judged again when its turn comes: a call whose
counter has been called again since is never spoken (`superseded`), one past its `stale_at`
is dropped (`stale`; the screen shows it), and while more calls wait the short phrase is
spoken without the chime ('a dua belas, loket tiga'), so a burst is heard while it is news:

    announcer = SpeechAnnouncer(MixerPlayer(), cache_dir=Path("/var/cache/mpp-display"))
    announcer.start()
    announcer.announce(Announcement((3, 7), call_phrase(site, "A012", 3), volume=0.9))
    ...
    announcer.spoken[-1].text     # 'Nomor antrian a dua belas, silakan menuju loket tiga'

A voice pack is a folder of WAV clips named after the phrase's fragments (display/README.md):
`chime.wav`, and per language `id/intro.wav`, `id/letter-a.wav`, `id/word-dua.wav`, ... A clip
that exists replaces the synthesised fragment.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import itertools
import logging
import os
import queue
import threading
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from display.chime import write_chime
from display.errors import SpeechError
from display.speech_text import Phrase

log = logging.getLogger("mpp.display")

VOICES = {"id": "poz/id", "en": "gmw/en"}
RATE_WPM = 150  # a little slower than espeak's 175-200: announcements must be understood
SYNTH_TIMEOUT_S = 10.0
SYNTH_ATTEMPTS = 3
# libespeak-ng has one synthesis callback per process (pyttsx3 shares one engine): one
# synthesis at a time, whichever synthesizer asks.
_ENGINE_LOCK = threading.RLock()


RUN_GAP_S = 1.0  # an announcement starting this soon after the last one continues its run


@dataclass(frozen=True)
class Announcement:
    """A call to speak: its key (counter, call_seq), the phrase, and the zone's volume.

    `stale_at` (the announcer's clock, time.monotonic): not spoken when its turn comes later
    (None: always spoken). `short`: the phrase to speak instead while more calls wait.
    """

    key: tuple[int, int]
    phrase: Phrase
    volume: float = 0.8
    received_at: float = field(default_factory=time.monotonic)
    stale_at: float | None = None
    short: Phrase | None = None


@dataclass(frozen=True)
class Spoken:
    """The record of one announcement played (times are time.monotonic())."""

    key: tuple[int, int]
    text: str
    lang: str
    wavs: tuple[Path, ...]
    received_at: float
    started_at: float
    ended_at: float
    error: str | None = None
    volume: float = 0.0
    short: bool = False  # the short phrase, without the chime (more calls were waiting)


@dataclass(frozen=True)
class Dropped:
    """An announcement not spoken when its turn came: 'superseded' or 'stale'."""

    key: tuple[int, int]
    text: str
    reason: str
    received_at: float
    at: float


@dataclass(frozen=True)
class AnnouncerEvent:
    """An announcement started or finished playing (for the highlight to follow)."""

    kind: str  # "started" | "finished"
    key: tuple[int, int]
    at: float
    error: str | None = None


Listener = Callable[[AnnouncerEvent], None]


class Player(Protocol):
    """Plays WAV files one after the other and returns when they have been heard."""

    def open(self) -> None:
        """Open the audio device."""

    def play(self, wavs: Sequence[Path], volume: float, on_start: Callable[[float], None]) -> None:
        """Play `wavs` in order at `volume`; call on_start(time) when sound begins (the time on
        the announcer's clock: time.monotonic() unless the announcer was given another)."""

    def close(self) -> None:
        """Release the audio device."""


class Announcer(Protocol):
    """What the display app needs from an announcer (real or recording)."""

    spoken: list[Spoken]
    listener: Listener | None

    def start(self) -> None:
        """Start the worker threads."""

    def announce(self, announcement: Announcement) -> None:
        """Queue an announcement (returns at once)."""

    def close(self, timeout: float = 5.0) -> None:
        """Stop after the current announcement."""


class RecordingAnnouncer:
    """A fake announcer for tests: records each announcement as spoken at once, plays nothing."""

    def __init__(self, listener: Listener | None = None) -> None:
        self.spoken: list[Spoken] = []
        self.listener = listener

    def start(self) -> None:
        """Nothing to start."""

    def announce(self, announcement: Announcement) -> None:
        """Record the announcement and report it started and finished."""
        now = time.monotonic()
        self.spoken.append(
            Spoken(
                announcement.key,
                announcement.phrase.text,
                announcement.phrase.lang,
                (),
                announcement.received_at,
                now,
                now,
                volume=announcement.volume,
            )
        )
        if self.listener is not None:
            self.listener(AnnouncerEvent("started", announcement.key, now))
            self.listener(AnnouncerEvent("finished", announcement.key, now))

    def close(self, timeout: float = 5.0) -> None:
        """Nothing to stop."""


def wav_seconds(path: Path) -> float:
    """Duration of a WAV file in seconds."""
    with wave.open(str(path), "rb") as audio:
        return audio.getnframes() / audio.getframerate()


class EspeakSynthesizer:
    """Text to WAV with pyttsx3 on espeak-ng. Use it from one thread only (the engine's)."""

    def __init__(self, voices: dict[str, str] | None = None, rate: int = RATE_WPM) -> None:
        self.voices = dict(voices or VOICES)
        self.rate = rate
        self._engine: Any = None
        self._voice_ids: set[str] = set()

    def _open(self) -> Any:
        if self._engine is None:
            try:
                import pyttsx3

                self._engine = pyttsx3.init("espeak")
            except Exception as exc:
                raise SpeechError(
                    f"cannot start pyttsx3 with espeak-ng ({exc}); install the espeak-ng package"
                ) from exc
            self._engine.setProperty("rate", self.rate)
            self._voice_ids = {v.id for v in self._engine.getProperty("voices")}
        return self._engine

    def voice_for(self, lang: str) -> str:
        """The espeak-ng voice id for `lang`; SpeechError names what to install when missing."""
        with _ENGINE_LOCK:
            self._open()
        wanted = self.voices.get(lang, lang)
        if wanted in self._voice_ids:
            return wanted
        alike = sorted(v for v in self._voice_ids if v.endswith(f"/{lang}"))
        if alike:
            return alike[0]
        raise SpeechError(
            f"espeak-ng has no voice {wanted!r} for language {lang!r}; install espeak-ng-data "
            "or set another voice"
        )

    def cache_name(self, text: str, lang: str) -> str:
        """A file name that changes with the text, voice and speaking rate."""
        digest = hashlib.sha1(
            f"{self.voices.get(lang, lang)}|{self.rate}|{text}".encode()
        ).hexdigest()
        return f"{lang}-{digest[:16]}.wav"

    def synthesize(self, text: str, lang: str, path: Path) -> Path:
        """Speak `text` in `lang` into the WAV file `path` (written atomically).

        espeak-ng now and then drops a request made just after the previous one ended (it
        answers at once with no audio, and pyttsx3 writes an empty file): such an attempt is
        repeated, up to SYNTH_ATTEMPTS times.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{threading.get_ident()}.wav")
        problem = ""
        for attempt in range(SYNTH_ATTEMPTS):
            if attempt:
                time.sleep(0.02 * attempt)
                log.info("speech synthesis repeated", extra={"text": text, "problem": problem})
            problem = self._attempt(text, lang, tmp)
            if not problem:
                os.replace(tmp, path)
                return path
            tmp.unlink(missing_ok=True)
        raise SpeechError(f"espeak-ng failed to speak {text!r}: {problem}")

    def _attempt(self, text: str, lang: str, tmp: Path) -> str:
        """One synthesis into `tmp`; '' when it holds speech, else what went wrong."""
        done = threading.Event()
        with _ENGINE_LOCK:
            engine = self._open()
            engine.setProperty("voice", self.voice_for(lang))
            engine.setProperty("rate", self.rate)
            token = engine.connect("finished-utterance", lambda **_: done.set())
            try:
                # pyttsx3 prints "Audio saved to ..." for every file; keep stdout clean.
                with contextlib.redirect_stdout(io.StringIO()):
                    engine.save_to_file(text, str(tmp))
                    engine.runAndWait()
                    # pyttsx3 2.99's espeak driver returns from runAndWait while espeak-ng
                    # may still be speaking into the file (its own thread): wait for the end.
                    finished = done.wait(SYNTH_TIMEOUT_S)
            finally:
                engine.disconnect(token)
        if not finished:
            return f"no end of speech within {SYNTH_TIMEOUT_S:g}s"
        try:
            seconds = wav_seconds(tmp)
        except (OSError, EOFError, wave.Error) as exc:
            return f"no usable WAV ({exc})"
        return "" if seconds > 0 else "an empty WAV"


@dataclass(frozen=True)
class _Ready:
    """An announcement with its speech made (or to be dropped: `speech` empty, no error)."""

    order: int
    announcement: Announcement
    speech: tuple[Path, ...]
    short: tuple[Path, ...] | None
    error: str | None


class SpeechAnnouncer:
    """Speaks calls: synthesis thread -> playback thread -> player, one announcement at a time."""

    def __init__(
        self,
        player: Player,
        cache_dir: Path,
        *,
        voice_pack: Path | None = None,
        synthesizer: EspeakSynthesizer | None = None,
        listener: Listener | None = None,
        max_cached: int = 400,
        prune_every: int = 50,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.player = player
        self.cache_dir = Path(cache_dir)
        self.voice_pack = Path(voice_pack) if voice_pack else None
        self.synthesizer = synthesizer or EspeakSynthesizer()
        self.listener = listener
        self.max_cached = max_cached
        self.prune_every = prune_every
        self.clock = clock
        self.spoken: list[Spoken] = []
        self.dropped: list[Dropped] = []
        self.synthesized = 0  # files made by the speech engine (cache misses)
        self._requests: queue.Queue[tuple[int, Announcement] | None] = queue.Queue()
        self._playlist: queue.Queue[_Ready | None] = queue.Queue()
        self._order = itertools.count()
        self._newest: dict[int, int] = {}  # counter -> order of its latest announcement
        self._waiting = 0  # announced, not yet played or dropped
        self._lock = threading.Lock()
        self._last_end = float("-inf")
        self._threads: list[threading.Thread] = []
        self._written = 0
        self._warm: tuple[str, ...] = ()
        self.chime = self._chime_path()
        self.audio_ok = True

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, warm: Sequence[str] = ("id",)) -> None:
        """Open the player and start the threads; the speech engine starts for `warm` languages
        at once, so the first call is not delayed by it."""
        self._warm = tuple(warm)
        try:
            self.player.open()
        except Exception as exc:
            self.audio_ok = False
            log.error("speakers unavailable; calls will be shown, not heard: %s", exc)
        for name, target in (("speech-synth", self._synth_loop), ("speech-play", self._play_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def announce(self, announcement: Announcement) -> None:
        """Queue an announcement; it plays after those queued before it (if still news)."""
        with self._lock:
            order = next(self._order)
            self._newest[announcement.key[0]] = order
            self._waiting += 1
        self._requests.put((order, announcement))

    def _not_news(self, order: int, announcement: Announcement) -> str | None:
        """Why a queued announcement must not be spoken now ('superseded', 'stale'), or None."""
        with self._lock:
            if self._newest.get(announcement.key[0], order) != order:
                return "superseded"  # its counter has called again since: that call counts
        if announcement.stale_at is not None and self.clock() > announcement.stale_at:
            return "stale"
        return None

    def close(self, timeout: float = 5.0) -> None:
        """Stop after what is queued; release the player."""
        self._requests.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self.player.close()

    # -- synthesis -------------------------------------------------------------------------
    def _chime_path(self) -> Path:
        if self.voice_pack is not None and (self.voice_pack / "chime.wav").is_file():
            return self.voice_pack / "chime.wav"
        path = self.cache_dir / "chime.wav"
        if not path.is_file():
            write_chime(path)
        return path

    def _clip(self, lang: str, key: str) -> Path | None:
        if self.voice_pack is None:
            return None
        path = self.voice_pack / lang / f"{key}.wav"
        return path if path.is_file() else None

    def _uses_voice_pack(self, lang: str) -> bool:
        folder = self.voice_pack / lang if self.voice_pack is not None else None
        return folder is not None and folder.is_dir() and any(folder.glob("*.wav"))

    def _cached(self, text: str, lang: str, folder: str) -> Path:
        path = self.cache_dir / folder / self.synthesizer.cache_name(text, lang)
        if path.is_file():
            os.utime(path)  # most recently used: kept by the pruning
            return path
        self.synthesizer.synthesize(text, lang, path)
        self.synthesized += 1
        self._written += 1
        if self._written % self.prune_every == 0:
            self._prune(path.parent)
        return path

    def _prune(self, folder: Path) -> None:
        files = sorted(folder.glob("*.wav"), key=lambda p: p.stat().st_mtime)
        for old in files[: max(0, len(files) - self.max_cached)]:
            old.unlink(missing_ok=True)

    def speech_wavs(self, phrase: Phrase) -> tuple[Path, ...]:
        """The WAV files that say `phrase`: voice-pack clips where present, else synthesis."""
        if not self._uses_voice_pack(phrase.lang):
            return (self._cached(phrase.text, phrase.lang, "phrases"),)
        return tuple(
            self._clip(phrase.lang, f.key) or self._cached(f.text, phrase.lang, "fragments")
            for f in phrase.fragments
        )

    def _synth_loop(self) -> None:
        for lang in self._warm:
            try:
                self.synthesizer.voice_for(lang)
            except SpeechError as exc:
                log.error("speech engine not ready: %s", exc)
        while True:
            request = self._requests.get()
            if request is None:
                self._playlist.put(None)
                return
            order, announcement = request
            if self._not_news(order, announcement) is not None:
                self._playlist.put(_Ready(order, announcement, (), None, None))
                continue  # the playback thread records it as dropped
            error = None
            short: tuple[Path, ...] | None = None
            try:
                speech = self.speech_wavs(announcement.phrase)
            except Exception as exc:
                error = str(exc)
                log.error(
                    "speech synthesis failed; playing the chime only",
                    extra={"call": announcement.key, "error": error},
                )
                speech = ()
            with self._lock:
                backlog = self._waiting > 1
            if backlog and announcement.short is not None and error is None:
                try:  # the short form, in case calls still wait when its turn comes
                    short = self.speech_wavs(announcement.short)
                except Exception as exc:
                    log.warning(
                        "short phrase not synthesised; the full one will be spoken",
                        extra={"call": announcement.key, "error": str(exc)},
                    )
            self._playlist.put(_Ready(order, announcement, speech, short, error))

    # -- playback --------------------------------------------------------------------------
    def _play_loop(self) -> None:
        while True:
            item = self._playlist.get()
            if item is None:
                return
            announcement, error = item.announcement, item.error
            with self._lock:
                self._waiting -= 1
                backlog = self._waiting > 0
            reason = self._not_news(item.order, announcement)
            if reason is not None:
                self._drop(announcement, reason)
                continue
            # While calls wait, the short phrase without the chime; the first of a run (and
            # any call with nothing behind it) is announced in full.
            continues_run = self.clock() - self._last_end <= RUN_GAP_S
            short = bool(backlog and continues_run and item.short)
            wavs = item.short if short and item.short else (self.chime, *item.speech)
            started: list[float] = []
            on_start = functools.partial(self._started, announcement.key, started)
            try:
                if not self.audio_ok:
                    raise RuntimeError("speakers unavailable")
                self.player.play(wavs, announcement.volume, on_start)
            except Exception as exc:
                error = f"playback failed: {exc}"
                log.error(
                    "announcement not played", extra={"call": announcement.key, "error": error}
                )
            ended = self.clock()
            self._last_end = ended
            phrase = announcement.short if short and announcement.short else announcement.phrase
            self.spoken.append(
                Spoken(
                    announcement.key,
                    phrase.text,
                    phrase.lang,
                    wavs,
                    announcement.received_at,
                    started[0] if started else ended,
                    ended,
                    error,
                    announcement.volume,
                    short,
                )
            )
            log.info(
                "call announced" if error is None else "call announcement incomplete",
                extra={"call": announcement.key, "text": phrase.text, "short": short},
            )
            self._emit(AnnouncerEvent("finished", announcement.key, ended, error))

    def _drop(self, announcement: Announcement, reason: str) -> None:
        """Record a call not spoken; its highlight stops as after an announcement."""
        now = self.clock()
        text, received = announcement.phrase.text, announcement.received_at
        self.dropped.append(Dropped(announcement.key, text, reason, received, now))
        why = "its counter called again" if reason == "superseded" else "too late to be news"
        log.info(f"call not spoken: {why}", extra={"call": announcement.key, "reason": reason})
        self._emit(AnnouncerEvent("finished", announcement.key, now, f"not spoken: {reason}"))

    def _started(self, key: tuple[int, int], started: list[float], at: float) -> None:
        started.append(at)
        self._emit(AnnouncerEvent("started", key, at))

    def _emit(self, event: AnnouncerEvent) -> None:
        if self.listener is not None:
            try:
                self.listener(event)
            except Exception:
                log.exception("announcer listener failed")
