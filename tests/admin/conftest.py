"""Fixtures for the back office: staff users in their groups, proofs made
through the real services (OCR, document checks, the AI advisor against the
local OpenAI-compatible server), and the browser for tests/admin/test_browser.py."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from kobatela.accounts.roles import OPERATIONS, REVIEWER, sync_roles
from proofs.models import Proof
from proofs.services import proof_submit
from tests.factories import UserFactory, actor_for, fund, make_escrow
from tests.proofs.invoice_samples import SAMPLES, render_pdf
from tests.proofs.photo_samples import geotagged_jpeg
from tests.support.browser import ARTIFACTS, chromium_page  # noqa: F401 (ARTIFACTS: used by test_browser)
from tests.support.openai_server import LOW_RISK

ROOT = Path(__file__).resolve().parents[2]

PASSWORD = "Correct-Horse-Battery-42"
FR = next(s for s in SAMPLES if s.name == "fr_classic_eur")
REQUIREMENTS = {"expected_amount": "2487.00", "currency": "EUR", "iban_last4": "0189", "supplier": "Batiments Kivu",
                "date_from": "2026-03-01", "date_to": "2026-03-31"}
COLUMNS = next(s for s in SAMPLES if s.name == "en_columns_eur")
FLAGGED = {"risk_level": "high", "score": 0.91, "flags": ["amount_mismatch"],
           "explanation": "The invoice total (2487.00 EUR) is above the milestone's expected 2000.00 EUR."}
SITE = (Decimal("-4.325000"), Decimal("15.322200"))


@pytest.fixture
def roles(db):
    """The groups the data migration creates. Transactional tests (the browser's
    live server) flush every table afterwards, groups included, so each test
    that needs them syncs them again (idempotent)."""
    sync_roles()


def make_staff(group: str | None, **extra):
    user = UserFactory(is_staff=True, **extra)
    user.set_password(PASSWORD)
    user.save()
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def reviewer(roles):
    return make_staff(REVIEWER, full_name="Rita Reviewer")


@pytest.fixture
def operator(roles):
    return make_staff(OPERATIONS, full_name="Omar Operations")


@pytest.fixture
def superuser(db):
    return make_staff(None, is_superuser=True, full_name="Sam Superuser")


@pytest.fixture
def reviewer_client(reviewer) -> Client:
    return logged_in(reviewer)


@pytest.fixture
def operator_client(operator) -> Client:
    return logged_in(operator)


@pytest.fixture
def superuser_client(superuser) -> Client:
    return logged_in(superuser)



def requirements_for(sample) -> dict:
    """The milestone requirements an invoice sample meets exactly."""
    expected = sample.expected
    wanted = {"expected_amount": expected["amount"], "currency": expected["currency"], "supplier": expected["supplier"],
              "iban_last4": expected["iban_last4"], "date_from": expected["date"], "date_to": expected["date"]}
    return {key: value for key, value in wanted.items() if value}


def submit_invoice(*, ai_server=None, ai_reply=None, requirements=None, sample=FR, escrow=None) -> Proof:
    """An invoice proof through proof_submit: stored, OCR'd, checked and (with
    ai_server) scored, as the API would. Run where on_commit callbacks fire
    (a transactional test, or inside django_capture_on_commit_callbacks).
    A sample's file can be submitted once (proofs are unique by SHA-256)."""
    if ai_server is not None:
        ai_server.set_reply(json.dumps(ai_reply or LOW_RISK))
    escrow = escrow or fund(make_escrow(amounts=(sample.expected["amount"],), currency=sample.expected["currency"],
                                        proof_type="INVOICE",
                                        proof_requirements=requirements if requirements is not None
                                        else requirements_for(sample)))
    proof = proof_submit(actor=actor_for(escrow.client), escrow_id=escrow.pk, milestone_idx=1, proof_type="INVOICE",
                         upload=SimpleUploadedFile("invoice.pdf", render_pdf(sample)))
    return Proof.objects.get(pk=proof.pk)


def submit_photo(*, gps=True, geofence_radius="100") -> Proof:
    """A photo proof; without GPS it is unverifiable and waits for review."""
    escrow = fund(make_escrow(amounts=("150.00",), proof_type="PHOTO",
                              geofence={"lat": SITE[0], "lng": SITE[1], "radius_m": Decimal(geofence_radius)}))
    lat, lng = (SITE[0] + Decimal("0.000300"), SITE[1]) if gps else (None, None)
    content = geotagged_jpeg(lat, lng, timezone.now(), size=(320, 240))
    proof = proof_submit(actor=actor_for(escrow.client), escrow_id=escrow.pk, milestone_idx=1, proof_type="PHOTO",
                         upload=SimpleUploadedFile("photo.jpg", content))
    return Proof.objects.get(pk=proof.pk)


# --- the browser -------------------------------------------------------------------------

@pytest.fixture
def browser_page(live_server):
    """A Chromium page on a desktop-sized window (tests.support.browser)."""
    with chromium_page(live_server.url, viewport={"width": 1440, "height": 900}) as page:
        yield page
