"""Prometheus multiprocess files shared by web, worker and beat on one host
(kobatela.core.metrics): named by family, host and pid; a family's start
removes only its own; a process's exit forgets its live gauges under the same
name. Real processes (the test process itself is not in multiprocess mode)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from kobatela.core.metrics import HOST
from tests.support.observed_stack import total, write_counter

ROOT = Path(__file__).resolve().parents[2]

PROCESS = """
import os, sys
from kobatela.core import metrics
from prometheus_client import Counter, Gauge

family, amount = sys.argv[1], int(sys.argv[2])
metrics.set_process_family(family)
metrics.prepare_multiprocess_dir()
Counter("kobatela_probe", "probe", ["who"]).labels("x").inc(amount)
Gauge("kobatela_probe_busy", "probe", multiprocess_mode="livesum").set(1)
metrics.process_exited(os.getpid())  # as gunicorn's child_exit / Celery's worker_process_shutdown
print(metrics.process_identifier())
"""


def _run(directory: Path, family: str, amount: int) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    done = subprocess.run([sys.executable, "-c", PROCESS, family, str(amount)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip().splitlines()[-1]


def _scrape(directory: Path) -> str:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    return generate_latest(registry).decode()


def test_two_families_add_up_in_one_scrape_and_each_start_removes_only_its_own_files(tmp_path):
    # A previous run left files with the SAME pid in two families (pids repeat across containers).
    web_stale = write_counter(tmp_path, f"web.{HOST}.4242", "kobatela_probe", 1000, who="x")
    worker_stale = write_counter(tmp_path, f"worker-a.{HOST}.4242", "kobatela_probe", 7, who="x")

    web = _run(tmp_path, "web", 3)
    assert not web_stale.exists() and worker_stale.exists()  # the web's start removed the web's only
    worker = _run(tmp_path, "worker-b", 4)
    assert worker_stale.exists()  # worker-b is another family: worker-a's files stay

    assert web.startswith(f"web.{HOST}.") and worker.startswith(f"worker-b.{HOST}.")
    files = {p.name for p in tmp_path.glob("*.db")}
    assert {f"counter_{web}.db", f"counter_{worker}.db", worker_stale.name} <= files
    assert not any(name.startswith("gauge_livesum_") for name in files), files  # dead processes forgotten
    assert not any(".cmd." in name or name.split("_")[-1].startswith("cmd.") for name in files), files
    assert total(_scrape(tmp_path), "kobatela_probe_total", who="x") == 3 + 4 + 7
