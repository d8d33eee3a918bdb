"""``bench/instructions.py`` counts the instructions of real, answered requests:
its requests go through the WSGI handler and deposit, and a request the API
refuses stops the count instead of measuring an error path. (The count itself
needs valgrind and runs in ``BENCH_INSTRUCTIONS=1 make bench``.)"""

from __future__ import annotations

from decimal import Decimal

import pytest

from escrow.models import EscrowAgreement, EscrowDeposit
from tests.conftest import _keyed_client
from tests.factories import make_escrow
from tests.support.bench import bench_script

pytestmark = pytest.mark.django_db(transaction=True)


def _script():
    return bench_script("instructions")


def test_the_counted_requests_deposit_and_read():
    sender = _keyed_client(["sender"])
    first, second = (make_escrow(client=sender.user, amounts=("50.00",)) for _ in range(2))

    _script()._requests("deposit", sender.plaintext, [str(first.pk), str(second.pk)], 3)
    _script()._requests("get", sender.plaintext, [str(first.pk)], 2)

    assert EscrowDeposit.objects.filter(escrow__in=[first, second]).count() == 3
    assert EscrowAgreement.objects.get(pk=first.pk).amount_funded == Decimal("2.00")


def test_a_refused_request_stops_the_count():
    sender = _keyed_client(["sender"])
    escrow = make_escrow(client=sender.user, amounts=("50.00",))

    with pytest.raises(SystemExit, match="deposit answered 401"):
        _script()._requests("deposit", "kb_not_a_key", [str(escrow.pk)], 1)
    assert not EscrowDeposit.objects.filter(escrow=escrow).exists()
