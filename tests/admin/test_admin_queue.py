"""The proof review queue: the reviewers' front page, its order, filters,
search, thumbnails, and a fixed number of queries whatever the page size."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image, ImageStat

from proofs.admin.proof_admin import ProofAdmin
from proofs.models import Proof
from tests.admin.conftest import logged_in, make_staff, submit_invoice, submit_photo
from tests.admin.queue_seed import seed_pending_proofs

pytestmark = pytest.mark.django_db
QUEUE = reverse("admin:proofs_proof_changelist")
# session, user, the user's permissions, the groups' permissions, COUNT, the page (escrow and milestone joined),
# the payouts waiting for their payee (one grouped COUNT)
QUEUE_QUERIES = 7


def queue_ids(response) -> list[int]:
    return [proof.pk for proof in response.context["cl"].result_list]


def queries_for(client, url: str, **params) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params)
        assert response.status_code == 200
    return len(ctx.captured_queries)


def test_reviewers_land_on_the_queue_superusers_on_the_index(reviewer_client, superuser_client):
    assert reviewer_client.get(reverse("admin:index")).url == QUEUE
    assert superuser_client.get(reverse("admin:index")).status_code == 200


def test_queue_orders_by_review_priority_then_age_and_shows_pending_only(reviewer_client):
    ids = seed_pending_proofs(8)
    now = timezone.now()
    for age_hours, pk in zip([5, 50, 1, 30, 2, 7, 9, 3], ids):
        Proof.objects.filter(pk=pk).update(created_at=now - timedelta(hours=age_hours))
    Proof.objects.filter(pk=ids[0]).update(status="APPROVED")
    response = reviewer_client.get(QUEUE)
    shown = queue_ids(response)
    assert ids[0] not in shown and len(shown) == 7
    rows = list(Proof.objects.filter(pk__in=shown).values("pk", "review_priority", "created_at"))
    expected = [r["pk"] for r in sorted(rows, key=lambda r: (-r["review_priority"], r["created_at"], r["pk"]))]
    assert shown == expected
    assert len({r["review_priority"] for r in rows}) > 2  # failed checks, AI risks and photo warnings differ
    assert reviewer_client.get(QUEUE, {"queue": "decided"}).context["cl"].result_count == 1
    assert reviewer_client.get(QUEUE, {"queue": "all"}).context["cl"].result_count == 8


def test_filters_and_search(reviewer_client):
    ids = seed_pending_proofs(12)
    proofs = {p.pk: p for p in Proof.objects.select_related("escrow").filter(pk__in=ids)}
    old = ids[3]
    Proof.objects.filter(pk=old).update(created_at=timezone.now() - timedelta(days=9))

    def shown(**params):
        return set(queue_ids(reviewer_client.get(QUEUE, params)))

    assert shown(type__exact="PHOTO") == {pk for pk, p in proofs.items() if p.type == "PHOTO"}
    assert shown(risk="high") == {pk for pk, p in proofs.items() if p.ai_risk_level == "high"}
    assert shown(risk="none") == {pk for pk, p in proofs.items() if p.ai_risk_level == ""}
    assert shown(ocr_status__exact="SKIPPED") == {pk for pk, p in proofs.items() if p.type == "PHOTO"}
    assert shown(currency="EUR") == {pk for pk, p in proofs.items() if p.escrow.currency == "EUR"}
    assert old in shown(age="older") and old not in shown(age="7d")
    recent = max(ids, key=lambda pk: Proof.objects.get(pk=pk).created_at)
    assert recent in shown(age="24h")

    target = proofs[ids[5]]
    assert shown(q=str(target.escrow_id)) >= {target.pk}
    assert shown(q=target.sha256[:10].upper()) == {target.pk}
    invoice = next(p for p in proofs.values() if p.invoice_number)
    assert shown(q=invoice.invoice_number.lower()) == {invoice.pk}
    assert shown(q="no-such-thing") == set()


def test_queue_renders_in_a_fixed_number_of_queries(reviewer_client, monkeypatch):
    """10 rows and 100 rows on one page cost the same queries: nothing per row."""
    monkeypatch.setattr(ProofAdmin, "list_per_page", 100)
    seed_pending_proofs(10)
    ten = queries_for(reviewer_client, QUEUE)
    assert len(queue_ids(reviewer_client.get(QUEUE))) == 10
    seed_pending_proofs(90)
    hundred = queries_for(reviewer_client, QUEUE)
    assert len(queue_ids(reviewer_client.get(QUEUE))) == 100
    assert ten == hundred == QUEUE_QUERIES, (ten, hundred)
    filtered = queries_for(reviewer_client, QUEUE, risk="high", currency="USD", age="7d", q="INV")
    assert filtered == ten


@pytest.mark.slow
def test_ten_thousand_pending_proofs_render_in_the_same_queries(reviewer_client, monkeypatch):
    monkeypatch.setattr(ProofAdmin, "list_per_page", 100)
    seed_pending_proofs(10)
    baseline = queries_for(reviewer_client, QUEUE)
    seed_pending_proofs(10_000)
    response = reviewer_client.get(QUEUE)
    assert response.context["cl"].result_count == 10_010
    assert len(queue_ids(response)) == 100
    assert queries_for(reviewer_client, QUEUE) == baseline == QUEUE_QUERIES
    assert queries_for(reviewer_client, QUEUE, p=50) == baseline  # a late page too


def test_preview_of_a_photo_is_a_small_jpeg_cached_and_permission_checked(reviewer_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        proof = submit_photo(gps=False)
    cache.clear()
    url = reverse("admin:proofs_proof_preview", args=[proof.pk, "thumb"])
    response = reviewer_client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "max-age" in response["Cache-Control"] and response["ETag"]
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "JPEG" and max(image.size) <= 160
    assert "exif" not in image.info  # the GPS never leaves in a preview
    assert cache.get(f"proof-preview:v1:{proof.sha256}:160") == response.content
    assert reviewer_client.get(url, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304
    assert reviewer_client.get(reverse("admin:proofs_proof_preview", args=[proof.pk, "huge"])).status_code == 404

    nobody = make_staff(None)  # staff, but in no group: no view permission on proofs
    assert logged_in(nobody).get(url).status_code == 403
    from django.test import Client

    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and "login" in anonymous.url


def test_preview_of_a_pdf_is_its_first_page(reviewer_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        proof = submit_invoice()
    response = reviewer_client.get(reverse("admin:proofs_proof_preview", args=[proof.pk, "large"]))
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    image = Image.open(io.BytesIO(response.content))
    assert image.size[1] == 1000 and 650 < image.size[0] < 760  # an A4 page, portrait
    # The rendered page is mostly white paper with dark text on it.
    grey = image.convert("L")
    assert grey.getextrema()[0] < 80 and ImageStat.Stat(grey).mean[0] > 200


def test_missing_file_gives_a_placeholder_not_an_error(reviewer_client):
    (pk,) = seed_pending_proofs(1)
    response = reviewer_client.get(reverse("admin:proofs_proof_preview", args=[pk, "thumb"]))
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"] == "private, no-store"
