"""Upload links: created by the sender for one milestone, used by a provider without an account at /u/{token}."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from escrow.models import MilestoneStatus
from kobatela.events.models import Event
from proofs.models import Proof, UploadLink
from tests.conftest import assert_error
from tests.factories import UserFactory
from tests.proofs.photo_samples import geotagged_jpeg
from tests.providers.world import SITE, clean_photo, doubtful_photo, photo_escrow
from tests.support.concurrency import run_concurrently

pytestmark = pytest.mark.django_db


def create_link(api, escrow, **body):
    return api.post(f"/api/v1/escrows/{escrow.pk}/upload-links",
                    {"milestone_idx": 1, "expires_in_hours": 24, "max_uploads": 3, **body}, format="json")


def page_path(token: str) -> str:
    return f"/api/v1/u/{token}"


def send(client, token, photo, **extra):
    return client.post(page_path(token), {"file": photo}, format="multipart", HTTP_X_REQUESTED_WITH="XMLHttpRequest",
                       **extra)


def test_create_shows_the_token_once_and_stores_only_its_hash(sender_api):
    escrow = photo_escrow(client=sender_api.user)
    response = create_link(sender_api, escrow)
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) >= {"id", "url", "token", "expires_at", "max_uploads", "uploads_used", "status"}
    assert body["status"] == "ACTIVE" and body["uploads_used"] == 0 and body["max_uploads"] == 3
    assert body["url"].endswith(page_path(body["token"])) and body["token"].startswith("kul_")
    link = UploadLink.objects.get(pk=body["id"])
    assert link.token_hash == hashlib.sha256(body["token"].encode()).hexdigest()
    assert body["token"] not in str(list(UploadLink.objects.values()))
    event = Event.objects.get(type="upload_link.created")
    assert event.account_id == sender_api.user.pk and body["token"] not in str(event.data)
    listed = sender_api.get(f"/api/v1/escrows/{escrow.pk}/upload-links").json()["results"]
    assert [row["id"] for row in listed] == [body["id"]] and "token" not in listed[0] and "url" not in listed[0]


@pytest.mark.parametrize("body, field", [
    ({"expires_in_hours": 0}, "expires_in_hours"), ({"expires_in_hours": 721}, "expires_in_hours"),
    ({"max_uploads": 0}, "max_uploads"), ({"max_uploads": 21}, "max_uploads"), ({"milestone_idx": 9}, "milestone_idx"),
])
def test_bad_link_input_is_400(sender_api, body, field):
    escrow = photo_escrow(client=sender_api.user)
    error = assert_error(create_link(sender_api, escrow, **body), 400)
    assert field in error["details"]
    assert not UploadLink.objects.exists()


def test_link_for_a_closed_milestone_is_409_and_other_tenants_are_404(sender_api, keyed_client):
    escrow = photo_escrow(client=sender_api.user)
    assert send(sender_api, create_link(sender_api, escrow).json()["token"], clean_photo()).status_code == 201
    assert escrow.milestones.get(idx=1).status == MilestoneStatus.APPROVED
    assert_error(create_link(sender_api, escrow), 409, "milestone_closed")
    link_id = UploadLink.objects.get().pk
    stranger = keyed_client(["sender"])
    assert_error(create_link(stranger, escrow, milestone_idx=2), 404)
    assert_error(stranger.get(f"/api/v1/escrows/{escrow.pk}/upload-links"), 404)
    assert_error(stranger.delete(f"/api/v1/upload-links/{link_id}"), 404)


def test_page_names_the_milestone_and_what_it_expects_and_nothing_of_the_client(sender_api, anon_api):
    client = sender_api.user
    client.full_name = "Clara Clientname"
    client.save()
    escrow = photo_escrow(client=client)
    token = create_link(sender_api, escrow).json()["token"]
    response = anon_api.get(page_path(token))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Step 1" in html and 'accept="image/*"' in html and "capture" in html and "within 100 m" in html
    for secret in (client.email, client.full_name, str(client.pk) + "@", "iban", "IBAN"):
        assert secret not in html
    assert response["Cache-Control"] == "no-store" and response["Referrer-Policy"] == "no-referrer"
    assert "script-src 'nonce-" in response["Content-Security-Policy"]


def test_unknown_link_is_401_and_expired_or_revoked_410(sender_api, anon_api):
    escrow = photo_escrow(client=sender_api.user)
    assert anon_api.get(page_path("kul_nope")).status_code == 401
    assert anon_api.get(page_path("something-else")).status_code == 401
    assert_error(send(anon_api, "kul_nope", doubtful_photo()), 401, "upload_link_unknown")
    expired = create_link(sender_api, escrow).json()
    UploadLink.objects.filter(pk=expired["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = anon_api.get(page_path(expired["token"]))
    assert response.status_code == 410 and "expired" in response.content.decode()
    assert_error(send(anon_api, expired["token"], doubtful_photo()), 410, "upload_link_expired")
    revoked = create_link(sender_api, escrow).json()
    assert sender_api.delete(f"/api/v1/upload-links/{revoked['id']}").status_code == 204
    assert sender_api.delete(f"/api/v1/upload-links/{revoked['id']}").status_code == 204  # idempotent
    assert anon_api.get(page_path(revoked["token"])).status_code == 410
    assert_error(send(anon_api, revoked["token"], doubtful_photo()), 410, "upload_link_revoked")
    assert Event.objects.filter(type="upload_link.revoked").count() == 1
    assert not Proof.objects.exists()


def test_upload_by_link_runs_the_proof_checks_and_says_the_verdict(sender_api, anon_api):
    escrow = photo_escrow(client=sender_api.user)
    token = create_link(sender_api, escrow, max_uploads=5).json()["token"]
    far = geotagged_jpeg(SITE[0] + 1, SITE[1], timezone.now())
    assert_error(send(anon_api, token, SimpleUploadedFile("far.jpg", far, content_type="image/jpeg")), 422,
                 "outside_geofence")
    assert_error(send(anon_api, token, SimpleUploadedFile("x.txt", b"hello", content_type="text/plain")), 415)
    review = send(anon_api, token, doubtful_photo())
    assert review.status_code == 201, review.content
    assert review.json()["verdict"] == "review" and review.json()["message"].startswith("Waiting for review")
    accepted = send(anon_api, token, clean_photo())
    assert accepted.json()["verdict"] == "accepted"
    assert accepted.json()["message"] == "Accepted — payment on its way."
    proof = Proof.objects.get(pk=accepted.json()["id"])
    assert proof.upload_link_id is not None and proof.owner_id == escrow.client_id
    event = Event.objects.filter(type="proof.submitted", object_id=str(proof.pk)).get()
    assert event.context["via"] == "upload_link" and event.account_id == escrow.client_id
    assert UploadLink.objects.get().uploads_used == 2  # refused uploads do not count


def test_a_link_used_max_uploads_times_answers_410(sender_api, anon_api):
    escrow = photo_escrow(client=sender_api.user)
    token = create_link(sender_api, escrow, max_uploads=2).json()["token"]
    assert send(anon_api, token, doubtful_photo()).status_code == 201
    assert send(anon_api, token, doubtful_photo()).status_code == 201
    assert_error(send(anon_api, token, doubtful_photo()), 410, "upload_link_used")
    assert anon_api.get(page_path(token)).status_code == 410
    listed = sender_api.get(f"/api/v1/escrows/{escrow.pk}/upload-links").json()["results"]
    assert listed[0]["status"] == "USED" and listed[0]["uploads_used"] == 2


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_uploads_never_pass_the_cap(keyed_client):
    sender = keyed_client(["sender"])
    escrow = photo_escrow(client=sender.user)
    token = create_link(sender, escrow, max_uploads=3).json()["token"]
    photos = [geotagged_jpeg(None, None, None) for _ in range(10)]

    def upload(client, i):
        response = client.post(page_path(token), {"file": SimpleUploadedFile(f"{i}.jpg", photos[i],
                                                                              content_type="image/jpeg")},
                               format="multipart", HTTP_X_REQUESTED_WITH="XMLHttpRequest")
        return response.status_code

    statuses = run_concurrently(10, "unused", upload)
    assert sorted(statuses) == [201] * 3 + [410] * 7, statuses
    assert UploadLink.objects.get().uploads_used == 3
    assert Proof.objects.filter(escrow=escrow).count() == 3


def test_requests_are_rate_limited_per_link_and_per_address(sender_api, anon_api, settings):
    escrow = photo_escrow(client=sender_api.user)
    token = create_link(sender_api, escrow).json()["token"]
    settings.UPLOAD_LINK_RATE_PER_LINK = 2
    assert anon_api.get(page_path(token)).status_code == 200
    assert anon_api.get(page_path(token)).status_code == 200
    limited = anon_api.get(page_path(token))
    assert limited.status_code == 429
    error = assert_error(send(anon_api, token, doubtful_photo()), 429, "rate_limited")
    assert error["message"] and send(anon_api, token, doubtful_photo())["Retry-After"]
    settings.UPLOAD_LINK_RATE_PER_LINK = 1_000
    settings.UPLOAD_LINK_RATE_PER_IP = 1
    other = create_link(sender_api, escrow).json()["token"]
    assert anon_api.get(page_path(other), REMOTE_ADDR="203.0.113.9").status_code == 200
    assert anon_api.get(page_path(other), REMOTE_ADDR="203.0.113.9").status_code == 429
    assert anon_api.get(page_path(other), REMOTE_ADDR="203.0.113.10").status_code == 200


def test_a_browser_without_javascript_gets_the_verdict_as_a_page(sender_api, anon_api):
    escrow = photo_escrow(client=sender_api.user)
    token = create_link(sender_api, escrow).json()["token"]
    response = anon_api.post(page_path(token), {"file": doubtful_photo()}, format="multipart", HTTP_ACCEPT="text/html")
    assert response.status_code == 201 and "Waiting for review" in response.content.decode()


def test_another_provider_cannot_be_reached_through_a_link(sender_api, anon_api):
    """A link opens its own escrow's milestone only: nothing in the request chooses another."""
    escrow = photo_escrow(client=sender_api.user)
    other = photo_escrow(client=UserFactory())
    token = create_link(sender_api, escrow).json()["token"]
    response = anon_api.post(page_path(token), {"file": doubtful_photo(), "escrow_id": other.pk, "milestone_idx": 2},
                             format="multipart", HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert response.status_code == 201
    assert Proof.objects.get().escrow_id == escrow.pk and not Proof.objects.filter(escrow=other).exists()
