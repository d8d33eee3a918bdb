import pytest


@pytest.fixture(autouse=True)
def _every_spend_test_has_a_clean_sandbox(clean_sandbox):
    """The sandbox PSP (``clean_sandbox`` in tests/conftest.py) is empty before and after each spend test."""
