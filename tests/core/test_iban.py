"""kobatela.core.iban: the one IBAN module (lengths, compact form, checksum,
last 4, masked form). Plain pytest, no database."""

from __future__ import annotations

import pytest

from kobatela.core.iban import IBAN_LENGTHS, iban_compact, iban_is_valid, iban_last4, iban_mod97, mask_iban

VALID_IBANS = [
    "GB82 WEST 1234 5698 7654 32",
    "GB82WEST12345698765432",
    "DE89 3704 0044 0532 0130 00",
    "FR14 2004 1010 0505 0001 3M02 606",
    "FR76 3000 6000 0112 3456 7890 189",
    "BE68 5390 0754 7034",
    "fr76 3000 6000 0112 3456 7890 189",
    "FR76-3000-6000-0112-3456-7890-189",
    "FR76\u00a03000\u202f6000 0112 3456 7890 189",  # the spaces PDF text layers write
    "CD85 0001 1000 1000 0000 1234 567",  # CD: no fixed length, the checksum alone decides
    "CD840001100010000000123456789",
]


@pytest.mark.parametrize("iban", VALID_IBANS)
def test_iban_is_valid(iban):
    assert iban_is_valid(iban)


@pytest.mark.parametrize(
    "iban",
    [
        "GB82 WEST 1234 5698 7654 33",  # last digit changed
        "GB28 WEST 1234 5698 7654 32",  # check digits swapped
        "FR76 3000 6000 0112 3456 7890 18",  # too short for FR
        "DE89 3704 0044 0532 0130 0000",  # too long for DE
        "CD85 0001 1000 1000 0000 1234 568",  # no fixed length, but the checksum fails
        "FR76.3000.6000.0112.3456.7890.189",  # dots are not how IBANs are written
        "FR76",
        "",
        "1234 5678 9012 3456",
    ],
)
def test_iban_is_invalid(iban):
    assert not iban_is_valid(iban)


def test_mod97_and_compact_form():
    assert iban_mod97("GB82WEST12345698765432") == 1
    assert iban_mod97("GB82WEST12345698765433") != 1
    assert iban_compact(" fr76 3000-6000\u00a00112 ") == "FR76300060000112"
    assert iban_compact("FR76.3000") == "FR76.3000"


def test_lengths_are_those_iso_13616_allows():
    fixed = {country: length for country, length in IBAN_LENGTHS.items() if length is not None}
    assert all(len(country) == 2 and country.isupper() for country in IBAN_LENGTHS)
    assert all(15 <= length <= 34 for length in fixed.values())
    assert (fixed["FR"], fixed["DE"], fixed["GB"], fixed["BE"], fixed["NO"]) == (27, 22, 22, 16, 15)
    assert IBAN_LENGTHS["CD"] is None


@pytest.mark.parametrize(
    "value, expected",
    [
        ("FR76 3000 6000 0112 3456 7890 189", "0189"),
        ("fr7630006000011234567890189", "0189"),
        ("GB82 WEST 1234 5698 7654 ab", "54AB"),
        ("0189", "0189"),
        ("189", None),
        ("", None),
    ],
)
def test_iban_last4(value, expected):
    assert iban_last4(value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("FR76 3000 6000 0112 3456 7890 189", "****0189"),
        ("FR7630006000011234567890189", "****0189"),
        ("de89 3704 0044 0532 0130 00", "****3000"),
        ("GB82 WEST 1234 5698 7654 32", "****5432"),
        ("BE68539007547034", "****7034"),
        ("1234", "****1234"),  # an iban_last4 stays readable
        ("12", "****12"),
        ("--", "****"),  # something was there: say so, show nothing
        ("", ""),
        ("   ", ""),
    ],
)
def test_mask_iban_keeps_the_last_four_only(value, expected):
    assert mask_iban(value) == expected


@pytest.mark.parametrize("iban", VALID_IBANS)
def test_mask_iban_hides_country_check_digits_and_length_and_is_idempotent(iban):
    masked = mask_iban(iban)
    assert masked == "****" + iban_last4(iban)
    assert mask_iban(masked) == masked
