"""The read-side benchmark's data set, day by day, and what a partitioned results table costs and saves.

bench/readside.py loads its raw results here. On PostgreSQL results_checkresult is partitioned by
UTC day of its ids (results.partitions), so every generated row carries a UUIDv7 made at its own
check time, as an agent makes it: the rows spread over the day partitions as a real fleet's do.

A UTC day is one unit of work, one transaction: its checks are drawn in SQL into a staging table
(every pair once per 5 minutes), then go into results_checkresult in step order (about the order
agents' batches arrive in, so the indexes grow as they do in production), then its minute, hour and
day rollup rows are added up from them: each check's histogram share is what
``histogram_encode(histogram_of(samples))`` makes, and an hour's or a day's histogram is its shares
joined and compacted by ``smotra_histogram_add``, as ingestion's upsert (results/storage.py) does.
Days go two at a time on two connections. Made row by row in Python (a Django model and a ``Cell``
each, then COPY) 20 million rows took hours on the 2-core machine; in SQL, about 40 us of
PostgreSQL per row, most of it the raw insert and its four indexes. :func:`check_rollups` compares
a few series' rollups with what ``results.rollups.tiers_of`` makes of their stored raw rows.

The pruning measures: :func:`prune_oldest_day` drops the oldest day partition with
``results.partitions.results_prune``; :func:`delete_next_day` deletes the next day's rows the old
way (``smotra.db.delete_in_chunks``, as on SQLite or an unpartitioned table), then vacuums them."""

from __future__ import annotations

import math
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

STEP_SECONDS = 300  # every pair checks once per 5 minutes (SmokePing's step)
STEPS_PER_HOUR, STEPS_PER_DAY = 3600 // STEP_SECONDS, 86400 // STEP_SECONDS


@dataclass(frozen=True)
class Pair:
    """One (endpoint, agent) pair's series and the shape of its latencies and failures."""

    agent: str  # ids as COPY takes them
    endpoint: str
    series: int
    mu: float  # log-normal latency: log of its base (1-150 ms)
    sigma: float  # and its spread
    outages: tuple[tuple[int, int], ...]  # epoch seconds, [begin, end): every check fails
    lossy_hour: int  # UTC hour of a lossy evening: 30 % of packets lost, 0.5 % otherwise


