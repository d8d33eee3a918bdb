"""A part the request needs is down: 503 ``service_unavailable`` with ``Retry-After``, never a 500,
and a retry with the same Idempotency-Key after recovery runs once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from escrow.models import EscrowAgreement, EscrowDeposit
from tests.conftest import _keyed_client, assert_error
from tests.factories import make_escrow
from tests.support.database import database_unreachable

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_read_while_the_database_is_down_answers_503_with_retry_after(settings):
    sender = _keyed_client(["sender"])
    with database_unreachable():
        response = sender.get("/api/v1/escrows")
    error = assert_error(response, 503, "service_unavailable")
    assert error["details"] == {"unavailable": "database"}
    assert response["Retry-After"] == str(settings.OUTAGE_RETRY_AFTER_SECONDS)
    assert sender.get("/api/v1/escrows").status_code == 200  # back by itself


def test_readiness_says_503_while_the_database_is_down():
    sender = _keyed_client(["sender"])
    with database_unreachable():
        ready = sender.client.get("/health/ready")
    assert ready.status_code == 503 and ready.json()["checks"]["database"] == "fail"


def test_a_deposit_refused_by_an_outage_is_retried_with_its_key_and_counts_once():
    sender = _keyed_client(["sender"])
    escrow = make_escrow(client=sender.user, amounts=("50.00",))
    deposit = lambda: sender.post(f"/api/v1/escrows/{escrow.pk}/deposit", {"amount": "20.00"}, format="json",  # noqa: E731
                                  HTTP_IDEMPOTENCY_KEY="outage-deposit")
    with database_unreachable():
        assert_error(deposit(), 503, "service_unavailable")

    first, replay = deposit(), deposit()
    assert first.status_code == 200 and "Idempotent-Replayed" not in first
    assert replay.status_code == 200 and replay["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert EscrowAgreement.objects.get(pk=escrow.pk).amount_funded == Decimal("20.00")
    assert EscrowDeposit.objects.filter(escrow=escrow).count() == 1
