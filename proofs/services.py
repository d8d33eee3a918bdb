"""Turning a file from the field into a decision about money.

``proof_submit`` checks the upload (size, magic bytes, image pixel limit,
EXIF rules) before anything is stored, streams it to storage while hashing,
then in one transaction records the proof and moves the milestone: a clean
photo auto-approves (and pays out after commit); an unverifiable photo and
every document wait for a person (``proofs.photo_trust`` says which rule
decided, in ``validation.auto_approval``). Documents go through OCR, document
checks and the AI advisor as Celery jobs after commit; their row's status is
the work queue (claimed by one conditional UPDATE), so a sweeper redoes
anything a lost message or a dead worker dropped. Every change to what the
checks found refreshes the proof's review priority (``proofs.review_priority``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from escrow import services as escrow_services
from escrow.actions import PROOFS_FROM, current_milestone
from escrow.models import ProofType
from escrow.selectors import escrow_list_for, escrow_lock, escrow_milestones_lock, milestone_is_disputed, milestone_lock
from kobatela.audit import services as audit
from kobatela.core import clock
from kobatela.core.actor import Actor
from kobatela.core.circuit_breaker import CircuitBreaker, DailyCap, redis_client
from kobatela.core.errors import (
    BadRequest,
    Conflict,
    DomainError,
    Gone,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from kobatela.core.money import quantize
from kobatela.core.queue import enqueue, enqueue_on_commit
from kobatela.core.transactions import service_transaction
from kobatela.events import services as events
from proofs import filetypes, metrics, ocr, photo_trust, review_priority, selectors
from proofs.ai import AdvisorConfig, AdvisorError, advise, build_context
from proofs.document_checks import run_checks
from proofs.exif import read_photo_exif
from proofs.geofence import Geofence, check_photo, raise_for_errors
from proofs.images import open_image
from proofs.invoice import parse_invoice
from proofs.models import (
    AiStatus,
    OcrStatus,
    Proof,
    ProofDecision,
    ProofPhotoHash,
    ProofStatus,
    UploadLink,
    UploadLinkStatus,
)
from proofs.storage import delete_quietly, store_upload

logger = logging.getLogger(__name__)

IMAGE_MAX_PIXELS = 50_000_000  # ~ a 8660×5770 photo; anything bigger is refused before decoding
PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
DOCUMENT_TYPES = frozenset({"application/pdf", *PHOTO_TYPES})  # a scanned invoice may be a photo
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "application/pdf": ".pdf"}
OCR_MAX_ATTEMPTS = 3
OCR_STALE_AFTER = timedelta(minutes=15)
#: Claims of one AI job before an open breaker or a reached cap is recorded as FAILED.
AI_MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class _Inspected:
    content_type: str
    photo_check: Any | None  # PhotoCheck for photos
    exif: Any | None
    hashes: list[int] | None = None  # perceptual hashes of an image (proofs.photo_trust)
    verdict: Any | None = None  # photo_trust.Verdict for photos


def _article(word: str) -> str:
    """The article before a proof type: an INVOICE, a PHOTO, a PDF (said "pee"), a CONTRACT."""
    return "an" if word[:1] in "AEIOU" else "a"


def _check_escrow_and_milestone(escrow, milestones, milestone_idx: int, proof_type: str):
    if escrow.status not in PROOFS_FROM:
        raise Conflict(f"escrow_is_{escrow.status.lower()}", f"The escrow is {escrow.status}; it takes no proofs.",
                       details={"status": escrow.status})
    current = current_milestone(milestones)
    if current is None or current.idx != milestone_idx:
        raise Conflict("milestone_not_current", "Only the lowest milestone not yet approved accepts proofs.",
                       details={"current_milestone_idx": current.idx if current else None})
    if current.proof_type != proof_type:
        expected = f"{_article(current.proof_type)} {current.proof_type}"
        raise Conflict("proof_type_mismatch", f"Milestone {current.idx} expects {expected} proof.",
                       details={"expected": current.proof_type})
    return current


def _window_start(escrow, milestones, milestone):
    """When this milestone started taking proofs: the escrow's creation, or the
    approval of the milestone before it, whichever is later."""
    starts = [escrow.created_at] + [m.approved_at for m in milestones if m.idx < milestone.idx and m.approved_at]
    return max(starts)


def _inspect(upload, *, proof_type: str, milestone, now, window_start=None, owner_id=None) -> _Inspected:
    """Everything decided from the file's own bytes, before it is stored."""
    if upload.size > settings.PROOF_MAX_UPLOAD_MB * 1024 * 1024:
        raise PayloadTooLarge(details={"max_bytes": settings.PROOF_MAX_UPLOAD_MB * 1024 * 1024})
    if upload.size == 0:
        raise BadRequest("file_empty", "The file is empty.")
    upload.seek(0)
    content_type = filetypes.sniff(upload.read(filetypes.SNIFF_BYTES))
    upload.seek(0)
    allowed = PHOTO_TYPES if proof_type == ProofType.PHOTO else DOCUMENT_TYPES
    if content_type not in allowed:
        raise UnsupportedMediaType("unsupported_file_type", f"A {proof_type} proof must be one of: {', '.join(sorted(allowed))}.",
                                   details={"detected": content_type})
    if content_type == "application/pdf":
        try:
            if len(PdfReader(upload, strict=False).pages) < 1:
                raise BadRequest("file_corrupt", "The PDF has no pages.")
        except (PyPdfError, ValueError, OSError, KeyError, TypeError) as exc:
            raise BadRequest("file_corrupt", "The PDF could not be read.") from exc
        finally:
            upload.seek(0)
        return _Inspected(content_type, None, None)
    image = open_image(upload, max_pixels=IMAGE_MAX_PIXELS)
    upload.seek(0)
    hashes = photo_trust.perceptual_hashes(image)
    if proof_type != ProofType.PHOTO:
        return _Inspected(content_type, None, None, hashes=hashes)
    exif = read_photo_exif(image)
    geofence = (Geofence(lat=milestone.geofence_lat, lng=milestone.geofence_lng, radius_m=milestone.geofence_radius_m)
                if milestone.has_geofence else None)
    max_age = (milestone.proof_requirements or {}).get("max_photo_age_hours")
    check = check_photo(exif=exif, geofence=geofence, max_age_hours=int(max_age) if max_age else None, now=now,
                        future_skew_seconds=settings.PROOF_PHOTO_CLOCK_SKEW_SECONDS)
    raise_for_errors(check)  # 422 outside_geofence / photo_too_old / photo_in_future: nothing is stored
    verdict = photo_trust.assess(
        exif=exif, has_geofence=geofence is not None, distance_checked=check.distance_m is not None,
        window_start=window_start or now, now=now,
        max_age_hours=int(max_age) if max_age else settings.PROOF_PHOTO_MAX_AGE_HOURS,
        skew_seconds=settings.PROOF_PHOTO_CLOCK_SKEW_SECONDS,
        reuse=selectors.photo_reuse_match(hashes, owner_id=owner_id), check_warnings=check.warnings)
    return _Inspected(content_type, check, exif, hashes=hashes, verdict=verdict)


