"""``kobatela.core.queue``: work leaves by task name after commit, and a broker
outage never turns a committed change into an error."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
import redis
import time_machine
from django.db import transaction
from django.utils import timezone

from escrow.models import EscrowStatus, MilestoneStatus
from kobatela.core.queue import ENQUEUE_FAILURES, enqueue, enqueue_on_commit
from payments.models import Payment, PaymentStatus
from payments.psp import sandbox
from payments.psp.base import payout_idempotency_key
from payments.tasks import sweep_payouts
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _failures(task: str) -> float:
    return ENQUEUE_FAILURES.labels(task=task)._value.get()


def _queued_messages(broker) -> list[dict]:
    raw = redis.Redis.from_url(broker.url).lrange("celery", 0, -1)
    return [json.loads(item)["headers"] for item in raw]


def test_the_message_leaves_after_commit_by_task_name(broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            enqueue_on_commit("payments.tasks.execute_payout", 42)
            assert broker.queued() == 0  # nothing leaves before the commit

    [message] = _queued_messages(broker)
    assert message["task"] == "payments.tasks.execute_payout" and message["argsrepr"] == "(42,)"


def test_nothing_leaves_when_the_transaction_rolls_back(broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(ZeroDivisionError), transaction.atomic():
            enqueue_on_commit("payments.tasks.execute_payout", 42)
            1 / 0
    assert broker.queued() == 0


def test_a_broker_outage_is_logged_and_counted_never_raised(broker, caplog):
    broker.stop()
    before = _failures("proofs.tasks.run_ocr")

    with caplog.at_level(logging.WARNING, logger="kobatela.core.queue"):
        assert enqueue("proofs.tasks.run_ocr", 7) is False

    assert _failures("proofs.tasks.run_ocr") == before + 1
    [record] = [r for r in caplog.records if r.name == "kobatela.core.queue"]
    assert record.task == "proofs.tasks.run_ocr" and record.ids == [7]

    broker.start()
    assert enqueue("proofs.tasks.run_ocr", 7) is True and broker.queued() == 1


@pytest.fixture
def clean_sandbox():
    sandbox.reset()
    yield
    sandbox.reset()


def test_redis_down_deposit_then_payout_answer_200_and_the_sweeper_pays_once_redis_is_back(
        sender_api, broker, clean_sandbox, django_capture_on_commit_callbacks):
    created = sender_api.post("/api/v1/escrows", {
        "provider_id": UserFactory().pk, "amount_total": "80.00", "currency": "USD",
        "deadline_at": "2099-01-01T00:00:00Z",
        "milestones": [{"label": "all", "amount": "80.00", "proof_type": "PHOTO"}]}, format="json")
    assert created.status_code == 201, created.content
    escrow_id = created.json()["id"]
    failures_before = _failures("payments.tasks.execute_payout")

    broker.stop()
    with django_capture_on_commit_callbacks(execute=True):
        deposit = sender_api.post(f"/api/v1/escrows/{escrow_id}/deposit", {"amount": "80.00"}, format="json",
                                  HTTP_IDEMPOTENCY_KEY="redis-down-deposit")
        approve = sender_api.post(f"/api/v1/escrows/{escrow_id}/client-approve", {}, format="json",
                                  HTTP_IDEMPOTENCY_KEY="redis-down-approve")

    assert deposit.status_code == 200 and deposit.json()["status"] == EscrowStatus.FUNDED, deposit.content
    assert approve.status_code == 200, approve.content
    assert approve.json()["milestones"][0]["status"] == MilestoneStatus.APPROVED
    payment = Payment.objects.get(escrow_id=escrow_id)
    assert payment.status == PaymentStatus.PENDING  # committed; its message was refused
    assert _failures("payments.tasks.execute_payout") == failures_before + 1
    assert sandbox.recorded_payouts() == {}

    broker.start()
    with time_machine.travel(timezone.now() + timedelta(minutes=3)):  # past the sweeper's grace for lost messages
        assert sweep_payouts() == 1
        assert sweep_payouts() == 0  # sent: nothing left to do

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SENT and payment.attempts == 1
    assert sandbox.recorded_payouts()[payout_idempotency_key(payment.pk)].calls == 1
