"""Money and coordinates are Decimal everywhere: in the schema, the code and the JSON."""

import ast
from pathlib import Path

import pytest
from django.apps import apps
from django.db import models

ROOT = Path(__file__).resolve().parents[2]
OUR_APPS = {"accounts", "audit", "core", "escrow", "proofs", "payments", "spend", "webhooks"}
MONEY_WORDS = ("amount", "balance", "limit", "spent", "remaining", "lat", "lng", "score")


def test_no_float_columns_and_money_columns_are_decimal():
    for model in apps.get_models():
        if model._meta.app_label not in OUR_APPS:
            continue
        for field in model._meta.get_fields():
            assert not isinstance(field, models.FloatField), f"{model.__name__}.{field.name} is a FloatField"
            if any(word in field.name for word in MONEY_WORDS) and isinstance(field, models.Field) \
                    and not field.is_relation and field.name not in {"daily_limit_reset_on"}:
                assert isinstance(field, (models.DecimalField, models.JSONField, models.DateField, models.CharField)), \
                    f"{model.__name__}.{field.name} is {type(field).__name__}"


@pytest.mark.parametrize("package", ["escrow", "payments", "proofs", "spend", "webhooks", "kobatela"])
def test_no_float_conversion_in_money_code(package):
    """`float(` appears nowhere in application code (timeouts read from settings use env.float)."""
    for path in (ROOT / package).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "float":
                allowed = path.name == "circuit_breaker.py"  # seconds on a clock, not money
                assert allowed, f"float() in {path.relative_to(ROOT)}:{node.lineno}"
