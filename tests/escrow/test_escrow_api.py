from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from escrow.models import EscrowAgreement, EscrowEvent
from kobatela.audit.models import AuditLog
from payments.reconcile import reconcile
from tests.conftest import assert_error
from tests.factories import UserFactory, fund, make_escrow

pytestmark = pytest.mark.django_db


def escrow_payload(provider, **overrides):
    payload = {
        "provider_id": provider.pk,
        "amount_total": "1250.00",
        "currency": "USD",
        "deadline_at": (timezone.now() + timedelta(days=10)).isoformat(),
        "milestones": [
            {"label": "Foundations", "amount": "1000.00", "proof_type": "PHOTO",
             "geofence": {"lat": "-4.325000", "lng": "15.322200", "radius_m": "150"},
             "proof_requirements": {"max_photo_age_hours": 48}},
            {"label": "Invoice", "amount": 250, "proof_type": "INVOICE",
             "proof_requirements": {"expected_amount": "250.00", "currency": "USD", "iban_last4": "0189"}},
        ],
    }
    payload.update(overrides)
    return payload


def test_create_and_read(sender_api):
    provider = UserFactory()
    response = sender_api.post("/api/v1/escrows", escrow_payload(provider), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["client_id"] == sender_api.user.pk and body["provider_id"] == provider.pk
    assert body["amount_total"] == "1250.00" and body["amount_funded"] == "0.00"
    assert body["status"] == "DRAFT"
    first, second = body["milestones"]
    assert (first["idx"], second["idx"]) == (1, 2)
    assert first["geofence"] == {"lat": "-4.325000", "lng": "15.322200", "radius_m": "150.00"}
    assert second["geofence"] is None and second["amount"] == "250.00"
    assert second["proof_requirements"]["expected_amount"] == "250.00"
    detail = sender_api.get(f"/api/v1/escrows/{body['id']}")
    assert detail.json() == {**body, "updated_at": detail.json()["updated_at"]}
    assert AuditLog.objects.filter(action="escrow.read", entity_id=str(body["id"])).count() == 1


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"amount_total": "1000.00"}, "milestones"),
        ({"amount_total": "0"}, "amount_total"),
        ({"amount_total": "-5.00"}, "amount_total"),
        ({"amount_total": "12.345"}, "amount_total"),
        ({"amount_total": "12345678901234567.00"}, "amount_total"),
        ({"amount_total": "NaN"}, "amount_total"),
        ({"amount_total": True}, "amount_total"),
        ({"currency": "GBP"}, "currency"),
        ({"currency": 12}, "currency"),
        ({"deadline_at": "2001-01-01T00:00:00Z"}, "deadline_at"),
        ({"milestones": []}, "milestones"),
        ({"provider_id": "abc"}, "provider_id"),
        ({"provider_id": 10**30}, "provider_id"),
    ],
)
def test_bad_escrow_input_is_400_and_writes_nothing(sender_api, overrides, field):
    before = EscrowAgreement.objects.count()
    response = sender_api.post("/api/v1/escrows", escrow_payload(UserFactory(), **overrides), format="json")
    error = assert_error(response, 400)
    assert field in (error["details"] or {}), error
    assert EscrowAgreement.objects.count() == before


@pytest.mark.parametrize(
    "milestone_patch, field",
    [
        ({"geofence": {"lat": "91", "lng": "0", "radius_m": "10"}}, "lat"),
        ({"geofence": {"lat": "1.1234567", "lng": "0", "radius_m": "10"}}, "lat"),
        ({"geofence": {"lat": "1", "lng": "-181", "radius_m": "10"}}, "lng"),
        ({"geofence": {"lat": "1", "lng": "1", "radius_m": "0"}}, "radius_m"),
        ({"proof_type": "SELFIE"}, "proof_type"),
        ({"proof_requirements": {"colour": "red"}}, "colour"),
        ({"proof_requirements": {"expected_amount": "-1"}}, "expected_amount"),
    ],
)
def test_bad_milestone_is_400(sender_api, milestone_patch, field):
    payload = escrow_payload(UserFactory())
    payload["milestones"][0].update(milestone_patch)
    error = assert_error(sender_api.post("/api/v1/escrows", payload, format="json"), 400, "validation_error")
    assert field in str(error["details"])


