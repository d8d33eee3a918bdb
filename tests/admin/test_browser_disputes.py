"""#15 in a real browser (Debian's Chromium, driven by Playwright) against the live
server: a support user (Operations) works the dispute queue, sees the split before
confirming, and the resulting payout and refund appear on the escrow."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from escrow.disputes import dispute_open
from escrow.models import Dispute, MilestoneStatus, Refund
from kobatela.accounts.roles import OPERATIONS
from kobatela.audit.models import AuditLog
from payments.models import Payment
from payments.reconcile import reconcile
from tests.admin.conftest import ARTIFACTS, make_staff, submit_photo
from tests.admin.test_browser import log_in
from tests.factories import actor_for

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_support_resolves_a_dispute_and_the_payout_and_refund_appear_on_the_escrow(browser_page, roles):
    from playwright.sync_api import expect

    page = browser_page
    proof = submit_photo(gps=False)  # 150.00, a photo waiting for review
    escrow = proof.escrow
    dispute = dispute_open(actor=actor_for(escrow.client), escrow_id=escrow.pk, reason="Only part of the work is done.")
    support = make_staff(OPERATIONS, full_name="Sara Support", email="sara.support@kobatela.test")
    log_in(page, support)

    # The queue: open disputes, oldest first, with the amount each holds.
    page.goto(reverse("admin:escrow_dispute_changelist"))
    row = page.locator("#result_list tbody tr").first
    expect(row).to_contain_text("150.00")
    expect(row).to_contain_text("Client")
    row.locator("th a, td a").first.click()

    # The dispute's page: the escrow's proofs side by side, then the resolve form.
    expect(page.locator("#kb-evidence")).to_contain_text(f"#{proof.pk}")
    expect(page.locator("#kb-evidence")).to_contain_text("(disputed)")
    page.click("#kb-resolve")
    expect(page.locator("#kb-held")).to_contain_text("150.00")
    page.fill("#id_release_amount", "100.00")
    page.fill("#id_refund_amount", "40.00")
    page.fill("#id_note", "The site visit shows two thirds done.")
    page.get_by_role("button", name="Show the split").click()
    expect(page.locator("#kb-resolve-form")).to_contain_text("must add up to 150.00")  # refused, nothing changed
    assert Dispute.objects.get(pk=dispute.pk).status == "OPEN"
    page.fill("#id_refund_amount", "50.00")
    page.get_by_role("button", name="Show the split").click()
    split = page.locator("#kb-split")
    expect(split).to_contain_text("100.00")
    expect(split).to_contain_text("50.00")
    page.screenshot(path=str(ARTIFACTS / "dispute-split.png"), full_page=True)
    page.get_by_role("button", name="Confirm and resolve").click()

    # The escrow's page: the payout to the provider and the refund to the client.
    expect(page).to_have_url(re.compile(re.escape(reverse("admin:escrow_escrowagreement_change", args=[escrow.pk]))))
    expect(page.locator("ul.messagelist li.success")).to_contain_text(f"Dispute #{dispute.pk} resolved")
    expect(page.locator("#payments-group")).to_contain_text("100.00")
    expect(page.locator("#refunds-group")).to_contain_text("50.00")
    page.screenshot(path=str(ARTIFACTS / "dispute-resolved-escrow.png"), full_page=True)

    payment, refund = Payment.objects.get(escrow=escrow), Refund.objects.get(escrow=escrow)
    assert (payment.amount, payment.status) == (Decimal("100.00"), "SENT")
    assert (refund.amount, refund.status, refund.dispute_id) == (Decimal("50.00"), "SENT", dispute.pk)
    assert escrow.milestones.get().status == MilestoneStatus.RESOLVED
    assert AuditLog.objects.get(action="dispute.resolved").actor == f"staff:{support.pk}"
    assert reconcile() == []
