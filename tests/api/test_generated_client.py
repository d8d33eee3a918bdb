"""A Python client generated from the served schema (openapi-python-client,
into a scratch directory, at test time) runs the quickstart's journey against
a live server — create the provider, the escrow, deposit, a photo proof,
settle, an invoice proof, review, release — with no hand-written HTTP.

If the schema cannot describe a request or a response well enough to generate
and use a client, this test says so."""

from __future__ import annotations

import base64
import importlib
import io
import json
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from kobatela.accounts.services import api_key_create
from payments.psp import sandbox
from proofs.samples import geotagged_jpeg, invoice_pdf
from tests.factories import UserFactory

SITE = (Decimal("-4.322447"), Decimal("15.307045"))
PACKAGE = "kobatela_client"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")


def _generate(schema: dict, where: Path):
    (where / "schema.json").write_text(json.dumps(schema))
    # Binary downloads are bytes to the client, whatever their type.
    (where / "config.json").write_text(json.dumps({"content_type_overrides": {
        t: "application/octet-stream" for t in ("image/jpeg", "image/png", "image/webp", "application/pdf")}}))
    result = subprocess.run([str(GENERATOR), "generate", "--path", str(where / "schema.json"), "--config",
                             str(where / "config.json"), "--output-path", str(where / PACKAGE), "--meta", "none"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stdout, result.stdout  # every operation generated whole
    sys.path.insert(0, str(where))
    try:
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where))


@pytest.fixture
def client_package(tmp_path, db):
    schema = APIClient().get("/api/v1/schema/", {"format": "json"}).json()
    package = _generate(schema, tmp_path)
    yield package
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def _ok(response, status: int):
    assert response.status_code == status, (response.status_code, response.content[:500])
    return response.parsed


@pytest.mark.django_db(transaction=True)
def test_the_generated_client_runs_the_journey(client_package, live_server, monkeypatch):
    monkeypatch.setenv("PSP_WEBHOOK_SECRET", "whsec_" + base64.b64encode(b"generated-client-secret-32-bytes").decode())
    sandbox.reset()
    kc = client_package
    models = importlib.import_module(f"{PACKAGE}.models")
    types = importlib.import_module(f"{PACKAGE}.types")
    _, admin_key = api_key_create(actor="system:test", user=UserFactory(), name="ops", scopes=["admin"])
    _, sender_key = api_key_create(actor="system:test", user=UserFactory(), name="platform", scopes=["sender"])
    admin = kc.AuthenticatedClient(base_url=live_server.url, token=admin_key)
    sender = kc.AuthenticatedClient(base_url=live_server.url, token=sender_key)
    mod = lambda area, name: importlib.import_module(f"{PACKAGE}.api.{area}.{name}")  # noqa: E731

    provider = _ok(mod("users", "users_create").sync_detailed(client=admin, body=models.UserRequest(
        email=f"builder-{uuid.uuid4().hex[:8]}@example.com", full_name="Kinshasa Builders",
        kind=models.KindEnum.COMPANY)), 201)
    escrow = _ok(mod("escrows", "escrows_create").sync_detailed(client=sender, body=models.EscrowCreateRequest(
        provider_id=provider.id, amount_total="1000.00", currency=models.CurrencyEnum.USD,
        deadline_at=datetime.now(timezone.utc) + timedelta(days=30),
        milestones=[
            models.MilestoneInputRequest(label="Foundations poured", amount="600.00",
                                         proof_type=models.ProofTypeEnum.PHOTO,
                                         geofence=models.GeofenceRequest(lat=str(SITE[0]), lng=str(SITE[1]),
                                                                         radius_m="200.00")),
            models.MilestoneInputRequest(label="Materials invoice", amount="400.00",
                                         proof_type=models.ProofTypeEnum.INVOICE),
        ])), 201)
    funded = _ok(mod("escrows", "escrows_deposit_create").sync_detailed(
        str(escrow.id), client=sender, body=models.DepositRequest(amount="1000.00"),
        idempotency_key=uuid.uuid4().hex), 200)
    assert funded.status == models.EscrowStatusEnum.FUNDED

    # A clean photo in the strict sense: geofence on the milestone, EXIF time after the escrow's creation, GPS inside.
    taken = (datetime.now(timezone.utc) + timedelta(seconds=1)).replace(microsecond=0)
    photo = geotagged_jpeg(SITE[0] + Decimal("0.000040"), SITE[1] + Decimal("0.000040"), taken)
    proof = _ok(mod("proofs", "proofs_create").sync_detailed(client=sender, body=models.ProofUploadRequest(
        escrow_id=escrow.id, milestone_idx=1, type_=models.ProofTypeEnum.PHOTO,
        file=types.File(payload=io.BytesIO(photo), file_name="site.jpg", mime_type="image/jpeg"))), 201)
    assert proof.status == models.ProofStatusEnum.APPROVED and proof.payment_id
    settled = _ok(mod("sandbox", "sandbox_payments_settle_create").sync_detailed(str(proof.payment_id),
                                                                                 client=sender), 202)
    assert getattr(settled.status, "value", settled.status) == "processed"

    invoice = _ok(mod("proofs", "proofs_create").sync_detailed(client=sender, body=models.ProofUploadRequest(
        escrow_id=escrow.id, milestone_idx=2, type_=models.ProofTypeEnum.INVOICE,
        file=types.File(payload=io.BytesIO(invoice_pdf(amount=Decimal("400.00"), currency="USD",
                                                       issued=taken.date())),
                        file_name="invoice.pdf", mime_type="application/pdf"))), 201)
    assert invoice.status == models.ProofStatusEnum.PENDING
    reviewed = _ok(mod("proofs", "proofs_decision_create").sync_detailed(
        str(invoice.id), client=admin, body=models.DecisionRequest(decision=models.DecisionEnum.APPROVE,
                                                                   note="Matches the order.")), 200)
    _ok(mod("sandbox", "sandbox_payments_settle_create").sync_detailed(str(reviewed.payment_id), client=sender), 202)

    released = _ok(mod("escrows", "escrows_retrieve").sync_detailed(str(escrow.id), client=sender), 200)
    assert released.status == models.EscrowStatusEnum.RELEASED
    assert released.amount_released == "1000.00"
