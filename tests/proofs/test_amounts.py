"""proofs.amounts: the one parser of written amounts, shared by the invoice
parser and the AI advisor's context. A missing amount is acceptable, a wrong
one is not. Plain pytest, no database."""

from __future__ import annotations

from decimal import Decimal

import pytest

from proofs.amounts import parse_amount, read_amount


@pytest.mark.parametrize(
    "written, expected",
    [
        ("1 234,56", "1234.56"),
        ("1\u00a0234,56", "1234.56"),  # NBSP
        ("1\u202f234,56", "1234.56"),  # narrow NBSP
        ("1\u2009234,56", "1234.56"),  # thin space
        ("1,234.56", "1234.56"),
        ("1.234,56", "1234.56"),
        ("1'234.56", "1234.56"),
        ("1’234.56", "1234.56"),
        ("1234.56", "1234.56"),
        ("1234,56", "1234.56"),
        ("1234.5", "1234.5"),
        ("0,5", "0.5"),
        ("1234", "1234"),
        ("1 250 000", "1250000"),
        ("1.250.000", "1250000"),  # several groups: only thousands
        ("1,250,000.00", "1250000.00"),
        ("  1 300,00  ", "1300.00"),  # whitespace around is ignored
        ("-1 234,56", "-1234.56"),
        ("−12.50", "-12.50"),  # the minus sign, not a hyphen
        ("123456789012345678901234567890", "123456789012345678901234567890"),  # exact, not rounded to 28 digits
    ],
)
def test_accepted_styles(written, expected):
    value = parse_amount(written)
    assert value == Decimal(expected) and str(value) == expected  # the scale as written


@pytest.mark.parametrize(
    "written",
    [
        "1234.567",  # three decimals
        "12,34,567",  # groups of the wrong size
        "1234,567",
        "1.234 567",  # two group separators
        "1.234.56",  # the group separator used for the decimals
        "1,234,56",
        ".5",
        "1 300,00 EUR",
        "$12",
        "+12",
        "--12",
        "- 12",
        "1e5",
        "1  234",  # a column gap, not a group separator
        "n/a",
        "",
        "   ",
    ],
)
def test_refused_rather_than_guessed(written):
    assert read_amount(written) is None
    assert parse_amount(written) is None


@pytest.mark.parametrize("written, sep", [("1,234", ","), ("1.234", ".")])
def test_one_group_of_three_is_ambiguous_unless_the_decimal_separator_is_known(written, sep):
    other = "." if sep == "," else ","
    assert read_amount(written).value is None and read_amount(written).ambiguous_sep == sep
    assert parse_amount(written) is None
    assert parse_amount(written, decimal_sep=sep) is None  # then it would be 1.234: refused too
    assert parse_amount(written, decimal_sep=other) == Decimal("1234")


@pytest.mark.parametrize(
    "written, proves",
    [("1 234,56", ","), ("1,234.56", "."), ("12,50", ","), ("1.250.000", ","), ("1,250,000", "."),
     ("12,5", None), ("1 234", None), ("1234", None), ("1,234", None)],
)
def test_what_an_amount_proves_about_the_decimal_separator(written, proves):
    assert read_amount(written).decimal_sep == proves


@pytest.mark.parametrize(
    "value, expected",
    [(Decimal("12.50"), Decimal("12.50")), (5, Decimal(5)), (Decimal("-3"), Decimal("-3")),
     (1.5, None), (True, None), (None, None), (Decimal("NaN"), None), (Decimal("Infinity"), None), ([1], None)],
)
def test_numbers_are_taken_when_exact_and_floats_refused(value, expected):
    assert parse_amount(value) == expected
