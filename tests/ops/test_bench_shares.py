"""``bench/shares.py`` prices the deposit's removable steps by taking each out:
each variant really goes without its step (and only while it runs), every
batch deposits through the whole stack, and a share is the median of
neighbouring batches' ratios, so a slow round does not move it."""

from __future__ import annotations

import json

import pytest
from prometheus_client import REGISTRY

from escrow.models import EscrowDeposit
from tests.conftest import _keyed_client
from tests.factories import make_escrow
from tests.support.bench import bench_script


def test_a_share_is_the_median_saving_of_neighbouring_batches():
    shares = bench_script("shares")
    shipped = [3.0, 3.3, 2.7, 3.0, 9.0]  # the machine drifts, and one round is very slow
    variant = [2.7, 2.97, 2.43, 2.7, 3.0]  # 10 % cheaper than its neighbour, but in the slow round

    assert shares.share(shipped, variant) == pytest.approx(0.10)


def _posts() -> float:
    return REGISTRY.get_sample_value("django_http_requests_total_by_method_total", {"method": "POST"}) or 0.0


@pytest.mark.django_db(transaction=True)
def test_each_variant_goes_without_its_step_and_the_shipped_app_keeps_them():
    shares = bench_script("shares")
    sender = _keyed_client(["sender"])
    escrow = make_escrow(client=sender.user, amounts=("50.00",))
    variants = shares._variants()

    def deposit(name):
        before = _posts()
        with variants[name]() as app:
            headers, body = shares.inprocess.send(app, "deposit", sender.plaintext, str(escrow.pk), tool="test")
        return headers, json.loads(body), _posts() - before

    headers, body, counted = deposit("shipped")
    assert "RateLimit-Limit" in headers and body["milestones"] and "allowed_actions" in body and counted == 1
    assert deposit("metrics")[2] == 0
    assert "RateLimit-Limit" not in deposit("rate_limit")[0]
    assert deposit("response")[1] == {"id": escrow.pk}
    headers, body, counted = deposit("all")
    assert "RateLimit-Limit" not in headers and body == {"id": escrow.pk} and counted == 0
    headers, body, counted = deposit("shipped")  # every step is back
    assert "RateLimit-Limit" in headers and body["milestones"] and counted == 1
    assert EscrowDeposit.objects.filter(escrow=escrow).count() == 6


@pytest.mark.django_db(transaction=True)
def test_a_run_deposits_every_batch_and_prints_each_share(capsys):
    shares = bench_script("shares")
    shares.WARM, shares.BATCH, shares.ROUNDS = 1, 2, 2
    sender = _keyed_client(["sender"])
    escrows = [make_escrow(client=sender.user, amounts=("50.00",)) for _ in range(2)]

    shares.main([sender.plaintext, *(str(e.pk) for e in escrows)])

    printed = dict(line.split() for line in capsys.readouterr().out.splitlines())
    assert list(printed) == ["cpu_ms_per_deposit", "share_metrics", "share_rate_limit", "share_response", "share_all"]
    assert float(printed["cpu_ms_per_deposit"]) > 0
    assert all(-1 < float(printed[name]) < 1 for name in printed if name.startswith("share_"))
    assert EscrowDeposit.objects.filter(escrow__in=escrows).count() == 5 * (1 + 2 * 2)  # five variants
