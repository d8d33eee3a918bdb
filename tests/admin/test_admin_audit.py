"""The audit log in the admin: read-only for everyone, filters, detail,
on-demand chain verification, CSV export of the filtered rows, streamed."""

from __future__ import annotations

import csv
import io
import tracemalloc

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

from kobatela.audit import services as audit
from kobatela.audit.models import Alert, AuditLog, AuditSeal

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:audit_auditlog_changelist")
EXPORT = reverse("admin:audit_auditlog_export")
VERIFY = reverse("admin:audit_auditlog_verify_chain")


def bulk_audit_rows(count: int, *, action="bulk.row", actor="system:seed") -> None:
    """Rows inserted directly (INSERT is what the triggers allow), not sealed:
    the export does not verify the chain."""
    now = timezone.now()
    batch = []
    for i in range(count):
        batch.append(AuditLog(created_at=now, actor=actor, action=action, entity_type="thing", entity_id=str(i),
                              data={"n": i, "note": "x" * 40}))
        if len(batch) == 5000:
            AuditLog.objects.bulk_create(batch)
            batch.clear()
    AuditLog.objects.bulk_create(batch)


def read_csv(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_nobody_adds_edits_or_deletes_audit_rows_not_even_a_superuser(superuser_client):
    row = audit.record("system:test", "thing.done", ("thing", 1), {"iban": "FR7630006000011234567890189"})
    change = reverse("admin:audit_auditlog_change", args=[row.pk])
    assert superuser_client.get(reverse("admin:audit_auditlog_add")).status_code == 403
    assert superuser_client.post(reverse("admin:audit_auditlog_delete", args=[row.pk]), {"post": "yes"}).status_code == 403
    page = superuser_client.get(change)
    assert page.status_code == 200
    html = page.content.decode()
    assert "&quot;iban&quot;: &quot;****0189&quot;" in html  # masked when recorded, pretty-printed
    assert 'name="action"' not in html and "<textarea" not in html
    superuser_client.post(change, {"action": "edited"})
    assert AuditLog.objects.get(pk=row.pk).action == "thing.done"
    listing = superuser_client.get(CHANGELIST)
    assert listing.context["cl"].model_admin.get_actions(listing.wsgi_request) == {}  # not even "delete selected"


def test_filters_search_and_date_hierarchy(reviewer, reviewer_client):
    audit.record(f"staff:{reviewer.pk}", "proof.approved", ("proofs.proof", 7), {})
    audit.record("apikey:3", "escrow.created", ("escrow.escrowagreement", 9), {})
    audit.record("system:ocr", "proof.ocr_done", ("proofs.proof", 7), {})

    def actions(**params):
        return [r.action for r in reviewer_client.get(CHANGELIST, params).context["cl"].result_list]

    assert actions(actor_kind="staff") == ["proof.approved"]
    assert actions(actor=f"staff:{reviewer.pk}") == ["proof.approved"]
    assert actions(actor="apikey:3") == ["escrow.created"]
    assert actions(action="proof.ocr_done") == ["proof.ocr_done"]
    assert actions(entity_type="proofs.proof", entity_id="7") == ["proof.ocr_done", "proof.approved"]
    assert actions(q="proof.") == ["proof.ocr_done", "proof.approved"]
    today = timezone.now()
    assert len(actions(created_at__year=today.year, created_at__month=today.month, created_at__day=today.day)) == 3
    page = reviewer_client.get(CHANGELIST).content.decode()
    assert f"staff:{reviewer.pk} ({reviewer.email})" in page  # the actor filter names staff users


def test_chain_is_verified_on_demand_and_the_result_shown(reviewer, reviewer_client):
    for i in range(3):
        audit.record("system:test", "thing.done", ("thing", i), {})
    audit.audit_seal()
    assert "not verified from the admin yet" in reviewer_client.get(CHANGELIST).content.decode()
    assert reviewer_client.get(VERIFY).status_code == 405
    response = reviewer_client.post(VERIFY, follow=True)
    html = response.content.decode()
    assert "Audit chain intact: 3 rows verified." in html and "Hash chain intact" in html
    row = AuditLog.objects.get(action="audit.chain_verified")
    assert row.actor == f"staff:{reviewer.pk}" and row.data == {"ok": True, "checked": 3, "first_broken_id": None,
                                                                 "reason": None}
    audit.audit_seal()
    assert audit.audit_chain_verify().checked == 4  # the verification's own row is sealed too


def test_a_broken_chain_shows_on_the_changelist(reviewer_client):
    row = audit.record("system:test", "thing.done", ("thing", 1), {})
    AuditSeal.objects.create(seq=row.pk, row_hash="f" * 64, sealed_at=timezone.now())  # a seal that does not match
    html = reviewer_client.post(VERIFY, follow=True).content.decode()
    assert "Hash chain BROKEN at row id=" in html


def test_csv_export_is_the_filtered_set_audited_and_formula_safe(reviewer, reviewer_client):
    audit.record("system:test", "keep.me", ("thing", 1), {"note": "=HYPERLINK(\"http://evil\")"})
    audit.record("system:test", "keep.me", ("thing", 2), {})
    audit.record("system:test", "drop.me", ("thing", 3), {})
    response = reviewer_client.get(EXPORT, {"action": "keep.me"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-log-')
    assert response["X-Content-Type-Options"] == "nosniff"
    rows = read_csv(response)
    assert rows[0][:4] == ["id", "created_at", "actor", "action"]
    assert [r[3] for r in rows[1:]] == ["keep.me", "keep.me"]
    assert all(not cell.startswith("=") for r in rows for cell in r)
    exported = AuditLog.objects.get(action="audit.exported")
    assert exported.actor == f"staff:{reviewer.pk}" and exported.data["filters"] == {"action": ["keep.me"]}
    assert reviewer_client.get(EXPORT, {"no_such_field__gt": "1"}).status_code == 400


@pytest.mark.slow
def test_csv_export_of_100k_rows_streams_without_growing_memory(reviewer_client):
    bulk_audit_rows(100_000, action="mem.large")
    bulk_audit_rows(10, action="mem.other")
    response = reviewer_client.get(EXPORT, {"action": "mem.large"})
    assert isinstance(response, StreamingHttpResponse)
    tracemalloc.start()
    lines, early_peak = 0, None
    for chunk in response.streaming_content:  # what the server writes to the socket, chunk by chunk
        lines += chunk.count(b"\n")
        if early_peak is None and lines >= 10_000:
            early_peak = tracemalloc.get_traced_memory()[1]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()  # (the test client closed the response when the stream ended)
    assert lines == 100_001
    # The memory after 10,000 rows is all the export ever needs: one chunk of 2,000 rows at a time.
    print(f"export peak after 10k rows {early_peak / 1e6:.1f} MB, after 100k rows {peak / 1e6:.1f} MB")
    assert peak < early_peak * 1.25, (early_peak, peak)
    assert peak < 16_000_000, peak


def test_alerts_are_acknowledged_and_resolved_through_the_service(reviewer, reviewer_client):
    first = audit.alert_raise(type="payout_gave_up", message="Payout #1 failed 5 times.")
    second = audit.alert_raise(type="payout_gave_up", message="Payout #2 failed 5 times.")
    changelist = reverse("admin:audit_alert_changelist")
    reviewer_client.post(changelist, {"action": "acknowledge", "_selected_action": [first.pk]})
    reviewer_client.post(changelist, {"action": "resolve", "_selected_action": [first.pk, second.pk]})
    response = reviewer_client.post(changelist, {"action": "acknowledge", "_selected_action": [first.pk]}, follow=True)
    assert "Unchanged: #%d (alert_is_resolved)" % first.pk in response.content.decode()
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == second.status == Alert.Status.RESOLVED
    assert first.acknowledged_by == reviewer and first.resolved_by == reviewer
    actors = set(AuditLog.objects.filter(action__in=["alert.acknowledged", "alert.resolved"]).values_list("actor", flat=True))
    assert actors == {f"staff:{reviewer.pk}"}
    assert AuditLog.objects.filter(action="alert.resolved").count() == 2
    change = reverse("admin:audit_alert_change", args=[first.pk])
    reviewer_client.post(change, {"status": "OPEN"})
    assert Alert.objects.get(pk=first.pk).status == Alert.Status.RESOLVED
    assert reviewer_client.get(reverse("admin:audit_alert_add")).status_code == 403

