"""Numbers and letters as they are spoken: Indonesian first, English when a zone asks for it.

A speech engine reads "A012" badly (espeak-ng says "nol dua belas" and drops the letter), so
announcements are built from words that this module spells out:

    number_words(12)               # 'dua belas'
    number_words(1_100)            # 'seribu seratus'
    number_words(12, "en")         # 'twelve'
    letter_name("C")               # 'ce'
    digit_words("012")             # 'nol satu dua'
    ticket_words("A012")           # 'a dua belas'
    ticket_words("A012", reading="digits")  # 'a nol satu dua'
"""

from __future__ import annotations

import re
from typing import Literal

from protocol.errors import MppError

Reading = Literal["words", "digits"]

MAX_NUMBER = 999_999_999_999_999

_ID_UNITS = ("nol", "satu", "dua", "tiga", "empat", "lima", "enam", "tujuh", "delapan", "sembilan")
_ID_SCALES = ((10**12, "triliun"), (10**9, "miliar"), (10**6, "juta"))

_EN_UNITS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
_EN_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_EN_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"))

# Letter names as a speech engine should read them. Indonesian names follow the alphabet
# taught in school (a, be, ce, de, ...); the English ones are spelt so espeak-ng says the
# letter's name rather than a word ("eigh", not "a" or "ay").
LETTER_NAMES: dict[str, dict[str, str]] = {
    "id": dict(
        zip(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            [
                "a", "be", "ce", "de", "e", "ef", "ge", "ha", "i", "je", "ka", "el", "em", "en",
                "o", "pe", "ki", "er", "es", "te", "u", "ve", "we", "eks", "ye", "zet",
            ],
            strict=True,
        )
    ),
    "en": dict(
        zip(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            [
                "eigh", "bee", "see", "dee", "ee", "ef", "jee", "aitch", "eye", "jay", "kay",
                "el", "em", "en", "oh", "pee", "cue", "ar", "ess", "tee", "you", "vee",
                "double you", "ex", "why", "zed",
            ],
            strict=True,
        )
    ),
}  # fmt: skip

_TICKET_RE = re.compile(r"([A-Za-z]{1,2})([0-9]{1,6})")


class NumberWordsError(MppError, ValueError):
    """A number, letter or ticket label that cannot be read aloud (out of range, not a letter)."""


def _check_lang(lang: str) -> None:
    if lang not in ("id", "en"):
        raise NumberWordsError(f"language {lang!r} is not supported; use 'id' or 'en'")


def _check_range(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int):
        raise NumberWordsError(f"{n!r} is not a whole number")
    if n < 0 or n > MAX_NUMBER:
        raise NumberWordsError(f"{n} is out of range; numbers from 0 to {MAX_NUMBER:,} are read")


def _id_below_thousand(n: int) -> list[str]:
    """Indonesian words for 1..999 (empty for 0)."""
    words: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds == 1:
        words.append("seratus")
    elif hundreds > 1:
        words += [_ID_UNITS[hundreds], "ratus"]
    if rest == 10:
        words.append("sepuluh")
    elif rest == 11:
        words.append("sebelas")
    elif 12 <= rest <= 19:
        words += [_ID_UNITS[rest - 10], "belas"]
    elif rest >= 20:
        tens, units = divmod(rest, 10)
        words += [_ID_UNITS[tens], "puluh"]
        if units:
            words.append(_ID_UNITS[units])
    elif rest > 0:
        words.append(_ID_UNITS[rest])
    return words


def _id_words(n: int) -> list[str]:
    if n == 0:
        return ["nol"]
    words: list[str] = []
    for scale, name in _ID_SCALES:
        count, n = divmod(n, scale)
        if count:
            words += [*_id_below_thousand(count), name]
    thousands, n = divmod(n, 1000)
    if thousands == 1:
        words.append("seribu")
    elif thousands > 1:
        words += [*_id_below_thousand(thousands), "ribu"]
    return words + _id_below_thousand(n)


def _en_below_thousand(n: int) -> list[str]:
    """English words for 1..999 (empty for 0), British style: 'one hundred and twelve'."""
    words: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words += [_EN_UNITS[hundreds], "hundred"]
        if rest:
            words.append("and")
    if rest >= 20:
        tens, units = divmod(rest, 10)
        words.append(_EN_TENS[tens] + (f"-{_EN_UNITS[units]}" if units else ""))
    elif rest:
        words.append(_EN_UNITS[rest])
    return words


def _en_words(n: int) -> list[str]:
    if n == 0:
        return ["zero"]
    words: list[str] = []
    for scale, name in _EN_SCALES:
        count, n = divmod(n, scale)
        if count:
            words += [*_en_below_thousand(count), name]
    if n and words and n < 100:
        words.append("and")
    return words + _en_below_thousand(n)


def number_words(n: int, lang: str = "id") -> str:
    """A whole number read aloud: 12 -> 'dua belas', 1000 -> 'seribu' ('twelve' in English)."""
    _check_lang(lang)
    _check_range(n)
    return " ".join(_id_words(n) if lang == "id" else _en_words(n))


def digit_words(digits: str, lang: str = "id") -> str:
    """Digits read one by one: '012' -> 'nol satu dua' ('zero one two' in English)."""
    _check_lang(lang)
    if not digits or not digits.isascii() or not digits.isdigit():
        raise NumberWordsError(f"{digits!r} is not a string of digits 0-9")
    units = _ID_UNITS if lang == "id" else _EN_UNITS
    return " ".join(units[int(d)] for d in digits)


def letter_name(letter: str, lang: str = "id") -> str:
    """The spoken name of a Latin letter: 'B' -> 'be' (Indonesian), 'bee' (English)."""
    _check_lang(lang)
    name = LETTER_NAMES[lang].get(letter.upper()) if len(letter) == 1 else None
    if name is None:
        raise NumberWordsError(f"{letter!r} is not a single letter A-Z")
    return name


def split_ticket(label: str) -> tuple[str, str]:
    """'A012' -> ('A', '012'): the service prefix and the number part of a ticket label."""
    match = _TICKET_RE.fullmatch(label)
    if not match:
        raise NumberWordsError(
            f"{label!r} is not a ticket label; expected 1-2 letters and digits, e.g. 'A012'"
        )
    return match[1].upper(), match[2]


def ticket_words(label: str, lang: str = "id", reading: Reading = "words") -> str:
    """A ticket label read aloud: 'A012' -> 'a dua belas', or 'a nol satu dua' digit by digit."""
    prefix, digits = split_ticket(label)
    letters = [letter_name(letter, lang) for letter in prefix]
    if reading == "digits":
        number = digit_words(digits, lang)
    elif reading == "words":
        number = number_words(int(digits), lang)
    else:
        raise NumberWordsError(f"number reading {reading!r} is unknown; use 'words' or 'digits'")
    return " ".join([*letters, number])