def proof_submit(*, actor: Actor, escrow_id: int, milestone_idx: int, proof_type: str, upload,
                 metadata: dict | None = None, upload_link_id: int | None = None) -> Proof:
    """A proof from the escrow's client (sender), its provider, or an upload link
    (``upload_link_id``: counted against the link's cap under the escrow lock)."""
    now = clock.now()
    escrow = escrow_list_for(actor, as_provider=True).filter(pk=escrow_id).first()
    if escrow is None:
        raise NotFound("escrow_not_found", "No such escrow.")
    try:
        # Checked here to refuse fast, and again under the escrow lock before recording.
        milestones = list(escrow.milestones.all())
        milestone = _check_escrow_and_milestone(escrow, milestones, milestone_idx, proof_type)
        inspected = _inspect(upload, proof_type=proof_type, milestone=milestone, now=now,
                             window_start=_window_start(escrow, milestones, milestone), owner_id=escrow.client_id)
    except DomainError as exc:
        metrics.PROOFS_SUBMITTED.labels(type=proof_type, outcome=f"refused:{exc.code}").inc()
        raise

    stored_name, sha256, size = store_upload(upload, folder=f"proofs/{escrow.pk}", extension=EXTENSIONS[inspected.content_type])
    try:
        proof = _record_submission(actor=actor, escrow_id=escrow.pk, milestone_idx=milestone_idx, proof_type=proof_type,
                                   stored_name=stored_name, sha256=sha256, size=size, inspected=inspected,
                                   metadata=metadata or {}, upload_link_id=upload_link_id)
    except BaseException:
        delete_quietly(stored_name)
        raise
    return proof


UPLOAD_LINK_GONE_WORDS = {
    UploadLinkStatus.EXPIRED: "This upload link has expired. Ask the person who sent it for a new one.",
    UploadLinkStatus.REVOKED: "This upload link was cancelled. Ask the person who sent it for a new one.",
    UploadLinkStatus.USED: "This upload link has been used as many times as it allows.",
}


def upload_link_raise_unless_active(link: UploadLink) -> None:
    """410 ``upload_link_<status>``, in words a provider understands, once a link is
    revoked, expired or used up: when it is opened and again when an upload is counted."""
    status = link.status_at(clock.now())
    if status != UploadLinkStatus.ACTIVE:
        raise Gone(f"upload_link_{status.lower()}", UPLOAD_LINK_GONE_WORDS[status], details={"status": status})


def _upload_link_consume(upload_link_id: int) -> None:
    """Count one upload against a link, under the escrow lock (its caller's):
    410 once it is revoked, expired or used up. The database refuses a count
    over the cap too (``upload_link_never_over_cap``)."""
    link = UploadLink.objects.select_for_update().get(pk=upload_link_id)
    upload_link_raise_unless_active(link)
    link.uploads_used += 1
    link.save(update_fields=["uploads_used"])


