"""Idempotent POSTs, the one reusable piece (Stripe semantics, API.md).

Applied by :class:`kobatela.core.viewsets.ApiViewMixin` to every POST: the
``Idempotency-Key`` header is optional there, and required on the actions a
view lists in ``idempotency_required_actions``.

How one request goes:

1. The fingerprint is the SHA-256 of method, path (with query) and body (JSON
   bodies canonicalised, so key order and spacing do not matter).
2. The key is *claimed*: the request inserts an ``IN_PROGRESS`` row on its
   own (``INSERT … ON CONFLICT DO NOTHING``: of N concurrent requests exactly
   one inserts) and, on PostgreSQL, in the same statement takes a session
   advisory lock named after (API key, key) — held while it runs, released
   with its answer *or when its connection dies*. The row makes the request
   visible; the lock says whether it is still alive. Only a key that is
   already taken costs more: its lock is tried on its own, to tell a live
   holder from a dead one.
3. The winner runs the view inside a **unit** (``kobatela.core.transactions``):
   one transaction that the services join, in which the response (any status
   below 500, refusals included) is written on the row before the commit —
   the same statement releases the lock. The effect and the stored answer
   commit together or not at all: there is no moment when money has moved
   and the key does not know its answer.
4. A 5xx, an exception, or a unit that failed to commit leaves no answer:
   the row is deleted when the database allows it, and if it does not (the
   database went away), the row stays ``IN_PROGRESS`` with no live lock —
   the next request with the key takes it over at once and runs the view
   again, which is safe because nothing of the first attempt committed.
5. A loser with a different fingerprint gets 422 ``idempotency_key_reused``;
   one that arrives while the first still runs (its lock is held) gets 409
   ``idempotency_request_in_progress``; later ones get the stored response
   with ``Idempotent-Replayed: true``.

A few actions call the PSP between two short transactions and cannot run
inside a unit (``idempotency_outside_unit_actions`` on the view: the funding
session, a payout's execution): they store their answer after the view, and
rely on their own idempotency (the PSP's key names our row), so a retry
after a crash asks the PSP again and gets the same object back; the request
is marked ``idempotency_resumed`` so the view can answer the success the
first attempt reached (a payout it already sent) instead of a 409.

Without advisory locks (SQLite, the single-process embedded default), a row
left ``IN_PROGRESS`` is taken over after ``IDEMPOTENCY_STALE_SECONDS``.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Callable

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from kobatela.core import db, locks
from kobatela.core.errors import BadRequest, Conflict, Unprocessable
from kobatela.core.models import IdempotencyKey
from kobatela.core.transactions import request_unit

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


@dataclass
class _Claim:
    record: IdempotencyKey | None  # None: another live request holds the key and has not written its row yet
    runs: bool  # this request runs the view
    resumed: bool = False  # … in place of a request with the same key that died unanswered
    lock: int | None = None  # the key's liveness lock, while this request holds it


def _claim(api_key_id: int, key: str, fingerprint: str) -> _Claim:
    """Claim the key, or say who holds it.

    ``INSERT … ON CONFLICT DO NOTHING``: the unique constraint decides the
    race without raising. Outside a transaction, as requests run, the INSERT
    commits on its own, so concurrent requests see the claim. On PostgreSQL
    the same statement takes the key's liveness lock for the row it inserts.
    """
    claimed = IdempotencyKey(api_key_id=api_key_id, key=key, fingerprint=fingerprint,
                             status=IdempotencyKey.Status.IN_PROGRESS)
    unique = ("api_key", "key")
    if connection.vendor != "postgresql":  # no session locks (the single-process embedded default)
        if db.insert([claimed], ignore_conflict_on=unique):
            return _Claim(claimed, runs=True)
        return _take_over_if_dead(IdempotencyKey.objects.filter(api_key_id=api_key_id, key=key).first(), fingerprint,
                                  lock=None)

    lock = locks.lock_id(f"idempotency:{api_key_id}:{key}")
    held = db.insert_and_lock(claimed, ignore_conflict_on=unique, lock=lock)
    if held:
        return _Claim(claimed, runs=True, lock=lock)
    if held is False:
        # Inserted, but a request with this key still holds its lock: it is
        # ending (its claim deleted, its lock not yet released). Ours stays
        # IN_PROGRESS with no live lock, which the client's retry takes over.
        return _Claim(claimed, runs=False)
    # The key was taken: by a live request (its lock is held), or by one that is over.
    if not locks.try_lock(lock):
        return _Claim(IdempotencyKey.objects.filter(api_key_id=api_key_id, key=key).first(), runs=False)
    try:
        claim = _take_over_if_dead(IdempotencyKey.objects.filter(api_key_id=api_key_id, key=key).first(),
                                   fingerprint, lock=lock)
    except BaseException:
        locks.unlock(lock)
        raise
    if not claim.runs:
        locks.unlock(lock)
    return claim


def _take_over_if_dead(existing: IdempotencyKey | None, fingerprint: str, *, lock: int | None) -> _Claim:
    """The key is taken and no live request holds it (``lock`` is now this
    request's, on PostgreSQL): answered, or left IN_PROGRESS by a request that
    died before anything committed with an answer — which is run again."""
    if existing is None:  # deleted by a request that ended unanswered, just now
        return _Claim(None, runs=False)
    if existing.status != IdempotencyKey.Status.IN_PROGRESS or existing.fingerprint != fingerprint:
        return _Claim(existing, runs=False)
    if lock is None:  # no session locks: a claim this old is a dead request's
        stale_before = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_STALE_SECONDS)
        if existing.created_at >= stale_before:
            return _Claim(existing, runs=False)
    # Only one retry can take it over (the lock on PostgreSQL, created_at
    # moving forward elsewhere).
    taken = IdempotencyKey.objects.filter(
        pk=existing.pk, status=IdempotencyKey.Status.IN_PROGRESS, created_at=existing.created_at
    ).update(created_at=timezone.now())
    if taken:
        existing.refresh_from_db()
        return _Claim(existing, runs=True, resumed=True, lock=lock)
    return _Claim(existing, runs=False)


def _store(claim: _Claim, response: Response) -> None:
    """Write the answer on the claim and, in the same statement, release its liveness lock."""
    record = claim.record
    # The response data as DRF would render it (Decimals and dates as strings);
    # the JSONField encodes it with DRF's encoder in one pass.
    record.status = IdempotencyKey.Status.COMPLETED
    record.response_status = response.status_code
    record.response_body = response.data
    record.completed_at = timezone.now()
    fields = ["status", "response_status", "response_body", "completed_at"]
    if claim.lock is None:
        db.update(record, fields)
        return
    db.update_and_unlock(record, fields, lock=claim.lock)
    claim.lock = None  # released, whether the transaction commits or not


def _release_claim(claim: _Claim) -> None:
    """Nothing was answered: let the next request with the key run. If the
    database is unreachable the row stays, with no live lock: a retry takes it over."""
    try:
        IdempotencyKey.objects.filter(pk=claim.record.pk, status=IdempotencyKey.Status.IN_PROGRESS).delete()
    except DatabaseError:
        pass
    if claim.lock is not None:  # not released with an answer
        locks.unlock(claim.lock)
        claim.lock = None


class _NotStored(Exception):
    """A 5xx answer: not stored, and the unit rolls back."""

    def __init__(self, response: Response) -> None:
        self.response = response


def _answer(view, request, handler: Callable[..., Response], *args, **kwargs) -> Response:
    """The view's response; the errors the API answers with (4xx) are part of the
    result and are stored. A bug re-raises from ``handle_exception``."""
    try:
        return handler(request, *args, **kwargs)
    except Exception as exc:
        return view.handle_exception(exc)


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
    claim = _claim(api_key_id, key, fingerprint)
    record = claim.record
    if not claim.runs:
        if record is not None and record.fingerprint != fingerprint:
            raise Unprocessable("idempotency_key_reused", "This Idempotency-Key was used with a different request.")
        if record is None or record.status == IdempotencyKey.Status.IN_PROGRESS:
            raise Conflict("idempotency_request_in_progress", "A request with this Idempotency-Key is still running.")
        return Response(record.response_body, status=record.response_status, headers={REPLAYED_HEADER: "true"})
    # The view may ask whether this request resumes one whose answer was lost
    # (only the actions outside a unit can have left an effect behind).
    request.idempotency_resumed = claim.resumed
    outside_unit = getattr(view, "action", None) in getattr(view, "idempotency_outside_unit_actions", ())
    try:
        with nullcontext() if outside_unit else request_unit():
            response = _answer(view, request, handler, *args, **kwargs)
            if response.status_code >= 500:
                raise _NotStored(response)
            _store(claim, response)  # in a unit: commits with the effect, or not at all
    except _NotStored as not_stored:
        _release_claim(claim)
        return not_stored.response
    except BaseException:
        _release_claim(claim)
        raise
    return response


def purge_expired_keys(*, now=None) -> int:
    cutoff = (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted

