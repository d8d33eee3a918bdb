"""Upload links: a provider without an account sends one milestone's proofs through ``/u/{token}``.

The sender (or an admin) creates a link for one milestone, with a lifetime
(1–720 h) and an upload cap (1–20). The token — ``kul_`` and 32 random
url-safe bytes — is shown once; only its SHA-256 is stored. A presented token
is hashed and looked up by that hash (unique index): the database compares
hashes, never the secret, so the lookup's timing says nothing about any
token; the found row's hash is compared again with ``hmac.compare_digest``.

Unknown token → 401; revoked, used up or expired → 410 (in that order of
precedence). An upload by link is ``proof_submit`` acting as the escrow's
provider (label ``upload_link:<id>``) and counted against the cap under the
escrow lock, so concurrent uploads never pass the cap (the database refuses
it too).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from escrow.actions import OPEN_MILESTONE_STATUSES, UPLOAD_LINK_FROM
from escrow.models import Milestone, ProofType
from escrow.selectors import escrow_lock
from kobatela.accounts.keys import hash_key  # the same SHA-256 as API keys: the secret is never stored
from kobatela.audit import services as audit
from kobatela.core import clock
from kobatela.core.actor import Actor
from kobatela.core.errors import Conflict, NotFound, Unauthenticated, ValidationFailed
from kobatela.core.scopes import Scope
from kobatela.core.transactions import service_transaction
from kobatela.events import services as events
from proofs.models import Proof, ProofStatus, UploadLink
from proofs.services import proof_submit, upload_link_raise_unless_active

TOKEN_PREFIX = "kul_"
MAX_TOKEN_LENGTH = 100


def upload_link_create(*, actor: Actor, escrow_id: int, milestone_idx: int, expires_in_hours: int,
                       max_uploads: int) -> tuple[UploadLink, str]:
    """A new link for one milestone; returns the row and the token (never stored)."""
    with service_transaction():
        escrow = escrow_lock(escrow_id, actor)
        milestone = Milestone.objects.filter(escrow=escrow, idx=milestone_idx).first()
        if milestone is None:
            raise ValidationFailed(details={"milestone_idx": [f"The escrow has no milestone {milestone_idx}."]})
        if escrow.status not in UPLOAD_LINK_FROM:
            raise Conflict(f"escrow_is_{escrow.status.lower()}", f"The escrow is {escrow.status}; it takes no proofs.",
                           details={"status": escrow.status})
        if milestone.status not in OPEN_MILESTONE_STATUSES:
            raise Conflict("milestone_closed", f"Milestone {milestone.idx} is {milestone.status}; it takes no proofs.",
                           details={"status": milestone.status})
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        link = UploadLink.objects.create(
            escrow=escrow, milestone=milestone, token_hash=hash_key(token), max_uploads=max_uploads,
            expires_at=clock.now() + timedelta(hours=expires_in_hours), created_by_label=Actor.label_of(actor),
        )
        events.emit(account_id=escrow.client_id, type="upload_link.created", resource=link)
        audit.record(actor, "upload_link.created", link, {"escrow_id": escrow.pk, "milestone_idx": milestone.idx,
                                                           "expires_at": link.expires_at, "max_uploads": max_uploads})
    return link, token


def upload_link_revoke(*, actor: Actor, link_id: int) -> UploadLink:
    """Revoke a link (idempotent): it answers 410 from then on."""
    with service_transaction():
        link = UploadLink.objects.select_related("escrow").get(pk=link_id)
        escrow_lock(link.escrow_id, actor)  # lock order: escrow first; 404 for another tenant
        link = UploadLink.objects.select_for_update().get(pk=link_id)
        if link.revoked_at is None:
            link.revoked_at = clock.now()
            link.save(update_fields=["revoked_at"])
            events.emit(account_id=link.escrow.client_id, type="upload_link.revoked", resource=link)
            audit.record(actor, "upload_link.revoked", link, {"escrow_id": link.escrow_id})
    return link


def upload_link_resolve(token: str) -> UploadLink:
    """The link a presented token opens: 401 when unknown, 410 when it no longer accepts uploads."""
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        raise Unauthenticated("upload_link_unknown", "This upload link does not exist.")
    digest = hash_key(token)
    link = UploadLink.objects.select_related("milestone", "escrow").filter(token_hash=digest).first()
    if link is None or not hmac.compare_digest(link.token_hash, digest):
        raise Unauthenticated("upload_link_unknown", "This upload link does not exist.")
    upload_link_raise_unless_active(link)
    return link


def link_actor(link: UploadLink) -> Actor:
    """Who acts through a link: the escrow's provider, for this escrow only, labelled as the link."""
    return Actor(label=f"upload_link:{link.pk}", user=link.escrow.provider, scopes=frozenset({Scope.PROVIDER}))


def upload_link_submit(*, token: str, upload, metadata: dict | None = None) -> Proof:
    """``POST /u/{token}``: the same checks as ``POST /proofs``, for the link's milestone, counted against its cap."""
    link = upload_link_resolve(token)
    try:
        return proof_submit(actor=link_actor(link), escrow_id=link.escrow_id, milestone_idx=link.milestone.idx,
                            proof_type=link.milestone.proof_type, upload=upload, metadata=metadata,
                            upload_link_id=link.pk)
    except NotFound:  # the escrow is no longer the provider's (cannot happen today): the link opens nothing
        raise Unauthenticated("upload_link_unknown", "This upload link does not exist.") from None


# --- what the page says, in plain words ------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    code: str  # accepted | review | refused
    words: str


def proof_verdict(proof: Proof) -> Verdict:
    if proof.status == ProofStatus.APPROVED:
        return Verdict("accepted", "Accepted — payment on its way.")
    if proof.status == ProofStatus.REJECTED:
        return Verdict("refused", f"Refused: {proof.decision_note or 'the proof does not meet the requirements.'}")
    return Verdict("review", "Waiting for review: a person will check it soon.")


def _amount(value: str) -> str:
    return f"{Decimal(value):,.2f}"


def milestone_expectation(milestone: Milestone) -> list[str]:
    """What the milestone expects, in plain sentences — never the client's identity or bank data
    (``iban_last4`` is left out on purpose)."""
    requirements = milestone.proof_requirements or {}
    lines: list[str] = []
    if milestone.proof_type == ProofType.PHOTO:
        lines.append("A photo taken with your phone's camera, on site.")
        if milestone.has_geofence:
            lines.append(f"Take it within {milestone.geofence_radius_m.normalize():f} m of the work place "
                         f"({milestone.geofence_lat:f}, {milestone.geofence_lng:f}); keep location on for the camera.")
        if requirements.get("max_photo_age_hours"):
            lines.append(f"Taken in the last {requirements['max_photo_age_hours']} hours.")
    else:
        kind = {"INVOICE": "An invoice", "PDF": "A PDF document", "CONTRACT": "A signed contract"}[milestone.proof_type]
        lines.append(f"{kind} (a PDF, or a clear photo of it).")
        if requirements.get("expected_amount"):
            currency = requirements.get("currency", milestone.escrow.currency)
            lines.append(f"For an amount of {_amount(requirements['expected_amount'])} {currency}.")
        if requirements.get("supplier"):
            lines.append(f"From {requirements['supplier']}.")
        if requirements.get("date_from") or requirements.get("date_to"):
            lines.append(f"Dated between {requirements.get('date_from', 'any date')} and "
                         f"{requirements.get('date_to', 'today')}.")
    return lines
