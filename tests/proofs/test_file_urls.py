"""GET /proofs/{id}/file-url: a signed URL valid at most 15 minutes (local storage: Django's signing)."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from proofs.models import Proof
from tests.conftest import assert_error
from tests.providers.world import doubtful_photo, photo_escrow, tenant_escrow

pytestmark = pytest.mark.django_db


def proof_of(escrow):
    return Proof.objects.filter(escrow=escrow).first()


def test_signed_local_url_serves_the_file_to_anyone_holding_it_until_it_expires(sender_api, anon_api, monkeypatch):
    escrow = photo_escrow(client=sender_api.user)
    upload = doubtful_photo()
    content = upload.read()
    upload.seek(0)
    sender_api.post("/api/v1/proofs", {"escrow_id": escrow.pk, "milestone_idx": 1, "type": "PHOTO", "file": upload},
                    format="multipart")
    proof = proof_of(escrow)
    before = time.time()
    body = sender_api.get(f"/api/v1/proofs/{proof.pk}/file-url").json()
    lifetime = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00")).timestamp() - before
    assert 0 < lifetime <= 15 * 60
    path = body["url"].removeprefix("http://testserver")
    response = anon_api.get(path)  # no API key: the signature is the credential
    assert response.status_code == 200 and b"".join(response.streaming_content) == content
    assert response["Cache-Control"] == "no-store"
    assert_error(anon_api.get(path[:-3] + "abc"), 404, "file_url_invalid")
    real_time = time.time
    monkeypatch.setattr("django.core.signing.time.time", lambda: real_time() + 15 * 60 + 1)
    assert_error(anon_api.get(path), 404, "file_url_invalid")


def test_file_url_is_for_the_parties_and_staff_only(sender_api, keyed_client, support_api):
    provider_api = keyed_client(["provider"])
    mine = tenant_escrow(client=sender_api.user, provider=provider_api.user)
    other = tenant_escrow()
    for api in (sender_api, provider_api, support_api):
        assert api.get(f"/api/v1/proofs/{proof_of(mine.escrow).pk}/file-url").status_code == 200
    for api in (sender_api, provider_api):
        assert_error(api.get(f"/api/v1/proofs/{proof_of(other.escrow).pk}/file-url"), 404)
    assert_error(keyed_client(["gov"]).get(f"/api/v1/proofs/{proof_of(mine.escrow).pk}/file-url"), 403)
