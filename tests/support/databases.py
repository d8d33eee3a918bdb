"""Throwaway databases on the test command's PostgreSQL, for tests that run
``manage.py`` in a subprocess against a database of their own (migrations down
and up, backup and restore). Dropped on exit.

Like the suite's own database, a scratch database belongs to the owner role
and the application connects as the application role (``kobatela.core.roles``):
:func:`database_env` gives a subprocess both URLs, so that its migrations run
as the owner of *that* database, never of the suite's."""

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


def _url(variable: str, dbname: str) -> str:
    parts = urlsplit(os.environ.get(variable) or os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def database_env(url: str) -> dict[str, str]:
    """The database variables of a process working on the database of ``url``
    (the application role's URL): that URL, and the owner's URL of the same database."""
    name = urlsplit(url).path.lstrip("/")
    return {"DATABASE_URL": url, "DATABASE_OWNER_URL": _url("DATABASE_OWNER_URL", name)}


@contextmanager
def fresh_database(prefix: str = "kobatela_scratch") -> Iterator[str]:
    """The application role's URL of a new, empty database owned by the owner role; dropped afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    owner = urlsplit(os.environ.get("DATABASE_OWNER_URL") or os.environ["DATABASE_URL"]).username
    with psycopg.connect(_url("DATABASE_SUPERUSER_URL", "postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
    try:
        yield _url("DATABASE_URL", name)
    finally:
        with psycopg.connect(_url("DATABASE_SUPERUSER_URL", "postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(database_url: str, *args: str, timeout: float = 600, check: bool = True, **env: str):
    """``manage.py <args>`` in a subprocess on ``database_url`` (test settings otherwise)."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
             "DJANGO_SETTINGS_MODULE": "tests.settings", **database_env(database_url), **env},
    )
    if check and done.returncode != 0:
        raise AssertionError(f"manage.py {' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done