def _record_submission(*, actor, escrow_id, milestone_idx, proof_type, stored_name, sha256, size, inspected, metadata,
                       upload_link_id=None) -> Proof:
    is_photo = proof_type == ProofType.PHOTO
    check = inspected.photo_check
    with service_transaction():
        escrow = escrow_lock(escrow_id, actor, as_provider=True)
        milestones = escrow_milestones_lock(escrow)
        milestone = _check_escrow_and_milestone(escrow, milestones, milestone_idx, proof_type)  # again, under the lock
        if Proof.objects.filter(sha256=sha256).exists():
            raise Conflict("duplicate_proof", "This exact file was already submitted.", details={"sha256": sha256})
        if upload_link_id is not None:
            _upload_link_consume(upload_link_id)
        exif = inspected.exif
        verdict = inspected.verdict
        fields: dict[str, Any] = dict(
            owner_id=escrow.client_id, escrow=escrow, milestone=milestone, type=proof_type, file=stored_name,
            sha256=sha256, size=size, content_type=inspected.content_type, metadata=metadata,
            upload_link_id=upload_link_id,
            validation={"errors": [], "warnings": list(verdict.warnings) if verdict else [],
                        "auto_approval": verdict.as_validation() if verdict else DOCUMENT_REVIEW},
        )
        if is_photo:
            fields.update(exif_captured_at=exif.captured_at, exif_lat=exif.lat, exif_lng=exif.lng,
                          distance_m=quantize(check.distance_m) if check.distance_m is not None else None,
                          ocr_status=OcrStatus.SKIPPED, ai_status=AiStatus.NOT_APPLICABLE)
        else:
            fields.update(ocr_status=OcrStatus.QUEUED if settings.OCR_ENABLED else OcrStatus.DISABLED,
                          ai_status=AiStatus.QUEUED if settings.AI_PROOF_ADVISOR_ENABLED else AiStatus.DISABLED)
        probe = Proof(**fields)
        fields["review_priority"], fields["review_flags"] = review_priority.review_picture(probe)
        try:
            with transaction.atomic():
                proof = Proof.objects.create(**fields)
        except IntegrityError:
            raise Conflict("duplicate_proof", "This exact file was already submitted.", details={"sha256": sha256}) from None
        if inspected.hashes:
            ProofPhotoHash.objects.bulk_create([
                ProofPhotoHash(proof=proof, variant=i, phash=h, **dict(zip(BAND_FIELDS, photo_trust.band_keys(h))))
                for i, h in enumerate(inspected.hashes)])
        events.emit(account_id=proof.owner_id, type="proof.submitted", resource=proof,
                    context={"via": "upload_link", "upload_link_id": upload_link_id} if upload_link_id else None)

        escrow_services.milestone_mark_pending_review(actor=actor, escrow=escrow, milestone=milestone)
        outcome = "pending_review"
        # A milestone under an open dispute is never auto-approved: its proof waits for the dispute.
        if is_photo and check.verifiable_and_clean and verdict.auto_approve and not milestone_is_disputed(milestone.pk):
            proof.status = ProofStatus.APPROVED
            proof.decided_by_label = "system:auto"
            proof.decided_at = clock.now()
            proof.decision_note = ("Photo verified: EXIF capture time inside the milestone's window, GPS position inside "
                                   "its geofence, a camera named, no earlier proof alike.")
            proof.save(update_fields=["status", "decided_by_label", "decided_at", "decision_note"])
            _supersede_others(actor, proof)
            escrow_services.milestone_approve(actor=actor, escrow=escrow, milestone=milestone, reason="photo_auto_approved")
            outcome = "auto_approved"
        elif is_photo:
            outcome = "unverifiable"
        if proof.status == ProofStatus.APPROVED:
            events.emit(account_id=proof.owner_id, type="proof.approved", resource=proof)
        audit.record(actor, "proof.submitted", proof, {
            "escrow_id": escrow.pk, "milestone_idx": milestone.idx, "type": proof_type, "sha256": sha256,
            "size": size, "outcome": outcome, "warnings": [w["code"] for w in proof.validation["warnings"]],
            "rule": proof.validation["auto_approval"]["rule"],
        })
        if proof.ocr_status == OcrStatus.QUEUED:
            _schedule_ocr(proof.pk)
        elif proof.ai_status == AiStatus.QUEUED:
            _schedule_ai(proof.pk)  # no OCR to wait for
    metrics.PROOFS_SUBMITTED.labels(type=proof_type, outcome=outcome).inc()
    return proof


DOCUMENT_REVIEW = {"decision": "review", "rule": "documents_are_reviewed",
                   "reason": "Documents are never approved automatically: a reviewer decides, with the OCR checks."}
BAND_FIELDS = ("band0", "band1", "band2", "band3")