@dataclass(frozen=True)
class Plan:
    url: str
    start: int  # epoch seconds of a UTC midnight: the first check
    steps: int  # checks per pair
    minute_floor: int  # minute rows before it are not written (past their retention)
    pairs: tuple[Pair, ...]
    seed: int = 42

    @property
    def days(self) -> int:
        return -(-self.steps // STEPS_PER_DAY)


def plan_pairs(pairs, series: dict[tuple, int], start: int, days: int, seed: int = 42) -> tuple[Pair, ...]:
    """The pairs' latency base and spread, 0-2 outages of 1, 2 or 4 hours, and a lossy hour."""
    rng = random.Random(seed)
    planned = []
    for endpoint, agent in pairs:
        base, spread = rng.uniform(1, 150), rng.uniform(0.05, 0.4)
        outages = []
        for _ in range(rng.choice([0, 0, 1, 2])):
            begin = start + 60 * rng.randrange(days * 24 * 60)
            outages.append((begin, begin + 3600 * rng.choice([1, 2, 4])))
        key = (endpoint.pk, agent.pk, "ping")
        planned.append(
            Pair(agent.pk.hex, endpoint.pk.hex, series[key], math.log(base), spread, tuple(outages), rng.randrange(24))
        )
    return tuple(planned)


# ---------------------------------------------------------------------------------------------
# Loading: whole days, in SQL, on ``processes`` connections side by side

PAIRS_TABLE = "bench_pairs"


def load_days(plan: Plan, processes: int = 2) -> tuple[int, float]:
    """Generate and store every day of ``plan`` with its rollups, ``processes`` days at a time
    (threads: PostgreSQL does the work); the raw rows loaded and the CPU seconds of the backends."""
    import psycopg

    with psycopg.connect(plan.url, autocommit=True) as connection:
        _pairs_table(connection, plan.pairs)
        foreign = _foreign_keys_dropped(connection)
    loaded, started = 0, time.perf_counter()
    connections = [_connect(plan.url) for _ in range(processes)]
    free = list(connections)  # a connection per running day: at most ``processes`` at once
    try:
        with ThreadPoolExecutor(processes) as pool:
            try:
                days = pool.map(lambda day: _load_day(plan, day, free), range(plan.days))
                for done, rows in enumerate(days, start=1):
                    loaded += rows
                    rate = loaded / (time.perf_counter() - started)
                    print(
                        f"  loaded {loaded:,} rows, {done}/{plan.days} days, {rate:,.0f} rows/s", end="\r", flush=True
                    )
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
    finally:
        cpu = sum(process_cpu(connection.info.backend_pid) for connection in connections)
        for connection in connections:
            connection.close()
    print()
    with psycopg.connect(plan.url, autocommit=True) as connection:
        connection.execute(f"DROP TABLE {PAIRS_TABLE}")
        for table, name, definition in foreign:  # each checked in one pass over the table
            connection.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    return loaded, cpu


_LOADED = ("results_checkresult", "results_minuterollup", "results_hourrollup", "results_dayrollup")


def _foreign_keys_dropped(connection) -> list[tuple[str, str, str]]:
    """Drop the loaded tables' foreign keys (deferred: each row's check would run at its day's
    commit, a third of the load's time) and answer them, to be added back after the load."""
    foreign = connection.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND conparentid = 0 AND conrelid::regclass::text = ANY(%s)",
        [list(_LOADED)],
    ).fetchall()
    for table, name, _definition in foreign:
        connection.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    return foreign


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process of this machine, 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds all cores have been busy since boot (all but idle and iowait)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _pairs_table(connection, pairs: tuple[Pair, ...]) -> None:
    connection.execute(
        f"CREATE UNLOGGED TABLE {PAIRS_TABLE} (series_id int, agent_id uuid, endpoint_id uuid, "
        "mu float8, sigma float8, lossy_hour int, outages tstzmultirange)"
    )
    with connection.cursor() as cursor, cursor.copy(f"COPY {PAIRS_TABLE} FROM STDIN") as copy:
        for pair in pairs:
            outages = ",".join(f'["{_iso(begin)}","{_iso(end)}")' for begin, end in pair.outages)
            copy.write_row(
                [pair.series, pair.agent, pair.endpoint, pair.mu, pair.sigma, pair.lossy_hour, f"{{{outages}}}"]
            )


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _connect(url: str):
    import psycopg

    connection = psycopg.connect(url)
    # UTC: date_trunc cuts UTC days. The loader's commits need not wait for the disk; its staging
    # tables (no WAL) and sorts stay in memory.
    connection.execute(
        "SET TIME ZONE 'UTC'; SET synchronous_commit = off; SET temp_buffers = '512MB'; SET work_mem = '256MB'"
    )
    connection.commit()
    return connection


def _load_day(plan: Plan, day: int, free: list) -> int:
    """One UTC day in one transaction: its checks into a staging table, then the raw rows (in time
    order, as agents report them), then its minute, hour and day rollup rows."""
    connection = free.pop()
    try:
        first, last = day * STEPS_PER_DAY, min((day + 1) * STEPS_PER_DAY, plan.steps)
        params = {"first": first, "last": last, "start": plan.start, "floor": plan.minute_floor}
        params["seed"] = ((plan.seed * 1_000_003 + day) % 2_000_000) / 1_000_000 - 1  # setseed: -1 .. 1
        with connection.transaction(), connection.cursor() as cursor:
            cursor.execute("SELECT setseed(%(seed)s)", params)
            for statement in _DAY:
                cursor.execute(statement, params)
        return (last - first) * len(plan.pairs)
    finally:
        free.append(connection)


