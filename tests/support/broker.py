"""A Redis of the test's own, as the Celery broker, that the test can stop and start again.

The test command's Redis is shared by every xdist worker, so an outage is
drilled on a private ``redis-server`` on a free loopback port instead. While
:func:`celery_broker` is active, Celery publishes for real (not eagerly) to
that server, so the broker outage is the real one: a refused connection in
kombu's publish, through the real ``enqueue_on_commit``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager

import redis
from celery import current_app
from django.test import override_settings
from kombu import pools

from tests.support.ports import free_port


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.mkdtemp(prefix="kobatela-broker-")
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", self._dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the test's redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def queued(self, queue: str = "celery") -> int:
        """Messages waiting in a queue (kombu's Redis transport keeps one list per queue)."""
        return redis.Redis.from_url(self.url).llen(queue)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


def _drop_producer_pools(app) -> None:
    # Celery keeps one connection pool and one producer pool per app, made on
    # first use from broker_url (kombu keeps them per URL, process-wide); drop
    # them all so the next publish connects afresh to the URL then configured.
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def celery_broker(url: str):
    """Publish to ``url`` for real (not eagerly) while inside."""
    app = current_app
    # Publishing connects to broker_write_url: unlike broker_url, which the
    # CELERY_BROKER_URL environment variable (set by the test command) always
    # overrides, it can be pointed elsewhere from here.
    saved = app.conf.broker_write_url
    _drop_producer_pools(app)
    app.conf.broker_write_url = url
    try:
        with override_settings(CELERY_TASK_ALWAYS_EAGER=False):  # what enqueue() reads
            yield app
    finally:
        _drop_producer_pools(app)
        app.conf.broker_write_url = saved


def start_worker(broker_url: str, **env: str) -> subprocess.Popen:
    """A real Celery worker (solo pool, one task at a time) on ``broker_url``,
    against the test database, with the test settings plus ``env``
    (tests.support.worker_settings)."""
    import os
    import sys
    from pathlib import Path

    from django.db import connection

    db = connection.settings_dict
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
        "DJANGO_SETTINGS_MODULE": "tests.support.worker_settings",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_BROKER_URL": broker_url,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "kobatela", "worker", "--pool", "solo", "--concurrency", "1",
         "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=Path(__file__).resolve().parents[2], env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def wait_for(condition, seconds: float) -> bool:
    """Poll ``condition`` every 0.2 s until it is true (True) or ``seconds`` pass (False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def stop_workers(workers: list[subprocess.Popen]) -> None:
    """Terminate the workers still running (a killed one is already gone)."""
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(20)