def test_unknown_provider_is_404(sender_api):
    payload = escrow_payload(UserFactory())
    payload["provider_id"] = 987654321
    assert_error(sender_api.post("/api/v1/escrows", payload, format="json"), 404, "provider_not_found")


def test_list_is_own_and_filtered(sender_api, keyed_client, support_api):
    mine = make_escrow(client=sender_api.user)
    fund(make_escrow(client=sender_api.user))
    other = make_escrow()
    ids = [e["id"] for e in sender_api.get("/api/v1/escrows").json()["results"]]
    assert mine.pk in ids and other.pk not in ids and len(ids) == 2
    drafts = sender_api.get("/api/v1/escrows?status=DRAFT").json()["results"]
    assert [e["id"] for e in drafts] == [mine.pk]
    assert_error(sender_api.get("/api/v1/escrows?status=NOPE"), 400, "validation_error")
    assert other.pk in [e["id"] for e in support_api.get("/api/v1/escrows?limit=100").json()["results"]]


def test_another_senders_escrow_is_404_on_every_route(sender_api):
    other = fund(make_escrow())
    base = f"/api/v1/escrows/{other.pk}"
    assert_error(sender_api.get(base), 404)
    assert_error(sender_api.get(f"{base}/events"), 404)
    for path, body in [("deposit", {"amount": "1.00"}), ("funding-session", {}), ("mark-delivered", {}),
                       ("client-approve", {}), ("client-reject", {"reason": "no"}), ("check-deadline", {})]:
        response = sender_api.post(f"{base}/{path}", body, format="json", HTTP_IDEMPOTENCY_KEY=f"k-{path}")
        assert_error(response, 404)
    assert EscrowEvent.objects.filter(escrow=other).exclude(kind__in=["created", "deposit", "funded"]).count() == 0


def test_deposit_requires_idempotency_key(sender_api):
    escrow = make_escrow(client=sender_api.user)
    assert_error(sender_api.post(f"/api/v1/escrows/{escrow.pk}/deposit", {"amount": "10.00"}, format="json"),
                 400, "idempotency_key_required")


def test_deposits_fund_and_replay(sender_api):
    escrow = make_escrow(client=sender_api.user, amounts=("60.00", "40.00"))
    url = f"/api/v1/escrows/{escrow.pk}/deposit"
    first = sender_api.post(url, {"amount": "30.00"}, format="json", HTTP_IDEMPOTENCY_KEY="d1")
    assert first.json()["amount_funded"] == "30.00" and first.json()["status"] == "DRAFT"
    replay = sender_api.post(url, {"amount": "30.00"}, format="json", HTTP_IDEMPOTENCY_KEY="d1")
    assert replay["Idempotent-Replayed"] == "true" and replay.json()["amount_funded"] == "30.00"
    over = sender_api.post(url, {"amount": "70.01"}, format="json", HTTP_IDEMPOTENCY_KEY="d2")
    assert assert_error(over, 409, "deposit_exceeds_remaining")["details"]["remaining"] == "70.00"
    done = sender_api.post(url, {"amount": 70}, format="json", HTTP_IDEMPOTENCY_KEY="d3")
    assert done.json()["status"] == "FUNDED" and done.json()["amount_funded"] == "100.00"
    assert_error(sender_api.post(url, {"amount": "1.00"}, format="json", HTTP_IDEMPOTENCY_KEY="d4"), 409, "escrow_is_funded")
    assert reconcile() == []


