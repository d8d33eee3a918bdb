"""``allowed_actions`` is the truth: every action listed succeeds, every action not listed is refused.

For each escrow state and each kind of caller, the escrow is read, then
every action of the table (``escrow.rules.ACTIONS``) is taken on a fresh
escrow in the same state: listed ⇔ 2xx.
"""

from __future__ import annotations

import uuid

import pytest

from escrow.rules import ACTIONS
from escrow.services import escrow_settle_payout
from payments.models import Payment
from proofs.services import proof_submit
from tests.conftest import _keyed_client
from tests.factories import UserFactory, actor_for
from tests.providers.world import clean_photo, doubtful_photo, photo_escrow

pytestmark = pytest.mark.django_db


def _proof(escrow, photo):
    proof_submit(actor=actor_for(escrow.client), escrow_id=escrow.pk, milestone_idx=1, proof_type="PHOTO", upload=photo)


def draft(client, provider):
    return photo_escrow(client=client, provider=provider, amounts=("100.00",), funded=False)


def part_funded(client, provider):
    from decimal import Decimal

    from tests.factories import fund

    return fund(draft(client, provider), Decimal("40.00"))


def funded(client, provider):
    return photo_escrow(client=client, provider=provider, amounts=("100.00",))


def disputed(client, provider):
    from escrow.disputes import dispute_open

    escrow = funded(client, provider)
    dispute_open(actor=actor_for(client), escrow_id=escrow.pk, reason="the work is late")
    return escrow


def releasable(client, provider):
    escrow = funded(client, provider)
    _proof(escrow, doubtful_photo())
    return escrow


def all_approved(client, provider):
    escrow = funded(client, provider)
    _proof(escrow, clean_photo())
    return escrow


def released(client, provider, capture):
    escrow = funded(client, provider)
    with capture(execute=True):
        _proof(escrow, clean_photo())
    payment = Payment.objects.get(escrow=escrow)
    escrow_settle_payout(actor="system:test", payment_id=payment.pk, psp_ref=payment.psp_ref, amount=payment.amount,
                         currency=payment.currency)
    return escrow


SCENARIOS = ["draft", "part_funded", "funded", "disputed", "releasable", "all_approved", "released"]
CALLERS = ["client", "provider", "admin", "support"]


def take(api, action: str, escrow):
    escrow.refresh_from_db()
    idx = next((m.idx for m in escrow.milestones.order_by("idx")
                if m.status in ("WAITING", "PENDING_REVIEW", "REJECTED")), 1)
    path = f"/api/v1/escrows/{escrow.pk}"
    key = {"HTTP_IDEMPOTENCY_KEY": uuid.uuid4().hex}
    if action == "deposit":
        return api.post(f"{path}/deposit", {"amount": "1.00"}, format="json", **key)
    if action == "mark_delivered":
        return api.post(f"{path}/mark-delivered", {}, format="json")
    if action == "submit_proof":
        return api.post("/api/v1/proofs", {"escrow_id": escrow.pk, "milestone_idx": idx, "type": "PHOTO",
                                           "file": doubtful_photo()}, format="multipart")
    if action == "approve":
        return api.post(f"{path}/client-approve", {}, format="json")
    if action == "reject":
        return api.post(f"{path}/client-reject", {"reason": "not done"}, format="json")
    if action == "create_upload_link":
        return api.post(f"{path}/upload-links", {"milestone_idx": idx, "expires_in_hours": 1, "max_uploads": 1},
                        format="json")
    if action == "dispute":
        return api.post(f"{path}/disputes", {"reason": "the work is not done"}, format="json", **key)
    if action == "refund":
        return api.post(f"{path}/refund", {"reason": "the client asked"}, format="json", **key)
    if action == "cancel":
        return api.post(f"{path}/cancel", {}, format="json")
    raise AssertionError(f"add how to take {action!r} to this test")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_listed_actions_succeed_and_the_others_are_refused(scenario, django_capture_on_commit_callbacks):
    client, provider = UserFactory(), UserFactory()
    apis = {"client": _keyed_client(["sender"], user=client), "provider": _keyed_client(["provider"], user=provider),
            "admin": _keyed_client(["admin"]), "support": _keyed_client(["support"])}

    def build():
        if scenario == "released":
            return released(client, provider, django_capture_on_commit_callbacks)
        return globals()[scenario](client, provider)

    seen = {}
    for caller in CALLERS:
        api = apis[caller]
        escrow = build()
        read_path = f"/api/v1/provider/escrows/{escrow.pk}" if caller == "provider" else f"/api/v1/escrows/{escrow.pk}"
        listed = api.get(read_path).json()["allowed_actions"]
        seen[caller] = listed
        for action in ACTIONS:
            response = take(api, action, build())
            succeeded = 200 <= response.status_code < 300
            assert succeeded == (action in listed), (scenario, caller, action, listed, response.status_code,
                                                     response.content[:300])
            if not succeeded:
                assert response.status_code in (403, 404, 409), response.content[:300]
    expected = {
        "draft": {"client": ["deposit", "create_upload_link", "cancel"], "provider": [],
                  "admin": ["create_upload_link", "cancel"]},
        "part_funded": {"client": ["deposit", "create_upload_link", "refund"], "provider": [],
                        "admin": ["create_upload_link", "refund"]},
        "funded": {"client": ["mark_delivered", "submit_proof", "approve", "create_upload_link", "dispute", "refund"],
                   "provider": ["mark_delivered", "submit_proof", "dispute"], "admin": ["create_upload_link", "refund"]},
        "disputed": {"client": ["mark_delivered", "submit_proof", "create_upload_link"],
                     "provider": ["mark_delivered", "submit_proof"], "admin": ["create_upload_link"]},
        "releasable": {"client": ["submit_proof", "approve", "reject", "create_upload_link", "dispute", "refund"],
                       "provider": ["submit_proof", "dispute"], "admin": ["create_upload_link", "refund"]},
        "all_approved": {"client": ["reject"], "provider": [], "admin": []},
        "released": {"client": [], "provider": [], "admin": []},
    }[scenario]
    assert {caller: seen[caller] for caller in expected} == expected and seen["support"] == []
