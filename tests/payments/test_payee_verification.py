"""Payee verification: payouts to providers not verified wait, and leave exactly once when they are."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from escrow import services as escrow_services
from kobatela.accounts.models import PayoutStatus, User
from kobatela.audit.models import Alert
from kobatela.core.errors import Conflict
from kobatela.events.models import Event
from payments import services as payment_services
from payments.models import Payment, PaymentStatus
from payments.psp import sandbox
from proofs.services import proof_submit
from tests.conftest import assert_error
from tests.factories import UserFactory, actor_for
from tests.providers.world import clean_photo, photo_escrow
from tests.support.psp import deliver, encode, payout_event

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("psp_sandbox")]


def approved_payout(provider, capture) -> Payment:
    """A milestone approved by a clean photo: its payout is created (and executed after commit)."""
    escrow = photo_escrow(provider=provider, amounts=("100.00",))
    with capture(execute=True):
        proof_submit(actor=actor_for(escrow.client), escrow_id=escrow.pk, milestone_idx=1, proof_type="PHOTO",
                     upload=clean_photo())
    return Payment.objects.get(escrow=escrow)


def sweep_later():
    payment_services.payments_sweep(now=timezone.now() + timedelta(hours=1))


def test_new_accounts_start_as_the_setting_says(settings):
    settings.PAYOUT_STATUS_DEFAULT = "unverified"
    assert UserFactory().payout_status == PayoutStatus.UNVERIFIED
    settings.PAYOUT_STATUS_DEFAULT = "verified"
    assert UserFactory().payout_status == PayoutStatus.VERIFIED


def test_payout_to_an_unverified_provider_waits_then_leaves_exactly_once_when_verified(
        support_api, sender_api, django_capture_on_commit_callbacks):
    provider = UserFactory(payout_status=PayoutStatus.UNVERIFIED)
    payment = approved_payout(provider, django_capture_on_commit_callbacks)
    assert (payment.status, payment.blocked_reason, payment.attempts, payment.psp_ref) == (
        PaymentStatus.PENDING, "payee_not_verified", 0, "")
    # It waits: the sweeper does not send it, nor does an explicit execute.
    with django_capture_on_commit_callbacks(execute=True):
        sweep_later()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING and not sandbox.recorded_payouts()
    read = support_api.get(f"/api/v1/payments/{payment.pk}").json()
    assert read["status"] == "PENDING" and read["blocked_reason"] == "payee_not_verified"

    # Support verifies the payee: the payout leaves by itself.
    with django_capture_on_commit_callbacks(execute=True):
        response = support_api.patch(f"/api/v1/users/{provider.pk}", {"payout_status": "verified"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["payout_status"] == "verified"
    payment.refresh_from_db()
    assert (payment.status, payment.blocked_reason, payment.attempts) == (PaymentStatus.SENT, "", 1)
    event = Event.objects.get(type="payee.verified")
    assert event.account_id == provider.pk and event.context["released_payment_ids"] == [payment.pk]
    assert set(event.data) == {"id", "payout_status"}

    # Exactly once: verifying again, the sweeper, and a replayed execute send nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        support_api.patch(f"/api/v1/users/{provider.pk}", {"payout_status": "verified"}, format="json")
        sweep_later()
        payment_services.payment_execute(payment_id=payment.pk, actor="system:test")
    payment.refresh_from_db()
    assert payment.attempts == 1 and len(sandbox.recorded_payouts()) == 1
    assert Event.objects.filter(type="payment.sent", object_id=str(payment.pk)).count() == 1
    escrow_services.escrow_settle_payout(actor="system:test", payment_id=payment.pk, psp_ref=payment.psp_ref,
                                         amount=payment.amount, currency=payment.currency)
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.SETTLED
    # (reconcile runs after every test: the books are clean)


def test_psp_account_verified_event_verifies_the_payee(django_capture_on_commit_callbacks):
    provider = UserFactory(payout_status=PayoutStatus.UNVERIFIED, payout_account="acct_provider_42")
    payment = approved_payout(provider, django_capture_on_commit_callbacks)
    assert payment.blocked_reason == "payee_not_verified"
    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(encode({"type": "account.verified", "data": {"account": "acct_provider_42"}}))
    assert response.status_code == 200, response.content
    provider.refresh_from_db()
    payment.refresh_from_db()
    assert provider.payout_status == PayoutStatus.VERIFIED and payment.status == PaymentStatus.SENT
    unknown = deliver(encode({"type": "account.verified", "data": {"account": "acct_nobody"}}))
    assert unknown.status_code == 200  # stored, FAILED as unusable, an alert: nothing verified
    assert not User.objects.filter(payout_account="acct_nobody").exists()


def test_a_lost_release_is_picked_up_by_the_sweeper(django_capture_on_commit_callbacks):
    provider = UserFactory(payout_status=PayoutStatus.UNVERIFIED)
    payment = approved_payout(provider, django_capture_on_commit_callbacks)
    User.objects.filter(pk=provider.pk).update(payout_status=PayoutStatus.VERIFIED)  # no release message
    with django_capture_on_commit_callbacks(execute=True):
        sweep_later()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SENT and payment.blocked_reason == ""


def test_explicit_execute_of_a_blocked_payout_is_409(admin_api, django_capture_on_commit_callbacks):
    provider = UserFactory(payout_status=PayoutStatus.UNVERIFIED)
    payment = approved_payout(provider, django_capture_on_commit_callbacks)
    assert_error(admin_api.post(f"/api/v1/payments/{payment.pk}/execute", {}, format="json",
                                HTTP_IDEMPOTENCY_KEY="x1"), 409, "payee_not_verified")


def test_three_failed_or_returned_payouts_in_a_row_pause_the_provider(django_capture_on_commit_callbacks):
    provider = UserFactory()
    payments = [approved_payout(provider, django_capture_on_commit_callbacks) for _ in range(4)]
    assert all(p.status == PaymentStatus.SENT for p in payments)
    deliver(encode(payout_event("payout.failed", payments[0], reason="account closed")))
    deliver(encode(payout_event("payout.settled", payments[1])))  # a settled payout ends the run
    deliver(encode(payout_event("payout.failed", payments[2], reason="account closed")))
    deliver(encode(payout_event("payout.failed", payments[3], reason="account closed")))
    provider.refresh_from_db()
    assert provider.payout_status == PayoutStatus.VERIFIED and provider.payout_failures_in_row == 2
    assert not Alert.objects.filter(type="payee_paused").exists()
    deliver(encode(payout_event("payout.refunded", payments[1])))  # the settled one comes back: third in a row
    provider.refresh_from_db()
    assert provider.payout_status == PayoutStatus.PAUSED
    alert = Alert.objects.get(type="payee_paused")
    assert alert.data["user_id"] == provider.pk and alert.data["failures_in_row"] == 3
    assert Event.objects.filter(type="payee.paused", account_id=provider.pk).count() == 1
    # A FAILED payout is retried only on request (#15), and the request is refused while the
    # payee is paused; new payouts wait, until someone verifies the payee again.
    with django_capture_on_commit_callbacks(execute=True):
        sweep_later()
    assert Payment.objects.get(pk=payments[3].pk).status == PaymentStatus.FAILED
    with pytest.raises(Conflict) as refused:
        payment_services.payment_execute(payment_id=payments[3].pk, actor="system:test", scoped_to=actor_for(payments[3].owner))
    assert refused.value.code == "payee_paused"
    assert approved_payout(provider, django_capture_on_commit_callbacks).blocked_reason == "payee_paused"


@pytest.mark.parametrize("body", [{"payout_status": "nope"}, {"payout_status": None},
                                  {"payout_status": "verified", "reason": 0}])
def test_bad_payout_status_is_400(support_api, body):
    user = UserFactory(payout_status=PayoutStatus.UNVERIFIED)
    assert_error(support_api.patch(f"/api/v1/users/{user.pk}", body, format="json"), 400)
    user.refresh_from_db()
    assert user.payout_status == PayoutStatus.UNVERIFIED
    assert support_api.patch(f"/api/v1/users/{user.pk}", {}, format="json").json()["payout_status"] == "unverified"


def test_only_support_and_admin_set_payout_status(sender_api, keyed_client, admin_api):
    user = UserFactory(payout_status=PayoutStatus.UNVERIFIED)
    assert_error(sender_api.patch(f"/api/v1/users/{user.pk}", {"payout_status": "verified"}, format="json"), 403)
    assert_error(keyed_client(["provider"]).patch(f"/api/v1/users/{user.pk}", {"payout_status": "verified"},
                                                  format="json"), 403)
    assert_error(admin_api.patch("/api/v1/users/999999999", {"payout_status": "verified"}, format="json"), 404)
    assert admin_api.patch(f"/api/v1/users/{user.pk}", {"payout_status": "paused", "reason": "fraud check"},
                           format="json").json()["payout_status"] == "paused"


def test_review_queue_and_payment_admin_show_blocked_payouts_and_why(django_capture_on_commit_callbacks):
    from django.test import Client

    provider = UserFactory(payout_status=PayoutStatus.UNVERIFIED)
    payment = approved_payout(provider, django_capture_on_commit_callbacks)
    staff = User.objects.create_superuser("ops@kobatela.test", "Pass-word-123-xyz", full_name="Ops")
    browser = Client()
    browser.force_login(staff)
    queue = browser.get("/admin/proofs/proof/").content.decode()
    assert "Approved payouts waiting for their payee" in queue and "1 payee not verified" in queue
    listing = browser.get("/admin/payments/payment/?blocked=yes").content.decode()
    assert f"user #{provider.pk}: unverified" in listing and "payee not verified" in listing
    assert browser.get(f"/admin/payments/payment/{payment.pk}/change/").status_code == 200
