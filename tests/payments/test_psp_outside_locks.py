"""No PSP call is made while a row lock is held: the PSP retries for seconds,
and every deposit, approval and webhook of that escrow would wait behind it.

The real Stripe adapter talks to the local fake Stripe; while each request
is in flight, the fake asks PostgreSQL, from a connection of its own, for the
escrow's and the payout's rows with ``FOR UPDATE NOWAIT``.
"""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError, connection, transaction

from escrow.models import EscrowAgreement
from escrow.selectors import escrow_lock
from payments.models import Payment
from tests.factories import UserFactory, fund, make_escrow

pytestmark = pytest.mark.django_db(transaction=True)


def _row_is_free(model, pk: int) -> bool:
    """From this thread's own connection: can the row be locked right now?"""
    table = connection.ops.quote_name(model._meta.db_table)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE NOWAIT", [pk])
        return True
    except OperationalError:  # lock_not_available
        return False
    finally:
        connection.close()


def _in_a_thread(fn, *args):
    result = []
    thread = threading.Thread(target=lambda: result.append(fn(*args)))
    thread.start()
    thread.join(10)
    return result[0]




def test_the_probe_sees_a_held_lock():
    """Without this, a probe that never saw a lock would prove nothing."""
    escrow = make_escrow()
    with transaction.atomic():
        escrow_lock(escrow.pk)
        assert _in_a_thread(_row_is_free, EscrowAgreement, escrow.pk) is False
    assert _in_a_thread(_row_is_free, EscrowAgreement, escrow.pk) is True


def test_the_funding_session_calls_the_psp_with_the_escrow_unlocked(fake_stripe, sender_api):
    escrow = make_escrow(client=sender_api.user)
    seen = []
    fake_stripe.on_request = lambda request: seen.append((request.path, _row_is_free(EscrowAgreement, escrow.pk)))

    response = sender_api.post(f"/api/v1/escrows/{escrow.pk}/funding-session", format="json")

    assert response.status_code == 201, response.content
    assert seen == [("/v1/payment_intents", True)]


def test_a_payout_calls_the_psp_with_the_escrow_and_the_payment_unlocked(fake_stripe):
    """Approval creates the payout; after commit the task sends it (eagerly here)."""
    from escrow import services as escrow_services

    escrow = fund(make_escrow(provider=UserFactory(payout_account="acct_1provider")))
    seen = []
    fake_stripe.on_request = lambda request: seen.append(
        (request.path, _row_is_free(EscrowAgreement, escrow.pk), *[_row_is_free(Payment, p.pk) for p in Payment.objects.all()]))

    with transaction.atomic():
        locked = escrow_lock(escrow.pk)
        payment = escrow_services.milestone_approve(actor="system:test", escrow=locked,
                                                    milestone=locked.milestones.get(), reason="test")

    assert seen == [("/v1/transfers", True, True)]
    assert Payment.objects.get(pk=payment.pk).status == "SENT"
