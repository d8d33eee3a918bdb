"""Prometheus metrics that add up across processes, and the domain collectors.

Two kinds of numbers:

* **Counters and histograms** (requests, proofs, OCR/AI runs, webhook
  deliveries, Celery tasks) are counted where the work happens. Under
  gunicorn or a Celery prefork pool every process has its own copy, so they
  run in prometheus_client's *multiprocess mode*: with
  ``PROMETHEUS_MULTIPROC_DIR`` set, each process writes its values to files
  in that directory and a scrape adds them up (:func:`scrape`).

  On one host, web, worker and beat share ONE directory (a named volume in
  compose), so one scrape of the web's ``GET /metrics`` adds up the gunicorn
  workers' AND the Celery workers' counters. Pids repeat across containers, so
  a file is named by its process *family*, host and pid —
  ``counter_web.<host>.<pid>.db``, ``counter_worker-<node>.<host>.<pid>.db``,
  ``counter_beat.<host>.<pid>.db`` (:func:`install_process_identifier`, run by
  ``kobatela/__init__.py`` before any metric exists; :func:`set_process_family`).
  A family empties only its own files when it starts
  (:func:`prepare_multiprocess_dir`: gunicorn's ``on_starting`` for ``web`` —
  which also owns the one-off commands' ``cmd`` files —, the worker's
  ``celeryd_init``, beat's ``beat_init``), and a dead process's live gauges
  are forgotten under the same name (:func:`process_exited`: gunicorn
  ``child_exit``, Celery ``worker_process_shutdown``).

  A worker on ANOTHER host (no shared directory with a web) serves its own
  family's files on ``WORKER_METRICS_PORT`` (:func:`serve_worker_metrics`, a
  thread of the worker's main process), a target of its own for Prometheus.

* **Domain gauges** (payouts by status, proofs waiting for review by age,
  queue depth, sweeper lag, …) describe shared state — the database and
  Redis — not one process. They are computed at scrape time by collectors
  that apps register from ``AppConfig.ready()`` (:func:`register_collector`,
  like ``kobatela.core.health.register_detail_section``) and are exported by
  the web's ``/metrics`` only, so they are never counted twice.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import socket
from pathlib import Path
from typing import Callable, Iterable

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, values
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


# --- Whose file is it: family, host, pid ---------------------------------------------

_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9-]")  # "_" splits a file name into type/mode/id; "." splits the id
ONE_OFF = "cmd"  # a process no family claimed: manage.py commands, shells
_family = ONE_OFF
HOST = _NOT_IN_NAME.sub("-", socket.gethostname()) or "host"


def _clean(part: str) -> str:
    return _NOT_IN_NAME.sub("-", part) or "x"


def process_identifier(pid: int | None = None) -> str:
    """The id in this process's file names: ``<family>.<host>.<pid>`` (unique among the
    processes sharing a directory, even where pids repeat across containers)."""
    return f"{_family}.{HOST}.{os.getpid() if pid is None else pid}"


def install_process_identifier() -> None:
    """Make every metric created from now on write ``<type>_<family>.<host>.<pid>.db``
    (prometheus_client reads ``values.ValueClass`` when a metric is constructed, so
    this runs before any module makes one: ``kobatela/__init__.py``)."""
    if multiprocess_dir():
        values.ValueClass = values.MultiProcessValue(process_identifier=process_identifier)


def set_process_family(family: str) -> str:
    """Name this process's family (inherited by the processes it forks): ``web``,
    ``worker-<node>``, ``beat``. The files it wrote before under another name hold only
    import-time zeros and are removed; prometheus_client reopens its files under the new
    name at the next update."""
    global _family
    previous = process_identifier()
    _family = _clean(family)
    path = multiprocess_dir()
    if path and process_identifier() != previous:
        for stale in glob.glob(os.path.join(path, f"*_{previous}.db")):
            Path(stale).unlink(missing_ok=True)
    return _family


def family_files(family: str | None = None) -> str:
    """The glob of one family's files on this host (this process's family by default)."""
    return f"*_{_clean(family) if family else _family}.{HOST}.*.db"


class FamilyCollector(MultiProcessCollector):
    """Adds up the files of one family on this host only (a worker's own endpoint)."""

    def __init__(self, registry: CollectorRegistry | None, path: str, pattern: str) -> None:
        self._pattern = pattern
        super().__init__(registry, path=path)

    def collect(self):
        return self.merge(glob.glob(os.path.join(self._path, self._pattern)), accumulate=True)


def process_registry(*, family_only: bool = False) -> CollectorRegistry:
    """Counters of every process writing to the multiprocess directory (or of this
    family's only, ``family_only``); without multiprocess mode, this process's own."""
    path = multiprocess_dir()
    if not path:
        return REGISTRY
    registry = CollectorRegistry()
    if family_only:
        FamilyCollector(registry, path, family_files())
    else:
        MultiProcessCollector(registry, path=path)
    return registry


def scrape(*, domain: bool = True) -> bytes:
    """The Prometheus text of every process sharing the directory, plus the domain gauges when ``domain``."""
    text = generate_latest(process_registry())
    if domain:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(DomainCollector())
        text += generate_latest(registry)
    return text


def prepare_multiprocess_dir(*also: str) -> str | None:
    """Create the shared directory and remove this family's files on this host (and those of
    the families ``also`` names), at the family's start, before it forks: they are a previous
    run's. Other families' files — a worker's while the web restarts — stay. This process's
    own files are kept: it may already hold them open."""
    path = multiprocess_dir()
    if not path:
        return None
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    own = f"_{process_identifier()}.db"
    for pattern in {family_files(), *(family_files(f) for f in also)}:
        for stale in directory.glob(pattern):
            if not stale.name.endswith(own):
                stale.unlink(missing_ok=True)
    return path


def process_exited(pid: int) -> None:
    """Forget a dead process of this family (same identifier as its files): its live gauges go
    (gunicorn ``child_exit``, Celery pool child shutdown); its counters stay, so totals never go back."""
    if multiprocess_dir():
        mark_process_dead(process_identifier(pid))


def serve_worker_metrics(port: int, addr: str = "0.0.0.0") -> None:  # nosec B104  (a container listens on all its interfaces)
    """Serve this family's counters over HTTP from a daemon thread: a Celery worker on a host
    with no web sharing its directory (where one does, the web's /metrics has them already)."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=addr, registry=process_registry(family_only=True))
    logger.info("worker metrics served", extra={"port": port, "family": _family})
