"""Admin review queue benchmark: the proof changelist with 10,000 pending proofs.

Run through ``bench/admin_queue.sh`` (it starts a throwaway PostgreSQL and
Redis). Seeds ``BENCH_QUEUE_PROOFS`` (default 10,000) pending proofs with
``bulk_create`` — each on its own escrow and milestone, a quarter flagged by
the AI, ages over a week (tests/admin/queue_seed.py) — then requests the
queue as a reviewer with the Django test client, in-process against
PostgreSQL, ``BENCH_QUEUE_RUNS`` times per measure (default 30, after one
warm-up), and prints median, p95 and the number of SQL queries per request,
next to the reference.

The query count is the point as much as the time: it must not depend on the
page size or on the number of proofs (tests/admin/test_admin_queue.py
asserts it).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402

PROOFS = int(os.environ.get("BENCH_QUEUE_PROOFS", "10000"))
RUNS = int(os.environ.get("BENCH_QUEUE_RUNS", "30"))
TARGET_MEDIAN_MS = 300
REFERENCE = f"< {TARGET_MEDIAN_MS} ms median, 6 queries (2-core machine)"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def reviewer_client() -> Client:
    from django.contrib.auth.models import Group

    from kobatela.accounts.roles import REVIEWER, sync_roles
    from tests.factories import UserFactory

    sync_roles()
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=REVIEWER))
    client = Client()
    client.force_login(user)
    return client


def measure(client: Client, params: dict) -> dict:
    url = reverse("admin:proofs_proof_changelist")
    response = client.get(url, params)  # warm-up (templates, caches)
    assert response.status_code == 200, response.status_code
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        response = client.get(url, params)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params)
    return {"median_ms": statistics.median(timings) * 1000, "p95_ms": percentile(timings, 0.95) * 1000,
            "queries": len(ctx.captured_queries), "rows": len(response.context["cl"].result_list),
            "total": response.context["cl"].result_count}


def main() -> None:
    from tests.admin.queue_seed import seed_pending_proofs

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0)
    try:
        started = time.perf_counter()
        ids = seed_pending_proofs(PROOFS)
        seeded_s = time.perf_counter() - started
        client = reviewer_client()
        from proofs.models import Proof

        sha_prefix = Proof.objects.filter(pk=ids[len(ids) // 2]).values_list("sha256", flat=True).get()[:10]
        results = {
            "queue, page 1 (50 rows)": measure(client, {}),
            "queue, page 100 (of 200)": measure(client, {"p": 100}),
            "filtered: high risk, EUR, < 7 days": measure(client, {"risk": "high", "currency": "EUR", "age": "7d"}),
            "search: sha256 prefix": measure(client, {"q": sha_prefix}),
        }
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)

    print()
    print(f"Admin review queue: {PROOFS} pending proofs seeded in {seeded_s:.1f} s; {RUNS} requests per measure")
    print(f"{'measure':<38}{'median':>10}{'p95':>10}{'queries':>9}{'rows':>7}   reference")
    print("-" * 100)
    worst = 0.0
    for name, r in results.items():
        worst = max(worst, r["median_ms"])
        print(f"{name:<38}{r['median_ms']:>8.1f}ms{r['p95_ms']:>8.1f}ms{r['queries']:>9}{r['rows']:>7}   {REFERENCE}")
    verdict = "within" if worst < TARGET_MEDIAN_MS else "OVER"
    print(f"\nslowest median {worst:.1f} ms: {verdict} the {TARGET_MEDIAN_MS} ms target")


if __name__ == "__main__":
    main()
