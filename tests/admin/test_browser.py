"""The back office in a real browser (Debian's Chromium, driven by Playwright)
against the live server: a reviewer works the queue from login to the audit
trail, and cannot reach what only Operations may do.

Screenshots go to test-artifacts/ (git-ignored). With KOBATELA_DOCS_SCREENSHOTS=1
the queue's screenshot is also written to docs/img/review-queue.png.
"""

from __future__ import annotations

import os
import re

import pytest
from django.urls import reverse

from kobatela.accounts.roles import REVIEWER
from kobatela.audit.models import AuditLog
from kobatela.core.actor import Actor
from payments.models import Payment
from proofs.models import Proof
from proofs.services import proof_decide
from tests.admin.conftest import (
    ARTIFACTS,
    COLUMNS,
    FLAGGED,
    PASSWORD,
    REQUIREMENTS,
    ROOT,
    make_staff,
    submit_invoice,
    submit_photo,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
NOTE = "Called the supplier: the extra 487 EUR is the agreed scaffolding, see email of 4 March."


@pytest.fixture
def queue_data(roles, ai_server):
    """Through the real services, committed (the live server reads them from its own connection):
    an older clean invoice, an unverifiable photo, then a newer invoice the AI flags high."""
    clean = submit_invoice(ai_server=ai_server, sample=COLUMNS)
    photo = submit_photo(gps=False)
    flagged = submit_invoice(ai_server=ai_server, ai_reply=FLAGGED,
                             requirements={**REQUIREMENTS, "expected_amount": "2000.00"})
    flagged.refresh_from_db()
    assert flagged.ai_risk_level == "high" and flagged.backend_checks["overall"] == "fail", flagged.ai_error
    reviewer = make_staff(REVIEWER, full_name="Rita Reviewer", email="rita.reviewer@kobatela.test")
    return {"clean": clean, "photo": photo, "flagged": flagged, "reviewer": reviewer}


def log_in(page, user) -> None:
    page.goto(reverse("admin:index"))
    page.fill("#id_username", user.email)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_load_state()


def test_reviewer_works_a_flagged_invoice_from_the_queue_to_the_audit_log(browser_page, queue_data):
    from playwright.sync_api import expect

    page, flagged, reviewer = browser_page, queue_data["flagged"], queue_data["reviewer"]
    log_in(page, reviewer)

    # The queue is the front page; the flagged invoice comes first although it is the newest.
    expect(page).to_have_url(re.compile(re.escape(reverse("admin:proofs_proof_changelist")) + "$"))
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(3)
    first = rows.nth(0)
    expect(first).to_contain_text(f"#{flagged.pk}")
    expect(first).to_contain_text("high 0.910")
    expect(first).to_contain_text("amount_mismatch")
    expect(first.locator("img.kb-thumb")).to_have_js_property("complete", True)
    assert first.locator("img.kb-thumb").evaluate("img => img.naturalWidth") > 0  # the PDF's first page, rendered
    # Then the photo nothing could verify (its warnings raise its review priority), then the clean invoice.
    expect(rows.nth(1)).to_contain_text(f"#{queue_data['photo'].pk}")
    expect(rows.nth(2)).to_contain_text(f"#{queue_data['clean'].pk}")
    page.click("#toggle-nav-sidebar")  # more room for the queue's columns (remembered by the browser)
    expect(rows.nth(0)).to_contain_text("0 min")  # the last column, visible
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "review-queue.png"), full_page=True)
    if os.environ.get("KOBATELA_DOCS_SCREENSHOTS"):
        page.screenshot(path=str(ROOT / "docs" / "img" / "review-queue.png"), type="png")

    # The detail page: the invoice against the milestone, the AI's reasons.
    first.locator(".field-proof_id a").click()
    expect(page.locator("#kb-invoice tr.kb-mismatch")).to_contain_text("2000.00")
    expect(page.locator("#kb-ai")).to_contain_text("amount_mismatch")
    expect(page.locator("#kb-decision")).to_contain_text("required: the amount check failed")
    expect(page.locator("#kb-decision")).to_contain_text("the AI advisor rates it high risk")
    assert page.locator("img.kb-preview").evaluate("img => img.naturalHeight") == 1000
    page.screenshot(path=str(ARTIFACTS / "proof-detail.png"), full_page=True)

    # Approving without a note is refused, with the service's reason.
    page.get_by_role("button", name="Approve").click()
    page.evaluate("document.querySelector('#kb-note').removeAttribute('required')")  # past the browser's own check
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("ul.messagelist li.error")).to_contain_text("Explain the decision in a note: the amount check "
                                                                    "failed")
    assert Proof.objects.get(pk=flagged.pk).status == "PENDING"

    # With a note it is approved, and the page says by whom, when and why.
    page.fill("#kb-note", NOTE)
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("ul.messagelist li.success")).to_have_text(f"Proof #{flagged.pk} approved.")
    expect(page.locator("#kb-decided")).to_contain_text("APPROVED")
    expect(page.locator("#kb-decided")).to_contain_text(reviewer.email)
    expect(page.locator("#kb-decision")).to_contain_text(NOTE)
    page.screenshot(path=str(ARTIFACTS / "proof-decided.png"), full_page=True)
    proof = Proof.objects.get(pk=flagged.pk)
    assert proof.status == "APPROVED" and proof.decided_by_id == reviewer.pk
    assert Payment.objects.filter(milestone_id=proof.milestone_id).exists()

    # The audit log shows the decision, by this staff user.
    page.get_by_role("link", name="Audit trail of this proof").click()
    approved_row = page.locator("#result_list tbody tr", has_text="proof.approved")
    expect(approved_row).to_have_count(1)
    expect(approved_row).to_contain_text(f"staff:{reviewer.pk}")
    expect(approved_row).to_contain_text(f"proofs.proof:{proof.pk}")
    page.screenshot(path=str(ARTIFACTS / "audit-trail.png"), full_page=True)
    assert AuditLog.objects.get(action="proof.approved", entity_id=str(proof.pk)).actor == f"staff:{reviewer.pk}"


