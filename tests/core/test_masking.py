"""kobatela.core.masking: plain pytest, no database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from kobatela.core.iban import IBAN_LENGTHS
from kobatela.core.masking import mask_data, mask_email, mask_phone, mask_text

FR_IBAN = "FR76 3000 6000 0112 3456 7890 189"
FR_IBAN_COMPACT = "FR7630006000011234567890189"
API_KEY = "kbt_AbCd1234_q9Zx-7_vLmN0pQrStUvWxYz12"


# --------------------------------------------------------------------------- single values


@pytest.mark.parametrize(
    "value, expected",
    [
        ("jean.dupont@example.com", "j***@example.com"),
        ("J@example.co.uk", "J***@example.co.uk"),
        ("not-an-email", "***"),
        ("", ""),
    ],
)
def test_mask_email(value, expected):
    assert mask_email(value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [("+243 81 234 5678", "***78"), ("0612345678", "***78"), ("n/a", "***"), ("", "")],
)
def test_mask_phone(value, expected):
    assert mask_phone(value) == expected


# --------------------------------------------------------------------------- free text


@pytest.mark.parametrize(
    "text, expected",
    [
        (f"Pay to {FR_IBAN} today", "Pay to ****0189 today"),
        (f"IBAN: {FR_IBAN_COMPACT}.", "IBAN: ****0189."),
        ("GB29 NWBK 6016 1331 9268 19", "****6819"),
        ("NL91ABNA0417164300", "****4300"),
        ("ZZ76 3000 6000 0112 3456 7890 189", "****0189"),  # spaced groups: any two letters
        ("iban fr76 3000 6000 0112 3456 7890 1890 PAID", "iban ****1890 PAID"),
        ("Write to jean.dupont@example.com now", "Write to j***@example.com now"),
        ("Call +243 81 234 5678.", "Call ***78."),
        ("tel 081 234 5678", "tel ***78"),
        ("mobile 06 12 34 56 78", "mobile ***78"),
        ("tel +33 (0)6 12 34 56 78", "tel ***78"),
        ("tel (555) 123-4567", "tel ***67"),
        (f"key {API_KEY} used", "key kbt_AbCd1234_**** used"),
        ("secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "secret whsec_****"),
        ("stripe sk_live_51HabcdefGHIJKL0123 and sk_test_abcdefgh12", "stripe sk_live_**** and sk_test_****"),
        ("restricted rk_live_abcdefghij1234", "restricted rk_live_****"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig-nat_ure", "Authorization: Bearer ****"),
        (f"Authorization: Bearer {API_KEY}", "Authorization: Bearer kbt_AbCd1234_****"),
        ("authorization: Basic dXNlcjpwYXNzd29yZA==", "authorization: Basic ****"),
        ("login password=hunter2 ok", "login password=**** ok"),
        (
            "https://bucket.s3.amazonaws.com/p.pdf?X-Amz-Date=20240101&X-Amz-Signature=abcdef0123",
            "https://bucket.s3.amazonaws.com/p.pdf?X-Amz-Date=20240101&X-Amz-Signature=****",
        ),
    ],
)
def test_mask_text_masks(text, expected):
    assert mask_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Total 1 234,56 EUR",
        "Montant 12 345 678,90 USD",
        "Amount 1,234,567.89",
        "credit +12 345 678,90",
        "order 12345678 shipped",  # a long reference that is not trunk-prefixed
        "due 2024-01-15",
        "due 15/01/2024",
        "due 01.02.2024",
        "due 01-02-2024 at 08:30",
        "Invoice INV-2024-001",
        "Invoice INV-00012345",
        "Invoice #00012345",
        "ref 001234",
        "the bearer of this note",
        "sha ab12cdef0123456789abcdef01234567",  # hex ids are not IBANs
        "FR76 3000",  # too short to be an IBAN
        "ZZ7630006000011234567890189",  # compact form: not an IBAN country
        "",
    ],
)
def test_mask_text_leaves_amounts_dates_and_references(text):
    assert mask_text(text) == text


@pytest.mark.parametrize("country", sorted(IBAN_LENGTHS))
def test_compact_ibans_are_masked_for_every_iban_country_of_the_one_list(country):
    # One country list (kobatela.core.iban): the compact form is recognised for
    # exactly those countries ("ZZ…" above is not), including CD, whose IBAN
    # length is not fixed.
    assert mask_text(f"pay {country}7630006000011234567890189 now") == "pay ****0189 now"


def test_mask_text_is_idempotent():
    text = f"{FR_IBAN} jean@example.com +243 81 234 5678 {API_KEY} Bearer abcdefghijklmnop"
    once = mask_text(text)
    assert mask_text(once) == once
    for secret in ("3000 6000", "jean@", "234 5678", "q9Zx", "abcdefghijklmnop"):
        assert secret not in once


def test_mask_text_non_string_passthrough():
    assert mask_text(None) is None


# --------------------------------------------------------------------------- structures


def test_mask_data_by_key_and_content():
    data = {
        "Password": "hunter2",
        "client_secret": "abc",
        "X-API-Key": "whatever",
        "apiKey": "whatever",
        "Authorization": "Bearer abc",
        "key_hash": "deadbeef",
        "refresh_token": "r1",
        "beneficiary_IBAN": FR_IBAN,
        "contact_email": "jean.dupont@example.com",
        "phone_number": "+243 81 234 5678",
        "amount": Decimal("1234.50"),
        "count": 3,
        "when": date(2024, 1, 15),
        "note": f"send to {FR_IBAN_COMPACT} or jean@example.com",
        "missing_token": None,
        "nested": [{"password": "x", "text": "call 0612345678"}, ("a@b.co", 5)],
    }
    masked = mask_data(data)
    assert masked == {
        "Password": "****",
        "client_secret": "****",
        "X-API-Key": "****",  # "-" is read as "_"
        "apiKey": "****",
        "Authorization": "****",
        "key_hash": "****",
        "refresh_token": "****",
        "beneficiary_IBAN": "****0189",
        "contact_email": "j***@example.com",
        "phone_number": "***78",
        "amount": Decimal("1234.50"),
        "count": 3,
        "when": date(2024, 1, 15),
        "note": "send to ****0189 or j***@example.com",
        "missing_token": None,
        "nested": [{"password": "****", "text": "call ***78"}, ("a***@b.co", 5)],
    }
    assert isinstance(masked["amount"], Decimal)
    assert isinstance(masked["nested"][1], tuple)
    # The input is not modified.
    assert data["Password"] == "hunter2"


def test_mask_data_containers_under_keys():
    masked = mask_data(
        {
            "token": {"access": "a", "refresh": "b"},
            "secrets": ["a", "b"],
            "emails": ["jean@example.com", "marie@example.org"],
            "iban_last4": "0189",
            "token_count": 12,
        }
    )
    assert masked == {
        "token": "****",
        "secrets": "****",
        "emails": ["j***@example.com", "m***@example.org"],
        "iban_last4": "****0189",
        "token_count": 12,  # non-string scalars stay
    }


def test_mask_data_scalars():
    assert mask_data("jean@example.com") == "j***@example.com"
    assert mask_data(Decimal("1.5")) == Decimal("1.5")
    assert mask_data(None) is None
    assert mask_data([1, "x"]) == [1, "x"]


@pytest.mark.parametrize("stamp", ["2026-12-04 18:31:02.481947+00:00", "2026-12-04T18:31:02.012345Z",
                                   "18:31:47.000000", "at 09:01:02.081234 UTC"])
def test_timestamps_are_left_alone(stamp):
    assert mask_text(stamp) == stamp
