"""Real concurrency against PostgreSQL: threads, each with its own API client
and database connection, released together by a barrier."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from django.db import connection
from rest_framework.test import APIClient


def run_concurrently(n: int, plaintext: str, make_request: Callable[[APIClient, int], object]) -> list:
    """Call ``make_request(client, i)`` from ``n`` threads at once; return the results in order."""
    barrier = threading.Barrier(n)

    def one(i):
        try:
            client = APIClient()  # test clients are not thread-safe: one per thread
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
            barrier.wait()
            return make_request(client, i)
        finally:
            connection.close()

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))
