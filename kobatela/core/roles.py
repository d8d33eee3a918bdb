"""Least-privilege PostgreSQL roles: migrations run as the owner, the application as a role that cannot rewrite history.

Two roles (README "Operations", ``scripts/db-roles.sql``):

* the **owner** (``DATABASE_OWNER_URL``) owns every table; ``manage.py migrate``
  switches to it (``kobatela.core.management.commands.migrate``);
* the **application role** (``DATABASE_URL``): after every migrate, while still
  the owner, :func:`grant_application_role` gives it the usual SELECT, INSERT,
  UPDATE, DELETE on every table — now and, through ``ALTER DEFAULT
  PRIVILEGES``, on every table the owner creates later, so new apps' migrations
  need nothing here — and then takes UPDATE, DELETE and TRUNCATE back on the
  append-only tables registered with :func:`register_append_only` (audit log,
  seals, checkpoints, ledger). Not an owner and not a superuser, the
  application role cannot disable triggers nor set ``session_replication_role``
  either: an audit or ledger row it wrote, it cannot change.

Without ``DATABASE_OWNER_URL`` (SQLite, or one role for everything) nothing is
switched nor granted; a production start then gets a warning (``core.checks``).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from django.apps import apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

# "app_label.ModelName" of the tables the application role may only read and insert into.
APPEND_ONLY_MODELS: list[str] = []


def register_append_only(label: str) -> None:
    """Called from an app's ``AppConfig.ready()`` for a model whose rows are never changed."""
    if label not in APPEND_ONLY_MODELS:
        APPEND_ONLY_MODELS.append(label)


def owner_credentials() -> dict | None:
    return settings.DATABASE_OWNER or None


def application_role() -> str | None:
    """The role the application connects as (DATABASE_URL's), when a separate owner is configured."""
    owner = owner_credentials()
    role = settings.DATABASE_APP_ROLE
    return role if owner and role and role != owner.get("USER") else None


@contextmanager
def connected_as(credentials: dict | None, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Reconnect ``using`` with these USER/PASSWORD for the block, then as before."""
    conn = connections[using]
    if not credentials or conn.vendor != "postgresql":
        yield
        return
    saved = {key: conn.settings_dict.get(key) for key in credentials}
    conn.close()
    conn.settings_dict.update(credentials)
    try:
        yield
    finally:
        conn.close()
        conn.settings_dict.update(saved)


def as_owner(using: str = DEFAULT_DB_ALIAS):
    return connected_as(owner_credentials(), using)


def _quote(conn, name: str) -> str:
    return conn.ops.quote_name(name)


def grant_application_role(using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    """``post_migrate``: the application role's privileges (see the module's docstring). Idempotent."""
    conn = connections[using]
    role = application_role()
    if conn.vendor != "postgresql" or not role:
        return
    app = _quote(conn, role)
    existing = set(conn.introspection.table_names())
    append_only = [apps.get_model(label)._meta.db_table for label in APPEND_ONLY_MODELS]
    append_only = [_quote(conn, table) for table in append_only if table in existing]
    with transaction.atomic(using=using), conn.cursor() as cursor:
        cursor.execute("SELECT current_user")
        if cursor.fetchone()[0] == role:
            return  # not the owner: nothing this role may grant itself
        for statement in (
            f"GRANT USAGE ON SCHEMA public TO {app}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {app}",
            # Tables made before the default privileges existed (or by another role) catch up here.
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {app}",
        ):
            cursor.execute(statement)
        if append_only:
            cursor.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {', '.join(append_only)} FROM {app}")


def privilege_problems(using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Why the connected role is more powerful than the application needs (empty: least privilege)."""
    conn = connections[using]
    if conn.vendor != "postgresql":
        return []
    tables = [apps.get_model(label)._meta.db_table for label in APPEND_ONLY_MODELS]
    with conn.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        row = cursor.fetchone()
        problems = ["connects as a PostgreSQL superuser"] if row and row[0] else []
        cursor.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relname = ANY(%s) AND c.relkind = 'r'"
            " AND pg_has_role(current_user, c.relowner, 'USAGE')", [tables])
        owned = [name for (name,) in cursor.fetchall()]
        if owned:
            problems.append(f"owns (or may act as the owner of) {', '.join(sorted(owned))}")
        cursor.execute(
            "SELECT t FROM unnest(%s::text[]) AS t WHERE to_regclass(t) IS NOT NULL AND ("
            " has_table_privilege(t, 'UPDATE') OR has_table_privilege(t, 'DELETE')"
            " OR has_table_privilege(t, 'TRUNCATE'))", [tables])
        writable = [name for (name,) in cursor.fetchall()]
        if writable and not owned and not problems:
            problems.append(f"may UPDATE, DELETE or TRUNCATE {', '.join(sorted(writable))}")
    return problems
