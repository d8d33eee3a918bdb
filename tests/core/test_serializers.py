"""``represent`` reuses one serializer per class: its output must be what the
read serializer promises, written out below, for every object in turn, and
never a value left over from the object before."""

from datetime import datetime
from decimal import Decimal

import pytest

from escrow.api import EscrowReadSerializer
from escrow.models import EscrowAgreement
from escrow.selectors import escrow_prefetch_milestones
from kobatela.core.serializers import represent
from tests.factories import fund, make_escrow

pytestmark = pytest.mark.django_db


def iso(moment: datetime) -> str:
    """A datetime as the API writes it (ISO 8601, UTC as ``Z``)."""
    return moment.isoformat().replace("+00:00", "Z")


def expected(escrow: EscrowAgreement, **fields) -> dict:
    """What the escrow's own identity and dates read as; ``fields`` gives the rest literally."""
    return {"id": escrow.pk, "client_id": escrow.client_id, "provider_id": escrow.provider_id,
            "deadline_at": iso(escrow.deadline_at), "created_at": iso(escrow.created_at),
            "updated_at": iso(escrow.updated_at), **fields}


def milestone_ids(escrow: EscrowAgreement) -> list[int]:
    return list(escrow.milestones.order_by("idx").values_list("pk", flat=True))


@pytest.fixture
def geofenced():
    return escrow_prefetch_milestones(make_escrow(
        amounts=("10.00", "20.50", "30.00"),
        geofence={"lat": Decimal("4.321000"), "lng": Decimal("15.312000"), "radius_m": 250},
    ))


@pytest.fixture
def invoiced():
    escrow = make_escrow(amounts=("99.99",), currency="EUR", proof_type="INVOICE",
                         proof_requirements={"expected_amount": "99.99", "currency": "EUR"})
    return escrow_prefetch_milestones(fund(escrow))


def geofenced_output(escrow: EscrowAgreement) -> dict:
    fence = {"lat": "4.321000", "lng": "15.312000", "radius_m": "250.00"}
    return expected(
        escrow, amount_total="60.50", amount_funded="0.00", amount_released="0.00", amount_refunded="0.00",
        currency="USD", status="DRAFT", inspection_hours=0, release_conditions={},
        milestones=[
            {"id": pk, "idx": idx, "label": f"Step {idx}", "amount": amount, "status": "WAITING",
             "proof_type": "PHOTO", "proof_requirements": {}, "geofence": fence}
            for idx, (pk, amount) in enumerate(zip(milestone_ids(escrow), ["10.00", "20.50", "30.00"]), start=1)
        ],
    )


def invoiced_output(escrow: EscrowAgreement) -> dict:
    [pk] = milestone_ids(escrow)
    return expected(
        escrow, amount_total="99.99", amount_funded="99.99", amount_released="0.00", amount_refunded="0.00",
        currency="EUR", status="FUNDED", inspection_hours=0, release_conditions={},
        milestones=[{"id": pk, "idx": 1, "label": "Step 1", "amount": "99.99", "status": "WAITING",
                     "proof_type": "INVOICE", "proof_requirements": {"expected_amount": "99.99", "currency": "EUR"},
                     "geofence": None}],
    )


def test_represent_gives_each_object_its_own_values_in_turn(geofenced, invoiced):
    # The third is the first escrow loaded again: another object, so nothing can be kept by identity.
    again = escrow_prefetch_milestones(EscrowAgreement.objects.get(pk=geofenced.pk))
    escrows = [geofenced, invoiced, again]

    outputs = [represent(EscrowReadSerializer, e) for e in escrows]

    assert outputs == [geofenced_output(geofenced), invoiced_output(invoiced), geofenced_output(again)]
    assert outputs == [EscrowReadSerializer(e).data for e in escrows]  # and what a fresh serializer gives


def test_represent_reads_the_object_it_is_given_not_the_last_one(geofenced):
    before = represent(EscrowReadSerializer, geofenced)
    geofenced.status, geofenced.currency = "CANCELLED", "EUR"
    milestone = geofenced.milestones.all()[0]
    milestone.label, milestone.geofence_lat = "Changed", None

    after = represent(EscrowReadSerializer, geofenced)

    assert (before["status"], before["currency"]) == ("DRAFT", "USD")
    assert (after["status"], after["currency"]) == ("CANCELLED", "EUR")
    assert after["milestones"][0]["label"] == "Changed" and after["milestones"][0]["geofence"] is None
    assert after["milestones"][1] == before["milestones"][1]


def test_represent_builds_the_fields_once_per_class():
    escrow = escrow_prefetch_milestones(make_escrow())
    represent(EscrowReadSerializer, escrow)
    from kobatela.core.serializers import _instance

    first = _instance(EscrowReadSerializer)
    represent(EscrowReadSerializer, escrow)
    assert _instance(EscrowReadSerializer) is first
    assert first.fields["milestones"] is _instance(EscrowReadSerializer).fields["milestones"]
