"""The pgbench floor of ``make bench`` (``bench/deposit.sql``) runs what a deposit
sends: the same statements in the same order, the key's liveness lock riding on
the same two, and nothing the request sends outside them. ``make bench`` checks
it on every run; this keeps a change to the deposit path from drifting away from
its floor unnoticed between runs."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import _keyed_client
from tests.factories import make_escrow
from tests.support.bench import BENCH, bench_script

pytestmark = pytest.mark.django_db(transaction=True)  # autocommit around the unit, as in production


def _capture_module():
    return bench_script("capture_deposit_sql")


def test_the_floor_runs_every_statement_a_deposit_sends_in_the_same_order():
    capture = _capture_module()
    sender = _keyed_client(["sender"])
    escrow = make_escrow(client=sender.user, amounts=("60.00", "40.00"))
    url = f"/api/v1/escrows/{escrow.pk}/deposit"
    assert sender.post(url, {"amount": "1.00"}, format="json", HTTP_IDEMPOTENCY_KEY="warm").status_code == 200
    with CaptureQueriesContext(connection) as ctx:
        assert sender.post(url, {"amount": "1.00"}, format="json", HTTP_IDEMPOTENCY_KEY="seen").status_code == 200

    body, outside = capture.floor_statements([q["sql"] for q in ctx.captured_queries])

    assert outside == []
    assert [capture.shape(sql) for sql in body] == capture.script_shape(BENCH / "deposit.sql")
    assert capture.shape(body[0]) == "INSERT core_idempotencykey +lock"
    assert "UPDATE core_idempotencykey +unlock" in [capture.shape(sql) for sql in body]
