"""Rollups of check results at one-minute, one-hour and one-day resolution, maintained exactly once.

Ingestion adds the freshly stored results of a batch (never a resend's duplicates) in the same
transaction as the raw insert, with one additive upsert per resolution: counts and sums are added,
min and max kept, histograms merged by the database. Two batches touching one row therefore never
lose an update, on PostgreSQL (the row is locked while updated) and SQLite (one writer). Rows belong
to a series (endpoint, agent, check type) and so to one agent, and every writer of an agent's rows
(ingestion, rebuild) first locks the agent's row, so their upserts cannot deadlock either.
``rebuild_rollups`` recomputes them from raw rows with the same code, so its result equals the
incremental one."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection

from results.histogram import histogram_add, histogram_decode, histogram_encode, histogram_of
from results.models import CheckResult, DayRollup, HourRollup, MinuteRollup, RollupSeries

MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
RESOLUTIONS = {"minute": (MinuteRollup, MINUTE), "hour": (HourRollup, HOUR), "day": (DayRollup, DAY)}
LATENCY_TYPES = {"tcpconnect", "udpconnect", "httpget", "plugin"}  # latency_ms is their one sample


def bucket_start(moment: datetime, width: timedelta) -> datetime:
    """The start of the minute, hour or UTC day ``moment`` is in (by field, so any valid date works)."""
    if width == DAY:
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if width == HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(second=0, microsecond=0)


def latency_samples(result: CheckResult) -> list[float]:
    """What a result contributes to the latency distribution (AGENT_API.md §6.4 fields)."""
    if result.check_type == "ping":
        return [float(value) for value in (result.details or {}).get("success_latencies") or []]
    if result.check_type in LATENCY_TYPES and result.latency_ms is not None:
        return [float(result.latency_ms)]
    return []


@dataclass(slots=True)
class Cell:
    """The aggregates of one rollup row: built from results before they are added to the stored
    row, or from stored rows when reads merge buckets and agents."""

    check_count: int = 0
    success_count: int = 0
    failure_count: int = 0
    packets_sent: int = 0
    packets_received: int = 0
    latency_count: int = 0
    latency_sum: float = 0.0
    latency_min: float | None = None
    latency_max: float | None = None
    histogram: dict[int, int] = field(default_factory=dict)

    @classmethod
    def of(cls, result: CheckResult) -> Cell:
        """What one result adds to any row it falls in."""
        cell = cls(
            check_count=1,
            success_count=int(result.success),
            failure_count=int(not result.success),
            packets_sent=result.packets_sent or 0,
            packets_received=result.packets_received or 0,
        )
        samples = latency_samples(result)
        if samples:
            cell.latency_count, cell.latency_sum = len(samples), sum(samples)
            cell.latency_min, cell.latency_max = min(samples), max(samples)
            cell.histogram = histogram_of(samples)
        return cell

    def add(self, other: Cell) -> None:
        self.check_count += other.check_count
        self.success_count += other.success_count
        self.failure_count += other.failure_count
        self.packets_sent += other.packets_sent
        self.packets_received += other.packets_received
        self.latency_count += other.latency_count
        self.latency_sum += other.latency_sum
        self.latency_min = _low(self.latency_min, other.latency_min)
        self.latency_max = _high(self.latency_max, other.latency_max)
        histogram_add(self.histogram, other.histogram)

    def add_row(self, row: dict) -> None:
        """Add a stored rollup row (as ``values()`` gives it): how reads merge buckets and agents."""
        for name in ("check_count", "success_count", "failure_count", "packets_sent", "packets_received"):
            setattr(self, name, getattr(self, name) + row[name])
        self.latency_count += row["latency_count"]
        self.latency_sum += row["latency_sum"]
        self.latency_min = _low(self.latency_min, row["latency_min"])
        self.latency_max = _high(self.latency_max, row["latency_max"])
        histogram_decode(row["histogram"], self.histogram)


def _low(a, b):
    return b if a is None else a if b is None else min(a, b)


def _high(a, b):
    return b if a is None else a if b is None else max(a, b)


def cells_of(results: Iterable[CheckResult], width: timedelta) -> dict[tuple, Cell]:
    """Results grouped into rollup rows: (endpoint_id, bucket, agent_id, check_type) -> Cell."""
    return tiers_of(results, (width,))[width]


def tiers_of(results: Iterable[CheckResult], widths: Iterable[timedelta]) -> dict[timedelta, dict[tuple, Cell]]:
    """The rollup rows of several resolutions at once: each result's share is worked out once."""
    tiers: dict[timedelta, dict[tuple, Cell]] = {width: {} for width in widths}
    for result in results:
        share = Cell.of(result)
        for width, cells in tiers.items():
            key = (result.endpoint_id, bucket_start(result.checked_at, width), result.agent_id, result.check_type)
            cell = cells.get(key)
            if cell is None:
                cells[key] = cell = Cell()
            cell.add(share)
    return tiers