def proof_supersede_pending(*, actor: Actor | str, milestone_id: int, why: str,
                            approved: Proof | None = None) -> list[int]:
    """The milestone is closed (approved by any path, or resolved by a dispute):
    its pending proofs — all but ``approved``, the one that closed it, if any —
    leave the queue as SUPERSEDED, one audit row each; their OCR/AI claims refuse
    them from now on. Runs in the caller's transaction. Returns their ids."""
    others = Proof.objects.select_for_update().filter(milestone_id=milestone_id, status=ProofStatus.PENDING)
    if approved is not None:
        others = others.exclude(pk=approved.pk)
    others = list(others.order_by("pk"))
    for other in others:
        other.status = ProofStatus.SUPERSEDED
        other.decided_by_label = "system:superseded"
        other.decided_at = clock.now()
        other.decision_note = why
        if other.ocr_status in (OcrStatus.QUEUED, OcrStatus.RUNNING):
            other.ocr_status, other.ocr_error = OcrStatus.SKIPPED, "superseded"
        if other.ai_status in (AiStatus.QUEUED, AiStatus.RUNNING):
            other.ai_status, other.ai_error = AiStatus.DISABLED, "superseded"
        other.save(update_fields=["status", "decided_by_label", "decided_at", "decision_note", "ocr_status",
                                  "ocr_error", "ai_status", "ai_error"])
        audit.record(actor, "proof.superseded", other, {"approved_proof_id": approved.pk if approved else None,
                                                        "milestone_id": milestone_id, "why": why})
    return [other.pk for other in others]


def _supersede_others(actor: Actor | str, approved: Proof) -> list[int]:
    """``approved`` closes its milestone: supersede the others now, naming it, before
    ``milestone_approve`` tells :func:`supersede_on_milestone_closed` (which then finds none)."""
    return proof_supersede_pending(actor=actor, milestone_id=approved.milestone_id, approved=approved,
                                   why=f"Proof #{approved.pk} of this milestone was approved.")


def supersede_on_milestone_closed(*, actor: Actor | str, milestone, reason: str) -> None:
    """``escrow.hooks`` listener (registered in ``ProofsConfig.ready``): a milestone closed
    another way — client approval, the deadline policy, a dispute resolution."""
    proof_supersede_pending(actor=actor, milestone_id=milestone.pk,
                            why=f"The milestone was closed without this proof ({reason}).")


def _schedule_ocr(proof_id: int) -> None:
    enqueue_on_commit("proofs.tasks.run_ocr", proof_id)


def _schedule_ai(proof_id: int) -> None:
    enqueue_on_commit("proofs.tasks.run_ai", proof_id)


# --- OCR -------------------------------------------------------------------------


def _claim_ocr(proof_id: int) -> bool:
    """QUEUED (or a RUNNING job left by a dead worker) → RUNNING, by one worker
    only; never for a proof already decided or superseded."""
    stale = timezone.now() - OCR_STALE_AFTER
    claimed = Proof.objects.filter(pk=proof_id, status=ProofStatus.PENDING).filter(
        Q(ocr_status=OcrStatus.QUEUED) | Q(ocr_status=OcrStatus.RUNNING, ocr_updated_at__lt=stale)
    ).update(ocr_status=OcrStatus.RUNNING, ocr_updated_at=timezone.now(), ocr_attempts=F("ocr_attempts") + 1)
    return bool(claimed)


class OcrRetryable(Exception):
    """A failure worth another attempt (the task's retry policy decides when)."""


def proof_run_ocr(*, proof_id: int) -> str:
    """Read the document, extract and normalise invoice fields, compare them with
    the milestone's requirements. Returns the resulting ``ocr_status``.

    Unreadable input is final (``FAILED`` with the reason); an unexpected
    error is retried by the task up to ``OCR_MAX_ATTEMPTS``.
    """
    if not _claim_ocr(proof_id):
        return Proof.objects.filter(pk=proof_id).values_list("ocr_status", flat=True).first() or "missing"
    proof = Proof.objects.select_related("milestone", "escrow").get(pk=proof_id)
    started = time.perf_counter()
    try:
        with default_storage.open(proof.file.name, "rb") as handle:
            data = handle.read()
        result = ocr.extract_text(data, content_type=proof.content_type, languages=settings.OCR_LANGUAGES)
    except ocr.OcrUnavailable as exc:
        return _finish_ocr(proof_id, OcrStatus.DISABLED, error=str(exc)[:500], started=started)
    except ocr.OcrFailed as exc:
        return _finish_ocr(proof_id, OcrStatus.FAILED, error=f"unreadable: {exc}"[:500], started=started)
    except (OSError, ocr.OcrError) as exc:
        if proof.ocr_attempts >= OCR_MAX_ATTEMPTS:
            return _finish_ocr(proof_id, OcrStatus.FAILED, error=f"gave up after {proof.ocr_attempts} attempts: {exc}"[:500],
                               started=started)
        Proof.objects.filter(pk=proof_id).update(ocr_status=OcrStatus.QUEUED, ocr_error=str(exc)[:500])
        raise OcrRetryable(str(exc)) from exc

    requirements = proof.milestone.proof_requirements
    expected_currency = requirements.get("currency") if isinstance(requirements, dict) else None
    parsed = parse_invoice(result.text, expected_currency=expected_currency if isinstance(expected_currency, str) else None)
    fields = parsed.fields
    checks = run_checks(fields, proof.milestone.proof_requirements)
    with service_transaction():
        locked = Proof.objects.select_for_update().get(pk=proof_id)
        locked.ocr_text = result.text
        locked.ocr_source = result.source
        locked.invoice_amount = fields.amount
        locked.invoice_currency = fields.currency or ""
        locked.invoice_date = fields.date
        locked.invoice_number = (fields.number or "")[:100]
        locked.invoice_supplier = (fields.supplier or "")[:200]
        locked.invoice_iban_last4 = fields.iban_last4 or ""
        locked.invoice_iban_masked = fields.iban_masked or ""
        locked.backend_checks = checks
        validation = dict(locked.validation or {})
        other_warnings = [w for w in validation.get("warnings", []) if w.get("source") != "ocr"]
        validation["warnings"] = other_warnings + [{**w, "source": "ocr"} for w in parsed.warnings]
        validation.setdefault("errors", [])
        locked.validation = validation
        locked.ocr_status = OcrStatus.DONE
        locked.ocr_error = ""
        locked.ocr_updated_at = timezone.now()
        review_priority.refresh(locked)
        locked.save()
        audit.record(Actor.system("ocr"), "proof.ocr_done", locked, {
            "source": result.source, "pages": result.pages, "fields": fields.to_json(),
            "checks": checks.get("overall"), "warnings": [w["code"] for w in parsed.warnings],
        })
        if locked.ai_status == AiStatus.QUEUED:
            _schedule_ai(locked.pk)
    metrics.OCR_RUNS.labels(outcome="done").inc()
    metrics.OCR_SECONDS.observe(time.perf_counter() - started)
    return OcrStatus.DONE


