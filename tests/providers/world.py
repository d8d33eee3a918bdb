"""A small world of two tenants for the provider tests, built through the real services."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from escrow.models import EscrowAgreement
from proofs.models import UploadLink
from proofs.services import proof_submit
from proofs.upload_links import upload_link_create
from tests.factories import UserFactory, actor_for, fund, make_escrow
from tests.proofs.photo_samples import geotagged_jpeg

SITE = (Decimal("-4.325000"), Decimal("15.322200"))
GEOFENCE = {"lat": SITE[0], "lng": SITE[1], "radius_m": Decimal("100")}


def clean_photo_bytes() -> bytes:
    """A photo inside the geofence, its EXIF time (whole seconds) after any escrow made before
    this call (+2 s, well within the 5 min allowed for clock skew): auto-approves."""
    return geotagged_jpeg(*SITE, timezone.now() + timedelta(seconds=2))


def clean_photo(name: str = "site.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, clean_photo_bytes(), content_type="image/jpeg")


def doubtful_photo(name: str = "no-gps.jpg") -> SimpleUploadedFile:
    """A photo without EXIF position: cannot be verified, waits for review."""
    return SimpleUploadedFile(name, geotagged_jpeg(None, None, None), content_type="image/jpeg")


def photo_escrow(*, client=None, provider=None, amounts=("100.00", "50.00"), funded=True) -> EscrowAgreement:
    escrow = make_escrow(client=client, provider=provider, amounts=amounts, proof_type="PHOTO", geofence=GEOFENCE,
                         proof_requirements={"max_photo_age_hours": 48})
    return fund(escrow) if funded else escrow


@dataclass
class Tenant:
    """An escrow with a paid-out first milestone (a proof, a payment) and an upload link."""

    escrow: EscrowAgreement
    link: UploadLink


def tenant_escrow(*, client=None, provider=None) -> Tenant:
    escrow = photo_escrow(client=client or UserFactory(), provider=provider or UserFactory())
    proof_submit(actor=actor_for(escrow.client), escrow_id=escrow.pk, milestone_idx=1, proof_type="PHOTO",
                 upload=clean_photo(f"{uuid.uuid4().hex}.jpg"))
    link, _ = upload_link_create(actor=actor_for(escrow.client), escrow_id=escrow.pk, milestone_idx=2,
                                 expires_in_hours=24, max_uploads=3)
    escrow.refresh_from_db()
    return Tenant(escrow=escrow, link=link)
