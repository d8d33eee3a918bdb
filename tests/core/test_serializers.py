"""``represent`` reuses one serializer per class: its output must be exactly
what a fresh serializer gives, for every object, one after another."""

from decimal import Decimal

import pytest

from escrow.api import EscrowReadSerializer
from escrow.selectors import escrow_prefetch_milestones
from kobatela.core.serializers import represent
from tests.factories import fund, make_escrow

pytestmark = pytest.mark.django_db


def test_represent_matches_a_fresh_serializer_for_different_objects_in_turn():
    geofenced = make_escrow(amounts=("10.00", "20.50", "30.00"), geofence={"lat": Decimal("4.321000"),
                                                                         "lng": Decimal("15.312000"),
                                                                         "radius_m": 250})
    plain = make_escrow(amounts=("99.99",), currency="EUR")
    plain = fund(plain)
    escrows = [escrow_prefetch_milestones(e) for e in (geofenced, plain, geofenced)]

    outputs = [represent(EscrowReadSerializer, e) for e in escrows]

    assert outputs == [EscrowReadSerializer(e).data for e in escrows]
    assert [len(o["milestones"]) for o in outputs] == [3, 1, 3]
    assert outputs[0]["milestones"][0]["geofence"] == {"lat": "4.321000", "lng": "15.312000", "radius_m": "250.00"}
    assert outputs[1]["milestones"][0]["geofence"] is None
    assert outputs[1]["amount_funded"] == "99.99" and outputs[1]["status"] == "FUNDED"


def test_represent_builds_the_fields_once_per_class():
    escrow = escrow_prefetch_milestones(make_escrow())
    represent(EscrowReadSerializer, escrow)
    from kobatela.core.serializers import _instance

    first = _instance(EscrowReadSerializer)
    represent(EscrowReadSerializer, escrow)
    assert _instance(EscrowReadSerializer) is first
    assert first.fields["milestones"] is _instance(EscrowReadSerializer).fields["milestones"]