def rollups_add(results: list[CheckResult]) -> None:
    """Add freshly stored results to every resolution. Call inside the raw insert's transaction."""
    if not results:
        return
    series = series_ids({(result.endpoint_id, result.agent_id, result.check_type) for result in results})
    tiers = tiers_of(results, [width for _model, width in RESOLUTIONS.values()])
    upsert_tiers({model: tiers[width] for model, width in RESOLUTIONS.values()}, series)


def series_ids(keys: set[tuple]) -> dict[tuple, int]:
    """(endpoint_id, agent_id, check_type) -> series id, creating the series not seen before."""
    if not keys:
        return {}
    found = _series_of(keys)
    missing = keys - found.keys()
    if missing:
        RollupSeries.objects.bulk_create(
            [RollupSeries(endpoint_id=e, agent_id=a, check_type=t) for e, a, t in sorted(missing, key=str)],
            ignore_conflicts=True,
        )
        found |= _series_of(missing)
    return found


def _series_of(keys: set[tuple]) -> dict[tuple, int]:
    rows = RollupSeries.objects.filter(
        agent_id__in={key[1] for key in keys}, endpoint_id__in={key[0] for key in keys}
    ).values_list("endpoint_id", "agent_id", "check_type", "id")
    return {(e, a, t): pk for e, a, t, pk in rows if (e, a, t) in keys}


# ---------------------------------------------------------------------------------------------
# The additive upsert, in each database's dialect

ROLLUP_COLUMNS = [
    "series_id",
    "bucket",
    "check_count",
    "success_count",
    "failure_count",
    "packets_sent",
    "packets_received",
    "latency_count",
    "latency_sum",
    "latency_min",
    "latency_max",
    "histogram",
]
_ADDED = ["check_count", "success_count", "failure_count", "packets_sent", "packets_received"]
_ADDED += ["latency_count", "latency_sum"]

# The stored row is ``t``. smotra_histogram_add is SQL on PostgreSQL (migration 0005) and
# results.histogram.histogram_merge on SQLite (registered per connection, results/apps.py).
# min()/max() of SQLite, like LEAST/GREATEST with COALESCE, keep the one side that is not null.
_MERGE = {
    "postgresql": {
        "min": "COALESCE(LEAST(t.{0}, EXCLUDED.{0}), t.{0}, EXCLUDED.{0})",
        "max": "COALESCE(GREATEST(t.{0}, EXCLUDED.{0}), t.{0}, EXCLUDED.{0})",
    },
    "sqlite": {
        "min": "COALESCE(min(t.{0}, excluded.{0}), t.{0}, excluded.{0})",
        "max": "COALESCE(max(t.{0}, excluded.{0}), t.{0}, excluded.{0})",
    },
}


def on_conflict_add() -> str:
    """The additive upsert's conflict clause, in this connection's dialect (the stored row is ``t``)."""
    dialect = _MERGE[connection.vendor]
    updates = [f"{name} = t.{name} + excluded.{name}" for name in _ADDED]
    updates += [f"latency_min = {dialect['min'].format('latency_min')}"]
    updates += [f"latency_max = {dialect['max'].format('latency_max')}"]
    updates += ["histogram = smotra_histogram_add(t.histogram, excluded.histogram)"]
    return f"ON CONFLICT (series_id, bucket) DO UPDATE SET {', '.join(updates)}"


