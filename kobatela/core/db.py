"""Rows written on the deposit's measured path without the QuerySet machinery.

``insert`` writes new instances of one model in one ``INSERT … RETURNING``,
as ``bulk_create`` does; ``update`` writes some fields of one instance by
primary key, as ``save(update_fields=…)`` does. Values go in exactly as
through the ORM: each field's ``pre_save``/``get_db_prep_save`` (``auto_now``,
decimals, JSON and SQLite's dates behave the same). Only the statement's text
is cached per model and shape instead of being built and compiled on every
call: that building was most of the Python cost of a deposit, which writes
six rows and updates two (``bench/README.md``).

Fenced, not a second ORM: only the append-only rows (ledger lines, audit
rows, escrow events, deposits, idempotency claims) and the deposit's two
updates (escrow totals, idempotency response) use it, each behind one
repository function — ``payments.ledger.post``, ``audit.services.record``,
``escrow.repository``, ``core.idempotency`` — and ``.importlinter`` lets no
other module import it. Reads and locks use the ORM. Like ``bulk_create``,
these send no ``pre_save``/``post_save`` signals; none is connected to those
models, and ``tests/core/test_db_writes.py`` keeps it that way.
"""

from __future__ import annotations

from functools import cache
from typing import Sequence, TypeVar

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, models

M = TypeVar("M", bound=models.Model)


def _connection():
    # The connection itself rather than django.db.connection, a proxy that
    # looks it up again on every attribute: the fields below touch it often.
    return connections[DEFAULT_DB_ALIAS]


@cache
def _insert_sql(model: type[models.Model], rows: int, conflict_target: tuple[str, ...] | None) -> tuple[str, tuple]:
    if not isinstance(model._meta.pk, models.AutoField):
        raise TypeError(f"insert() needs a database-assigned primary key; {model.__name__} has none")
    quote = _connection().ops.quote_name
    fields = tuple(f for f in model._meta.concrete_fields if not f.primary_key)
    row = f"({', '.join(['%s'] * len(fields))})"
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES {', '.join([row] * rows)}"
    )
    if conflict_target:
        sql += f" ON CONFLICT ({', '.join(quote(model._meta.get_field(name).column) for name in conflict_target)}) DO NOTHING"
    return f"{sql} RETURNING {quote(model._meta.pk.column)}", fields


def insert(objs: Sequence[M], *, ignore_conflict_on: tuple[str, ...] | None = None) -> list[M]:
    """Insert unsaved ``objs`` (one model) in one statement; set and return them with their pks.

    With ``ignore_conflict_on`` (the fields of a unique constraint; one row
    only) a row that would violate that constraint is not inserted and the
    result is empty: the caller learns who won without an exception, and
    without a savepoint inside a transaction. Any other violation raises
    ``IntegrityError``, as through the ORM.
    """
    if not objs:
        return []
    model = type(objs[0])
    if any(type(obj) is not model for obj in objs):
        raise TypeError("insert() takes instances of a single model")
    if ignore_conflict_on and len(objs) != 1:
        raise ValueError("ignore_conflict_on is for a single row: which rows won would be ambiguous")
    connection = _connection()
    sql, fields = _insert_sql(model, len(objs), ignore_conflict_on)
    params = [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for obj in objs for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        pks = [row[0] for row in cursor.fetchall()]
    if not pks:
        return []
    for obj, pk in zip(objs, pks, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias
    return list(objs)


@cache
def _update_sql(model: type[models.Model], field_names: tuple[str, ...]) -> tuple[str, tuple]:
    quote = _connection().ops.quote_name
    fields = tuple(model._meta.get_field(name) for name in field_names)
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    return f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {quote(model._meta.pk.column)} = %s", fields


def update(obj: models.Model, field_names: Sequence[str]) -> None:
    """``obj.save(update_fields=field_names)``, in one cached statement.

    Raises ``DatabaseError`` when no row has ``obj``'s pk, as ``save`` does.
    """
    connection = _connection()
    sql, fields = _update_sql(type(obj), tuple(field_names))
    params = [f.get_db_prep_save(f.pre_save(obj, add=False), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, obj.pk])
        if cursor.rowcount != 1:
            raise DatabaseError(f"update() of {type(obj).__name__} {obj.pk} affected {cursor.rowcount} rows.")