def _bucket(v: str) -> str:
    """SQL for results.histogram.bucket_of(v) in the same floating point (ln is the C library's, as
    Python's math.log is), without its settling of a value that sits on a bucket's bound (ln rounding
    there is a 1e-15 matter; check_rollups would see it)."""
    return f"least(800, greatest(1, ceil(ln({v} / 0.1::float8) / ln(1.04::float8))::int))"


def _entry(bucket: str, count: int) -> str:
    """One stored histogram entry (results.histogram: a 16-bit bucket and a 32-bit count)."""
    return f"int2send(({bucket})::int2) || int4send({count})"


# A check's share of a histogram (histogram_encode(histogram_of(samples)): its buckets in order,
# each once with its count) from its 0-3 buckets x1-x3 (null: a lost packet), lowest a, highest c.
_SHARE = (
    "CASE n WHEN 0 THEN ''::bytea "
    f"WHEN 1 THEN {_entry('a', 1)} "
    f"WHEN 2 THEN CASE WHEN a = c THEN {_entry('a', 2)} ELSE {_entry('a', 1)} || {_entry('c', 1)} END "
    f"ELSE CASE WHEN a = c THEN {_entry('a', 3)} "
    f"WHEN a = x1 + x2 + x3 - a - c THEN {_entry('a', 2)} || {_entry('c', 1)} "
    f"WHEN c = x1 + x2 + x3 - a - c THEN {_entry('a', 1)} || {_entry('c', 2)} "
    f"ELSE {_entry('a', 1)} || {_entry('x1 + x2 + x3 - a - c', 1)} || {_entry('c', 1)} END END"
)
_KEPT = [f"CASE WHEN k{i} THEN s{i} END" for i in (1, 2, 3)]
_CHECKS = (
    "CREATE TEMP TABLE day_checks ON COMMIT DROP AS "
    f"SELECT series_id, agent_id, endpoint_id, step, at, samples, n, total, low, high, {_SHARE} AS share FROM ("
    # OFFSET 0: each level is computed once, not pulled up and its expressions copied into every use.
    "SELECT *, least(x1, x2, x3) AS a, greatest(x1, x2, x3) AS c FROM ("
    f"SELECT *, array_remove(ARRAY[{', '.join(_KEPT)}], NULL) AS samples, k1::int + k2::int + k3::int AS n, "
    "k1::int * s1 + k2::int * s2 + k3::int * s3 AS total, "
    f"least({', '.join(_KEPT)}) AS low, greatest({', '.join(_KEPT)}) AS high, "
    + ", ".join(f"CASE WHEN k{i} THEN {_bucket(f's{i}')} END AS x{i}" for i in (1, 2, 3))
    + " FROM ("
    # 3 samples, log-normal around the pair's base (Box-Muller: two normals from u1, u2, one from
    # u3, u4), rounded to the microsecond; each kept with the hour's loss rate, none in an outage.
    "SELECT series_id, agent_id, endpoint_id, step, at, r1 > loss AS k1, r2 > loss AS k2, r3 > loss AS k3, "
    "round(exp(mu + sigma * sqrt(-2 * ln(u1)) * cos(2 * pi() * u2)) * 1000) / 1000 AS s1, "
    "round(exp(mu + sigma * sqrt(-2 * ln(u1)) * sin(2 * pi() * u2)) * 1000) / 1000 AS s2, "
    "round(exp(mu + sigma * sqrt(-2 * ln(u3)) * cos(2 * pi() * u4)) * 1000) / 1000 AS s3 FROM ("
    # Every pair once per step, a few seconds into its minute, with its random draws: a subquery
    # whose output has volatile functions is not flattened, so each is drawn once per row.
    f"SELECT p.*, g.step, to_timestamp(%(start)s + g.step * {STEP_SECONDS} + floor(random() * 60)) AS at, "
    "1 - random() AS u1, random() AS u2, 1 - random() AS u3, random() AS u4, "
    "random() AS r1, random() AS r2, random() AS r3 "
    "FROM generate_series(%(first)s, %(last)s - 1) AS g(step) CROSS JOIN bench_pairs p) b "
    "CROSS JOIN LATERAL (SELECT CASE WHEN b.outages @> b.at THEN 2 "
    "WHEN extract(hour FROM b.at) = b.lossy_hour THEN 0.3 ELSE 0.005 END AS loss) l OFFSET 0) d OFFSET 0) e "
    "OFFSET 0) f"
)
_RAW = (
    # The id: a UUIDv7 made at the check's own time: its millisecond in the first 48 bits, the
    # version (7), 12 random bits, the variant (0b10), 62 random bits (random() is 4 times cheaper
    # than gen_random_uuid, and the loader's ids need no strong randomness). In step order, each
    # step's checks as they come: about the order agents' batches arrive in.
    "INSERT INTO results_checkresult (id, agent_id, endpoint_id, check_type, success, checked_at, received_at, "
    "latency_ms, packets_sent, packets_received, status_code, resolved_ip, details) "
    "SELECT (lpad(to_hex((extract(epoch FROM at) * 1000)::int8 + floor(random() * 1000)::int8), 12, '0') || '7' "
    "|| lpad(to_hex(floor(random() * 4096)::int), 3, '0') || to_hex(8 + floor(random() * 4)::int) "
    "|| lpad(to_hex(floor(random() * 4503599627370496)::int8), 13, '0') "
    "|| lpad(to_hex(floor(random() * 256)::int), 2, '0'))::uuid, agent_id, endpoint_id, 'ping', n > 0, at, at, "
    "round(total / nullif(n, 0) * 1000) / 1000, 3, n, NULL, '192.0.2.1', jsonb_build_object("
    "'successes', n, 'failures', 3 - n, 'success_latencies', to_jsonb(samples), 'error_details', "
    """CASE WHEN n = 0 THEN '{"errors": ["request timed out"]}'::jsonb END) FROM day_checks"""
)
_ROLLUP_INSERT = (
    "INSERT INTO {table} (series_id, bucket, check_count, success_count, failure_count, packets_sent, "
    "packets_received, latency_count, latency_sum, latency_min, latency_max, histogram) "
)
# Each check is its own minute row (one check per 5 minutes). Only within their retention, as in
# a database that prune_results keeps.
_MINUTES = _ROLLUP_INSERT.format(table="results_minuterollup") + (
    "SELECT series_id, date_trunc('minute', at), 1, (n > 0)::int, (n = 0)::int, 3, n, n, COALESCE(total, 0), "
    f"low, high, share FROM day_checks WHERE step * {STEP_SECONDS} >= %(floor)s - %(start)s ORDER BY series_id, step"
)


