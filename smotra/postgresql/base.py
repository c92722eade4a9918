"""Django's PostgreSQL backend, with a cheaper check of a kept connection before each request.

CONN_HEALTH_CHECKS makes Django send ``SELECT 1`` before the first query of every request: on the
agents' heartbeats that was a second round trip for one INSERT (py-spy: a quarter of a worker's
time waiting on PostgreSQL). A connection that went bad while idle (the server restarted, a backend
was terminated, a proxy timed it out) has been told so: the server sends its FATAL message and
closes, so the client's socket turns readable. An idle, healthy connection's socket has nothing to
read. So: look at the socket (one poll() that does not wait, no round trip) and only when something
is there, or libpq already knows the connection is broken, run Django's real check, which then
closes it and the request opens a new one. A connection lost silently (no FIN, no RST: a cut
cable) is found by neither check until a query times out."""

from __future__ import annotations

import select

import psycopg
from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self):
        if self.pool or self.connection is None or not self.health_check_enabled or self.health_check_done:
            return super().close_if_health_check_failed()
        if self._said_something():
            super().close_if_health_check_failed()  # SELECT 1; closes the connection if it fails
        self.health_check_done = True

    def _said_something(self) -> bool:
        """Whether the idle connection has anything to read (or is known broken): then check it."""
        pgconn = self.connection.pgconn
        if pgconn.status != pq.ConnStatus.OK or self.connection.closed:
            return True
        try:
            poller = select.poll()
            poller.register(pgconn.socket, select.POLLIN | select.POLLPRI)
            return bool(poller.poll(0))
        except (OSError, ValueError, psycopg.Error):  # no socket any more
            return True
