import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from escrow import services as escrow_services
from escrow.selectors import escrow_lock
from kobatela.audit.models import Alert, AuditLog
from payments import services
from payments.models import LedgerEntry, Payment, PaymentStatus
from payments.psp import get_provider, sandbox
from payments.psp.base import PayoutRequest, payout_idempotency_key
from payments.reconcile import reconcile
from payments.tasks import execute_payout
from tests.conftest import assert_error
from tests.factories import UserFactory, actor_for, fund, make_escrow

pytestmark = pytest.mark.usefixtures("clean_sandbox")


def approved_payment(client=None, provider=None, amount="100.00") -> Payment:
    """A funded escrow whose single milestone was approved: its payout is PENDING (not yet executed)."""
    escrow = fund(make_escrow(client=client, provider=provider, amounts=(amount,)))
    with transaction.atomic():
        locked = escrow_lock(escrow.pk)
        return escrow_services.milestone_approve(actor="system:test", escrow=locked,
                                                 milestone=locked.milestones.get(), reason="test")


@pytest.mark.django_db
def test_payout_task_run_twice_pays_once():
    payment = approved_payment()
    assert execute_payout(payment.pk) == "SENT"
    assert execute_payout(payment.pk) == "SENT"
    payout = sandbox.recorded_payouts()[payout_idempotency_key(payment.pk)]
    assert payout.calls == 1
    assert AuditLog.objects.filter(action="payment.sent", entity_id=str(payment.pk)).count() == 1


@pytest.mark.django_db
def test_worker_killed_after_the_psp_call_is_retried_without_paying_twice():
    """The worker sent the payout, then died before recording it: the row is
    still PENDING. The retry reaches the PSP with the same key and gets the
    same payout back."""
    payment = approved_payment()
    first = get_provider().create_payout(PayoutRequest(
        payment_id=payment.pk, amount=payment.amount, currency=payment.currency, destination=payment.destination,
        idempotency_key=payout_idempotency_key(payment.pk), metadata={}))
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert execute_payout(payment.pk) == "SENT"
    payment.refresh_from_db()
    assert payment.psp_ref == first.psp_ref
    assert len(sandbox.recorded_payouts()) == 1
    assert sandbox.recorded_payouts()[payout_idempotency_key(payment.pk)].calls == 2


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_executions_create_one_payout():
    payment = approved_payment()
    barrier = threading.Barrier(10)

    def run(_):
        try:
            barrier.wait()
            return services.payment_execute(payment_id=payment.pk, actor="system:test").status
        finally:
            connection.close()

    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(run, range(10)))
    assert set(statuses) == {PaymentStatus.SENT}
    assert len(sandbox.recorded_payouts()) == 1
    assert AuditLog.objects.filter(action="payment.sent", entity_id=str(payment.pk)).count() == 1


@pytest.mark.django_db
def test_transient_failures_back_off_then_give_up_with_an_alert(settings):
    settings.PAYOUT_MAX_ATTEMPTS = 3
    provider = UserFactory(payout_account="fail:transient")
    payment = approved_payment(provider=provider)
    assert execute_payout(payment.pk) == PaymentStatus.ERROR
    payment.refresh_from_db()
    assert payment.attempts == 1 and payment.next_attempt_at > timezone.now() and payment.gave_up_at is None
    assert services.payments_sweep() == 0  # backoff not over yet
    for hours in (1, 2):
        with time_machine.travel(timezone.now() + timedelta(hours=hours)):
            assert services.payments_sweep() == 1
    payment.refresh_from_db()
    assert payment.attempts == 3 and payment.gave_up_at is not None and payment.next_attempt_at is None
    assert Alert.objects.filter(type="payout_gave_up", data__payment_id=payment.pk).count() == 1
    with time_machine.travel(timezone.now() + timedelta(days=1)):
        assert services.payments_sweep() == 0


@pytest.mark.django_db
def test_a_transient_failure_recovers_on_the_sweep():
    payment = approved_payment(provider=UserFactory(payout_account="fail:transient-once"))
    assert execute_payout(payment.pk) == PaymentStatus.ERROR
    with time_machine.travel(timezone.now() + timedelta(hours=1)):
        assert services.payments_sweep() == 1
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SENT and payment.last_error == ""


@pytest.mark.django_db
def test_sweeper_picks_up_a_pending_payout_whose_message_was_lost():
    payment = approved_payment()  # on_commit never ran: the message is "lost"
    assert services.payments_sweep() == 0  # too fresh: the task may still be on its way
    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        assert services.payments_sweep() == 1
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SENT


@pytest.mark.django_db
def test_execute_endpoint(sender_api, keyed_client):
    payment = approved_payment(client=sender_api.user, provider=UserFactory(payout_account="fail:permanent"))
    url = f"/api/v1/payments/{payment.pk}/execute"
    assert_error(sender_api.post(url, format="json"), 400, "idempotency_key_required")
    failed = sender_api.post(url, format="json", HTTP_IDEMPOTENCY_KEY="x1")
    assert failed.status_code == 200 and failed.json()["status"] == "ERROR"
    Payment.objects.filter(pk=payment.pk).update(destination="acct_ok")
    sent = sender_api.post(url, format="json", HTTP_IDEMPOTENCY_KEY="x2")
    assert sent.json()["status"] == "SENT"
    assert_error(sender_api.post(url, format="json", HTTP_IDEMPOTENCY_KEY="x3"), 409, "payment_is_sent")
    stranger = keyed_client(["sender"])
    assert_error(stranger.post(url, format="json", HTTP_IDEMPOTENCY_KEY="x4"), 404)
    assert_error(stranger.get(f"/api/v1/payments/{payment.pk}"), 404)


