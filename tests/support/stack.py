"""A production-like Kobatela of the test's own, to drill outages on: a private
PostgreSQL and Redis (``scripts/services.sh``), migrated, seeded with a sender
key and escrows (``bench/seed.py``), served by gunicorn sync workers. The
test command's own PostgreSQL and Redis are shared by every xdist worker and
must never be stopped; these can be.

    with Stack(escrows=8) as stack:
        stack.post(f"/api/v1/escrows/{stack.escrow_ids[0]}/deposit", {"amount": "1.00"}, key="k1")
        stack.stop_postgres(); stack.start_postgres()
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def production_environment(**overrides: str) -> dict[str, str]:
    """What a production start of the app needs in its environment (as bench/run.sh
    gives it), secrets made up for the occasion; ``overrides`` say where its parts are."""
    return {
        "DJANGO_SETTINGS_MODULE": "kobatela.settings",
        "DJANGO_ENV": "production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_DEBUG": "false",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "PSP_WEBHOOK_SECRET": "whsec_drill_" + secrets.token_hex(16),
        "LOG_LEVEL": "WARNING",
        # Drills hammer one API key far above the per-key limit (whose own tests are in tests/core):
        # limits high enough never to answer, still counted in Redis as in production.
        "RATE_LIMIT_BURST_PER_SECOND": "1000000",
        "RATE_LIMIT_PER_MINUTE": "60000000",
        **overrides,
    }



@dataclass(frozen=True)
class Answer:
    status: int
    seconds: float
    body: dict
    headers: dict[str, str]


class Stack:
    def __init__(self, *, escrows: int = 8, workers: int = 3) -> None:
        self.escrows, self.workers = escrows, workers
        self.env: dict[str, str] = {}
        self.gunicorn: subprocess.Popen | None = None
        self.port = 0
        self.api_key = ""
        self.escrow_ids: list[int] = []

    # -- lifecycle -------------------------------------------------------------

    def __enter__(self) -> "Stack":
        try:
            self._start_services()
            # Durable commits, as in production: the throwaway cluster of the
            # test command turns synchronous_commit off for speed, and then a
            # crash loses the last commits it had already acknowledged.
            self.sql("ALTER SYSTEM SET synchronous_commit = on")
            self.sql("SELECT pg_reload_conf()")
            self._configure()
            self._manage("migrate", "--noinput")
            self.api_key = self._manage("create_api_key", "--email", "drill@example.com", "--scopes", "sender",
                                        "--name", "drill").strip().splitlines()[-1]
            seeded = self._run([PYTHON, "bench/seed.py", "drill@example.com", str(self.escrows)])
            self.escrow_ids = [int(i) for line in seeded.splitlines() if line.startswith("ESCROWS ")
                               for i in line.split()[1:]]
            self._start_gunicorn()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.gunicorn is not None:
            self.gunicorn.send_signal(signal.SIGTERM)
            try:
                self.gunicorn.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.gunicorn.kill()
            self.gunicorn = None
            self._log.close()
        if self.env.get("KOBATELA_SERVICES_DIR"):
            self._bash("services_stop")

    def _bash(self, command: str) -> str:
        script = f"source scripts/services.sh; {command}"
        env = {**os.environ, **self.env}
        if not self.env:
            env.pop("KOBATELA_SERVICES_DIR", None)  # the test command's own services are not ours to touch
        done = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{command}: {done.stderr[-2000:]}")
        return done.stdout

    def _start_services(self) -> None:
        out = self._bash("services_start >&2 && env | grep -E "
                         "'^(DATABASE_URL|DATABASE_OWNER_URL|DATABASE_SUPERUSER_URL|REDIS_URL|CELERY_BROKER_URL|"
                         "KOBATELA_SERVICES_DIR|_KOB_PG_BIN)='")
        self.env.update(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def _configure(self) -> None:
        self.env.update(production_environment(CELERY_TASK_ALWAYS_EAGER="true"))

    def _process_env(self) -> dict[str, str]:
        """The stack's environment: the test run's, less its Django and pytest settings."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
        return {**inherited, **self.env}

    def _run(self, argv: list[str]) -> str:
        done = subprocess.run(argv, cwd=ROOT, env=self._process_env(), capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"{shlex.join(argv)}: {done.stderr[-2000:]}")
        return done.stdout

    def _manage(self, *args: str) -> str:
        return self._run([PYTHON, "manage.py", *args])

    def _start_gunicorn(self) -> None:
        self.port = free_port()
        # To a file, never a pipe nobody drains: a full pipe blocks every worker's logging.
        self.log_path = Path(self.env["KOBATELA_SERVICES_DIR"]) / "gunicorn.log"
        self._log = open(self.log_path, "wb")
        self.gunicorn = subprocess.Popen(
            [str(Path(PYTHON).with_name("gunicorn")), "kobatela.wsgi", "--workers", str(self.workers),
             "--worker-class", "sync", "--bind", f"127.0.0.1:{self.port}", "--log-level", "warning",
             "--timeout", "30"],
            cwd=ROOT, env=self._process_env(), stdout=self._log, stderr=self._log,  # access log on stdout
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.get("/health/live").status == 200:
                    return
            except OSError:
                pass
            if self.gunicorn.poll() is not None:
                raise RuntimeError("gunicorn died: " + self.log_path.read_text()[-2000:])
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer /health/live")

    # -- PostgreSQL -------------------------------------------------------------

    def _pg_ctl(self, *args: str) -> None:
        data = f"{self.env['KOBATELA_SERVICES_DIR']}/pgdata"
        log = f"{self.env['KOBATELA_SERVICES_DIR']}/postgres.log"
        self._bash(f"_kob_as_pg \"$(_kob_pg_bin)/pg_ctl\" -D {shlex.quote(data)} -l {shlex.quote(log)} {' '.join(args)}")

    def stop_postgres(self) -> None:
        """As a crash would: ``pg_ctl stop -m immediate``; every connection dies."""
        self._pg_ctl("-m", "immediate", "-w", "stop")

    def start_postgres(self) -> None:
        self._pg_ctl("-w", "-t", "60", "start")

    # -- HTTP ---------------------------------------------------------------------

    def _request(self, method: str, path: str, body: dict | None = None, key: str | None = None,
                 timeout: float = 30) -> Answer:
        headers = {"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"}
        if key:
            headers["Idempotency-Key"] = key
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        try:
            parsed = json.loads(raw) if raw else {}
        except ValueError:
            parsed = {"raw": raw[:500].decode(errors="replace")}
        return Answer(response.status, time.monotonic() - started, parsed, {k.lower(): v for k, v in response.getheaders()})

    def get(self, path: str) -> Answer:
        return self._request("GET", path)

    def post(self, path: str, body: dict, *, key: str | None = None) -> Answer:
        return self._request("POST", path, body, key)

    def sql(self, query: str) -> str:
        """One value from the stack's database, through psql, as the superuser (the
        app itself runs as the least-privileged role of DATABASE_URL)."""
        url = self.env["DATABASE_SUPERUSER_URL"]
        return self._bash(f"\"$(_kob_pg_bin)/psql\" -At {shlex.quote(url)} -c {shlex.quote(query)}").strip()
