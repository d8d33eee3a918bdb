"""Allowlist, certifications and account-to-account transactions (admin)."""

from decimal import Decimal

import pytest
from django.db import connection

from kobatela.audit.models import Alert, AuditLog
from kobatela.core.errors import Conflict
from payments.ledger import balance
from payments.models import AllowlistEntry, Certification, LedgerEntry, Transaction
from payments.reconcile import reconcile
from payments.transactions import services
from tests.conftest import _keyed_client, assert_error
from tests.factories import UserFactory

_keys = iter(range(10**6))


def send(api, sender, receiver, amount="25.00", currency="USD", key=None):
    return api.post("/api/v1/transactions", {"sender_id": sender.pk, "receiver_id": receiver.pk, "amount": amount,
                                              "currency": currency}, format="json",
                    HTTP_IDEMPOTENCY_KEY=key or f"t-{next(_keys)}")


def allow(api, owner, recipient):
    return api.post("/api/v1/allowlist", {"owner_id": owner.pk, "recipient_id": recipient.pk}, format="json")


# --- allowlist and certifications ----------------------------------------------------------


@pytest.mark.django_db
def test_allowlist(admin_api, support_api, sender_api):
    owner, recipient = UserFactory(), UserFactory()
    response = allow(admin_api, owner, recipient)
    assert response.status_code == 201
    assert response.json() == {**response.json(), "owner_id": owner.pk, "recipient_id": recipient.pk}
    assert_error(allow(admin_api, owner, recipient), 409, "already_allowlisted")
    assert allow(admin_api, recipient, owner).status_code == 201  # the other direction is another entry
    assert_error(admin_api.post("/api/v1/allowlist", {"owner_id": 987654321, "recipient_id": recipient.pk},
                                format="json"), 404, "owner_not_found")
    assert_error(admin_api.post("/api/v1/allowlist", {"owner_id": owner.pk, "recipient_id": 987654321},
                                format="json"), 404, "recipient_not_found")
    assert_error(allow(admin_api, owner, owner), 400, "validation_error")
    assert_error(admin_api.post("/api/v1/allowlist", {"owner_id": "x"}, format="json"), 400, "validation_error")
    assert_error(allow(support_api, owner, UserFactory()), 403)
    assert_error(allow(sender_api, sender_api.user, UserFactory()), 403)
    assert AllowlistEntry.objects.count() == 2
    assert AuditLog.objects.filter(action="allowlist.added").count() == 2


@pytest.mark.django_db
def test_certification(admin_api, support_api):
    user = UserFactory()
    response = admin_api.post("/api/v1/certified", {"user_id": user.pk, "level": "verified"}, format="json")
    assert response.status_code == 201 and response.json()["level"] == "verified"
    again = admin_api.post("/api/v1/certified", {"user_id": user.pk, "level": "premium"}, format="json")
    assert again.status_code == 201 and again.json()["id"] == response.json()["id"]
    assert Certification.objects.get(user=user).level == "premium"
    assert_error(admin_api.post("/api/v1/certified", {"user_id": 987654321, "level": "basic"}, format="json"),
                 404, "user_not_found")
    assert_error(admin_api.post("/api/v1/certified", {"user_id": user.pk, "level": "gold"}, format="json"),
                 400, "validation_error")
    assert_error(support_api.post("/api/v1/certified", {"user_id": user.pk, "level": "basic"}, format="json"), 403)
    assert Certification.objects.count() == 1


# --- transactions -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_transaction_to_an_allowlisted_receiver(admin_api):
    sender, receiver = UserFactory(), UserFactory()
    allow(admin_api, sender, receiver)
    response = send(admin_api, sender, receiver, "25.50")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body == {**body, "sender_id": sender.pk, "receiver_id": receiver.pk, "amount": "25.50", "currency": "USD",
                    "status": "COMPLETED"}
    assert balance(f"user:{sender.pk}") == Decimal("-25.50") and balance(f"user:{receiver.pk}") == Decimal("25.50")
    assert LedgerEntry.objects.filter(movement=f"transaction:{body['id']}", kind="transfer").count() == 2
    assert admin_api.get(f"/api/v1/transactions/{body['id']}").json() == body
    assert_error(admin_api.get("/api/v1/transactions/987654321"), 404)
    assert AuditLog.objects.filter(action="transaction.created", entity_id=str(body["id"])).exists()
    assert reconcile() == []


