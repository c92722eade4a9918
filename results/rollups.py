"""Rollups of check results at one-minute and one-hour resolution, maintained exactly once.

Ingestion adds the freshly stored results of a batch (never a resend's duplicates) in the same
transaction as the raw insert, with one additive upsert per resolution: counts and sums are added,
min and max kept, histograms merged by the database. Two batches touching one row therefore never
lose an update, on PostgreSQL (the row is locked while updated) and SQLite (one writer). Rows are
keyed by agent, and every writer of an agent's rows (ingestion, rebuild) first locks the agent's
row, so their upserts cannot deadlock either. ``rollups_rebuild`` recomputes them from raw rows with
the same code, so its result equals the incremental one."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection

from results.histogram import histogram_add, histogram_of
from results.models import CheckResult, HourRollup, MinuteRollup

RESOLUTIONS = {"minute": (MinuteRollup, timedelta(minutes=1)), "hour": (HourRollup, timedelta(hours=1))}
LATENCY_TYPES = {"tcpconnect", "udpconnect", "httpget", "plugin"}  # latency_ms is their one sample


def bucket_start(moment: datetime, width: timedelta) -> datetime:
    """The start of the minute or hour ``moment`` is in (by field, so any valid date works)."""
    if width == timedelta(hours=1):
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(second=0, microsecond=0)


def latency_samples(result: CheckResult) -> list[float]:
    """What a result contributes to the latency distribution (AGENT_API.md §6.4 fields)."""
    if result.check_type == "ping":
        return [float(value) for value in (result.details or {}).get("success_latencies") or []]
    if result.check_type in LATENCY_TYPES and result.latency_ms is not None:
        return [float(result.latency_ms)]
    return []


@dataclass
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
    histogram: dict = field(default_factory=dict)

    def add(self, result: CheckResult) -> None:
        self.check_count += 1
        self.success_count += int(result.success)
        self.failure_count += int(not result.success)
        self.packets_sent += result.packets_sent or 0
        self.packets_received += result.packets_received or 0
        samples = latency_samples(result)
        if samples:
            self.latency_count += len(samples)
            self.latency_sum += sum(samples)
            self.latency_min = _low(self.latency_min, min(samples))
            self.latency_max = _high(self.latency_max, max(samples))
            histogram_add(self.histogram, histogram_of(samples))

    def add_row(self, row: dict) -> None:
        """Add a stored rollup row (as ``values()`` gives it): how reads merge buckets and agents."""
        for name in ("check_count", "success_count", "failure_count", "packets_sent", "packets_received"):
            setattr(self, name, getattr(self, name) + row[name])
        self.latency_count += row["latency_count"]
        self.latency_sum += row["latency_sum"]
        self.latency_min = _low(self.latency_min, row["latency_min"])
        self.latency_max = _high(self.latency_max, row["latency_max"])
        histogram_add(self.histogram, row["histogram"] or {})


def _low(a, b):
    return b if a is None else a if b is None else min(a, b)


def _high(a, b):
    return b if a is None else a if b is None else max(a, b)


def cells_of(results: Iterable[CheckResult], width: timedelta) -> dict[tuple, Cell]:
    """Results grouped into rollup rows: (endpoint_id, bucket, agent_id, check_type) -> Cell."""
    cells: dict[tuple, Cell] = {}
    for result in results:
        key = (result.endpoint_id, bucket_start(result.checked_at, width), result.agent_id, result.check_type)
        cells.setdefault(key, Cell()).add(result)
    return cells


def rollups_add(results: list[CheckResult]) -> None:
    """Add freshly stored results to both resolutions. Call inside the raw insert's transaction."""
    if not results:
        return
    for model, width in RESOLUTIONS.values():
        upsert_cells(model, cells_of(results, width))


# ---------------------------------------------------------------------------------------------
# The additive upsert, in each database's dialect

ROLLUP_COLUMNS = [
    "endpoint_id",
    "bucket",
    "agent_id",
    "check_type",
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

# The stored row is ``t``; PostgreSQL merges histograms with smotra_histogram_add (migration 0002),
# SQLite with its JSON functions inline. min()/max() of SQLite, like LEAST/GREATEST with COALESCE,
# keep the one side that is not null.
_MERGE = {
    "postgresql": {
        "min": "COALESCE(LEAST(t.{0}, EXCLUDED.{0}), t.{0}, EXCLUDED.{0})",
        "max": "COALESCE(GREATEST(t.{0}, EXCLUDED.{0}), t.{0}, EXCLUDED.{0})",
        "histogram": "smotra_histogram_add(t.histogram, EXCLUDED.histogram)",
        "cast": "%s::jsonb",
    },
    "sqlite": {
        "min": "COALESCE(min(t.{0}, excluded.{0}), t.{0}, excluded.{0})",
        "max": "COALESCE(max(t.{0}, excluded.{0}), t.{0}, excluded.{0})",
        "histogram": (
            "json_patch(t.histogram, (SELECT json_group_object(key, "
            "COALESCE(json_extract(t.histogram, '$.\"' || key || '\"'), 0) + value) "
            "FROM json_each(excluded.histogram)))"
        ),
        "cast": "%s",
    },
}
_SQL_CACHE: dict[tuple[str, str, int], str] = {}


def _upsert_sql(table: str, rows: int) -> str:
    key = (connection.vendor, table, rows)
    if key not in _SQL_CACHE:
        dialect = _MERGE[connection.vendor]
        placeholders = ", ".join(["%s"] * (len(ROLLUP_COLUMNS) - 1) + [dialect["cast"]])
        values = ", ".join([f"({placeholders})"] * rows)
        updates = [f"{name} = t.{name} + excluded.{name}" for name in _ADDED]
        updates += [f"latency_min = {dialect['min'].format('latency_min')}"]
        updates += [f"latency_max = {dialect['max'].format('latency_max')}"]
        updates += [f"histogram = {dialect['histogram']}"]
        _SQL_CACHE[key] = (
            f"INSERT INTO {table} AS t ({', '.join(ROLLUP_COLUMNS)}) VALUES {values} "  # noqa: S608 - our own names
            f"ON CONFLICT (endpoint_id, bucket, agent_id, check_type) DO UPDATE SET {', '.join(updates)}"
        )
    return _SQL_CACHE[key]


def upsert_cells(model, cells: dict[tuple, Cell], chunk: int = 500) -> None:
    """One statement per ``chunk`` rows, in key order (the same order in every transaction)."""

    bucket_field = model._meta.get_field("bucket")
    rows = []
    for (endpoint_id, bucket, agent_id, check_type), cell in sorted(cells.items(), key=lambda item: _order(item[0])):
        rows.append(
            [
                _uuid(endpoint_id),
                bucket_field.get_db_prep_value(bucket, connection),
                _uuid(agent_id),
                check_type,
                *(getattr(cell, name) for name in ROLLUP_COLUMNS[4:13]),
                json.dumps(cell.histogram, separators=(",", ":")),
            ]
        )
    with connection.cursor() as cursor:
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            cursor.execute(_upsert_sql(model._meta.db_table, len(part)), [value for row in part for value in row])


def _order(key: tuple) -> tuple:
    endpoint_id, bucket, agent_id, check_type = key
    return (str(endpoint_id), bucket, str(agent_id), check_type)


def _uuid(value):
    # Django stores UUIDs as 32 hex characters on SQLite and as uuid on PostgreSQL.
    return value.hex if connection.vendor == "sqlite" else value
