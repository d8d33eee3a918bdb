"""Prometheus metrics that add up across processes, and the domain collectors.

Two kinds of numbers:

* **Counters and histograms** (requests, proofs, OCR/AI runs, webhook
  deliveries, Celery tasks) are counted where the work happens. Under
  gunicorn or a Celery prefork pool every process has its own copy, so they
  run in prometheus_client's *multiprocess mode*: with
  ``PROMETHEUS_MULTIPROC_DIR`` set, each process writes its values to files
  in that directory and a scrape adds them up (:func:`scrape`). The
  directory belongs to ONE process group — the gunicorn master and its
  workers, or one Celery worker and its pool — and is emptied when that group
  starts (:func:`prepare_multiprocess_dir`, called by ``gunicorn.conf.py``'s
  ``on_starting`` and by the worker's ``celeryd_init``). Files are named by
  pid, and pids repeat across containers, so two groups never share one.

  The web serves its group on ``GET /metrics``; a Celery worker serves its own
  on ``WORKER_METRICS_PORT`` (:func:`serve_worker_metrics`, a thread of the
  worker's main process). Prometheus scrapes each as a target and sums.

* **Domain gauges** (payouts by status, proofs waiting for review by age,
  queue depth, sweeper lag, …) describe shared state — the database and
  Redis — not one process. They are computed at scrape time by collectors
  that apps register from ``AppConfig.ready()`` (:func:`register_collector`,
  like ``kobatela.core.health.register_detail_section``) and are exported by
  the web's ``/metrics`` only, so they are never counted twice.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Iterable

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# name → callable yielding metric families, computed at each scrape of the web's /metrics.
DOMAIN_COLLECTORS: dict[str, Callable[[], Iterable[Metric]]] = {}


def register_collector(name: str, collect: Callable[[], Iterable[Metric]]) -> None:
    """Add a domain collector (call from ``AppConfig.ready()``). ``collect`` yields
    ``prometheus_client.core`` metric families; it may read the database or Redis.
    One that raises is reported as ``kobatela_metrics_collector_up{collector=name} 0``
    and the rest of the scrape goes on."""
    DOMAIN_COLLECTORS[name] = collect


class DomainCollector:
    """Runs every registered collector; one failing (database or Redis down) never fails the scrape."""

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("kobatela_metrics_collector_up", "1 when the domain collector answered at this scrape.",
                               labels=["collector"])
        for name, collect in sorted(DOMAIN_COLLECTORS.items()):
            try:
                families = list(collect())
            except Exception as exc:  # a scrape reports what it can; the failure is a metric and a log line
                logger.warning("metrics collector failed", extra={"collector": name, "error": type(exc).__name__})
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def process_registry() -> CollectorRegistry:
    """This process group's counters: every process's files in multiprocess mode, else this process's own."""
    path = multiprocess_dir()
    if not path:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)
    return registry


def scrape(*, domain: bool = True) -> bytes:
    """The Prometheus text of this process group, plus the domain gauges when ``domain``."""
    text = generate_latest(process_registry())
    if domain:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(DomainCollector())
        text += generate_latest(registry)
    return text


def prepare_multiprocess_dir() -> str | None:
    """Create and empty this process group's metrics directory (at the group's
    start, before any worker process exists). Files of the calling process
    itself are kept: it may already hold them open."""
    path = multiprocess_dir()
    if not path:
        return None
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    own = f"_{os.getpid()}.db"
    for stale in directory.glob("*.db"):
        if not stale.name.endswith(own):
            stale.unlink(missing_ok=True)
    return path


def process_exited(pid: int) -> None:
    """Forget a dead process's live gauges (gunicorn ``child_exit``, Celery pool child shutdown);
    its counters stay, so totals never go back."""
    if multiprocess_dir():
        mark_process_dead(pid)


def serve_worker_metrics(port: int, addr: str = "0.0.0.0") -> None:  # nosec B104  (a container listens on all its interfaces)
    """Serve this process group's counters over HTTP from a daemon thread (a Celery worker)."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=addr, registry=process_registry())
    logger.info("worker metrics served", extra={"port": port})