def test_reviewer_cannot_reach_operations_only_actions(browser_page, queue_data):
    from playwright.sync_api import expect

    page, reviewer, flagged = browser_page, queue_data["reviewer"], queue_data["flagged"]
    proof_decide(actor=Actor.staff(reviewer), proof_id=flagged.pk, decision="approve", note="ok")
    payment = Payment.objects.get(milestone_id=flagged.milestone_id)
    log_in(page, reviewer)

    # Payments: readable, but no "Retry payout" action, no button, and the URL itself refuses.
    page.goto(reverse("admin:payments_payment_changelist"))
    expect(page.locator("#result_list")).to_contain_text(str(payment.amount))
    assert page.locator("select[name=action]").count() == 0 or "retry" not in page.locator(
        "select[name=action]").inner_html()
    page.goto(reverse("admin:payments_payment_change", args=[payment.pk]))
    expect(page.locator("#kb-retry-form")).to_have_count(0)
    status = page.evaluate(
        """async (url) => {
            const token = document.querySelector("[name=csrfmiddlewaretoken]")?.value
                || document.cookie.split("; ").find(c => c.startsWith("csrftoken=")).split("=")[1];
            const response = await fetch(url, {method: "POST", headers: {"X-CSRFToken": token}});
            return response.status;
        }""",
        reverse("admin:payments_payment_retry", args=[payment.pk]),
    )
    assert status == 403

    # Webhook events: not even visible to a reviewer.
    response = page.goto(reverse("admin:webhooks_inboundevent_changelist"))
    assert response.status == 403
    page.goto(reverse("admin:index"))  # the queue again
    expect(page.locator("#nav-sidebar")).not_to_contain_text("Inbound events")
    assert not AuditLog.objects.filter(action__in=["payment.sent", "webhook.reprocess_requested"],
                                       actor=f"staff:{reviewer.pk}").exists()


@pytest.fixture
def ai_off_queue(roles):
    """The AI advisor off (the default): an older clean invoice, an older photo
    with no GPS, then the newest invoice, failing its amount check."""
    clean = submit_invoice(sample=COLUMNS)
    photo = submit_photo(gps=False)
    failed = submit_invoice(requirements={**REQUIREMENTS, "expected_amount": "2000.00"})
    assert failed.ai_status == "DISABLED" and failed.backend_checks["overall"] == "fail"
    reviewer = make_staff(REVIEWER, full_name="Ada Reviewer", email="ada.reviewer@kobatela.test")
    return {"clean": clean, "photo": photo, "failed": failed, "reviewer": reviewer}


def test_with_the_ai_off_a_failed_check_invoice_is_first_and_needs_a_note(browser_page, ai_off_queue):
    from playwright.sync_api import expect

    page, failed, reviewer = browser_page, ai_off_queue["failed"], ai_off_queue["reviewer"]
    log_in(page, reviewer)
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text(f"#{failed.pk}")  # the newest, yet first: its amount check failed
    expect(rows.nth(0)).to_contain_text("AI off")
    expect(rows.nth(0)).to_contain_text("check_failed:amount")
    expect(rows.nth(2)).to_contain_text(f"#{ai_off_queue['clean'].pk}")

    rows.nth(0).locator(".field-proof_id a").click()
    expect(page.locator("#kb-note-required")).to_contain_text("the amount check failed")
    page.evaluate("document.querySelector('#kb-note').removeAttribute('required')")  # what a crafted POST would do
    for button in ("Approve", "Reject"):
        page.get_by_role("button", name=button).click()
        expect(page.locator("ul.messagelist li.error")).to_contain_text("Explain the decision in a note")
        page.evaluate("document.querySelector('#kb-note').removeAttribute('required')")
    assert Proof.objects.get(pk=failed.pk).status == "PENDING"

    page.fill("#kb-note", "Amount differs: the client confirmed the reduced scope by email.")
    page.get_by_role("button", name="Reject").click()
    expect(page.locator("ul.messagelist li.success")).to_have_text(f"Proof #{failed.pk} rejected.")
    assert Proof.objects.get(pk=failed.pk).status == "REJECTED"
