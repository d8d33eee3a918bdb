"""What a deposit's removable steps cost: each one's share of the request's CPU.

Usage: python bench/shares.py <api key> <escrow id> [<escrow id> ...]

A deposit's CPU is the transaction (13 statements, ``bench/deposit.sql``) and
the steps around it. Three of those steps are features one could imagine
removing, so their price is worth knowing:

- ``metrics``: django-prometheus' two middlewares (the request counters and
  latency histograms ``/metrics`` serves);
- ``rate_limit``: the per-key rate limit's Redis call (here answered "no
  limit" without asking Redis);
- ``response``: the escrow in the answer (the read serializer,
  ``allowed_actions``, rendering, and the same body stored as the
  idempotency answer), here replaced by ``{"id": …}``.

Taking a step out is only how its price is measured: the product keeps all
three (the contract promises the body, operators read the metrics, the limit
protects the platform). Deposits run in-process (``bench/inprocess.py``) in
batches of ``BATCH`` requests, one batch as shipped then one per variant, in
turn, for ``ROUNDS`` rounds, the order reversed every other round. A variant's
share is one minus the median, over rounds, of its batch's CPU time
(``time.process_time``) divided by the shipped batch's of the same round.
Neighbouring batches see the same machine, so this VM's drift (±30 % within
minutes, ``bench/README.md``) cancels out where separate runs would drown a
5 % step in it. One batch still differs from its neighbour by up to ±10 points
on this VM; over 90 rounds, the median of a step moves by a point or two
between runs.

Prints ``cpu_ms_per_deposit <ms>`` (shipped, median batch) and
``share_<variant> <fraction>`` for each variant and for all three at once
(``share_all``); ``bench/run.sh`` runs it when ``BENCH_SHARES=1``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Callable, Iterator
from unittest import mock

import inprocess  # bench/inprocess.py: this script's directory is on sys.path

BATCH = int(os.environ.get("BENCH_SHARES_BATCH", 40))
ROUNDS = int(os.environ.get("BENCH_SHARES_ROUNDS", 90))
WARM = 150  # per variant, before the rounds: caches, prepared statements, the allocator


def share(shipped: list[float], variant: list[float]) -> float:
    """One minus the median ratio of a variant's batch to the shipped batch of the same round."""
    return 1 - statistics.median(v / s for s, v in zip(shipped, variant, strict=True))


def _variants() -> dict[str, Callable[[], AbstractContextManager]]:
    """Each variant, by name: a context that takes its steps out and gives the WSGI app to call."""
    shipped = inprocess.application()  # Django is set up from here on

    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings

    import escrow.api
    from kobatela.core import throttling

    with override_settings(MIDDLEWARE=[m for m in settings.MIDDLEWARE if not m.startswith("django_prometheus.")]):
        without_metrics = WSGIHandler()  # the middleware chain is built here, from the overridden list

    @contextmanager
    def taken_out(*steps: str) -> Iterator:
        with ExitStack() as stack:
            if "rate_limit" in steps:
                stack.enter_context(mock.patch.object(throttling, "api_key_decision", lambda auth: None))
            if "response" in steps:
                stack.enter_context(mock.patch.object(
                    escrow.api, "escrow_body", lambda escrow, actor, serializer=None: {"id": escrow.pk}))
            yield without_metrics if "metrics" in steps else shipped

    return {
        "shipped": lambda: taken_out(),
        "metrics": lambda: taken_out("metrics"),
        "rate_limit": lambda: taken_out("rate_limit"),
        "response": lambda: taken_out("response"),
        "all": lambda: taken_out("metrics", "rate_limit", "response"),
    }


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit(__doc__)
    api_key, escrow_ids = argv[0], argv[1:]
    variants = _variants()
    sent = 0

    def batch(name: str, count: int) -> float:
        """CPU milliseconds per deposit over ``count`` deposits with variant ``name``."""
        nonlocal sent
        with variants[name]() as app:
            started = time.process_time()
            for _ in range(count):
                inprocess.send(app, "deposit", api_key, escrow_ids[sent % len(escrow_ids)], tool="shares")
                sent += 1
            return (time.process_time() - started) * 1000 / count

    for name in variants:
        batch(name, WARM)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants)
    for round_ in range(ROUNDS):
        for name in order if round_ % 2 == 0 else order[::-1]:
            samples[name].append(batch(name, BATCH))
    print(f"cpu_ms_per_deposit {statistics.median(samples['shipped']):.3f}")
    for name in order[1:]:
        print(f"share_{name} {share(samples['shipped'], samples[name]):.3f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
