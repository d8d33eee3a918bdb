"""Rows read and written on the deposit's measured path without the QuerySet machinery.

``insert`` writes new instances of one model in one ``INSERT … RETURNING``,
as ``bulk_create`` does; ``update`` writes some fields of one instance by
primary key, as ``save(update_fields=…)`` does; ``select`` reads whole rows
matching equalities, optionally ``FOR UPDATE``, as ``filter(…)`` does. Values
go in and come out exactly as through the ORM: each field's
``pre_save``/``get_db_prep_save`` on the way in (``auto_now``, decimals, JSON
and SQLite's dates behave the same), the backend's and the field's
converters on the way out, then ``Model.from_db``. Only the statement's text
is cached per model and shape instead of being built and compiled on every
call: that building was most of the Python cost of a deposit, which locks
one row, reads one list, writes six rows and updates two (``bench/README.md``).
A text that does not change is also what lets PostgreSQL prepare it once per
connection (``prepare_threshold`` in settings). On PostgreSQL the statements
run on the backend's shared driver cursor (``statement_cursor`` in
``kobatela.core.postgresql``) rather than a new cursor each.

Fenced, not a second ORM: only the append-only rows (ledger lines, audit
rows, escrow events, deposits, idempotency claims), the deposit's two
updates (escrow totals, idempotency response), the escrow's lock and its
milestones' read use it, each behind one repository function —
``payments.ledger.post``, ``audit.services.record``, ``escrow.repository``,
``core.idempotency`` — and ``.importlinter`` lets no other module import it.
Every other read and lock uses the ORM. Like ``bulk_create``,
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


def _cursor(connection):
    """The PostgreSQL backend's shared statement cursor (``kobatela.core.postgresql``); Django's elsewhere."""
    statement_cursor = getattr(connection, "statement_cursor", None)
    return statement_cursor() if statement_cursor is not None else connection.cursor()


def _column(model: type[models.Model], name: str) -> str:
    """The quoted column of field ``name`` (a name or an attname: ``escrow``, ``escrow_id``)."""
    return _connection().ops.quote_name(model._meta.get_field(name).column)


@cache
def _insert_sql(model: type[models.Model], rows: int, conflict_target: tuple[str, ...] | None,
                also_return: str = "") -> tuple[str, tuple]:
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
        sql += f" ON CONFLICT ({', '.join(_column(model, name) for name in conflict_target)}) DO NOTHING"
    return f"{sql} RETURNING {', '.join([quote(model._meta.pk.column), *filter(None, [also_return])])}", fields


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
    rows = _insert(objs, ignore_conflict_on)
    return list(objs) if rows else []


def insert_and_lock(obj: models.Model, *, ignore_conflict_on: tuple[str, ...], lock: int) -> bool | None:
    """``insert([obj], ignore_conflict_on=…)`` that, when it inserts the row, also
    takes the PostgreSQL session advisory lock ``lock`` in the same statement
    (``pg_try_advisory_lock`` in ``RETURNING``, evaluated only for an inserted
    row): ``None`` when the row was not inserted, else whether this session now
    holds the lock. One round trip where a claim and its liveness lock took two.
    """
    rows = _insert([obj], ignore_conflict_on, "pg_try_advisory_lock(%s)", [lock])
    return rows[0][1] if rows else None


def _insert(objs: Sequence[M], conflict_target: tuple[str, ...] | None, also_return: str = "",
            also_params: Sequence = ()) -> list[tuple]:
    connection = _connection()
    sql, fields = _insert_sql(type(objs[0]), len(objs), conflict_target, also_return)
    params = [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for obj in objs for f in fields]
    with _cursor(connection) as cursor:
        cursor.execute(sql, [*params, *also_params])
        rows = cursor.fetchall()
    if rows:  # else: a conflict ignored, nothing inserted
        for obj, row in zip(objs, rows, strict=True):
            obj.pk = row[0]
            obj._state.adding = False
            obj._state.db = connection.alias
    return rows


@cache
def _update_sql(model: type[models.Model], field_names: tuple[str, ...], also_return: str = "") -> tuple[str, tuple]:
    quote = _connection().ops.quote_name
    fields = tuple(model._meta.get_field(name) for name in field_names)
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    sql = f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {quote(model._meta.pk.column)} = %s"
    return f"{sql} RETURNING {also_return}" if also_return else sql, fields


def update(obj: models.Model, field_names: Sequence[str]) -> None:
    """``obj.save(update_fields=field_names)``, in one cached statement.

    Raises ``DatabaseError`` when no row has ``obj``'s pk, as ``save`` does.
    """
    _update(obj, field_names)


def update_and_unlock(obj: models.Model, field_names: Sequence[str], *, lock: int) -> None:
    """``update(obj, field_names)`` that also releases this session's advisory
    lock ``lock`` in the same statement (``pg_advisory_unlock`` in ``RETURNING``).

    A session lock is not transactional: inside a transaction it is released
    at once, and stays released if the transaction then rolls back. When no
    row has ``obj``'s pk, nothing is released and ``DatabaseError`` is raised.
    """
    _update(obj, field_names, "pg_advisory_unlock(%s)", [lock])


def _update(obj: models.Model, field_names: Sequence[str], also_return: str = "", also_params: Sequence = ()) -> None:
    connection = _connection()
    sql, fields = _update_sql(type(obj), tuple(field_names), also_return)
    params = [f.get_db_prep_save(f.pre_save(obj, add=False), connection) for f in fields]
    with _cursor(connection) as cursor:
        cursor.execute(sql, [*params, obj.pk, *also_params])
        if cursor.rowcount != 1:
            raise DatabaseError(f"update() of {type(obj).__name__} {obj.pk} affected {cursor.rowcount} rows.")


@cache
def _select_sql(model: type[models.Model], where: tuple[str, ...], any_of: tuple[str, ...], for_update: bool,
                order_by: tuple[str, ...]) -> tuple[str, tuple]:
    connection = _connection()
    quote = connection.ops.quote_name
    fields = tuple(model._meta.concrete_fields)
    conditions = [f"{_column(model, name)} = %s" for name in where]
    if any_of:
        conditions.append(f"({' OR '.join(f'{_column(model, name)} = %s' for name in any_of)})")
    sql = (f"SELECT {', '.join(quote(f.column) for f in fields)} FROM {quote(model._meta.db_table)} "
           f"WHERE {' AND '.join(conditions)}")
    if order_by:
        sql += f" ORDER BY {', '.join(f'{_column(model, name)} ASC' for name in order_by)}"
    if for_update and connection.features.has_select_for_update:  # SQLite: BEGIN IMMEDIATE serialises instead
        sql += " FOR UPDATE"
    # What the compiler would apply to each column read (apply_converters).
    converters = []
    for field in fields:
        column = field.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        converters.append((tuple(found), column))
    return sql, tuple(converters)


def select(model: type[M], where: dict[str, object], *, any_of: dict[str, object] | None = None,
           for_update: bool = False, order_by: Sequence[str] = ()) -> list[M]:
    """The rows of ``model`` whose fields equal every value of ``where`` (and one
    value of ``any_of``, when given), as instances, in ``order_by`` order
    (ascending); ``FOR UPDATE`` locks them until the transaction ends.
    ``where`` must not be empty, and ``any_of``, when given, neither.
    """
    if not where or any_of == {}:
        raise ValueError("select() needs at least one condition in where, and in any_of when given")
    connection = _connection()
    any_of = any_of or {}
    sql, converters = _select_sql(model, tuple(where), tuple(any_of), for_update, tuple(order_by))
    params = [model._meta.get_field(name).get_db_prep_value(value, connection)
              for name, value in (*where.items(), *any_of.items())]
    with _cursor(connection) as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    instances = []
    for row in rows:
        values = list(row)
        for i, (funcs, column) in enumerate(converters):
            for convert in funcs:
                values[i] = convert(values[i], column, connection)
        instances.append(model.from_db(connection.alias, None, values))
    return instances
