"""Numbers, letters and ticket labels read aloud in Indonesian and English."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.numbers import (
    LETTER_NAMES,
    MAX_NUMBER,
    NumberWordsError,
    digit_words,
    letter_name,
    number_words,
    split_ticket,
    ticket_words,
)

INDONESIAN = {
    0: "nol",
    1: "satu",
    9: "sembilan",
    10: "sepuluh",
    11: "sebelas",
    12: "dua belas",
    19: "sembilan belas",
    20: "dua puluh",
    21: "dua puluh satu",
    99: "sembilan puluh sembilan",
    100: "seratus",
    101: "seratus satu",
    110: "seratus sepuluh",
    111: "seratus sebelas",
    115: "seratus lima belas",
    200: "dua ratus",
    999: "sembilan ratus sembilan puluh sembilan",
    1000: "seribu",
    1001: "seribu satu",
    1100: "seribu seratus",
    1999: "seribu sembilan ratus sembilan puluh sembilan",
    2000: "dua ribu",
    2026: "dua ribu dua puluh enam",
    11_000: "sebelas ribu",
    12_500: "dua belas ribu lima ratus",
    100_000: "seratus ribu",
    101_000: "seratus satu ribu",
    999_999: "sembilan ratus sembilan puluh sembilan ribu sembilan ratus sembilan puluh sembilan",
    1_000_000: "satu juta",
    1_001_000: "satu juta seribu",
    25_000_000: "dua puluh lima juta",
    3_000_000_000: "tiga miliar",
    7_000_000_000_000: "tujuh triliun",
}

ENGLISH = {
    0: "zero",
    3: "three",
    12: "twelve",
    20: "twenty",
    42: "forty-two",
    100: "one hundred",
    112: "one hundred and twelve",
    1000: "one thousand",
    1005: "one thousand and five",
    1105: "one thousand one hundred and five",
    999_999: "nine hundred and ninety-nine thousand nine hundred and ninety-nine",
    2_000_000: "two million",
}


@pytest.mark.parametrize(("n", "words"), sorted(INDONESIAN.items()))
def test_indonesian_number_words(n: int, words: str) -> None:
    assert number_words(n) == words


@pytest.mark.parametrize(("n", "words"), sorted(ENGLISH.items()))
def test_english_number_words(n: int, words: str) -> None:
    assert number_words(n, "en") == words


ID_VALUES = {
    "nol": 0, "satu": 1, "dua": 2, "tiga": 3, "empat": 4, "lima": 5, "enam": 6, "tujuh": 7,
    "delapan": 8, "sembilan": 9, "sepuluh": 10, "sebelas": 11, "seratus": 100, "seribu": 1000,
}  # fmt: skip
ID_MULTIPLIERS = {"belas": None, "puluh": 10, "ratus": 100}
ID_SCALES = {"ribu": 10**3, "juta": 10**6, "miliar": 10**9, "triliun": 10**12}


def parse_indonesian(text: str) -> int:
    """An independent reader of Indonesian number words, to check the writer against."""
    total, group, last = 0, 0, 0
    for word in text.split():
        if word in ID_VALUES:
            last = ID_VALUES[word]
            if last == 1000:  # 'seribu' is a whole thousands group
                assert group == 0, text
                total += 1000
                last = 0
                continue
            group += last
        elif word == "belas":
            group += 10  # 'dua belas': 2 + 10
            last = 0
        elif word in ID_MULTIPLIERS:
            group += last * (ID_MULTIPLIERS[word] - 1)  # type: ignore[operator]
            last = 0
        elif word in ID_SCALES:
            total += group * ID_SCALES[word]
            group, last = 0, 0
        else:
            raise AssertionError(f"unexpected word {word!r} in {text!r}")
    return total + group


@given(st.integers(min_value=0, max_value=MAX_NUMBER))
def test_indonesian_words_read_back_to_the_same_number(n: int) -> None:
    words = number_words(n)
    assert parse_indonesian(words) == n, words
    tokens = words.split()
    for i, word in enumerate(tokens):
        if word in ("puluh", "belas", "ratus"):
            assert tokens[i - 1] != "satu", words  # sepuluh, sebelas, seratus
        if word == "ribu" and tokens[i - 1] == "satu":
            # 'seribu' for 1.000; 'satu ribu' only ends a larger group (21.000, 101.000)
            assert i >= 2 and tokens[i - 2] not in ("juta", "miliar", "triliun"), words
    assert "  " not in words and words == words.strip()


@given(st.integers(min_value=1, max_value=999_999))
def test_english_words_have_no_zero_inside(n: int) -> None:
    words = number_words(n, "en")
    assert "zero" not in words and words.split()[-1] != "and"


def test_letters_have_their_indonesian_names() -> None:
    assert [letter_name(c) for c in "ABCHKQWXZ"] == [
        "a", "be", "ce", "ha", "ka", "ki", "we", "eks", "zet"
    ]  # fmt: skip
    assert letter_name("b") == "be"
    assert letter_name("A", "en") == "eigh" and letter_name("W", "en") == "double you"
    assert set(LETTER_NAMES["id"]) == set(LETTER_NAMES["en"]) == set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def test_digits_one_by_one() -> None:
    assert digit_words("012") == "nol satu dua"
    assert digit_words("907", "en") == "nine zero seven"


def test_ticket_labels_read_aloud() -> None:
    assert ticket_words("A012") == "a dua belas"
    assert ticket_words("A012", reading="digits") == "a nol satu dua"
    assert ticket_words("H100") == "ha seratus"
    assert ticket_words("AB011") == "a be sebelas"
    assert ticket_words("A012", "en") == "eigh twelve"
    assert ticket_words("C001", "en", "digits") == "see zero zero one"
    assert split_ticket("M120") == ("M", "120")


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: number_words(-1), "out of range"),
        (lambda: number_words(MAX_NUMBER + 1), "out of range"),
        (lambda: number_words(1.5), "not a whole number"),  # type: ignore[arg-type]
        (lambda: number_words(True), "not a whole number"),
        (lambda: number_words(3, "fr"), "not supported"),
        (lambda: digit_words("12a"), "not a string of digits"),
        (lambda: digit_words(""), "not a string of digits"),
        (lambda: digit_words("٣"), "not a string of digits"),
        (lambda: letter_name("1"), "not a single letter"),
        (lambda: letter_name("AB"), "not a single letter"),
        (lambda: letter_name("É"), "not a single letter"),
        (lambda: ticket_words("012"), "not a ticket label"),
        (lambda: ticket_words("A-12"), "not a ticket label"),
        (lambda: ticket_words("A012", reading="roman"), "unknown"),  # type: ignore[arg-type]
    ],
)
def test_bad_input_is_refused_with_a_clear_error(call, fragment: str) -> None:
    with pytest.raises(NumberWordsError, match=fragment):
        call()