def _finish_ocr(proof_id: int, status: str, *, error: str, started: float) -> str:
    with service_transaction():
        proof = Proof.objects.select_for_update().get(pk=proof_id)
        proof.ocr_status = status
        proof.ocr_error = error
        proof.ocr_updated_at = timezone.now()
        proof.save(update_fields=["ocr_status", "ocr_error", "ocr_updated_at", *review_priority.refresh(proof)])
        audit.record(Actor.system("ocr"), f"proof.ocr_{status.lower()}", proof, {"error": error})
        if proof.ai_status == AiStatus.QUEUED:
            _schedule_ai(proof.pk)  # the advisor still scores what is known
    metrics.OCR_RUNS.labels(outcome=status.lower()).inc()
    metrics.OCR_SECONDS.observe(time.perf_counter() - started)
    logger.warning("ocr did not complete", extra={"proof_id": proof_id, "status": status, "error": error})
    return status


def proof_requeue_ocr(*, proof_id: int, actor: Actor | str) -> None:
    """Send a proof back to the OCR queue (operators, the sweeper)."""
    with service_transaction():
        proof = Proof.objects.select_for_update().get(pk=proof_id)
        if proof.type == ProofType.PHOTO:
            raise Conflict("proof_is_photo", "Photos are not read by OCR.")
        proof.ocr_status = OcrStatus.QUEUED
        proof.ocr_attempts = 0
        proof.ocr_error = ""
        proof.ocr_updated_at = timezone.now()
        proof.save(update_fields=["ocr_status", "ocr_attempts", "ocr_error", "ocr_updated_at"])
        audit.record(actor, "proof.ocr_requeued", proof, {})
        _schedule_ocr(proof.pk)


def proofs_sweep_ocr(*, now=None) -> int:
    """Re-send QUEUED jobs whose message may be lost and RUNNING ones left by a dead worker."""
    now = now or timezone.now()
    due = Proof.objects.filter(status=ProofStatus.PENDING).filter(
        Q(ocr_status=OcrStatus.QUEUED, created_at__lt=now - timedelta(minutes=5), ocr_attempts__lt=OCR_MAX_ATTEMPTS)
        | Q(ocr_status=OcrStatus.RUNNING, ocr_updated_at__lt=now - OCR_STALE_AFTER)
    ).values_list("pk", flat=True)[:200]
    ids = list(due)
    for proof_id in ids:
        enqueue("proofs.tasks.run_ocr", proof_id)
    return len(ids)


# --- AI advisor ------------------------------------------------------------------------


def _redis():
    """This process's client for REDIS_URL (None without one)."""
    return redis_client(settings.REDIS_URL) if settings.REDIS_URL else None


def _advisor_guards():
    """The breaker and the daily cap live in Redis, shared by every worker.
    When that Redis does not answer, both count in this process instead,
    closed by default (kobatela.core.circuit_breaker says what that allows).
    Without Redis (the embedded default, where the advisor is off) there is
    nothing to share and neither applies."""
    client = _redis()
    if client is None:
        return None, None
    return (CircuitBreaker(client, "ai_advisor", failure_threshold=settings.AI_BREAKER_FAILURES,
                           cooldown_seconds=settings.AI_BREAKER_COOLDOWN_SECONDS),
            DailyCap(client, "ai_advisor_calls", settings.AI_DAILY_CALL_LIMIT))


def ai_guard_state() -> dict[str, Any] | None:
    """The advisor's breaker and daily cap as every worker sees them (detailed
    /health and /metrics); None without Redis, where neither applies."""
    breaker, cap = _advisor_guards()
    if breaker is None:
        return None
    return {
        "breaker": {"state": breaker.state(), "failures_in_window": breaker.failure_count(),
                    "failure_threshold": breaker.failure_threshold, "cooldown_seconds": breaker.cooldown_seconds},
        "daily_cap": {"limit": cap.limit, "used": cap.used(), "remaining": cap.remaining()},
    }


