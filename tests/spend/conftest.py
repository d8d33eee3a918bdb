import pytest

from payments.psp import sandbox


@pytest.fixture(autouse=True)
def clean_sandbox():
    sandbox.reset()
    yield
    sandbox.reset()
