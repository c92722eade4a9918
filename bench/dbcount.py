"""Database statements and round trips, counted inside the server's processes (bench-only).

PostgreSQL cannot count statements here: pg_stat_statements needs ``shared_preload_libraries``,
i.e. a restart of a server other people use (this one has it empty), so the bench counts in the
server instead. bench/settings.py calls :func:`install` when ``BENCH_COUNTS_DIR`` is set; then every
process that loads the settings (the workers, and `serve`'s supervisor and alerting worker) keeps
its counts in a small memory-mapped file of its own in that directory, and bench/run.py adds the
files up (:func:`read_totals`) before and after each scenario. Counted:

- ``statements``: every statement Django's cursors send (ORM and raw SQL, savepoints included),
  from ``connection.execute_wrappers``, installed on each connection as it is created;
- ``queries``: every query psycopg sends (``Cursor.execute`` / ``executemany``): Django's statements
  plus what Django sends past its wrappers, i.e. the ``SELECT 1`` of ``CONN_HEALTH_CHECKS``, the empty
  query of the pool's connection check and the time zone set on a new connection;
- ``transaction_commands``: the ``BEGIN`` psycopg sends before a transaction's first statement and
  its ``COMMIT``/``ROLLBACK``: two per commit or rollback of a transaction that did something;
- ``connects``: new connections (``psycopg.Connection.connect``), the pool's included.

On PostgreSQL the database round trips of a request are ``queries + transaction_commands`` (a
connection's own handshake aside): psycopg waits for each answer, no pipelining. On SQLite only
``statements`` mean something (no psycopg, no network). Each count costs a lock and a 8-byte write
into the map, well under a microsecond."""

from __future__ import annotations

import mmap
import os
import struct
import threading
import time
from pathlib import Path

SLOTS = ("statements", "queries", "transaction_commands", "connects")
_SIZE = 8 * len(SLOTS)


class _Counters:
    """This process's counts, mirrored into ``<dir>/<pid>-<ns>.counts`` (re-opened after a fork)."""

    def __init__(self, directory: str):
        self.directory = directory
        self.lock = threading.Lock()
        self.pid = None
        self.values = [0] * len(SLOTS)
        self.map = None

    def add(self, slot: int, amount: int = 1) -> None:
        with self.lock:
            if self.pid != os.getpid():
                self._open()
            self.values[slot] += amount
            struct.pack_into("<q", self.map, 8 * slot, self.values[slot])

    def _open(self) -> None:
        self.pid, self.values = os.getpid(), [0] * len(SLOTS)
        path = Path(self.directory) / f"{self.pid}-{time.time_ns()}.counts"
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.ftruncate(descriptor, _SIZE)
            self.map = mmap.mmap(descriptor, _SIZE)
        finally:
            os.close(descriptor)


def read_totals(directory: str | Path) -> dict[str, int]:
    """The counts of every process that has counted into ``directory`` so far, added up."""
    totals = dict.fromkeys(SLOTS, 0)
    for path in Path(directory).glob("*.counts"):
        data = path.read_bytes()
        if len(data) >= _SIZE:
            for index, name in enumerate(SLOTS):
                totals[name] += struct.unpack_from("<q", data, 8 * index)[0]
    return totals


def install(directory: str | None) -> None:
    """Count this process's database work into ``directory`` (nothing when it is empty)."""
    if not directory:
        return
    counters = _Counters(directory)
    _count_django_statements(counters)
    try:
        import psycopg
    except ImportError:
        return
    _count_psycopg(psycopg, counters)


def _count_django_statements(counters: _Counters) -> None:
    from django.db.backends.signals import connection_created

    statements = SLOTS.index("statements")

    def wrapper(execute, sql, params, many, context):
        counters.add(statements)
        return execute(sql, params, many, context)

    def on_connection_created(sender, connection, **kwargs):
        # Sent at every connect(), which with the pool is every request: add the wrapper once.
        if wrapper not in connection.execute_wrappers:
            connection.execute_wrappers.append(wrapper)

    connection_created.connect(on_connection_created, weak=False, dispatch_uid="bench.dbcount")


def _count_psycopg(psycopg, counters: _Counters) -> None:
    queries, commands, connects = (SLOTS.index(name) for name in ("queries", "transaction_commands", "connects"))
    idle = psycopg.pq.TransactionStatus.IDLE
    cursor, connection = psycopg.Cursor, psycopg.Connection
    execute, executemany = cursor.execute, cursor.executemany
    commit, rollback, connect = connection.commit, connection.rollback, connection.connect.__func__

    def counted_execute(self, *args, **kwargs):
        counters.add(queries)
        return execute(self, *args, **kwargs)

    def counted_executemany(self, *args, **kwargs):
        counters.add(queries)
        return executemany(self, *args, **kwargs)

    def ending(method):
        def counted(self):
            if self.info.transaction_status != idle:  # psycopg skips the command on an idle connection
                counters.add(commands, 2)
            return method(self)

        return counted

    def counted_connect(cls, *args, **kwargs):
        counters.add(connects)
        return connect(cls, *args, **kwargs)

    cursor.execute, cursor.executemany = counted_execute, counted_executemany
    connection.commit, connection.rollback = ending(commit), ending(rollback)
    connection.connect = classmethod(counted_connect)
    psycopg.connect = connection.connect  # the module's alias was bound before the patch
