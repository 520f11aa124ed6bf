"""The spoken phrase of a call, in Indonesian and English, as words or digits."""

from __future__ import annotations

import pytest

from display.speech_text import call_phrase
from protocol.errors import MppError
from tests.conftest import example_text, make_site

site = make_site()


def test_indonesian_phrase_reads_letter_and_number_as_words() -> None:
    phrase = call_phrase(site, "A012", 3)
    assert phrase.text == "Nomor antrian a dua belas, silakan menuju loket tiga"
    assert phrase.shown == "Nomor antrian A012, silakan menuju Loket 3"
    assert [f.key for f in phrase.fragments] == [
        "intro", "letter-a", "word-dua", "word-belas", "to-counter", "word-tiga"
    ]  # fmt: skip
    assert " ".join(f.text for f in phrase.fragments) == phrase.text.replace(",", "")
    assert all(f.text for f in phrase.fragments)


def test_english_phrase() -> None:
    phrase = call_phrase(site, "A012", 3, "en")
    assert phrase.text == "Ticket number eigh twelve, please go to counter three"
    assert phrase.shown == "Ticket number A012, please go to Counter 3"


def test_digit_by_digit_reading() -> None:
    phrase = call_phrase(site, "H105", 21, reading="digits")
    assert phrase.text == "Nomor antrian ha satu nol lima, silakan menuju loket dua puluh satu"
    assert [f.key for f in phrase.fragments][1:5] == [
        "letter-h", "word-satu", "word-nol", "word-lima"
    ]  # fmt: skip


def test_large_numbers_and_named_counters() -> None:
    text = example_text().replace(
        '[counters.30]\nservices = ["info"]',
        '[counters.30]\nname = { id = "Meja Informasi", en = "the information desk" }\n'
        'services = ["info"]',
    )
    named = make_site(text=text)
    phrase = call_phrase(named, "X111", 30)
    assert phrase.text == "Nomor antrian eks seratus sebelas, silakan menuju Meja Informasi"
    assert phrase.fragments[-1].key == "counter-30"
    english = call_phrase(named, "X111", 30, "en")
    assert english.text == (
        "Ticket number ex one hundred and eleven, please go to the information desk"
    )


def test_english_compound_numbers_are_separate_clips() -> None:
    phrase = call_phrase(site, "A042", 21, "en")
    assert phrase.text == "Ticket number eigh forty-two, please go to counter twenty-one"
    keys = [f.key for f in phrase.fragments]
    assert keys == ["intro", "letter-a", "word-forty", "word-two", "to-counter", "word-twenty",
                    "word-one"]  # fmt: skip


def test_a_label_that_is_not_a_ticket_is_refused() -> None:
    with pytest.raises(MppError, match="not a ticket label"):
        call_phrase(site, "12", 3)