def test_a_deposit_locks_the_escrow_once_and_reads_its_milestones_once(sender_api):
    """The measured path (bench/deposit.sql): the response reuses the milestones
    the service read, it does not read them again."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    escrow = make_escrow(client=sender_api.user, amounts=("60.00", "40.00"))
    url = f"/api/v1/escrows/{escrow.pk}/deposit"
    sender_api.post(url, {"amount": "1.00"}, format="json", HTTP_IDEMPOTENCY_KEY="warm")  # the API key cache
    with CaptureQueriesContext(connection) as ctx:
        answer = sender_api.post(url, {"amount": "1.00"}, format="json", HTTP_IDEMPOTENCY_KEY="counted")

    assert answer.status_code == 200 and [m["idx"] for m in answer.json()["milestones"]] == [1, 2]
    statements = [" ".join(q["sql"].split()) for q in ctx.captured_queries]
    milestone_reads = [sql for sql in statements if sql.startswith("SELECT") and '"escrow_milestone"' in sql]
    escrow_locks = [sql for sql in statements if '"escrow_escrowagreement"' in sql and sql.endswith("FOR UPDATE")]
    assert len(milestone_reads) == 1 and len(escrow_locks) == 1, statements


@pytest.mark.parametrize("amount", ["0", "-1.00", "1.001", "1e400", "abc", None, [], {"x": 1}])
def test_bad_deposit_amount_is_400(sender_api, amount):
    escrow = make_escrow(client=sender_api.user)
    response = sender_api.post(f"/api/v1/escrows/{escrow.pk}/deposit", {"amount": amount}, format="json",
                               HTTP_IDEMPOTENCY_KEY="bad")
    assert_error(response, 400, "validation_error")
    escrow.refresh_from_db()
    assert escrow.amount_funded == Decimal("0.00")


def test_funding_session(sender_api):
    escrow = make_escrow(client=sender_api.user, amounts=("80.00",))
    response = sender_api.post(f"/api/v1/escrows/{escrow.pk}/funding-session", format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["provider"] == "sandbox" and body["amount"] == "80.00" and body["currency"] == "USD"
    assert body["session_id"] and body["expires_at"]
    fund(escrow)
    assert_error(sender_api.post(f"/api/v1/escrows/{escrow.pk}/funding-session", format="json"), 409, "escrow_is_funded")


def test_events_timeline(sender_api):
    escrow = fund(make_escrow(client=sender_api.user))
    kinds = [e["kind"] for e in sender_api.get(f"/api/v1/escrows/{escrow.pk}/events").json()["results"]]
    assert kinds == ["created", "deposit", "funded"]


def test_get_escrow_query_count_does_not_grow_with_milestones(sender_api, django_assert_max_num_queries):
    small = make_escrow(client=sender_api.user, amounts=("10.00",))
    big = make_escrow(client=sender_api.user, amounts=("1.00",) * 40)
    sender_api.get(f"/api/v1/escrows/{small.pk}")  # warm the API key cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = []
    for escrow in (small, big):
        with CaptureQueriesContext(connection) as ctx:
            assert sender_api.get(f"/api/v1/escrows/{escrow.pk}").status_code == 200
        counts.append(len(ctx.captured_queries))
    # 9: the read is audited, and allowed_actions' dispute rule reads the escrow's open dispute.
    assert counts[0] == counts[1] <= 9, counts


@pytest.mark.parametrize("deadline_in", [timedelta(0), -timedelta(seconds=1), -timedelta(days=365)])
def test_the_service_refuses_a_deadline_that_is_not_in_the_future(deadline_in):
    """The rule lives in escrow_create, whoever calls it (the API only parses)."""
    from escrow.services import escrow_create
    from kobatela.core.errors import ValidationFailed
    from tests.factories import actor_for

    client, provider = UserFactory(), UserFactory()
    with pytest.raises(ValidationFailed) as refused:
        escrow_create(actor=actor_for(client), provider_id=provider.pk, amount_total=Decimal("10.00"), currency="USD",
                      deadline_at=timezone.now() + deadline_in,
                      milestones=[{"label": "all", "amount": Decimal("10.00"), "proof_type": "PHOTO"}])
    assert refused.value.details == {"deadline_at": ["Must be in the future."]}
    assert not EscrowAgreement.objects.filter(client=client).exists()
