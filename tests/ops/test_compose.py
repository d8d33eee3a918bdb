"""docker-compose.yml is checked on every `make test` (issue #18) by
scripts/check_compose.py: `docker compose config` where the plugin exists,
and the structural checks always (every service has a healthcheck, beat's
being the heartbeat age; web, worker and beat share the metrics volume)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _check(path: Path | None = None) -> subprocess.CompletedProcess:
    argv = [sys.executable, "scripts/check_compose.py"] + (["--file", str(path)] if path else [])
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_the_compose_file_is_valid():
    done = _check()
    assert done.returncode == 0, done.stdout + done.stderr
    print(done.stdout)


def test_every_long_running_service_has_a_healthcheck_and_beat_checks_its_heartbeat():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name, service in services.items():
        if service.get("restart") != "no":
            assert service.get("healthcheck", {}).get("test"), name
    assert "check_heartbeat" in services["beat"]["healthcheck"]["test"]


def test_the_checker_finds_what_is_wrong(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("""
services:
  web:
    image: kobatela:latest
    depends_on:
      db: {condition: service_healthy}
      cache: {condition: service_started}
    volumes: ["media:/app/media"]
  db:
    image: postgres:15
    environment: {POSTGRES_PASSWORD: "${NOT_IN_ENV_EXAMPLE:?set it}"}
    healthcheck: {test: ["CMD", "pg_isready"], interval: soon}
""")
    done = _check(broken)
    assert done.returncode == 1
    for expected in ("service web: no healthcheck", "unknown service 'cache'", "interval 'soon' is not a duration",
                     "volume 'media' is not declared", "${NOT_IN_ENV_EXAMPLE} is used but not listed"):
        assert expected in done.stdout, (expected, done.stdout)


def test_the_checker_wants_web_worker_and_beat_to_share_the_metrics_volume(tmp_path):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    compose["services"]["worker"]["volumes"] = ["media:/app/media"]  # the worker's files would be its own
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(compose))
    done = _check(broken)
    assert done.returncode == 1
    assert "service worker: no named volume at PROMETHEUS_MULTIPROC_DIR (/tmp/prometheus)" in done.stdout, done.stdout
