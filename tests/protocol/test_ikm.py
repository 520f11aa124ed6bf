"""The IKM formula of Permenpan RB 14/2017 against hand-computed cases and the category table."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from protocol.ikm import ELEMENTS, SurveyScoresError, category_of, ikm


def responses_with(respondents: int, total: int) -> list[tuple[int, ...]]:
    """`respondents` full responses whose 9 x respondents scores add to `total` (two values)."""
    answers = 9 * respondents
    base, higher = divmod(total, answers)
    assert 1 <= base <= 4 and (higher == 0 or base < 4)
    flat = [base + 1] * higher + [base] * (answers - higher)
    return [tuple(flat[i : i + 9]) for i in range(0, answers, 9)]


def test_all_fours_is_exactly_100_and_a() -> None:
    result = ikm([(4,) * 9] * 7)
    assert result.index == Fraction(100)
    assert result.value == Decimal("100.00")
    assert result.category is not None and result.category.letter == "A"
    assert result.category.name.id == "Sangat baik"
    # The regulation's rounded weight 0.111 would give 99.90: the weight here is exact.
    assert result.value != Decimal("99.90")


def test_all_ones_is_25_and_d() -> None:
    result = ikm([(1,) * 9, (1,) * 9])
    assert result.value == Decimal("25.00") and result.category.letter == "D"


def test_hand_computed_mixed_case() -> None:
    # Two respondents. Element sums: U1 4+3=7 -> NRR 3.5; U2 2+2 -> 2; U3 4+4 -> 4; U4 1+3 -> 2;
    # U5 3+3 -> 3; U6 4+2 -> 3; U7 4+4 -> 4; U8 3+4 -> 3.5; U9 2+3 -> 2.5.
    # Sum of NRR = 27.5; x 1/9 = 3.0555...; x 25 = 76.3888... -> 76.39, C (65.00-76.60).
    result = ikm([(4, 2, 4, 1, 3, 4, 4, 3, 2), (3, 2, 4, 3, 3, 2, 4, 4, 3)])
    assert result.nrr == tuple(
        Fraction(x) for x in ("7/2", "2", "4", "2", "3", "3", "4", "7/2", "5/2")
    )
    assert result.index == Fraction(275, 9) * Fraction(25, 10)
    assert result.value == Decimal("76.39")
    assert result.category.letter == "C" and result.category.name.en == "Poor"
    assert result.respondents == 2
    assert result.nrr_decimal() == tuple(
        Decimal(x) for x in ("3.50", "2.00", "4.00", "2.00", "3.00", "3.00", "4.00", "3.50", "2.50")
    )


@pytest.mark.parametrize(
    ("respondents", "total", "value", "letter"),
    [
        # IKM = 25 x total / (9 x respondents), computed by hand:
        (24, 763, "88.31", "A"),  # 19075/216 = 88.3101...
        (19, 604, "88.30", "B"),  # 15100/171 = 88.3040...
        (19, 524, "76.61", "B"),  # 13100/171 = 76.6081...
        (26, 717, "76.60", "C"),  # 17925/234 = 76.6025...
        (5, 117, "65.00", "C"),  # 2925/45 = 65 exactly
        (38, 889, "64.99", "D"),  # 22225/342 = 64.9853...
    ],
)
def test_category_boundaries(respondents: int, total: int, value: str, letter: str) -> None:
    result = ikm(responses_with(respondents, total))
    assert result.index == Fraction(25 * total, 9 * respondents)
    assert result.value == Decimal(value)
    assert result.category.letter == letter


@pytest.mark.parametrize(
    ("value", "letter"),
    [("100", "A"), ("88.31", "A"), ("88.30", "B"), ("76.61", "B"), ("76.60", "C"),
     ("65.00", "C"), ("64.99", "D"), ("25.00", "D")],
)  # fmt: skip
def test_category_table(value: str, letter: str) -> None:
    assert category_of(Decimal(value)).letter == letter


def test_rounding_is_half_up_before_the_category() -> None:
    # 88.305 exactly (an exact fraction) rounds to 88.31 and so is A, not B.
    from protocol.ikm import to_decimal

    assert to_decimal(Fraction(88305, 1000)) == Decimal("88.31")
    assert category_of(to_decimal(Fraction(88305, 1000))).letter == "A"


def test_no_responses_have_no_index() -> None:
    result = ikm([])
    assert result.respondents == 0 and result.index is None and result.category is None


@pytest.mark.parametrize(
    "bad",
    [(4,) * 8, (4,) * 10, (4, 4, 4, 4, 4, 4, 4, 4, 5), (0,) * 9, (4, 4, 4, 4, 4, 4, 4, 4, True)],
)
def test_bad_responses_are_refused_by_name(bad: tuple) -> None:
    with pytest.raises(SurveyScoresError):
        ikm([(4,) * 9, bad])


def test_out_of_range_value_has_no_category() -> None:
    with pytest.raises(SurveyScoresError):
        category_of(Decimal("24.99"))


def test_nine_elements_in_regulation_order() -> None:
    assert [e.code for e in ELEMENTS] == [f"U{i}" for i in range(1, 10)]
    assert ELEMENTS[0].name.id == "Persyaratan"
    assert ELEMENTS[8].name.id.startswith("Penanganan pengaduan")
    assert all(len(e.answers) == 4 for e in ELEMENTS)
