"""What a screen says for a call: the phrase, and the fragments a recorded voice pack can supply.

    phrase = call_phrase(site, "A012", 3)
    phrase.text      # 'Nomor antrian a dua belas, silakan menuju loket tiga'
    phrase.shown     # 'Nomor antrian A012, silakan menuju Loket 3'
    [f.key for f in phrase.fragments]
    # ['intro', 'letter-a', 'word-dua', 'word-belas', 'to-counter', 'word-tiga']

The letters and the number are spelt out here (protocol.numbers), never left to the speech
engine, which reads "A012" badly. Each fragment's key is the name of the voice-pack clip that
replaces it (see display/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.numbers import (
    Reading,
    digit_words,
    letter_name,
    number_words,
    split_ticket,
    ticket_words,
)
from protocol.site import Site

INTRO = {"id": "Nomor antrian", "en": "Ticket number"}
TO_COUNTER = {"id": "silakan menuju loket", "en": "please go to counter"}
TO_PLACE = {"id": "silakan menuju", "en": "please go to"}
COUNTER = {"id": "loket", "en": "counter"}  # the short form's word before the counter


@dataclass(frozen=True)
class Fragment:
    """One piece of a phrase: the voice-pack clip name (`key`) and the words it stands for."""

    key: str
    text: str


@dataclass(frozen=True)
class Phrase:
    """A call announcement in one language: the words spoken, as text and as fragments."""

    lang: str
    text: str
    shown: str
    fragments: tuple[Fragment, ...]


def _word_fragments(words: str) -> list[Fragment]:
    """One fragment per word; 'forty-two' is two ('forty', 'two'), so a pack needs few clips."""
    return [Fragment(f"word-{word}", word) for word in words.replace("-", " ").split()]


def call_phrase(
    site: Site,
    ticket: str,
    counter: int,
    lang: str = "id",
    reading: Reading = "words",
    *,
    short: bool = False,
) -> Phrase:
    """The announcement for `ticket` called to `counter`, in the zone's language and reading.

    `short`: the form spoken while more calls wait ('a dua belas, loket tiga'): the number and
    the counter only, about a third of the full phrase's length.
    """
    prefix, digits = split_ticket(ticket)
    spoken_ticket = ticket_words(ticket, lang, reading)
    number = number_words(int(digits), lang) if reading == "words" else digit_words(digits, lang)
    fragments = [] if short else [Fragment("intro", INTRO[lang])]
    fragments += [Fragment(f"letter-{c.lower()}", letter_name(c, lang)) for c in prefix]
    fragments += _word_fragments(number)
    named = site.counters[counter].name if counter in site.counters else None
    if named is not None:
        place = named.get(lang)
        counter_spoken = place if short else f"{TO_PLACE[lang]} {place}"
        fragments.append(Fragment(f"{'place' if short else 'counter'}-{counter}", counter_spoken))
    else:
        counter_words = number_words(counter, lang)
        lead = COUNTER[lang] if short else TO_COUNTER[lang]
        counter_spoken = f"{lead} {counter_words}"
        fragments.append(Fragment("counter" if short else "to-counter", lead))
        fragments += _word_fragments(counter_words)
    intro = "" if short else f"{INTRO[lang]} "
    return Phrase(
        lang=lang,
        text=f"{intro}{spoken_ticket}, {counter_spoken}",
        shown=f"{intro}{ticket}, {site.counter_name(counter, lang)}"
        if short
        else f"{INTRO[lang]} {ticket}, {TO_PLACE[lang]} {site.counter_name(counter, lang)}",
        fragments=tuple(fragments),
    )
