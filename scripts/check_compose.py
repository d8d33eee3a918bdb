#!/usr/bin/env python3
"""Validate docker-compose.yml (run by `make test`, tests/ops/test_compose.py).

    python scripts/check_compose.py [--file docker-compose.yml] [--no-docker]

1. Where the Docker Compose plugin exists (`docker compose version` answers),
   `docker compose config --quiet` — Compose's own parser and schema, no
   daemon needed — with `.env.example` standing in for `.env`.
2. Always, a structural check of our own with PyYAML (what Compose's schema
   does not ask for, and all there is where the plugin is missing):
   known top-level keys; every service has an image or a build; every
   long-running service has a healthcheck with a command and valid durations
   (only a one-shot, `restart: "no"`, may disable it); `depends_on` names
   existing services with a known condition, and `service_healthy` only on a
   service that has a healthcheck; named volumes are declared; every
   `${VAR}` without a default is listed in `.env.example`; web, worker and
   beat mount ONE named volume at their PROMETHEUS_MULTIPROC_DIR (their
   `environment:` or the Dockerfile's ENV), so one scrape of the web's
   /metrics adds up every process's counters.
Exit 0 when valid; 1 with one line per problem otherwise.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TOP_LEVEL = {"version", "name", "services", "volumes", "networks", "configs", "secrets"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
DURATION = re.compile(r"^(\d+(\.\d+)?(us|ms|s|m|h))+$")
METRICS_SERVICES = ("web", "worker", "beat")
REQUIRED_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?\?[^}]*)?\}")


def docker_compose_available() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def docker_compose_config(path: Path) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(path, Path(tmp) / "docker-compose.yml")
        shutil.copy(ROOT / ".env.example", Path(tmp) / ".env")
        (Path(tmp) / "Dockerfile").write_text("FROM scratch\n")
        done = subprocess.run(["docker", "compose", "-f", "docker-compose.yml", "config", "--quiet"], cwd=tmp,
                              capture_output=True, text=True, timeout=60)
    return [] if done.returncode == 0 else [f"docker compose config: {line}" for line in done.stderr.splitlines()]


def env_example_names() -> set[str]:
    names = set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^\s*#?\s*([A-Z_][A-Z0-9_]*)=", line)
        if match:
            names.add(match.group(1))
    return names


def _image_metrics_dir() -> str | None:
    dockerfile = ROOT / "Dockerfile"
    match = re.search(r"PROMETHEUS_MULTIPROC_DIR=(\S+)", dockerfile.read_text()) if dockerfile.exists() else None
    return match.group(1) if match else None


def metrics_volume_problems(services: dict) -> list[str]:
    """web, worker and beat share one named volume at PROMETHEUS_MULTIPROC_DIR."""
    present = [name for name in METRICS_SERVICES if isinstance(services.get(name), dict)]
    if len(present) < 2:
        return []
    problems, sources = [], {}
    for name in present:
        service = services[name]
        env = service.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env if "=" in item)
        target = env.get("PROMETHEUS_MULTIPROC_DIR") or _image_metrics_dir()
        mounts = {}
        for volume in service.get("volumes") or []:
            if isinstance(volume, str) and ":" in volume:
                source, mounted_at = volume.split(":")[:2]
            elif isinstance(volume, dict):
                source, mounted_at = volume.get("source", ""), volume.get("target", "")
            else:
                continue
            mounts[mounted_at] = source
        source = mounts.get(target or "")
        if not source or source.startswith((".", "/", "~", "$")):
            problems.append(f"service {name}: no named volume at PROMETHEUS_MULTIPROC_DIR ({target}); web, worker "
                            "and beat share one so that one scrape of the web's /metrics adds them all up")
        else:
            sources[name] = source
    if len(set(sources.values())) > 1:
        problems.append(f"web, worker and beat mount different volumes at PROMETHEUS_MULTIPROC_DIR: {sources}")
    return problems


def structural_problems(path: Path) -> list[str]:
    text = path.read_text()
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [f"not valid YAML: {exc}"]
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict) or not doc["services"]:
        return ["no services"]
    problems = [f"unknown top-level key {key!r}" for key in doc if key not in TOP_LEVEL and not key.startswith("x-")]
    services = doc["services"]
    declared_volumes = set((doc.get("volumes") or {}).keys())
    for name, service in services.items():
        where = f"service {name}"
        if not isinstance(service, dict):
            problems.append(f"{where}: not a mapping")
            continue
        if "image" not in service and "build" not in service:
            problems.append(f"{where}: neither image nor build")
        one_shot = str(service.get("restart", "")).lower() == "no"
        check = service.get("healthcheck")
        if not check or check.get("disable"):
            if not one_shot:
                problems.append(f"{where}: no healthcheck (only a one-shot with restart: \"no\" may go without)")
        else:
            test = check.get("test")
            if not test or (isinstance(test, list) and (len(test) < 2 or test[0] not in ("CMD", "CMD-SHELL"))):
                problems.append(f"{where}: healthcheck test must be [\"CMD\", …] or [\"CMD-SHELL\", \"…\"]")
            for key in ("interval", "timeout", "start_period", "start_interval"):
                if key in check and not DURATION.match(str(check[key])):
                    problems.append(f"{where}: healthcheck {key} {check[key]!r} is not a duration")
            if "retries" in check and not (isinstance(check["retries"], int) and check["retries"] > 0):
                problems.append(f"{where}: healthcheck retries must be a positive integer")
        depends = service.get("depends_on") or {}
        items = {d: {"condition": "service_started"} for d in depends} if isinstance(depends, list) else depends
        for other, spec in items.items():
            if other not in services:
                problems.append(f"{where}: depends on unknown service {other!r}")
                continue
            condition = (spec or {}).get("condition", "service_started")
            if condition not in CONDITIONS:
                problems.append(f"{where}: unknown depends_on condition {condition!r}")
            other_check = services[other].get("healthcheck") or {}
            if condition == "service_healthy" and (not other_check or other_check.get("disable")):
                problems.append(f"{where}: waits for {other} to be healthy, but {other} has no healthcheck")
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else (volume or {}).get("source", "")
            if source and not source.startswith((".", "/", "~", "$")) and source not in declared_volumes:
                problems.append(f"{where}: volume {source!r} is not declared under volumes:")
    problems += metrics_volume_problems(services)
    known = env_example_names()
    for var in sorted(set(REQUIRED_VAR.findall(text))):
        if var not in known:
            problems.append(f"${{{var}}} is used but not listed in .env.example")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, default=ROOT / "docker-compose.yml")
    parser.add_argument("--no-docker", action="store_true", help="skip `docker compose config` even where it exists")
    args = parser.parse_args()
    problems = structural_problems(args.file)
    if not args.no_docker and docker_compose_available():
        problems += docker_compose_config(args.file)
        checker = "docker compose config + structural checks"
    else:
        checker = "structural checks (no Docker Compose plugin here)"
    for problem in problems:
        print(f"{args.file.name}: {problem}")
    if not problems:
        print(f"{args.file.name}: valid ({checker})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
