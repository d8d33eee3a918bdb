"""The effect and its key's answer commit together (Stripe's atomic phases), and a
key whose request died blocks nothing: it is run again at once, never a stale 409."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction

from escrow.models import EscrowAgreement, EscrowDeposit
from kobatela.core import roles
from kobatela.core.locks import lock_id
from kobatela.core.models import IdempotencyKey
from tests.conftest import _keyed_client, assert_error
from tests.factories import make_escrow
from tests.support.database import advisory_locks_held

pytestmark = pytest.mark.django_db(transaction=True)

FAIL_ONCE_TRIGGER = """
CREATE FUNCTION kobatela_test_refuse_answer() RETURNS trigger AS $$
BEGIN
    IF NEW.status = 'COMPLETED' THEN
        RAISE EXCEPTION 'disk full (test)';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER kobatela_test_refuse_answer BEFORE UPDATE ON core_idempotencykey
    FOR EACH ROW EXECUTE FUNCTION kobatela_test_refuse_answer();
"""
DROP_TRIGGER = """
DROP TRIGGER kobatela_test_refuse_answer ON core_idempotencykey;
DROP FUNCTION kobatela_test_refuse_answer();
"""


def _deposit(client, escrow, key, amount="20.00"):
    return client.post(f"/api/v1/escrows/{escrow.pk}/deposit", {"amount": amount}, format="json",
                       HTTP_IDEMPOTENCY_KEY=key)


def test_when_the_answer_cannot_be_stored_the_effect_does_not_commit_either():
    """The database refuses to store the key's answer (a trigger, as a full disk
    would): the deposit made in the same request rolls back with it, and the
    key is free for the retry — its row gone, its lock released —, which
    deposits once."""
    sender = _keyed_client(["sender"])
    escrow = make_escrow(client=sender.user, amounts=("50.00",))
    with roles.as_owner(), connection.cursor() as cursor:  # DDL: the tables' owner, not the app's role
        cursor.execute(FAIL_ONCE_TRIGGER)
    try:
        with pytest.raises(DatabaseError, match="disk full"):
            _deposit(sender, escrow, "atomic-1")
    finally:
        with roles.as_owner(), connection.cursor() as cursor:
            cursor.execute(DROP_TRIGGER)

    assert not EscrowDeposit.objects.filter(escrow=escrow).exists()
    assert EscrowAgreement.objects.get(pk=escrow.pk).amount_funded == Decimal("0.00")
    assert not IdempotencyKey.objects.filter(key="atomic-1").exists()
    assert advisory_locks_held() == set()

    retry = _deposit(sender, escrow, "atomic-1")
    assert retry.status_code == 200 and retry.json()["amount_funded"] == "20.00"
    assert EscrowDeposit.objects.filter(escrow=escrow).count() == 1


def test_a_key_left_in_progress_by_a_dead_request_runs_again_at_once_not_409():
    sender = _keyed_client(["sender"])
    escrow = make_escrow(client=sender.user, amounts=("50.00",))
    # A first request that claimed the key and died before anything committed
    # (its connection gone, and its liveness lock with it): a fresh claim, no effect.
    IdempotencyKey.objects.create(api_key=sender.api_key, key="dead", fingerprint=_fingerprint_of(sender, escrow),
                                  status=IdempotencyKey.Status.IN_PROGRESS)

    response = _deposit(sender, escrow, "dead")

    assert response.status_code == 200 and "Idempotent-Replayed" not in response
    assert EscrowDeposit.objects.filter(escrow=escrow).count() == 1
    assert IdempotencyKey.objects.get(key="dead").status == IdempotencyKey.Status.COMPLETED


def _fingerprint(path: str, body: dict) -> str:
    """The fingerprint the app computes for a JSON POST (as the claim stores it)."""
    from django.test import RequestFactory
    from rest_framework.request import Request

    from kobatela.core.idempotency import request_fingerprint
    from kobatela.core.parsers import DecimalJSONParser

    django_request = RequestFactory().post(path, body, content_type="application/json")
    return request_fingerprint(Request(django_request, parsers=[DecimalJSONParser()]))


def _fingerprint_of(client, escrow) -> str:
    return _fingerprint(f"/api/v1/escrows/{escrow.pk}/deposit", {"amount": "20.00"})


def test_a_key_whose_request_is_alive_answers_409_until_it_ends():
    sender = _keyed_client(["sender"])
    escrow = make_escrow(client=sender.user, amounts=("50.00",))
    IdempotencyKey.objects.create(api_key=sender.api_key, key="alive", fingerprint=_fingerprint_of(sender, escrow),
                                  status=IdempotencyKey.Status.IN_PROGRESS)
    holding, release = threading.Event(), threading.Event()

    def live_request():  # holds the key's liveness lock on its own connection, as a running request does
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s)", [lock_id(f"idempotency:{sender.api_key.pk}:alive")])
                holding.set()
                release.wait(10)
                cursor.execute("SELECT pg_advisory_unlock(%s)", [lock_id(f"idempotency:{sender.api_key.pk}:alive")])
        finally:
            connection.close()

    thread = threading.Thread(target=live_request)
    thread.start()
    assert holding.wait(10)
    assert_error(_deposit(sender, escrow, "alive"), 409, "idempotency_request_in_progress")
    release.set()
    thread.join(10)

    assert _deposit(sender, escrow, "alive").status_code == 200  # its request is gone: run, once
    assert EscrowDeposit.objects.filter(escrow=escrow).count() == 1


def test_an_execution_resumed_after_its_answer_was_lost_answers_the_payout_it_sent_not_409():
    """A payout's execution calls the PSP between two transactions, outside a
    unit: a crash after it sent the payout and before its answer was stored
    leaves the key claimed and the payout SENT. The retry with the key answers
    that payout (200), and the PSP is not asked again; a new key is still told
    why nothing happens (409)."""
    from escrow import services as escrow_services
    from escrow.selectors import escrow_lock
    from payments.models import Payment
    from payments.psp import sandbox
    from payments.psp.base import payout_idempotency_key
    from tests.factories import fund

    sandbox.reset()
    sender = _keyed_client(["sender"])
    escrow = fund(make_escrow(client=sender.user))
    with transaction.atomic():  # after commit the payout task sends it (eagerly here), as the lost request had
        locked = escrow_lock(escrow.pk)
        payment = escrow_services.milestone_approve(actor="system:test", escrow=locked,
                                                    milestone=locked.milestones.get(), reason="test")
    assert Payment.objects.get(pk=payment.pk).status == "SENT"
    path = f"/api/v1/payments/{payment.pk}/execute"
    IdempotencyKey.objects.create(api_key=sender.api_key, key="lost-answer", fingerprint=_fingerprint(path, {}),
                                  status=IdempotencyKey.Status.IN_PROGRESS)

    resumed = sender.post(path, {}, format="json", HTTP_IDEMPOTENCY_KEY="lost-answer")

    assert resumed.status_code == 200 and resumed.json()["status"] == "SENT", resumed.content
    assert sandbox.recorded_payouts()[payout_idempotency_key(payment.pk)].calls == 1
    assert sender.post(path, {}, format="json", HTTP_IDEMPOTENCY_KEY="lost-answer")["Idempotent-Replayed"] == "true"
    assert_error(sender.post(path, {}, format="json", HTTP_IDEMPOTENCY_KEY="fresh"), 409, "payment_is_sent")


def test_the_liveness_lock_rides_on_the_claim_and_on_the_answer_not_on_statements_of_its_own():
    """The measured path (bench/deposit.sql): the claim's INSERT takes the key's
    lock and the answer's UPDATE releases it, so a deposit is the 13 statements
    of the floor and nothing more; when it is over, the connection holds no lock."""
    from django.test.utils import CaptureQueriesContext

    sender = _keyed_client(["sender"])
    escrow = make_escrow(client=sender.user, amounts=("50.00",))
    _deposit(sender, escrow, "warm", amount="1.00")  # the API key cache
    with CaptureQueriesContext(connection) as ctx:
        assert _deposit(sender, escrow, "counted", amount="1.00").status_code == 200

    statements = [" ".join(q["sql"].split()) for q in ctx.captured_queries]
    claim = [sql for sql in statements if sql.startswith('INSERT INTO "core_idempotencykey"')]
    answer = [sql for sql in statements if sql.startswith('UPDATE "core_idempotencykey"')]
    assert len(claim) == 1 and "pg_try_advisory_lock" in claim[0], statements
    assert len(answer) == 1 and "pg_advisory_unlock" in answer[0], statements
    assert not [sql for sql in statements if sql.startswith("SELECT pg_")], statements
    assert len(statements) == 13, statements
    assert advisory_locks_held() == set()


def test_a_claim_inserted_while_the_key_is_still_locked_answers_409_and_its_retry_runs_once():
    """The lock is free only when its holder has let go: a request that inserts
    its claim while an ending request with the same key still holds the lock
    (its own claim already deleted) does not run; the row it leaves has no live
    lock, so the client's retry takes it over and deposits once."""
    sender = _keyed_client(["sender"])
    escrow = make_escrow(client=sender.user, amounts=("50.00",))
    holding, release = threading.Event(), threading.Event()

    def ending_request():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s)", [lock_id(f"idempotency:{sender.api_key.pk}:ending")])
                holding.set()
                release.wait(10)
        finally:
            connection.close()  # the session ends: its lock is released by PostgreSQL

    thread = threading.Thread(target=ending_request)
    thread.start()
    assert holding.wait(10)
    assert_error(_deposit(sender, escrow, "ending"), 409, "idempotency_request_in_progress")
    assert IdempotencyKey.objects.get(key="ending").status == IdempotencyKey.Status.IN_PROGRESS
    assert advisory_locks_held() == set()
    release.set()
    thread.join(10)

    retry = _deposit(sender, escrow, "ending")
    assert retry.status_code == 200 and "Idempotent-Replayed" not in retry
    assert _deposit(sender, escrow, "ending")["Idempotent-Replayed"] == "true"
    assert EscrowDeposit.objects.filter(escrow=escrow).count() == 1
    assert advisory_locks_held() == set()
