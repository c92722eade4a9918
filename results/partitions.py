"""PostgreSQL: raw check results in one partition per UTC day of their id's time.

Why by id: the agent-made UUIDv7 id is the dedup key (contract §6.4) and carries its creation time
in its first 48 bits (milliseconds since the epoch), so a range of ids is a range of time and the id
stays the whole primary key. A partition key must be part of every unique key: partitioning by
``checked_at`` would make the key (id, checked_at) and let a reused id with another timestamp in twice.

Layout: ``results_checkresult`` is partitioned BY RANGE (id); ``results_checkresult_pYYYYMMDD`` holds
the ids of that day; ``results_checkresult_default`` any other id (an agent's clock far off, an id
that is not a UUIDv7, a day nobody created a partition for). Nothing depends on a partition
existing: a row without its day's partition lands in the default one, and creating the partition
later moves it over. ``partitions_ensure`` creates them ahead; `prune_results`, the worker (hourly)
and every `migrate` call it.

Pruning (``results_prune``) detaches and drops a day's partition once the whole day is past the
retention and none of its rows has a timestamp within it (an id and a timestamp may disagree); what
is left past the retention elsewhere is deleted in chunks by timestamp. The partition that straddles
the cutoff goes whole the next day, so on PostgreSQL results are kept up to a day past
``results.retention``. SQLite keeps one table, pruned in chunks."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from results.models import CheckResult
from smotra.db import delete_in_chunks

log = logging.getLogger("smotra.results")

TABLE = CheckResult._meta.db_table
DEFAULT = f"{TABLE}_default"
AHEAD_DAYS = 7  # partitions exist this many days past today: a week without the worker or a prune
_NAME = re.compile(rf"^{TABLE}_p(\d{{8}})$")
# Creating and dropping partitions serialise on this key, across processes and instances.
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('smotra.results.partitions'))"
# DDL waits at most this long for its lock instead of queueing every insert behind it.
_LOCK_TIMEOUT = "SET LOCAL lock_timeout = '5s'"


def uuid7_floor(moment: datetime) -> UUID:
    """The lowest UUID of ``moment``'s millisecond: every UUIDv7 made at or after it sorts above."""
    return UUID(int=int(moment.timestamp() * 1000) << 80)


@dataclass(frozen=True, slots=True)
class Partition:
    day: date

    @property
    def name(self) -> str:
        return f"{TABLE}_p{self.day:%Y%m%d}"

    @property
    def start(self) -> datetime:
        return datetime.combine(self.day, time(), tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=1)

    @property
    def bounds(self) -> tuple[str, str]:
        return str(uuid7_floor(self.start)), str(uuid7_floor(self.end))


def is_partitioned() -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
        row = cursor.fetchone()
    return bool(row) and row[0] == "p"