# PostgreSQL: every tier in one statement and one round trip, all rows in one JSON parameter
# (json_to_recordset): a short statement whatever the number of rows, one string for the driver to
# pass on (json.dumps, in C) instead of thousands of placeholders quoted one by one in Python.
# Buckets travel as epoch seconds and histograms as hex; each tier's rows go in key order.
_PG_FIELDS = ["tier int", "series_id int4", "bucket float8"] + [f"{name} int4" for name in _ADDED[:-1]]
_PG_FIELDS += ["latency_sum float8", "latency_min float8", "latency_max float8", "histogram text"]
_PG_VALUES = ["series_id", "to_timestamp(bucket)", *ROLLUP_COLUMNS[2:-1], "decode(histogram, 'hex')"]
_SQL_CACHE: dict[tuple, str] = {}


def _pg_upsert_sql(tables: tuple[str, ...]) -> str:
    key = ("postgresql", tables)
    if key not in _SQL_CACHE:
        columns, values, conflict = ", ".join(ROLLUP_COLUMNS), ", ".join(_PG_VALUES), on_conflict_add()
        inserts = [
            f"INSERT INTO {table} AS t ({columns}) SELECT {values} FROM incoming WHERE tier = {tier} "  # noqa: S608
            f"ORDER BY series_id, bucket {conflict}"
            for tier, table in enumerate(tables)
        ]
        ctes = [f"incoming AS (SELECT * FROM json_to_recordset(%s::json) AS x({', '.join(_PG_FIELDS)}))"]  # noqa: S608
        ctes += [f"tier{tier} AS ({insert})" for tier, insert in enumerate(inserts[:-1])]
        _SQL_CACHE[key] = f"WITH {', '.join(ctes)} {inserts[-1]}"
    return _SQL_CACHE[key]


def _sqlite_upsert_sql(table: str, rows: int) -> str:
    key = ("sqlite", table, rows)
    if key not in _SQL_CACHE:
        values = ", ".join([f"({', '.join(['%s'] * len(ROLLUP_COLUMNS))})"] * rows)
        _SQL_CACHE[key] = f"INSERT INTO {table} AS t ({', '.join(ROLLUP_COLUMNS)}) VALUES {values} {on_conflict_add()}"  # noqa: S608
    return _SQL_CACHE[key]


def rollup_rows(model, cells: dict[tuple, Cell], series: dict[tuple, int]) -> list[list]:
    """The rows to write (as the database takes them), in (series, bucket) order."""
    bucket_field = model._meta.get_field("bucket")
    rows = []
    for (endpoint_id, bucket, agent_id, check_type), cell in cells.items():
        rows.append(
            [
                series[(endpoint_id, agent_id, check_type)],
                bucket,
                *(getattr(cell, name) for name in ROLLUP_COLUMNS[2:11]),
                histogram_encode(cell.histogram),
            ]
        )
    rows.sort(key=lambda row: (row[0], row[1]))
    for row in rows:
        row[1] = bucket_field.get_db_prep_value(row[1], connection)
    return rows


def upsert_tiers(tiers: dict[type, dict[tuple, Cell]], series: dict[tuple, int] | None = None, chunk=500) -> None:
    """Add each model's cells to its rows: one statement for them all on PostgreSQL, one per
    ``chunk`` rows and model on SQLite."""
    tiers = {model: cells for model, cells in tiers.items() if cells}
    if not tiers:
        return
    if series is None:
        series = series_ids({(e, a, t) for cells in tiers.values() for e, _bucket, a, t in cells})
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            tables = tuple(model._meta.db_table for model in tiers)
            cursor.execute(_pg_upsert_sql(tables), [_json_rows(list(tiers.values()), series)])
            return
        for model, cells in tiers.items():
            rows = rollup_rows(model, cells, series)
            for start in range(0, len(rows), chunk):
                part = rows[start : start + chunk]
                cursor.execute(_sqlite_upsert_sql(model._meta.db_table, len(part)), [v for row in part for v in row])


_COUNTS = ROLLUP_COLUMNS[2:11]


def _json_rows(tiers: list[dict[tuple, Cell]], series: dict[tuple, int]) -> str:
    """The rows as json_to_recordset reads them: objects by field name, tier by tier."""
    rows = []
    for tier, cells in enumerate(tiers):
        for (endpoint_id, bucket, agent_id, check_type), cell in cells.items():
            row = {name: getattr(cell, name) for name in _COUNTS}
            row["tier"], row["series_id"], row["bucket"] = (
                tier,
                series[(endpoint_id, agent_id, check_type)],
                bucket.timestamp(),
            )
            row["histogram"] = histogram_encode(cell.histogram).hex()
            rows.append(row)
    return json.dumps(rows, separators=(",", ":"))