def _added_up(table: str, part: str, unit: str) -> str:
    """A day's hour or day rows: its checks added up per series (and ``part``), their shares' histograms
    joined and compacted past 512 bytes by smotra_histogram_add, as ingestion's upsert does."""
    return _ROLLUP_INSERT.format(table=table) + (
        f"SELECT series_id, date_trunc('{unit}', min(at)), count(*), count(*) FILTER (WHERE n > 0), "
        "count(*) FILTER (WHERE n = 0), 3 * count(*), sum(n), sum(n), COALESCE(sum(total), 0), min(low), max(high), "
        "smotra_histogram_add(''::bytea, string_agg(share, ''::bytea ORDER BY step)) "
        f"FROM day_checks GROUP BY series_id{part} ORDER BY 1, 2"
    )


_DAY = [
    _CHECKS,
    _RAW,
    _MINUTES,
    _added_up("results_hourrollup", f", step / {STEPS_PER_HOUR}", "hour"),
    _added_up("results_dayrollup", "", "day"),
]


# ---------------------------------------------------------------------------------------------
# Checks and measures (in the parent, through Django)


def check_rollups(pairs: tuple[Pair, ...], minute_floor: datetime, sample: int = 3) -> int:
    """Compare the loaded rollups of ``sample`` series with ``results.rollups.tiers_of`` over their
    stored raw rows (ingestion's own code); the number of rows that differ (0 when the loader is right)."""
    from results.models import CheckResult, RollupSeries
    from results.rollups import MINUTE, RESOLUTIONS, ROLLUP_COLUMNS, tiers_of

    wrong = 0
    for pair in pairs[:: max(1, len(pairs) // sample)][:sample]:
        series = RollupSeries.objects.get(pk=pair.series)
        results = list(
            CheckResult.objects.filter(endpoint_id=series.endpoint_id, agent_id=series.agent_id).order_by("checked_at")
        )
        tiers = tiers_of(results, [width for _model, width in RESOLUTIONS.values()])
        for model, width in RESOLUTIONS.values():
            cells = tiers[width].items()
            expected = {key[1]: cell for key, cell in cells if width != MINUTE or key[1] >= minute_floor}
            stored = {row["bucket"]: row for row in model.objects.filter(series=series).values(*ROLLUP_COLUMNS)}
            wrong += len(expected.keys() ^ stored.keys())
            wrong += sum(not _same(expected[bucket], stored[bucket]) for bucket in expected.keys() & stored.keys())
    return wrong


def _same(cell, row: dict) -> bool:
    from results.histogram import histogram_decode

    names = ("check_count", "success_count", "failure_count", "packets_sent", "packets_received", "latency_count")
    names += ("latency_min", "latency_max")
    # The sum alone may differ in its last bits: SQL adds the samples up in its own order.
    return (
        all(getattr(cell, name) == row[name] for name in names)
        and math.isclose(cell.latency_sum, row["latency_sum"], rel_tol=1e-12, abs_tol=1e-9)
        and cell.histogram == histogram_decode(row["histogram"])
    )


def partition_rows() -> dict[str, int]:
    """Rows per partition of results_checkresult (the default one included), by name."""
    from django.db import connection

    from results.partitions import TABLE

    with connection.cursor() as cursor:
        cursor.execute("SELECT relid::regclass::text FROM pg_partition_tree(%s) WHERE isleaf", [TABLE])
        names = [row[0] for row in cursor.fetchall()]
        counts = {}
        for name in sorted(names):
            cursor.execute(f"SELECT count(*) FROM {name}")
            counts[name] = cursor.fetchone()[0]
    return counts


def raw_size() -> int:
    """Bytes of results_checkresult with its indexes: its partitions' (the parent has no storage)."""
    from django.db import connection

    from results.partitions import TABLE

    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree(%s)", [TABLE])
        return int(cursor.fetchone()[0])


@dataclass
class Timing:
    seconds: float
    rows: int
    note: str = ""


def prune_oldest_day(first_day: date) -> Timing:
    """``results_prune`` with a cutoff at the end of ``first_day``: exactly its partition expires."""
    from results.partitions import Partition, results_prune

    started = time.perf_counter()
    pruned = results_prune(Partition(first_day).end, 5000)
    seconds = time.perf_counter() - started
    return Timing(seconds, pruned.results, f"{pruned.partitions} partition(s) dropped, {pruned.kept} kept")


def delete_next_day(day: date) -> tuple[Timing, Timing]:
    """The old way for ``day``: ``delete_in_chunks`` (5000 rows a statement, each its own
    transaction, as prune_results did before partitions) of its rows, then a VACUUM of them. Its
    rows are one partition's, so the indexes searched are a day's, not a whole unpartitioned table's."""
    from django.db import connection

    from results.models import CheckResult
    from results.partitions import Partition
    from smotra.db import delete_in_chunks

    partition = Partition(day)
    started = time.perf_counter()
    rows = delete_in_chunks(CheckResult.objects.filter(checked_at__lt=partition.end), 5000)
    deleting = Timing(time.perf_counter() - started, rows)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {partition.name}")
    return deleting, Timing(time.perf_counter() - started, rows)


def utc_midnight(moment: datetime) -> datetime:
    return datetime.combine(moment.astimezone(UTC).date(), datetime.min.time(), tzinfo=UTC)


def days_back(moment: datetime, days: int) -> datetime:
    return utc_midnight(moment) - timedelta(days=days)
