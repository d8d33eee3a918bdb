from __future__ import annotations

from collections import defaultdict

from django.db.models import OuterRef, Q, QuerySet, Subquery

from kobatela.core.actor import Actor
from payments.models import Payment
from proofs import photo_trust
from proofs.models import Proof, ProofPhotoHash, UploadLink

#: At most this many earlier proofs are compared exactly after the band prefilter.
REUSE_CANDIDATES = 200


def with_latest_payment_id(qs: QuerySet[Proof]) -> QuerySet[Proof]:
    """Each proof with its milestone's latest payout id (``latest_payment_id``, read by
    ProofRead's ``payment_id``), in the list's own query rather than one query per row."""
    latest = Payment.objects.filter(milestone_id=OuterRef("milestone_id")).order_by("-pk").values("pk")[:1]
    return qs.annotate(latest_payment_id=Subquery(latest))


def proof_list_for(actor: Actor) -> QuerySet[Proof]:
    qs = with_latest_payment_id(Proof.objects.all())
    return qs if actor.sees_all else qs.filter(owner_id=actor.user_id)


def upload_link_list_for(actor: Actor) -> QuerySet[UploadLink]:
    """Upload links of the escrows an actor owns as client (staff: all)."""
    qs = UploadLink.objects.select_related("milestone")
    return qs if actor.sees_all else qs.filter(escrow__client_id=actor.user_id if actor.acts_as_client else None)


def proof_list_for_party(actor: Actor) -> QuerySet[Proof]:
    """Proofs an actor may reach as a party: its own (client) and, for a provider key,
    those of the escrows it provides (staff: all)."""
    if actor.sees_all:
        return Proof.objects.all()
    parties = Q(pk__in=[])
    if actor.acts_as_client:
        parties |= Q(owner_id=actor.user_id)
    if actor.acts_as_provider:
        parties |= Q(escrow__provider_id=actor.user_id)
    return Proof.objects.filter(parties)


def photo_reuse_match(hashes: list[int] | None, *, owner_id: int | None) -> dict | None:
    """The closest earlier image proof on the whole platform (any tenant) within
    ``photo_trust.REUSE_MAX_DISTANCE`` of these perceptual hashes, or None.

    Prefilter (indexed): an earlier hash sharing one 16-bit band exactly with
    the new whole-picture hash (any variant), or whose whole-picture hash shares
    one with a new crop — four index probes per band column, the pigeonhole
    guarantee of multi-index hashing for pairs within 3 bits. The few
    candidates are then compared exactly (``photo_trust.reuse_distance``).
    Returns ``{"proof_id", "distance", "same_owner"}``: the caller shows the
    proof id only to its own tenant."""
    if not hashes:
        return None
    whole_keys = photo_trust.band_keys(hashes[0])
    crop_keys = [photo_trust.band_keys(h) for h in hashes[1:]]
    query = Q()
    for band in range(photo_trust.BANDS):
        column = f"band{band}"
        query |= Q(**{column: whole_keys[band]})
        query |= Q(variant=0, **{f"{column}__in": sorted({keys[band] for keys in crop_keys})})
    candidates = list(ProofPhotoHash.objects.filter(query).values_list("proof_id", flat=True)
                      .distinct()[:REUSE_CANDIDATES])
    if not candidates:
        return None
    earlier: dict[int, list[int]] = defaultdict(lambda: [0] * 6)
    for proof_id, variant, value in ProofPhotoHash.objects.filter(proof_id__in=candidates).values_list(
            "proof_id", "variant", "phash"):
        if variant < 6:
            earlier[proof_id][variant] = value
    best = min(((photo_trust.reuse_distance(hashes, values), proof_id) for proof_id, values in earlier.items()),
               default=None)
    if best is None or best[0] > photo_trust.REUSE_MAX_DISTANCE:
        return None
    distance, proof_id = best
    owner = Proof.objects.filter(pk=proof_id).values_list("owner_id", flat=True).first()
    return {"proof_id": proof_id, "distance": distance, "same_owner": owner is not None and owner == owner_id}