def _advisor_input(proof: Proof) -> dict[str, Any]:
    """What the advisor may know, before build_context's allowlist and masking.
    The provider's and client's names are given only so they can be scrubbed
    from the OCR text; file URLs and full IBANs are never in here."""
    milestone = proof.milestone
    return {
        "type": proof.type,
        "content_type": proof.content_type,
        "size": proof.size,
        "provider": {"full_name": proof.escrow.provider.full_name},
        "client": {"full_name": proof.escrow.client.full_name},
        "milestone": {"label": milestone.label, "amount": str(milestone.amount), "currency": proof.escrow.currency,
                      "proof_requirements": milestone.proof_requirements},
        "invoice": {"number": proof.invoice_number or None,
                    "date": proof.invoice_date.isoformat() if proof.invoice_date else None,
                    "amount": str(proof.invoice_amount) if proof.invoice_amount is not None else None,
                    "currency": proof.invoice_currency or None, "iban_last4": proof.invoice_iban_last4 or None},
        "exif": {"captured_at": proof.exif_captured_at.isoformat() if proof.exif_captured_at else None,
                 "distance_m": str(proof.distance_m) if proof.distance_m is not None else None},
        "document_checks": proof.backend_checks,
        "validation_warnings": [w.get("code") for w in (proof.validation or {}).get("warnings", [])],
        "ocr_text": proof.ocr_text,
    }


def _ai_stale_after() -> timedelta:
    """A RUNNING AI job older than this has no live worker: the SDK call is
    bounded by AI_TIMEOUT_SECONDS (no SDK retries), so past it plus a margin
    the claim is a dead worker's. Shorter than the broker's visibility timeout,
    so a redelivered message finds the claim already stale."""
    return timedelta(seconds=settings.AI_TIMEOUT_SECONDS + settings.AI_STALE_MARGIN_SECONDS)


def _claim_ai(proof_id: int) -> bool:
    """QUEUED (or RUNNING left by a dead worker) → RUNNING, by one worker only
    (one conditional UPDATE, as OCR): a redelivered or duplicated message finds
    nothing to claim, so the model is called once per claim. A proof already
    decided or superseded is never claimed."""
    now = clock.now()
    claimed = Proof.objects.filter(pk=proof_id, status=ProofStatus.PENDING).filter(
        Q(ai_status=AiStatus.QUEUED) | Q(ai_status=AiStatus.RUNNING, ai_updated_at__lt=now - _ai_stale_after())
    ).update(ai_status=AiStatus.RUNNING, ai_updated_at=now, ai_attempts=F("ai_attempts") + 1)
    return bool(claimed)


