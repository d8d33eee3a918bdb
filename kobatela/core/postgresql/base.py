"""Django's PostgreSQL backend with a liveness check that costs no round trip.

With ``CONN_HEALTH_CHECKS``, Django asks a persistent connection whether it is
still usable before the first query of every request, and its answer is a
``SELECT 1``: one round trip, on every request, to learn what is almost always
yes. This backend answers from the socket instead:

- psycopg already knows a connection that failed (``closed``, ``broken``, a
  bad status): not usable;
- an idle connection (no transaction open) has nothing to read unless the
  server sent something on its own — the ``FATAL: terminating connection``
  of a restart or an administrator, or the end of the stream when the server
  went away (both make the socket readable), or, rarely, a notice. So when
  ``poll()`` finds nothing waiting, the connection is as good as a ``SELECT 1``
  would have found it; when something is waiting, Django's own ``SELECT 1``
  decides.

What neither check can see is a server that vanished without a word (a cut
network): the next query fails, the request answers 503
(``kobatela.core.outages``) and the connection is replaced on the next one.

It also keeps one driver cursor per connection for statements that are read
before the next one is sent (:meth:`DatabaseWrapper.statement_cursor`, the
deposit's statements in ``kobatela.core.db`` and every savepoint): Django
creates, wraps and closes a cursor for each statement, about 30 µs of CPU
each, a tenth of a deposit (``bench/README.md``).

``DATABASES["default"]["ENGINE"] = "kobatela.core.postgresql"`` (settings).
"""

from __future__ import annotations

import select
from contextlib import contextmanager
from typing import Iterator

import psycopg
from django.db.backends.postgresql import base
from django.utils.asyncio import async_unsafe
from psycopg import pq

_WAITING = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP


class DatabaseWrapper(base.DatabaseWrapper):
    _statement_cursor: psycopg.Cursor | None = None

    @contextmanager
    @async_unsafe
    def statement_cursor(self) -> Iterator:
        """A cursor for statements run one after the other, each read before the next.

        What ``with self.cursor() as cursor`` gives, checks included — the
        request's liveness check, a reconnection, the thread and broken-transaction
        guards, Django's exception classes — on a driver cursor made once per
        connection instead of a new wrapped cursor per statement. Whoever watches
        queries (``CaptureQueriesContext``, ``DEBUG``'s query log, an
        ``execute_wrapper``) gets Django's cursor, and sees every statement.
        Not for a result read while another statement runs: the cursor is shared.
        """
        if self.queries_logged or self.execute_wrappers:
            with self.cursor() as cursor:
                yield cursor
            return
        self.close_if_health_check_failed()
        self.ensure_connection()
        self.validate_thread_sharing()
        self.validate_no_broken_transaction()
        with self.wrap_database_errors:
            cursor = self._statement_cursor
            if cursor is None or cursor.connection is not self.connection:  # none yet, or a replaced connection's
                cursor = self._statement_cursor = self.create_cursor()
            yield cursor

    def _close(self):
        self._statement_cursor = None
        return super()._close()

    def _savepoint(self, sid):
        with self.statement_cursor() as cursor:
            cursor.execute(self.ops.savepoint_create_sql(sid))

    def _savepoint_rollback(self, sid):
        with self.statement_cursor() as cursor:
            cursor.execute(self.ops.savepoint_rollback_sql(sid))

    def _savepoint_commit(self, sid):
        with self.statement_cursor() as cursor:
            cursor.execute(self.ops.savepoint_commit_sql(sid))

    def is_usable(self) -> bool:
        conn = self.connection
        if conn is None or conn.closed or conn.broken:
            return False
        pgconn = conn.pgconn
        if pgconn.status != pq.ConnStatus.OK:
            return False
        if pgconn.transaction_status != pq.TransactionStatus.IDLE:
            return super().is_usable()  # mid-transaction: not ours to guess
        try:
            poller = select.poll()
            poller.register(pgconn.socket, _WAITING)
            waiting = poller.poll(0)
        except (OSError, ValueError, psycopg.Error):
            return False
        return super().is_usable() if waiting else True
