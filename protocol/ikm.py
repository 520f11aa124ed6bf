"""The public satisfaction index (IKM) of Permenpan RB 14/2017, computed exactly (pure); the
hub's reports and the region's per-unit report both use this one implementation.

Each of the 9 survey elements is scored 1..4. Per element NRR = mean score; the index is
IKM = (sum of NRR x 1/9) x 25, with the weight 1/9 exact (not the regulation's rounded 0.111),
so all 4s give exactly 100. The value is rounded half-up to 2 decimals and then put in its
category, so the table's boundaries (88.31, 76.61, 65.00) are exact:

    result = ikm([(4, 4, 4, 4, 4, 4, 4, 4, 4)])
    result.value, result.category.letter        # (Decimal('100.00'), 'A')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from protocol.errors import MppError
from protocol.site import Text


@dataclass(frozen=True)
class Element:
    """One survey element: its code (U1..U9), name, question and the four answers (1..4)."""

    code: str
    name: Text
    question: Text
    answers: tuple[Text, Text, Text, Text]


def _t(id_: str, en: str) -> Text:
    return Text(id=id_, en=en)


def _answers(*pairs: tuple[str, str]) -> tuple[Text, Text, Text, Text]:
    texts = tuple(_t(a, b) for a, b in pairs)
    assert len(texts) == 4
    return texts  # type: ignore[return-value]


# The 9 elements and the sample questionnaire of Permenpan RB 14/2017, in its order.
ELEMENTS: tuple[Element, ...] = (
    Element(
        "U1",
        _t("Persyaratan", "Requirements"),
        _t(
            "Bagaimana pendapat Saudara tentang kesesuaian persyaratan pelayanan dengan jenis "
            "pelayanannya?",
            "How well do the requirements fit the service?",
        ),
        _answers(
            ("Tidak sesuai", "Not fitting"),
            ("Kurang sesuai", "Somewhat fitting"),
            ("Sesuai", "Fitting"),
            ("Sangat sesuai", "Very fitting"),
        ),
    ),
    Element(
        "U2",
        _t("Sistem, mekanisme dan prosedur", "Systems, mechanisms and procedures"),
        _t(
            "Bagaimana pemahaman Saudara tentang kemudahan prosedur pelayanan di unit ini?",
            "How easy is the service procedure here?",
        ),
        _answers(
            ("Tidak mudah", "Not easy"),
            ("Kurang mudah", "Somewhat easy"),
            ("Mudah", "Easy"),
            ("Sangat mudah", "Very easy"),
        ),
    ),
    Element(
        "U3",
        _t("Waktu penyelesaian", "Completion time"),
        _t(
            "Bagaimana pendapat Saudara tentang kecepatan waktu dalam memberikan pelayanan?",
            "How fast was the service?",
        ),
        _answers(
            ("Tidak cepat", "Not fast"),
            ("Kurang cepat", "Somewhat fast"),
            ("Cepat", "Fast"),
            ("Sangat cepat", "Very fast"),
        ),
    ),
    Element(
        "U4",
        _t("Biaya/tarif", "Cost/fees"),
        _t(
            "Bagaimana pendapat Saudara tentang kewajaran biaya/tarif dalam pelayanan?",
            "How fair is the cost of the service?",
        ),
        _answers(
            ("Sangat mahal", "Very expensive"),
            ("Cukup mahal", "Rather expensive"),
            ("Murah", "Cheap"),
            ("Gratis", "Free"),
        ),
    ),
    Element(
        "U5",
        _t("Produk spesifikasi jenis pelayanan", "Service product"),
        _t(
            "Bagaimana pendapat Saudara tentang kesesuaian produk pelayanan antara yang "
            "tercantum dalam standar pelayanan dengan hasil yang diberikan?",
            "How well does what you received match the published service standard?",
        ),
        _answers(
            ("Tidak sesuai", "Not matching"),
            ("Kurang sesuai", "Somewhat matching"),
            ("Sesuai", "Matching"),
            ("Sangat sesuai", "Fully matching"),
        ),
    ),
    Element(
        "U6",
        _t("Kompetensi pelaksana", "Staff competence"),
        _t(
            "Bagaimana pendapat Saudara tentang kompetensi/kemampuan petugas dalam pelayanan?",
            "How competent was the officer?",
        ),
        _answers(
            ("Tidak kompeten", "Not competent"),
            ("Kurang kompeten", "Somewhat competent"),
            ("Kompeten", "Competent"),
            ("Sangat kompeten", "Very competent"),
        ),
    ),
    Element(
        "U7",
        _t("Perilaku pelaksana", "Staff behaviour"),
        _t(
            "Bagaimana pendapat Saudara tentang perilaku petugas dalam pelayanan terkait "
            "kesopanan dan keramahan?",
            "How polite and friendly was the officer?",
        ),
        _answers(
            ("Tidak sopan dan ramah", "Not polite or friendly"),
            ("Kurang sopan dan ramah", "Somewhat polite and friendly"),
            ("Sopan dan ramah", "Polite and friendly"),
            ("Sangat sopan dan ramah", "Very polite and friendly"),
        ),
    ),
    Element(
        "U8",
        _t("Sarana dan prasarana", "Facilities"),
        _t(
            "Bagaimana pendapat Saudara tentang kualitas sarana dan prasarana?",
            "How good are the facilities?",
        ),
        _answers(
            ("Buruk", "Poor"),
            ("Cukup", "Fair"),
            ("Baik", "Good"),
            ("Sangat baik", "Very good"),
        ),
    ),
    Element(
        "U9",
        _t(
            "Penanganan pengaduan, saran dan masukan",
            "Handling of complaints, suggestions and feedback",
        ),
        _t(
            "Bagaimana pendapat Saudara tentang penanganan pengaduan pengguna layanan?",
            "How are complaints of service users handled?",
        ),
        _answers(
            ("Tidak ada", "Not at all"),
            ("Ada tetapi tidak berfungsi", "Exists but does not work"),
            ("Berfungsi kurang maksimal", "Works, not fully"),
            ("Dikelola dengan baik", "Handled well"),
        ),
    ),
)
WEIGHT = Fraction(1, len(ELEMENTS))
SCALE = 25
TWO_PLACES = Decimal("0.01")


@dataclass(frozen=True)
class Category:
    """A quality category of the index: letter, lowest value, and its name."""

    letter: str
    lowest: Decimal
    name: Text


# Highest first: a rounded value belongs to the first category whose lowest it reaches.
CATEGORIES: tuple[Category, ...] = (
    Category("A", Decimal("88.31"), _t("Sangat baik", "Very good")),
    Category("B", Decimal("76.61"), _t("Baik", "Good")),
    Category("C", Decimal("65.00"), _t("Kurang baik", "Poor")),
    Category("D", Decimal("25.00"), _t("Tidak baik", "Very poor")),
)


class SurveyScoresError(MppError, ValueError):
    """A survey response that is not 9 whole scores from 1 to 4."""


@dataclass(frozen=True)
class IkmResult:
    """The index over a set of responses; `index` is exact, `value` rounded to 2 places."""

    respondents: int
    nrr: tuple[Fraction, ...]
    index: Fraction | None
    value: Decimal | None
    category: Category | None

    def nrr_decimal(self, places: str = "0.01") -> tuple[Decimal, ...]:
        """NRR per element rounded half-up for tables (the index is computed exactly)."""
        return tuple(to_decimal(n, places) for n in self.nrr)


def to_decimal(value: Fraction, places: str = "0.01") -> Decimal:
    """An exact fraction rounded half-up to `places` (e.g. 88.305 -> 88.31)."""
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return exact.quantize(Decimal(places), rounding=ROUND_HALF_UP)


def category_of(value: Decimal) -> Category:
    """The category of a rounded index value in 25.00..100.00."""
    if not Decimal(25) <= value <= Decimal(100):
        raise SurveyScoresError(f"an IKM value lies in 25.00..100.00; got {value}")
    return next(c for c in CATEGORIES if value >= c.lowest)


def check_scores(scores: Sequence[int]) -> tuple[int, ...]:
    """The 9 scores of one response, or SurveyScoresError saying what is wrong."""
    if len(scores) != len(ELEMENTS):
        raise SurveyScoresError(f"a response has {len(ELEMENTS)} scores; got {len(scores)}")
    for i, score in enumerate(scores):
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 4:
            raise SurveyScoresError(f"score of {ELEMENTS[i].code} must be 1..4; got {score!r}")
    return tuple(scores)


def ikm(responses: Iterable[Sequence[int]]) -> IkmResult:
    """NRR per element, the exact index, its rounded value and category."""
    rows = [check_scores(r) for r in responses]
    if not rows:
        return IkmResult(0, (), None, None, None)
    count = len(rows)
    nrr = tuple(Fraction(sum(r[i] for r in rows), count) for i in range(len(ELEMENTS)))
    index = sum((n * WEIGHT for n in nrr), Fraction(0)) * SCALE
    value = to_decimal(index)
    return IkmResult(count, nrr, index, value, category_of(value))
