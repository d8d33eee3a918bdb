"""Signed URLs for proof files (``GET /proofs/{id}/file-url``): shown without proxying them through the API.

S3 storage (django-storages) answers a presigned URL of the object. Local
storage answers a URL of :func:`proofs.views.signed_file` carrying the proof
id signed with Django's ``TimestampSigner`` (the project's ``SECRET_KEY`` and
a salt of its own): it opens that file only, until it expires. Either way the
URL lives ``PROOF_FILE_URL_SECONDS`` (at most 15 minutes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.files.storage import FileSystemStorage, default_storage
from django.http import FileResponse
from django.urls import reverse
from django.utils import timezone

from kobatela.core.errors import NotFound
from proofs.models import Proof
from proofs.services import EXTENSIONS

SALT = "kobatela.proofs.file-url"
MAX_SECONDS = 15 * 60


@dataclass(frozen=True)
class SignedUrl:
    url: str
    expires_at: datetime


def _lifetime() -> int:
    return min(settings.PROOF_FILE_URL_SECONDS, MAX_SECONDS)


def proof_file_url(*, proof: Proof, absolute) -> SignedUrl:
    """A URL to the proof's file valid for the configured lifetime; ``absolute`` makes a path a full URL."""
    seconds = _lifetime()
    expires_at = timezone.now() + timedelta(seconds=seconds)
    storage = default_storage._wrapped if hasattr(default_storage, "_wrapped") else default_storage
    if not isinstance(storage, FileSystemStorage):  # S3 (django-storages): presigned by the storage itself
        return SignedUrl(default_storage.url(proof.file.name, expire=seconds), expires_at)
    signed = signing.dumps(proof.pk, salt=SALT)
    return SignedUrl(absolute(reverse("proof-signed-file", kwargs={"signed": signed})), expires_at)


def proof_for_signed(signed: str) -> Proof:
    """The proof a signed local URL opens (404 when the signature is wrong or has expired)."""
    try:
        proof_id = signing.loads(signed, salt=SALT, max_age=_lifetime())
    except signing.BadSignature:  # SignatureExpired is one
        raise NotFound("file_url_invalid", "This file link is invalid or has expired.") from None
    proof = Proof.objects.filter(pk=proof_id).first()
    if proof is None:
        raise NotFound("file_url_invalid", "This file link is invalid or has expired.")
    return proof


def proof_file_response(proof: Proof, *, as_attachment: bool) -> FileResponse:
    """The stored bytes of a proof, with the content type found at upload, never sniffed.
    A download through the API is an attachment; a signed URL serves the file inline,
    which is what it is for (an image shown without proxying it through the API)."""
    response = FileResponse(default_storage.open(proof.file.name, "rb"), content_type=proof.content_type,
                            as_attachment=as_attachment, filename=f"proof-{proof.pk}{EXTENSIONS[proof.content_type]}")
    response["X-Content-Type-Options"] = "nosniff"
    return response
