"""AI-flag triage: flagged proofs by flag and risk, marked reviewed in bulk
(one audit row each) — and never approved in bulk."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from kobatela.audit.models import AuditLog
from proofs.models import Proof
from tests.admin.queue_seed import seed_pending_proofs

pytestmark = pytest.mark.django_db
TRIAGE = reverse("admin:proofs_proof_ai_triage")
QUEUE = reverse("admin:proofs_proof_changelist")


def test_triage_groups_flagged_proofs_by_flag_and_risk(reviewer_client):
    ids = seed_pending_proofs(16)
    page = reviewer_client.get(TRIAGE)
    assert page.status_code == 200
    summary = {row["flag"]: row for row in page.context["summary"]}
    flagged = Proof.objects.filter(pk__in=ids).exclude(ai_flags=[])
    expected_mismatch = [p for p in flagged if "amount_mismatch" in p.ai_flags]
    assert summary["amount_mismatch"]["total"] == len(expected_mismatch) > 0
    assert summary["amount_mismatch"]["high"] == len(expected_mismatch)  # seeded: that flag comes with high risk
    assert "supplier_unknown" in summary and "date_outside_window" in summary
    listed = {p.pk for p in page.context["page"]}
    assert listed == {p.pk for p in Proof.objects.filter(pk__in=ids) if p.ai_flagged}

    by_flag = reviewer_client.get(TRIAGE, {"flag": "supplier_unknown"})
    assert {p.pk for p in by_flag.context["page"]} == {p.pk for p in flagged if "supplier_unknown" in p.ai_flags}
    by_risk = reviewer_client.get(TRIAGE, {"risk": "medium"})
    assert all(p.ai_risk_level == "medium" for p in by_risk.context["page"]) and by_risk.context["page"]


def test_mark_reviewed_records_one_audit_row_per_proof_and_decides_nothing(reviewer, reviewer_client):
    ids = seed_pending_proofs(8)
    flagged = [p.pk for p in Proof.objects.filter(pk__in=ids) if p.ai_flagged]
    clean = [pk for pk in ids if pk not in flagged]
    response = reviewer_client.post(TRIAGE + "?risk=", {"proof": [*flagged, *clean[:1]]}, follow=True)
    assert response.status_code == 200
    assert f"{len(flagged)} flagged proof(s) marked as reviewed." in response.content.decode()
    rows = AuditLog.objects.filter(action="proof.ai_flag_reviewed")
    assert sorted(int(r.entity_id) for r in rows) == sorted(flagged)
    assert {r.actor for r in rows} == {f"staff:{reviewer.pk}"}
    proofs = Proof.objects.filter(pk__in=flagged)
    assert all(p.ai_reviewed_by == reviewer and p.ai_reviewed_at for p in proofs)
    assert set(Proof.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"PENDING"}
    assert reviewer_client.get(TRIAGE).context["page"].paginator.count == 0  # they left the triage list
    # Marking again changes nothing and writes nothing.
    reviewer_client.post(TRIAGE, {"proof": flagged})
    assert AuditLog.objects.filter(action="proof.ai_flag_reviewed").count() == len(flagged)


def test_the_changelist_action_does_the_same(reviewer, reviewer_client):
    ids = seed_pending_proofs(4)
    reviewer_client.post(QUEUE, {"action": "mark_ai_reviewed", "_selected_action": ids})
    flagged = [p.pk for p in Proof.objects.filter(pk__in=ids) if p.ai_flagged]
    assert AuditLog.objects.filter(action="proof.ai_flag_reviewed").count() == len(flagged) > 0


def test_no_bulk_approval_exists_for_anyone(superuser):
    request = RequestFactory().get(QUEUE)
    request.user = superuser
    actions = admin.site._registry[Proof].get_actions(request)
    assert set(actions) == {"mark_ai_reviewed", "requeue_ocr", "requeue_ai"}
    assert not any("approve" in name or "reject" in name or "decide" in name for name in actions)


def test_triage_needs_the_permission_to_mark(roles):
    from django.contrib.auth.models import Permission

    from tests.admin.conftest import logged_in, make_staff

    ids = seed_pending_proofs(4)
    viewer = make_staff(None)
    viewer.user_permissions.add(Permission.objects.get(codename="view_proof"))
    client = logged_in(viewer)
    page = client.get(TRIAGE)
    assert page.status_code == 200 and 'type="checkbox"' not in page.content.decode()
    assert client.post(TRIAGE, {"proof": ids}).status_code == 403
    assert not AuditLog.objects.filter(action="proof.ai_flag_reviewed").exists()