@pytest.mark.django_db
def test_receiver_not_allowlisted_is_403_with_an_alert_and_no_transaction(admin_api):
    sender, receiver = UserFactory(), UserFactory()
    allow(admin_api, receiver, sender)  # the other direction does not count
    refused = send(admin_api, sender, receiver, key="refused")
    error = assert_error(refused, 403, "receiver_not_allowlisted")
    assert error["details"] == {"sender_id": sender.pk, "receiver_id": receiver.pk}
    alert = Alert.objects.get(type="transaction_refused")
    assert alert.data == {"sender_id": sender.pk, "receiver_id": receiver.pk, "amount": "25.00", "currency": "USD"}
    assert not Transaction.objects.exists() and not LedgerEntry.objects.exists()
    # The refusal is replayed, not run again: still one alert.
    replayed = send(admin_api, sender, receiver, key="refused")
    assert replayed.status_code == 403 and replayed["Idempotent-Replayed"] == "true"
    assert Alert.objects.filter(type="transaction_refused").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_alert_is_committed_although_the_refused_transaction_rolled_back():
    admin = _keyed_client(["admin"])
    sender, receiver = UserFactory(), UserFactory()
    assert_error(send(admin, sender, receiver), 403, "receiver_not_allowlisted")
    # Read on a fresh connection: only what was committed.
    connection.close()
    assert Alert.objects.filter(type="transaction_refused", data__sender_id=sender.pk).count() == 1
    assert AuditLog.objects.filter(action="alert.raised").count() == 1
    assert not Transaction.objects.exists() and not LedgerEntry.objects.exists()


@pytest.mark.django_db
def test_replay_books_once(admin_api):
    sender, receiver = UserFactory(), UserFactory()
    allow(admin_api, sender, receiver)
    first = send(admin_api, sender, receiver, key="once")
    again = send(admin_api, sender, receiver, key="once")
    assert first.status_code == again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert_error(send(admin_api, sender, receiver, "30.00", key="once"), 422, "idempotency_key_reused")
    assert Transaction.objects.count() == 1 and LedgerEntry.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "patch, status, code",
    [
        ({"amount": "0"}, 400, "validation_error"),
        ({"amount": "-3.00"}, 400, "validation_error"),
        ({"amount": "3.001"}, 400, "validation_error"),
        ({"amount": "1e400"}, 400, "validation_error"),
        ({"currency": "GBP"}, 400, "validation_error"),
        ({"sender_id": "abc"}, 400, "validation_error"),
        ({"receiver_id": None}, 400, "validation_error"),
        ({"sender_id": 987654321}, 404, "sender_not_found"),
        ({"receiver_id": 987654321}, 404, "receiver_not_found"),
        ({"receiver_id": "same"}, 400, "validation_error"),
    ],
)
def test_bad_input_writes_nothing(admin_api, patch, status, code):
    sender, receiver = UserFactory(), UserFactory()
    allow(admin_api, sender, receiver)
    body = {"sender_id": sender.pk, "receiver_id": receiver.pk, "amount": "5.00", "currency": "USD", **patch}
    if body["receiver_id"] == "same":
        body["receiver_id"] = sender.pk
    assert_error(admin_api.post("/api/v1/transactions", body, format="json", HTTP_IDEMPOTENCY_KEY="bad"), status, code)
    assert not Transaction.objects.exists() and not LedgerEntry.objects.exists()
    assert not Alert.objects.exists()


@pytest.mark.django_db
def test_junk_json_missing_key_and_scopes(admin_api, support_api, sender_api):
    sender, receiver = UserFactory(), UserFactory()
    allow(admin_api, sender, receiver)
    assert_error(admin_api.post("/api/v1/transactions", "{", content_type="application/json",
                                HTTP_IDEMPOTENCY_KEY="j"), 400)
    assert_error(admin_api.post("/api/v1/transactions", {"sender_id": sender.pk, "receiver_id": receiver.pk,
                                                         "amount": "1.00", "currency": "USD"}, format="json"),
                 400, "idempotency_key_required")
    for api in (support_api, sender_api):
        assert_error(send(api, sender, receiver), 403, "permission_denied")
    txn = send(admin_api, sender, receiver).json()
    for api in (support_api, sender_api):
        assert_error(api.get(f"/api/v1/transactions/{txn['id']}"), 403)
    assert Transaction.objects.count() == 1


@pytest.mark.django_db
def test_the_database_key_stops_a_second_transfer_even_without_the_replay_store():
    sender, receiver = UserFactory(), UserFactory()
    services.allowlist_add(actor="system:test", owner_id=sender.pk, recipient_id=receiver.pk)
    args = dict(actor="system:test", sender_id=sender.pk, receiver_id=receiver.pk, currency="USD", idempotency_key="k")
    first = services.transaction_create(amount=Decimal("9.00"), **args)
    assert services.transaction_create(amount=Decimal("9.00"), **args).pk == first.pk
    with pytest.raises(Conflict) as refused:
        services.transaction_create(amount=Decimal("10.00"), **args)
    assert refused.value.code == "transaction_key_reused"
    assert Transaction.objects.count() == 1 and balance(f"user:{receiver.pk}") == Decimal("9.00")
