"""Rough edges an integrator met (issue #17): the 403 names the scope, one event
vocabulary on both timelines, a made-up cursor is a 400, grammar."""

from __future__ import annotations

import pytest

from escrow.models import TIMELINE_EVENT_TYPES
from kobatela.events.catalogue import EVENT_TYPES
from tests.conftest import assert_error
from tests.factories import fund, make_escrow

pytestmark = pytest.mark.django_db


def test_a_403_names_the_scopes_that_would_do(sender_api):
    error = assert_error(sender_api.post("/api/v1/users", {"email": "x@example.com", "full_name": "X",
                                                            "kind": "person"}, format="json"), 403, "permission_denied")
    assert error["details"] == {"required_scopes": ["admin", "support"]}
    assert "admin or support" in error["message"]


def test_the_escrow_timeline_names_events_as_the_events_api_does(sender_api):
    escrow = fund(make_escrow(client=sender_api.user))
    timeline = sender_api.get(f"/api/v1/escrows/{escrow.pk}/events").json()["results"]
    events = sender_api.get("/api/v1/events").json()["results"]
    assert {"kind", "type"} <= set(timeline[0])
    by_kind = {entry["kind"]: entry["type"] for entry in timeline}
    assert by_kind["created"] == "escrow.created" and by_kind["funded"] == "escrow.funded"
    assert {"escrow.created", "escrow.funded"} <= {event["type"] for event in events}
    # Every timeline type that is also an integrator event is spelled as the catalogue spells it.
    for kind, event_type in TIMELINE_EVENT_TYPES.items():
        if event_type in EVENT_TYPES:
            assert event_type.split(".")[1] in kind or kind == "payout_refunded"


@pytest.mark.parametrize("path", ["/api/v1/escrows", "/api/v1/events", "/api/v1/payments"])
def test_a_made_up_cursor_or_limit_is_a_400(sender_api, path):
    make_escrow(client=sender_api.user)
    assert_error(sender_api.get(path, {"cursor": "not-a-cursor"}), 400, "validation_error")
    assert_error(sender_api.get(path, {"limit": "null"}), 400, "validation_error")


def test_the_proof_type_mismatch_message_says_an_invoice(sender_api):
    from django.core.files.uploadedfile import SimpleUploadedFile

    escrow = fund(make_escrow(client=sender_api.user, proof_type="INVOICE"))
    upload = SimpleUploadedFile("photo.jpg", b"\xff\xd8\xff\xe0" + b"0" * 100, content_type="image/jpeg")
    response = sender_api.post("/api/v1/proofs", {"escrow_id": escrow.pk, "milestone_idx": 1, "type": "PHOTO",
                                                  "file": upload}, format="multipart")
    error = assert_error(response, 409, "proof_type_mismatch")
    assert "expects an INVOICE proof" in error["message"]
