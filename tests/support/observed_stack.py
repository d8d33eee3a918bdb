"""The drill stack (:mod:`tests.support.stack`) as operators run it: real Celery
(not eager), Prometheus multiprocess mode with ONE directory shared by web,
workers and beat (as compose's volume), INFO logs, and Celery workers and a
beat of its own, each logging to a file the test can scan.

    with ObservedStack(workers=4) as stack:
        stack.start_worker("w1", pool="prefork", concurrency=2)
        stack.start_beat()
        stack.scrape(stack.web_metrics_url)
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from pathlib import Path

from kobatela.core.metrics import HOST
from tests.support.ports import free_port
from tests.support.stack import PYTHON, ROOT, Stack, production_environment

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """The samples of a Prometheus text page: (name, labels, value)."""
    out = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and not line.startswith("#"):
            out.append((match.group(1), dict(_LABEL.findall(match.group(2) or "")), float(match.group(3))))
    return out


def write_counter(directory: Path, identifier: str, name: str, value: float, **labels: str) -> Path:
    """A counter file as a process ``identifier`` (``<family>.<host>.<pid>``) leaves it
    (prometheus_client's own format), e.g. a run before a crash."""
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    path = directory / f"counter_{identifier}.db"
    values = MmapedDict(str(path))
    values.write_value(mmap_key(name, name + "_total", list(labels), list(labels.values()), name), value, 0.0)
    values.close()
    return path


def file_totals(directory: Path, pattern: str, name: str, **labels: str) -> dict[str, float]:
    """Per file of ``pattern``: the sum of the counter ``name`` (``…_total``) with ``labels``, where not 0."""
    from prometheus_client.mmap_dict import MmapedDict

    out = {}
    for path in sorted(directory.glob(pattern)):
        value = 0.0
        for key, v, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            _, sample, ls, _ = json.loads(key)
            if sample == name + "_total" and all(ls.get(k) == w for k, w in labels.items()):
                value += v
        if value:
            out[path.name] = value
    return out


def total(text: str, name: str, **labels: str) -> float:
    """Sum of the samples named ``name`` whose labels include ``labels``."""
    return sum(v for n, ls, v in samples(text) if n == name and all(ls.get(k) == w for k, w in labels.items()))


STALE_TASK = "kobatela.core.tasks.purge_idempotency_keys"


class ObservedStack(Stack):
    def __init__(self, *, escrows: int = 2, workers: int = 4) -> None:
        super().__init__(escrows=escrows, workers=workers)
        self.processes: dict[str, tuple[subprocess.Popen, Path, object]] = {}
        self.worker_ports: dict[str, int] = {}

    @property
    def dir(self) -> Path:
        return Path(self.env["KOBATELA_SERVICES_DIR"])

    def _configure(self) -> None:
        self.env.update(production_environment(
            CELERY_TASK_ALWAYS_EAGER="false", LOG_LEVEL="INFO", PROMETHEUS_MULTIPROC_DIR=str(self.dir / "metrics")))

    @property
    def metrics_dir(self) -> Path:
        return Path(self.env["PROMETHEUS_MULTIPROC_DIR"])

    def _start_gunicorn(self) -> None:
        # Files of a previous run, as after a crash (pid 999999 is nobody): each family's start
        # must remove its own — and only its own. w9 is a worker that is not started again.
        self.metrics_dir.mkdir(parents=True, exist_ok=True)
        self.stale = {family: write_counter(self.metrics_dir, f"{family}.{HOST}.999999", name, 1000, **labels)
                      for family, name, labels in (
                          ("web", "django_http_requests_total_by_view_transport_method",
                           {"view": "health-ready", "transport": "http", "method": "GET"}),
                          ("cmd", "kobatela_celery_tasks", {"task": STALE_TASK, "outcome": "success"}),
                          ("worker-w1", "kobatela_celery_tasks", {"task": STALE_TASK, "outcome": "success"}),
                          ("worker-w9", "kobatela_ops_left_by_w9", {}))}
        super()._start_gunicorn()
        self.files_after_web_start = {p.name for p in self.metrics_dir.glob("*.db")}

    def __exit__(self, *exc) -> None:
        for name in list(self.processes):
            self.stop(name)
        super().__exit__(*exc)

    # -- Celery -------------------------------------------------------------------

    def _celery(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log_path = self.dir / f"{name}.log"
        log = open(log_path, "wb")
        process = subprocess.Popen([PYTHON, "-m", "celery", "-A", "kobatela", *argv], cwd=ROOT,
                                   env={**self._process_env(), **env}, stdout=log, stderr=log)
        self.processes[name] = (process, log_path, log)

    def start_worker(self, name: str, *, pool: str = "solo", concurrency: int = 1) -> None:
        port = self.worker_ports[name] = free_port()
        self._celery(name, ["worker", "--pool", pool, "--concurrency", str(concurrency), "-n", f"{name}@%h",
                            "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                     {"WORKER_METRICS_PORT": str(port), "WORKER_METRICS_ADDRESS": "127.0.0.1"})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.scrape(self.worker_metrics_url(name))
                return
            except OSError:
                if self.processes[name][0].poll() is not None:
                    raise RuntimeError(f"worker {name} died: " + self.log(name)[-3000:]) from None
                time.sleep(0.3)
        raise RuntimeError(f"worker {name} serves no metrics: " + self.log(name)[-3000:])

    def start_beat(self) -> None:
        self._celery("beat", ["--quiet", "beat", "--loglevel", "INFO", "--schedule", str(self.dir / "celerybeat-schedule")],
                     {})

    def stop(self, name: str) -> None:
        process, _, log = self.processes.pop(name)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        log.close()

    def log(self, name: str) -> str:
        path = self.log_path if name == "web" else self.dir / f"{name}.log"
        return path.read_text(errors="replace")

    def send_task(self, task: str, *args, request_id: str | None = None) -> str:
        """Publish a task to the stack's broker, as the web does after a commit
        (through kobatela.celery's app, so the request-id header is added)."""
        from kobatela.core.request_context import reset_request_id, set_request_id
        from tests.support.broker import celery_broker

        token = set_request_id(request_id)
        try:
            with celery_broker(self.env["CELERY_BROKER_URL"]) as app:
                return app.send_task(task, args=args).id
        finally:
            reset_request_id(token)

    # -- metrics ------------------------------------------------------------------

    @property
    def web_metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def worker_metrics_url(self, name: str) -> str:
        """A worker's own endpoint (its family's files only), as for a worker on another host."""
        return f"http://127.0.0.1:{self.worker_ports[name]}/metrics"

    @staticmethod
    def scrape(url: str) -> str:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback only
            return response.read().decode()
