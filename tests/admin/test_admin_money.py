"""Payments, escrows and webhooks in the admin: nothing edits money or a
status by hand; the Operations-only actions go through their services."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.db import transaction
from django.test import RequestFactory
from django.urls import reverse

from escrow import services as escrow_services
from escrow.selectors import escrow_lock
from kobatela.audit.models import AuditLog
from payments.models import Payment, PaymentStatus
from payments.psp import sandbox
from payments.tasks import execute_payout
from tests.factories import UserFactory, fund, make_escrow

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clean_sandbox")]
PAYMENTS = reverse("admin:payments_payment_changelist")
WEBHOOKS = reverse("admin:webhooks_inboundevent_changelist")
READ_ONLY = ["audit.Alert", "audit.AuditLog", "escrow.EscrowAgreement", "payments.Payment", "proofs.Proof",
             "spend.UsageMandate", "escrow.Dispute", "escrow.Refund"]


def failed_payment() -> Payment:
    """An approved milestone whose payout failed once at the PSP (it would succeed on a retry)."""
    escrow = fund(make_escrow(provider=UserFactory(payout_account="fail:transient-once"), amounts=("250.00",)))
    with transaction.atomic():
        locked = escrow_lock(escrow.pk)
        payment = escrow_services.milestone_approve(actor="system:test", escrow=locked,
                                                    milestone=locked.milestones.get(), reason="test")
    assert execute_payout(payment.pk) == PaymentStatus.ERROR
    return payment


def test_every_model_admin_of_ours_is_read_only_even_for_a_superuser(superuser):
    request = RequestFactory().get("/")
    request.user = superuser
    for label in READ_ONLY:
        model = apps.get_model(label)
        model_admin = admin.site._registry[model]
        assert not model_admin.has_add_permission(request), model
        assert not model_admin.has_change_permission(request), model
        assert not model_admin.has_delete_permission(request), model
        for inline in model_admin.get_inline_instances(request):
            assert not inline.has_add_permission(request, None) and not inline.has_change_permission(request)
            assert not inline.has_delete_permission(request)


def test_operations_retry_a_failed_payout_through_the_service(operator, operator_client):
    payment = failed_payment()
    response = operator_client.post(PAYMENTS, {"action": "retry_payout", "_selected_action": [payment.pk]}, follow=True)
    assert f"Payout #{payment.pk}: SENT." in response.content.decode()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SENT and payment.attempts == 2
    sent = AuditLog.objects.get(action="payment.sent", entity_id=str(payment.pk))
    assert sent.actor == f"staff:{operator.pk}"
    assert len(sandbox.recorded_payouts()) == 1  # paid once
    again = operator_client.post(reverse("admin:payments_payment_retry", args=[payment.pk]), follow=True)
    assert "not retried: The payment is SENT." in again.content.decode()


def test_the_detail_page_offers_retry_to_operations_only(operator_client, reviewer_client):
    payment = failed_payment()
    change = reverse("admin:payments_payment_change", args=[payment.pk])
    assert 'id="kb-retry-form"' in operator_client.get(change).content.decode()
    assert 'id="kb-retry-form"' not in reviewer_client.get(change).content.decode()
    operator_client.post(reverse("admin:payments_payment_retry", args=[payment.pk]))
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.SENT


def test_reviewers_cannot_retry_payouts_or_reprocess_webhooks(reviewer_client):
    payment = failed_payment()
    listing = reviewer_client.get(PAYMENTS)
    assert listing.status_code == 200
    assert "retry_payout" not in listing.context["cl"].model_admin.get_actions(listing.wsgi_request)
    # A forged action POST: the reviewer has no actions here, so nothing runs.
    assert reviewer_client.post(PAYMENTS, {"action": "retry_payout", "_selected_action": [payment.pk]}).status_code == 200
    assert reviewer_client.post(reverse("admin:payments_payment_retry", args=[payment.pk])).status_code == 403
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.ERROR
    assert not AuditLog.objects.filter(actor__startswith="staff:").exists()

    assert reviewer_client.get(WEBHOOKS).status_code == 403
    assert reviewer_client.post(WEBHOOKS, {"action": "reprocess", "_selected_action": [1]}).status_code == 403


def test_operations_have_the_webhook_reprocess_action(operator_client):
    listing = operator_client.get(WEBHOOKS)
    assert listing.status_code == 200
    assert "reprocess" in listing.context["cl"].model_admin.get_actions(listing.wsgi_request)


def test_payments_cannot_be_edited_by_hand(superuser_client):
    payment = failed_payment()
    change = reverse("admin:payments_payment_change", args=[payment.pk])
    superuser_client.post(change, {"status": "SETTLED", "amount": "1.00"})
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.ERROR and str(payment.amount) == "250.00"
    assert superuser_client.post(reverse("admin:payments_payment_delete", args=[payment.pk])).status_code == 403


def test_escrow_detail_is_read_only_with_milestones_and_timeline(reviewer_client):
    escrow = fund(make_escrow(amounts=("100.00", "50.00")))
    page = reviewer_client.get(reverse("admin:escrow_escrowagreement_change", args=[escrow.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Step 1" in html and "Step 2" in html  # milestones inline
    assert "funded" in html  # the timeline's events
    assert 'type="text"' not in html and "<textarea" not in html and "<select" not in html  # nothing editable
    listing = reviewer_client.get(reverse("admin:escrow_escrowagreement_changelist"), {"q": str(escrow.pk)})
    assert [e.pk for e in listing.context["cl"].result_list] == [escrow.pk]


def test_mandate_detail_is_read_only_with_its_purchases(superuser_client):
    import uuid
    from decimal import Decimal

    from spend import services as spend_services
    from tests.spend.builders import make_mandate, make_merchant

    merchant = make_merchant(name="Pharmacie du Lac")
    mandate = make_mandate(total="80.00", merchants=[merchant])
    spend_services.purchase_create(actor="system:test", mandate_id=mandate.pk, merchant_id=merchant.pk,
                                   amount=Decimal("12.50"), currency=mandate.currency, idempotency_key=uuid.uuid4().hex)
    page = superuser_client.get(reverse("admin:spend_usagemandate_change", args=[mandate.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Pharmacie du Lac" in html and "12.50" in html and "67.50" in html
    assert 'type="text"' not in html and "<textarea" not in html
    listing = superuser_client.get(reverse("admin:spend_usagemandate_changelist"), {"q": str(mandate.pk)})
    assert [m.pk for m in listing.context["cl"].result_list] == [mandate.pk]


def test_operations_retry_a_payout_the_psp_failed_and_a_failed_refund(operator, operator_client, reviewer_client):
    """#15: a FAILED payout is retried as a new PSP request; a FAILED refund as a new refund."""
    from decimal import Decimal

    from escrow.models import Refund
    from escrow.refunds import escrow_refund, refund_fail
    from payments import services as payment_services
    from tests.factories import actor_for

    escrow = fund(make_escrow(amounts=("100.00",)))
    with transaction.atomic():
        locked = escrow_lock(escrow.pk)
        payment = escrow_services.milestone_approve(actor="system:test", escrow=locked,
                                                    milestone=locked.milestones.get(), reason="test",
                                                    amount=Decimal("70.00"))
    execute_payout(payment.pk)
    payment_services.payment_fail(actor="system:test", payment_id=payment.pk, reason="closed", failure_code="closed")
    listing = operator_client.get(PAYMENTS).content.decode()
    assert "closed" in listing  # the failure code is shown
    assert 'id="kb-retry-form"' in operator_client.get(
        reverse("admin:payments_payment_change", args=[payment.pk])).content.decode()
    response = operator_client.post(PAYMENTS, {"action": "retry_payout", "_selected_action": [payment.pk]}, follow=True)
    assert f"Payout #{payment.pk}: SENT." in response.content.decode()
    assert set(sandbox.recorded_payouts()) == {f"payout-{payment.pk}", f"payout-{payment.pk}-g2"}

    refund = escrow_refund(actor=actor_for(escrow.client), escrow_id=escrow.pk, amount=Decimal("30.00"), reason="r")
    refund_fail(actor="system:test", refund_id=refund.pk, failure_code="card_expired")
    refunds = reverse("admin:escrow_refund_changelist")
    assert "card_expired" in reviewer_client.get(refunds).content.decode()
    assert reviewer_client.post(refunds, {"action": "retry_refund", "_selected_action": [refund.pk]}).status_code == 200
    assert Refund.objects.count() == 1  # a reviewer has no such action
    done = operator_client.post(refunds, {"action": "retry_refund", "_selected_action": [refund.pk]}, follow=True)
    assert "1 refund(s) retried as a new refund." in done.content.decode()
    retry = Refund.objects.exclude(pk=refund.pk).get()
    assert (retry.amount, retry.status) == (Decimal("30.00"), "PENDING")
    page = reviewer_client.get(reverse("admin:escrow_escrowagreement_change", args=[escrow.pk])).content.decode()
    assert "payouts" in page.lower() and "card_expired" in page
