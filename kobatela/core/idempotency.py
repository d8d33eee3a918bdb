"""Idempotent POSTs, the one reusable piece (Stripe semantics, API.md).

Applied by :class:`kobatela.core.viewsets.ApiViewMixin` to every POST: the
``Idempotency-Key`` header is optional there, and required on the actions a
view lists in ``idempotency_required_actions``.

How one request goes:

1. The fingerprint is the SHA-256 of method, path (with query) and body (JSON
   bodies canonicalised, so key order and spacing do not matter).
2. The key is *claimed* by inserting an ``IN_PROGRESS`` row in its own short
   transaction. The unique constraint (API key, key) decides the race: of N
   concurrent requests exactly one inserts, the others see the row.
3. The winner runs the view. A response below 500 is stored on the row; a 5xx
   or an exception deletes the row, so the client may retry.
4. A loser with a different fingerprint gets 422 ``idempotency_key_reused``;
   one that arrives while the first runs gets 409
   ``idempotency_request_in_progress``; later ones get the stored response
   with ``Idempotent-Replayed: true``.

A row left ``IN_PROGRESS`` by a crashed process is taken over after
``IDEMPOTENCY_STALE_SECONDS``. Money services add their own database
uniqueness (e.g. a deposit's idempotency key), so even that rare path cannot
move money twice.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from decimal import Decimal
from typing import Callable

from django.conf import settings
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from kobatela.core import db
from kobatela.core.errors import BadRequest, Conflict, Unprocessable
from kobatela.core.models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255


def request_fingerprint(request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(b"\n")
    digest.update(request.get_full_path().encode())
    digest.update(b"\n")
    digest.update(_canonical_body(request))
    return digest.hexdigest()


def _canonical_body(request) -> bytes:
    if request.content_type == "multipart/form-data":
        # Uploads are not read into memory here: the form fields and each
        # file's name and size identify the request.
        django_request = request._request
        fields = sorted((k, django_request.POST.getlist(k)) for k in django_request.POST)
        files = sorted((k, f.name, f.size) for k, f in django_request.FILES.items())
        return json.dumps([fields, files]).encode()
    body = request._request.body
    if request.content_type == "application/json" and body:
        try:
            parsed = json.loads(body, parse_float=Decimal)
        except ValueError:
            return body  # the view will refuse it; fingerprint the raw bytes
        return json.dumps(parsed, sort_keys=True, separators=(",", ":"), cls=JSONEncoder).encode()
    return body


def _claim(api_key_id: int, key: str, fingerprint: str) -> tuple[IdempotencyKey, bool]:
    """Insert the IN_PROGRESS row, or return the existing one (created=False).

    ``INSERT … ON CONFLICT DO NOTHING``: the unique constraint decides the
    race without raising, so a replay costs no exception and, inside a
    transaction, no savepoint. Outside one, as requests run, the INSERT
    commits on its own.
    """
    claimed = IdempotencyKey(api_key_id=api_key_id, key=key, fingerprint=fingerprint,
                             status=IdempotencyKey.Status.IN_PROGRESS)
    if db.insert([claimed], ignore_conflict_on=("api_key", "key")):
        return claimed, True
    existing = IdempotencyKey.objects.get(api_key_id=api_key_id, key=key)
    stale_before = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_STALE_SECONDS)
    if existing.status == IdempotencyKey.Status.IN_PROGRESS and existing.created_at < stale_before:
        # The first request's process died. Take the row over atomically: only
        # one of several retries can move created_at forward.
        taken = IdempotencyKey.objects.filter(
            pk=existing.pk, status=IdempotencyKey.Status.IN_PROGRESS, created_at=existing.created_at
        ).update(created_at=timezone.now(), fingerprint=fingerprint)
        if taken:
            existing.refresh_from_db()
            return existing, True
    return existing, False


def _store(record: IdempotencyKey, response: Response) -> None:
    if response.status_code >= 500:
        record.delete()
        return
    # The response data as DRF would render it (Decimals and dates as strings);
    # the JSONField encodes it with DRF's encoder in one pass.
    record.status = IdempotencyKey.Status.COMPLETED
    record.response_status = response.status_code
    record.response_body = response.data
    record.completed_at = timezone.now()
    db.update(record, ["status", "response_status", "response_body", "completed_at"])


def run_idempotent(view, request, handler: Callable[..., Response], *args, required: bool, **kwargs) -> Response:
    key = request.headers.get(HEADER)
    if key is None:
        if required:
            raise BadRequest("idempotency_key_required", f"This endpoint requires an {HEADER} header.")
        return handler(request, *args, **kwargs)
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise BadRequest("idempotency_key_invalid", f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters.")

    api_key_id = getattr(request.auth, "id", None)
    if api_key_id is None:  # only API keys scope idempotency; no key, no replay store
        return handler(request, *args, **kwargs)

    fingerprint = request_fingerprint(request)
    record, created = _claim(api_key_id, key, fingerprint)
    if not created:
        if record.fingerprint != fingerprint:
            raise Unprocessable("idempotency_key_reused", "This Idempotency-Key was used with a different request.")
        if record.status == IdempotencyKey.Status.IN_PROGRESS:
            raise Conflict("idempotency_request_in_progress", "A request with this Idempotency-Key is still running.")
        return Response(record.response_body, status=record.response_status, headers={REPLAYED_HEADER: "true"})

    try:
        response = handler(request, *args, **kwargs)
    except Exception as exc:
        # Errors the API answers with (4xx) are part of the result and are
        # stored; a bug re-raises from handle_exception and releases the key.
        try:
            response = view.handle_exception(exc)
        except Exception:
            record.delete()
            raise
    _store(record, response)
    return response


def purge_expired_keys(*, now=None) -> int:
    cutoff = (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted

