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

``DATABASES["default"]["ENGINE"] = "kobatela.core.postgresql"`` (settings).
"""

from __future__ import annotations

import select

import psycopg
from django.db.backends.postgresql import base
from psycopg import pq

_WAITING = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP


class DatabaseWrapper(base.DatabaseWrapper):
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
