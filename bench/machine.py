"""What the machine did during a scenario: CPU by party, load average, PostgreSQL's own counters.

Everything is read from /proc (utime + stime, in clock ticks) and from PostgreSQL's statistics views:

- **server**: the server's process tree (`serve`'s supervisor, gunicorn's master and workers and the
  alerting worker; or granian's main process, its workers and the alerting worker beside it);
- **postgres**: the backends connected to the bench's database plus the server-wide processes
  (postmaster, checkpointer, background writer, WAL writer, autovacuum launcher: they do our
  writes' WAL and flushing too), from pg_stat_activity; other databases' backends (other people's
  tests) are left out. A backend that exits during the scenario takes its CPU with it;
- **load generator**: the bench process itself (loadgen.py runs in it) plus its waited-for children
  (wrk), from getrusage;
- **others**: the whole machine's busy time (/proc/stat) minus the three above: other people's work.

pg_stat_database's counters (transactions, rows written) are flushed by each backend at most once a
second, and by an idle one only after PGSTAT_IDLE_INTERVAL (10 s): :meth:`Postgres.settled_stats`
waits for them to stop moving before reading."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
# PGSTAT_IDLE_INTERVAL: an idle backend that flushed its counts less than a second ago flushes the
# rest this long after (src/backend/utils/activity/pgstat.c); a margin on top.
PG_STATS_IDLE_FLUSH = 10.0 + 1.0


def _proc_stats() -> dict[int, tuple[int, float]]:
    """pid -> (ppid, utime + stime in seconds) of every process."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return stats


def process_tree_cpu(*root_pids: int) -> float:
    """utime + stime (seconds) of some processes and all their descendants, from /proc."""
    stats = _proc_stats()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, stack = 0.0, list(root_pids)
    while stack:
        pid = stack.pop()
        total += stats.get(pid, (0, 0.0))[1]
        stack += children.get(pid, [])
    return total


def loadavg() -> float:
    """The 1-minute load average."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def machine_busy() -> float:
    """CPU seconds all cores have spent busy since boot (user, nice, system, irq, softirq, steal)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def own_cpu() -> float:
    """CPU seconds of this process and of its children it has waited for (wrk)."""
    mine, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class PgStats:
    transactions: int  # xact_commit + xact_rollback
    rows_written: int  # tup_inserted + tup_updated + tup_deleted


class Postgres:
    """One monitoring connection (to the `postgres` database, so it counts in no bench database)."""

    def __init__(self, base_url: str):
        import psycopg

        self.connection = psycopg.connect(f"{base_url}/postgres", autocommit=True)
        self.own_pid = self.connection.info.backend_pid

    def close(self) -> None:
        self.connection.close()

    def stats(self, database: str) -> PgStats:
        row = self.connection.execute(
            "SELECT xact_commit + xact_rollback, tup_inserted + tup_updated + tup_deleted"
            " FROM pg_stat_database WHERE datname = %s",
            [database],
        ).fetchone()
        return PgStats(*row) if row else PgStats(0, 0)

    def settled_stats(self, database: str, since: float) -> PgStats:
        """The counters once every backend has flushed what it did before ``since`` (monotonic)."""
        time.sleep(max(0.0, since + PG_STATS_IDLE_FLUSH - time.monotonic()))
        previous, deadline = self.stats(database), time.monotonic() + 20
        while time.monotonic() < deadline:  # a backend still flushing (a retry after lock contention)
            time.sleep(0.5)
            current = self.stats(database)
            if current == previous:
                break
            previous = current
        return previous

    def cpu_by_pid(self, database: str) -> dict[int, float]:
        """CPU seconds of the postmaster, its server-wide processes and ``database``'s backends."""
        ours = {
            pid
            for (pid,) in self.connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE (datname = %s OR (datname IS NULL AND"
                " backend_type <> 'client backend')) AND pid <> pg_backend_pid()",
                [database],
            )
        }
        stats = _proc_stats()
        ours |= {ppid for pid, (ppid, _) in stats.items() if pid in ours and ppid > 1}  # the postmaster
        return {pid: stats[pid][1] for pid in ours if pid in stats}


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU spent between two :meth:`Postgres.cpu_by_pid` readings (a new backend counts from zero)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


@dataclass
class Usage:
    """CPU seconds by party over one measured window, and the load average around it."""

    server: float
    postgres: float | None
    loadgen: float
    others: float
    load_before: float
    load_after: float
    seconds: float


class UsageMeter:
    """Reads every counter at :meth:`start` and again at :meth:`stop`."""

    def __init__(self, server_pids: list[int], postgres: Postgres | None, database: str | None):
        self.server_pids, self.postgres, self.database = server_pids, postgres, database

    def _read(self):
        pg = self.postgres.cpu_by_pid(self.database) if self.postgres else None
        return (
            time.monotonic(),
            loadavg(),
            process_tree_cpu(*self.server_pids),
            pg,
            own_cpu(),
            machine_busy(),
        )

    def start(self) -> None:
        self.before = self._read()

    def stop(self) -> Usage:
        started, load_before, server0, pg0, own0, busy0 = self.before
        stopped, load_after, server1, pg1, own1, busy1 = self._read()
        server, loadgen = server1 - server0, own1 - own0
        postgres = cpu_delta(pg0, pg1) if pg0 is not None else None
        others = (busy1 - busy0) - server - loadgen - (postgres or 0.0)
        return Usage(server, postgres, loadgen, others, load_before, load_after, stopped - started)
