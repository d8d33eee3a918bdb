"""Raw connections to the test database as a given role: the superuser (to
tamper as an insider with full rights would), or the application role."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, contextmanager
from typing import Iterator
from urllib.parse import urlparse

import psycopg
from django.db import connection


def _params(user: str) -> dict:
    params = connection.get_connection_params()  # the test database's name, host and port
    return {**{k: v for k, v in params.items() if k in ("host", "port", "dbname", "password")}, "user": user}


def superuser_name() -> str:
    return urlparse(os.environ["DATABASE_SUPERUSER_URL"]).username


@contextmanager
def connect_as(user: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(**_params(user), autocommit=True) as raw:
        yield raw


def superuser() -> AbstractContextManager[psycopg.Connection]:
    return connect_as(superuser_name())
