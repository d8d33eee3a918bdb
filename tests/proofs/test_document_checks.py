"""proofs.document_checks: parsed invoice fields against a milestone's proof_requirements."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from proofs.document_checks import CHECK_NAMES, InvalidRequirements, run_checks, validate_requirements
from proofs.invoice import InvoiceFields

FIELDS = InvoiceFields(
    amount=Decimal("1250.00"),
    currency="EUR",
    date=dt.date(2026, 3, 4),
    number="FA-2026-0042",
    supplier="Bâtiments Kivu S.A.R.L.",
    iban_last4="0189",
    iban_masked="****0189",  # the one masked form (kobatela.core.iban.mask_iban)
)

FULL = {
    "expected_amount": "1250.00",
    "currency": "EUR",
    "iban_last4": "0189",
    "supplier": "Batiments Kivu SARL",
    "date_from": "2026-03-01",
    "date_to": "2026-03-31",
}


def statuses(result: dict) -> dict:
    return {name: check["status"] for name, check in result["checks"].items()}


def test_everything_matches():
    result = run_checks(FIELDS, FULL)
    assert result["overall"] == "pass"
    assert statuses(result) == {name: "pass" for name in CHECK_NAMES}
    assert result["checks"]["amount"] == {
        "status": "pass", "expected": "1250.00", "found": "1250.00", "tolerance": "0.00", "difference": "0.00",
    }
    assert result["checks"]["currency"] == {"status": "pass", "expected": "EUR", "found": "EUR", "evidence": None}
    assert result["checks"]["iban_last4"] == {"status": "pass", "expected": "0189", "found": "0189"}
    assert result["checks"]["date"] == {
        "status": "pass", "expected": "2026-03-01/2026-03-31", "found": "2026-03-04",
        "date_from": "2026-03-01", "date_to": "2026-03-31",
    }
    assert result["checks"]["supplier"]["expected_normalized"] == "batiments kivu"
    assert result["checks"]["supplier"]["found_normalized"] == "batiments kivu"


def test_output_is_json_safe_strings():
    result = run_checks(FIELDS, FULL)
    assert json.loads(json.dumps(result)) == result

    def walk(value):
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        else:
            assert value is None or isinstance(value, str), value

    walk(result)


def test_nothing_required_passes_with_everything_not_required():
    result = run_checks(FIELDS, {})
    assert result["overall"] == "pass"
    assert set(statuses(result).values()) == {"not_required"}
    assert run_checks(FIELDS, None)["overall"] == "pass"
    # found values are still reported for reviewers
    assert result["checks"]["amount"]["found"] == "1250.00"


def test_unknown_keys_are_ignored():
    result = run_checks(FIELDS, {"expected_amount": "1250.00", "gps_radius_m": 50, "min_photos": 2})
    assert result["overall"] == "pass"


# --- amount ---------------------------------------------------------------


def test_amount_must_match_to_the_cent_by_default():
    result = run_checks(FIELDS, {"expected_amount": "1250.01"})
    assert result["overall"] == "fail"
    amount = result["checks"]["amount"]
    assert amount["status"] == "fail"
    assert amount["tolerance"] == "0.00"
    assert amount["difference"] == "-0.01"


@pytest.mark.parametrize(
    ("expected", "tolerance", "status"),
    [
        ("1250", None, "pass"),
        ("1250.000", None, "pass"),
        ("1255.00", "5.00", "pass"),
        ("1245.00", "5", "pass"),
        ("1255.01", "5.00", "fail"),
        ("1244.99", "5.00", "fail"),
        ("1250.00", "0", "pass"),
    ],
)
def test_amount_tolerance_is_absolute(expected, tolerance, status):
    req = {"expected_amount": expected}
    if tolerance is not None:
        req["amount_tolerance"] = tolerance
    assert run_checks(FIELDS, req)["checks"]["amount"]["status"] == status


def test_amount_math_is_decimal_not_float():
    fields = InvoiceFields(amount=Decimal("0.30"))
    # 0.1 + 0.2 != 0.3 in floats; tolerance 0.10 from 0.20 must pass exactly at the edge
    result = run_checks(fields, {"expected_amount": "0.20", "amount_tolerance": "0.10"})
    assert result["checks"]["amount"]["status"] == "pass"


def test_missing_amount_makes_the_result_incomplete():
    fields = InvoiceFields(currency="EUR")
    result = run_checks(fields, {"expected_amount": "1250.00", "currency": "EUR"})
    assert result["overall"] == "incomplete"
    assert result["checks"]["amount"] == {
        "status": "missing", "expected": "1250.00", "found": None, "tolerance": "0.00",
    }


def test_a_failure_beats_a_missing_value():
    fields = InvoiceFields(currency="USD")
    result = run_checks(fields, {"expected_amount": "1250.00", "currency": "EUR"})
    assert result["overall"] == "fail"
    assert statuses(result)["amount"] == "missing"
    assert statuses(result)["currency"] == "fail"


# --- currency, IBAN, supplier ---------------------------------------------


def test_currency_is_case_insensitive():
    assert run_checks(FIELDS, {"currency": "eur"})["checks"]["currency"]["status"] == "pass"
    assert run_checks(FIELDS, {"currency": "USD"})["checks"]["currency"]["status"] == "fail"


def test_iban_last4():
    assert run_checks(FIELDS, {"iban_last4": "0189"})["checks"]["iban_last4"]["status"] == "pass"
    assert run_checks(FIELDS, {"iban_last4": "0188"})["checks"]["iban_last4"]["status"] == "fail"
    no_iban = InvoiceFields(amount=Decimal("1"))
    assert run_checks(no_iban, {"iban_last4": "0189"})["checks"]["iban_last4"]["status"] == "missing"


@pytest.mark.parametrize(
    ("required", "status"),
    [
        ("Bâtiments Kivu", "pass"),
        ("BATIMENTS KIVU SARL", "pass"),
        ("SARL Bâtiments Kivu", "pass"),
        ("Bâtiments Kivu Goma", "fail"),
        ("Kivu", "fail"),
    ],
)
def test_supplier_compares_normalized_names(required, status):
    assert run_checks(FIELDS, {"supplier": required})["checks"]["supplier"]["status"] == status


def test_supplier_missing():
    result = run_checks(InvoiceFields(), {"supplier": "Acme"})
    assert result["checks"]["supplier"]["status"] == "missing"
    assert result["overall"] == "incomplete"


# --- dates ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("req", "status", "expected"),
    [
        ({"date_from": "2026-03-04"}, "pass", "2026-03-04/.."),
        ({"date_to": "2026-03-04"}, "pass", "../2026-03-04"),
        ({"date_from": "2026-03-05"}, "fail", "2026-03-05/.."),
        ({"date_to": "2026-03-03"}, "fail", "../2026-03-03"),
        ({"date_from": "2026-01-01", "date_to": "2026-12-31"}, "pass", "2026-01-01/2026-12-31"),
    ],
)
def test_date_window_is_inclusive(req, status, expected):
    check = run_checks(FIELDS, req)["checks"]["date"]
    assert check["status"] == status
    assert check["expected"] == expected


def test_date_missing_and_not_required():
    assert run_checks(InvoiceFields(), {"date_from": "2026-01-01"})["checks"]["date"]["status"] == "missing"
    check = run_checks(FIELDS, {})["checks"]["date"]
    assert check["status"] == "not_required"
    assert check["expected"] is None
    assert check["found"] == "2026-03-04"


# --- requirement validation -----------------------------------------------


@pytest.mark.parametrize(
    "req",
    [
        {"expected_amount": "12,50"},
        {"expected_amount": "abc"},
        {"expected_amount": "-1"},
        {"expected_amount": "1250.005"},  # sub-cent requirement: refused, never rounded
        {"expected_amount": "NaN"},
        {"expected_amount": 12.5},  # floats are refused: money is a string decimal
        {"amount_tolerance": "-0.01"},
        {"currency": "EURO"},
        {"iban_last4": "123"},
        {"date_from": "04/03/2026"},
        {"date_from": "2026-03-05", "date_to": "2026-03-04"},
        {"supplier": "SARL"},
    ],
)
def test_invalid_requirements_raise(req):
    with pytest.raises(InvalidRequirements):
        run_checks(FIELDS, req)
    with pytest.raises(ValueError):  # InvalidRequirements is a ValueError
        validate_requirements(req)


def test_validate_requirements_normalizes():
    assert validate_requirements(
        {"expected_amount": "1250", "amount_tolerance": "0.5", "currency": "eur", "iban_last4": "ab12",
         "date_from": "2026-03-01", "other": 1}
    ) == {
        "expected_amount": "1250.00", "amount_tolerance": "0.50", "currency": "EUR", "iban_last4": "AB12",
        "date_from": "2026-03-01",
    }
    assert validate_requirements({"expected_amount": 1250}) == {"expected_amount": "1250.00"}
    assert validate_requirements({"expected_amount": "", "currency": None}) == {}