@pytest.mark.django_db
def test_list_and_filters(sender_api, support_api):
    mine = approved_payment(client=sender_api.user)
    other = approved_payment()
    ids = [p["id"] for p in sender_api.get("/api/v1/payments").json()["results"]]
    assert ids == [mine.pk]
    body = sender_api.get(f"/api/v1/payments?status=PENDING&escrow_id={mine.escrow_id}").json()["results"]
    assert [p["id"] for p in body] == [mine.pk] and body[0]["amount"] == "100.00"
    assert sender_api.get("/api/v1/payments?status=SETTLED").json()["results"] == []
    assert_error(sender_api.get("/api/v1/payments?status=LOST"), 400, "validation_error")
    assert_error(sender_api.get("/api/v1/payments?escrow_id=abc"), 400, "validation_error")
    assert {mine.pk, other.pk} <= {p["id"] for p in support_api.get("/api/v1/payments?limit=100").json()["results"]}


@pytest.mark.django_db
def test_settle_refund_and_reconcile():
    payment = approved_payment()
    execute_payout(payment.pk)
    escrow_services.escrow_settle_payout(actor="system:test", payment_id=payment.pk, amount=Decimal("100.00"), currency="USD")
    assert reconcile() == []
    payment.refresh_from_db()
    assert payment.escrow.status == "RELEASED"
    escrow_services.escrow_return_payout(actor="system:test", payment_id=payment.pk)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED and payment.escrow.status == "RELEASABLE"
    assert payment.escrow.amount_released == Decimal("0.00")
    assert payment.milestone.status == "APPROVED"
    assert reconcile() == []


@pytest.mark.django_db
def test_settlement_with_the_wrong_amount_changes_nothing():
    payment = approved_payment()
    execute_payout(payment.pk)
    with pytest.raises(Exception) as refused:
        escrow_services.escrow_settle_payout(actor="system:test", payment_id=payment.pk, amount=Decimal("99.99"), currency="USD")
    assert refused.value.code == "payment_amount_mismatch"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SENT
    assert not LedgerEntry.objects.filter(movement=f"payout:{payment.pk}").exists()


@pytest.mark.django_db
@pytest.mark.no_reconcile  # breaks the books on purpose
def test_reconcile_catches_a_broken_ledger_row():
    payment = approved_payment()
    out = StringIO()
    call_command("reconcile", stdout=out)
    assert "OK" in out.getvalue()
    LedgerEntry.objects.create(movement="deposit:rogue", kind=LedgerEntry.Kind.DEPOSIT,
                               account=f"escrow:{payment.escrow_id}", amount=Decimal("5.00"), currency="USD")
    err = StringIO()
    with pytest.raises(CommandError, match="3 disagreement"):
        call_command("reconcile", stdout=StringIO(), stderr=err)
    assert "movement deposit:rogue (USD) sums to 5.00" in err.getvalue()
    assert f"escrow #{payment.escrow_id}: amount_funded 100.00, deposits 100.00, ledger deposits 105.00" in err.getvalue()
    assert f"escrow #{payment.escrow_id}: ledger balance 105.00, expected 100.00" in err.getvalue()


@pytest.mark.django_db
def test_ledger_is_append_only():
    from django.db import DatabaseError, transaction

    fund(make_escrow())
    with pytest.raises(DatabaseError), transaction.atomic():
        LedgerEntry.objects.update(amount=Decimal("1.00"))
    with pytest.raises(DatabaseError), transaction.atomic():
        LedgerEntry.objects.all().delete()


@pytest.mark.django_db
def test_a_payout_the_psp_failed_is_resent_as_a_new_request():
    payment = approved_payment()
    execute_payout(payment.pk)
    payment.refresh_from_db()
    services.payment_fail(actor="system:test", payment_id=payment.pk, reason="account closed", psp_ref=payment.psp_ref)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED and payment.payout_generation == 2
    # the sweeper and the task leave a FAILED payout alone: only an explicit execute sends it again
    assert services.payment_execute(payment_id=payment.pk, actor="system:test").status == PaymentStatus.FAILED
    assert services.payment_execute(payment_id=payment.pk, actor="system:test",
                                    scoped_to=actor_for(payment.owner)).status == PaymentStatus.SENT
    keys = set(sandbox.recorded_payouts())
    assert keys == {f"payout-{payment.pk}", f"payout-{payment.pk}-g2"}


@pytest.mark.django_db
def test_events_about_another_psp_payout_are_refused():
    payment = approved_payment()
    execute_payout(payment.pk)
    with pytest.raises(Exception) as refused:
        escrow_services.escrow_settle_payout(actor="system:test", payment_id=payment.pk, psp_ref="sbx_po_someoneelse")
    assert refused.value.code == "psp_ref_mismatch"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SENT


@pytest.mark.django_db
def test_one_psp_funding_counts_once_whatever_escrow_it_names():
    from escrow.services import escrow_deposit

    first, second = make_escrow(), make_escrow()
    escrow_deposit(actor="system:psp", escrow_id=first.pk, amount=Decimal("10.00"), idempotency_key="psp:fs_1",
                   source="psp", psp_ref="fs_1")
    with pytest.raises(Exception) as refused:
        escrow_deposit(actor="system:psp", escrow_id=second.pk, amount=Decimal("10.00"), idempotency_key="psp:fs_1",
                       source="psp", psp_ref="fs_1")
    assert refused.value.code == "deposit_key_reused"
    second.refresh_from_db()
    assert second.amount_funded == Decimal("0.00")
