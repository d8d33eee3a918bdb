"""Throwaway databases on the test command's PostgreSQL, for tests that run
``manage.py`` in a subprocess against a database of their own (migrations down
and up, backup and restore). Dropped on exit."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parents[2]


def _server_url(dbname: str) -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{dbname}"))


@contextmanager
def fresh_database(prefix: str = "kobatela_scratch") -> Iterator[str]:
    """The URL of a new, empty database; dropped afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(_server_url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _server_url(name)
    finally:
        with psycopg.connect(_server_url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(database_url: str, *args: str, timeout: float = 600, check: bool = True, **env: str):
    """``manage.py <args>`` in a subprocess on ``database_url`` (test settings otherwise)."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
             "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": database_url, **env},
    )
    if check and done.returncode != 0:
        raise AssertionError(f"manage.py {' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done