class AiRetryable(Exception):
    """The advisor could not be asked now (breaker open, daily cap reached): the
    proof went back to QUEUED; the task retries later with backoff."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _finish_ai(proof_id: int, *, status: str, error: str = "", result=None) -> str:
    with service_transaction():
        proof = Proof.objects.select_for_update().get(pk=proof_id)
        if proof.ai_status != AiStatus.RUNNING:
            return proof.ai_status  # superseded (or finished) meanwhile: nothing to record
        proof.ai_status = status
        proof.ai_error = error
        proof.ai_checked_at = timezone.now()
        proof.ai_updated_at = clock.now()
        if result is not None:
            proof.ai_risk_level = result.risk_level
            proof.ai_score = result.score
            proof.ai_flags = list(result.flags)
            proof.ai_explanation = result.explanation
        proof.save(update_fields=["ai_status", "ai_error", "ai_checked_at", "ai_updated_at", "ai_risk_level",
                                  "ai_score", "ai_flags", "ai_explanation", *review_priority.refresh(proof)])
        if result is not None and proof.ai_flagged:
            events.emit(account_id=proof.owner_id, type="proof.flagged", resource=proof)
        audit.record(Actor.system("ai_advisor"), f"proof.ai_{status.lower()}", proof,
                     {"error": error, "attempts": proof.ai_attempts,
                      **({"risk_level": result.risk_level, "score": result.score,
                          "flags": list(result.flags)} if result else {})})
    metrics.AI_CALLS.labels(outcome=error or status.lower()).inc()
    return status


def _release_ai(proof_id: int, reason: str) -> None:
    """Give the claim back (RUNNING → QUEUED) with the reason, for a later retry."""
    Proof.objects.filter(pk=proof_id, ai_status=AiStatus.RUNNING).update(ai_status=AiStatus.QUEUED, ai_error=reason,
                                                                        ai_updated_at=clock.now())
    metrics.AI_CALLS.labels(outcome=reason).inc()


def proof_run_ai(*, proof_id: int, final_attempt: bool = False) -> str:
    """Score a proof's risk. The advisor only scores: nothing here approves,
    rejects or pays; a failure leaves the proof in review with the reason.

    Claimed first (``_claim_ai``): a second delivery of the same message does
    nothing. ``circuit_open`` and ``daily_cap_reached`` give the claim back and
    raise :class:`AiRetryable` (the task retries with backoff) unless
    ``final_attempt``, when they are recorded as FAILED."""
    if not _claim_ai(proof_id):
        return Proof.objects.filter(pk=proof_id).values_list("ai_status", flat=True).first() or "missing"
    if not settings.AI_PROOF_ADVISOR_ENABLED:
        return _finish_ai(proof_id, status=AiStatus.DISABLED, error="advisor_disabled")
    proof = Proof.objects.select_related("milestone", "escrow__provider", "escrow__client").get(pk=proof_id)
    breaker, cap = _advisor_guards()
    refused = ("circuit_open" if breaker is not None and not breaker.allow()
               else "daily_cap_reached" if cap is not None and not cap.try_acquire() else None)
    if refused:
        if final_attempt or proof.ai_attempts >= AI_MAX_ATTEMPTS:
            return _finish_ai(proof_id, status=AiStatus.FAILED, error=refused)
        _release_ai(proof_id, refused)
        raise AiRetryable(refused)
    config = AdvisorConfig(api_key=settings.OPENAI_API_KEY, base_url=settings.OPENAI_BASE_URL, model=settings.AI_MODEL,
                           timeout_seconds=settings.AI_TIMEOUT_SECONDS, max_retries=0)
    started = time.perf_counter()
    try:
        result = advise(build_context(_advisor_input(proof)), config=config)
    except AdvisorError as exc:
        if breaker is not None:
            breaker.record_failure()
        metrics.AI_SECONDS.observe(time.perf_counter() - started)
        logger.warning("ai advisor failed", extra={"proof_id": proof_id, "reason": exc.reason})
        return _finish_ai(proof_id, status=AiStatus.FAILED, error=exc.reason)
    if breaker is not None:
        breaker.record_success()
    metrics.AI_SECONDS.observe(time.perf_counter() - started)
    return _finish_ai(proof_id, status=AiStatus.DONE, result=result)


def proof_requeue_ai(*, proof_id: int, actor: Actor | str) -> None:
    """Send a proof back to the AI advisor: it is only queued (after commit), never
    run here. A job already running is left to finish; a decided proof is refused."""
    with service_transaction():
        proof = Proof.objects.select_for_update().get(pk=proof_id)
        if proof.status != ProofStatus.PENDING:
            raise Conflict("proof_not_pending", f"The proof is {proof.status}: the advisor is not asked again.",
                           details={"status": proof.status})
        if proof.ai_status == AiStatus.RUNNING and proof.ai_updated_at and \
                proof.ai_updated_at >= clock.now() - _ai_stale_after():
            raise Conflict("ai_running", "The AI advisor is scoring this proof right now.")
        proof.ai_status = AiStatus.QUEUED
        proof.ai_error = ""
        proof.ai_attempts = 0
        proof.ai_updated_at = clock.now()
        proof.save(update_fields=["ai_status", "ai_error", "ai_attempts", "ai_updated_at"])
        audit.record(actor, "proof.ai_requeued", proof, {})
        _schedule_ai(proof.pk)


def proofs_sweep_ai(*, now=None) -> int:
    """Re-send AI jobs of pending proofs whose message may be lost (QUEUED for a
    while, OCR finished) and RUNNING ones left by a dead worker."""
    now = now or clock.now()
    settled_ocr = [OcrStatus.DONE, OcrStatus.FAILED, OcrStatus.SKIPPED, OcrStatus.DISABLED]
    due = Proof.objects.filter(status=ProofStatus.PENDING).filter(
        Q(ai_status=AiStatus.QUEUED, ocr_status__in=settled_ocr, ai_attempts__lt=AI_MAX_ATTEMPTS)
        & (Q(ai_updated_at__isnull=True, created_at__lt=now - timedelta(minutes=5))
           | Q(ai_updated_at__lt=now - timedelta(minutes=5)))
        | Q(ai_status=AiStatus.RUNNING, ai_updated_at__lt=now - _ai_stale_after())
    ).values_list("pk", flat=True)[:200]
    ids = list(due)
    for proof_id in ids:
        enqueue("proofs.tasks.run_ai", proof_id)
    return len(ids)


# --- decisions --------------------------------------------------------------------------


def proof_decide(*, actor: Actor, proof_id: int, decision: ProofDecision | str, note: str = "",
                 amount: Decimal | None = None) -> Proof:
    """A reviewer's verdict. Approval approves the milestone and pays out after
    commit, and supersedes the milestone's other pending proofs; rejection
    sends the milestone back to accept a new proof. A note is required when
    anything is flagged (``_require_note``: a failed or missing check, a photo
    warning, a re-use match, AI risk or flags, an AI verdict still pending),
    whether the AI is on or off. Any decision other than ``approve`` or
    ``reject`` is refused (400 ``invalid_decision``), never taken for one of
    them."""
    if decision not in ProofDecision.values:
        raise BadRequest("invalid_decision", "The decision must be approve or reject.",
                         details={"decision": [f"One of: {', '.join(ProofDecision.values)}."]})
    decision = ProofDecision(decision)
    proof_row = Proof.objects.filter(pk=proof_id).values("escrow_id").first()
    if proof_row is None:
        raise NotFound("proof_not_found", "No such proof.")
    note = (note or "").strip()
    with service_transaction():
        escrow = escrow_lock(proof_row["escrow_id"])
        proof = Proof.objects.select_for_update().select_related("milestone").get(pk=proof_id)
        if proof.status != ProofStatus.PENDING:
            raise Conflict("proof_already_decided", f"The proof is already {proof.status}.",
                           details={"status": proof.status, "decided_by": proof.decided_by_label,
                                    "decided_at": proof.decided_at.isoformat() if proof.decided_at else None})
        reasons = _require_note(proof, note)
        milestone = milestone_lock(proof.milestone_id)
        _check_partial_approval(decision, amount, note, milestone)
        superseded: list[int] = []
        # the decision is saved first: approving the milestone supersedes what is still PENDING on it
        proof.status = ProofStatus.APPROVED if decision == ProofDecision.APPROVE else ProofStatus.REJECTED
        proof.decided_by = actor.user
        proof.decided_by_label = actor.label
        proof.decided_at = timezone.now()
        proof.decision_note = note
        proof.save(update_fields=["status", "decided_by", "decided_by_label", "decided_at", "decision_note"])
        if decision == ProofDecision.APPROVE:
            superseded = _supersede_others(actor, proof)
            escrow_services.milestone_approve(actor=actor, escrow=escrow, milestone=milestone, amount=amount,
                                              reason=f"proof {proof.pk} approved" + (f" for {amount}" if amount else ""))
        else:
            escrow_services.milestone_reject(actor=actor, escrow=escrow, milestone=milestone, reason=note or "proof rejected")
        events.emit(account_id=proof.owner_id, type=f"proof.{proof.status.lower()}", resource=proof)
        audit.record(actor, f"proof.{proof.status.lower()}", proof,
                     {"note": note, "ai_flagged": proof.ai_flagged, "milestone_idx": milestone.idx,
                      "note_reasons": reasons, "superseded": superseded})
    metrics.PROOFS_DECIDED.labels(decision=decision.value, by=actor.label.split(":")[0]).inc()
    return proof


NOTE_REASON_WORDS = {"ai_pending": "the AI verdict is still pending", "photo_reused": "the photo matches an earlier proof",
                     "ocr_failed": "the document could not be read", "ai_flagged": "the AI advisor flagged it",
                     "ai_risk_high": "the AI advisor rates it high risk",
                     "ai_risk_medium": "the AI advisor rates it medium risk"}


def reason_in_words(reason: str) -> str:
    if reason in NOTE_REASON_WORDS:
        return NOTE_REASON_WORDS[reason]
    kind, _, name = reason.partition(":")
    return {"check_failed": f"the {name} check failed", "check_missing": f"the {name} was not found",
            "photo": f"photo warning {name}"}.get(kind, reason)


def _require_note(proof: Proof, note: str) -> list[str]:
    """Refuse a decision without a note when anything is flagged; returns the reasons (for the audit row)."""
    reasons = proof.note_reasons
    if reasons and not note:
        words = "; ".join(reason_in_words(r) for r in reasons)
        raise ValidationFailed("note_required", f"Explain the decision in a note: {words}.",
                               details={"note": [f"Required because {words}."], "reasons": reasons})
    return reasons


def _check_partial_approval(decision: ProofDecision, amount: Decimal | None, note: str, milestone) -> None:
    """A partial approval (``amount``) pays less than the milestone, with a note saying why;
    the rest stays in the escrow, refundable."""
    if amount is None:
        return
    if decision != ProofDecision.APPROVE:
        raise ValidationFailed(details={"amount": ["Only an approval takes an amount."]})
    if not (0 < amount < milestone.amount):
        raise ValidationFailed("invalid_partial_amount", "A partial approval is more than zero and below the milestone's amount.",
                               details={"amount": [f"Between 0 and {milestone.amount}, both excluded."]})
    if not note:
        raise ValidationFailed("note_required", "A partial approval needs a note.",
                               details={"note": ["Required with an amount."]})


# --- AI-flag triage (admin) -------------------------------------------------------------


def proof_mark_ai_reviewed(*, actor: Actor, proof_ids: list[int]) -> int:
    """A person looked at the AI advisor's flags on these proofs. Only flagged
    proofs not yet marked are touched, each with its own audit row. This is
    triage, never a decision: approving a flagged proof still goes through
    ``proof_decide`` one at a time, with a note. Returns how many were marked."""
    now = timezone.now()
    marked = 0
    with service_transaction():
        proofs = Proof.objects.select_for_update().filter(pk__in=list(proof_ids), ai_reviewed_at__isnull=True).order_by("pk")
        for proof in proofs:
            if not proof.ai_flagged:
                continue
            proof.ai_reviewed_at = now
            proof.ai_reviewed_by = actor.user
            proof.save(update_fields=["ai_reviewed_at", "ai_reviewed_by"])
            audit.record(actor, "proof.ai_flag_reviewed", proof,
                         {"risk_level": proof.ai_risk_level, "score": proof.ai_score, "flags": list(proof.ai_flags or [])})
            marked += 1
    return marked