def day_partitions() -> list[Partition]:
    """The day partitions attached now, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)",
            [TABLE],
        )
        names = [row[0] for row in cursor.fetchall()]
    days = [datetime.strptime(match[1], "%Y%m%d").date() for match in map(_NAME.match, names) if match]
    return [Partition(day) for day in sorted(days)]


def partitions_ensure(*, since: date | None = None, until: date | None = None) -> list[str]:
    """Create the missing day partitions from ``since`` (default today) to ``until`` (default
    AHEAD_DAYS ahead), each in its own short transaction; their names. No-op unless partitioned."""
    if not is_partitioned():
        return []
    today = timezone.now().astimezone(UTC).date()
    since, until = since or today, until or today + timedelta(days=AHEAD_DAYS)
    existing = {partition.day for partition in day_partitions()}
    created = []
    day = since
    while day <= until:
        if day not in existing and _create(Partition(day)):
            created.append(Partition(day).name)
        day += timedelta(days=1)
    if created:
        log.info("created result partitions %s", ", ".join(created))
    return created


def _create(partition: Partition) -> bool:
    """Create ``partition`` apart, move its rows out of the default partition, then attach it.

    ATTACH needs only SHARE UPDATE EXCLUSIVE on the parent (CREATE TABLE ... PARTITION OF would
    take ACCESS EXCLUSIVE and stop every insert and read while it waits), and an exclusive lock on
    the default partition, which it scans for rows of the new range: those were moved just before."""
    low, high = partition.bounds
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_LOCK)
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [partition.name])
        if cursor.fetchone()[0]:
            return False  # another process made it meanwhile
        cursor.execute(_LOCK_TIMEOUT)
        # No row may reach the default partition between the move and the ATTACH (which would then
        # refuse); readers carry on.
        cursor.execute(f"LOCK TABLE {DEFAULT} IN SHARE MODE")
        name = connection.ops.quote_name(partition.name)
        cursor.execute(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cursor.execute(
            f"WITH moved AS (DELETE FROM {DEFAULT} WHERE id >= %s AND id < %s RETURNING *) "  # noqa: S608
            f"INSERT INTO {name} SELECT * FROM moved",
            [low, high],
        )
        if cursor.rowcount:
            log.warning("moved %d result(s) from %s into %s", cursor.rowcount, DEFAULT, partition.name)
        cursor.execute(f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)", [low, high])
    return True


@dataclass
class Pruned:
    results: int = 0
    partitions: int = 0  # dropped whole
    kept: int = 0  # expired, kept: some of their rows have a recent timestamp, or their lock was busy


def results_prune(cutoff: datetime, chunk: int) -> Pruned:
    """Delete the results whose timestamp is before ``cutoff``: whole day partitions where they
    can go whole (PostgreSQL), then the rest ``chunk`` rows at a time."""
    pruned = Pruned()
    old = CheckResult.objects.filter(checked_at__lt=cutoff)
    if is_partitioned():
        for partition in day_partitions():
            if partition.start >= cutoff:
                continue
            rows = _drop(partition, cutoff) if partition.end <= cutoff else _LATER
            if rows is _RECENT:  # its expired rows go one by one, below
                pruned.kept += 1
            elif rows is _LATER:  # straddles the cutoff (it goes whole tomorrow), or was busy
                pruned.kept += partition.end <= cutoff
                low, high = partition.bounds
                old = old.exclude(id__gte=low, id__lt=high)
            else:
                pruned.results += rows
                pruned.partitions += 1
    pruned.results += delete_in_chunks(old, chunk)
    return pruned


_RECENT, _LATER = object(), object()


def _drop(partition: Partition, cutoff: datetime):
    """Detach and drop ``partition``; its row count. _RECENT when a row of it has a timestamp
    within the retention (it stays); _LATER when its locks were busy (the next prune retries)."""
    name = connection.ops.quote_name(partition.name)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_LOCK)
            cursor.execute(_LOCK_TIMEOUT)
            # No row may arrive between the check and the drop. SHARE, not ACCESS EXCLUSIVE: a reader
            # of the results holds the parent and then takes each partition; an exclusive lock here
            # would deadlock it against the DETACH below, which waits for the parent.
            cursor.execute(f"LOCK TABLE {name} IN SHARE MODE")
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {name} WHERE checked_at >= %s)", [cutoff])  # noqa: S608
            if cursor.fetchone()[0]:
                log.warning("kept expired partition %s: some of its results have a recent timestamp", partition.name)
                return _RECENT
            cursor.execute(f"SELECT count(*) FROM {name}")  # noqa: S608
            rows = cursor.fetchone()[0]
            # Plain DETACH: CONCURRENTLY is refused while a default partition exists. It holds the
            # parent's ACCESS EXCLUSIVE lock for a moment (bounded by the lock timeout above).
            cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {name}")
            cursor.execute(f"DROP TABLE {name}")
    except OperationalError as exc:  # the lock timeout, a deadlock: the next prune tries again
        log.warning("could not drop partition %s now: %s", partition.name, exc)
        return _LATER
    return rows
