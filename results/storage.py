"""Storing a batch's results with their rollups: on PostgreSQL one statement, anywhere exactly once.

PostgreSQL inserts the raw rows, creates the series it has not seen and adds the freshly stored rows
to every rollup tier in one statement (one round trip, rows as one JSON parameter). Exactly once is
the database's own guarantee there: ``ON CONFLICT (id) DO NOTHING RETURNING id`` names the rows this
statement stored, and only those are added up, so a resend (or a concurrent one) adds nothing. What a
result adds to a rollup row (counts, latency samples and their histogram) is worked out in Python by
``rollups.Cell.of``, the same code ``rebuild_rollups`` and SQLite use; the database adds the shares
up per row (``string_agg`` joins histograms, whose entries may repeat a bucket) and upserts them.
On bench/readside.py's 5-million-row database a batch of 100 took 17 ms without rollups and 30 ms
with them as separate statements (existing ids, insert, series, upsert) and cells added up in Python;
this way 9-13 ms and 13-17 ms.

SQLite keeps the ORM insert and ``rollups.rollups_add``: one writer at a time, no round trips."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from django.db import connection

from results.histogram import histogram_encode
from results.models import CheckResult, DayRollup, HourRollup, MinuteRollup, RollupSeries
from results.rollups import ROLLUP_COLUMNS, Cell, on_conflict_add, rollups_add
from smotra.api.renderers import json_bytes

# The tiers the statement maintains, with the unit date_trunc cuts their buckets to (in UTC).
TIERS = ((MinuteRollup, "minute"), (HourRollup, "hour"), (DayRollup, "day"))

_RAW = ["id", "endpoint_id", "check_type", "success", "checked_at", "latency_ms", "packets_sent"]
_RAW += ["packets_received", "status_code", "resolved_ip", "details"]
_FIELDS = (
    "id uuid, endpoint_id uuid, check_type text, success bool, checked_at timestamptz, latency_ms float8, "
    "packets_sent int4, packets_received int4, status_code int4, resolved_ip text, details jsonb, "
    "samples int4, sample_sum float8, sample_min float8, sample_max float8, histogram text"
)


@dataclass(slots=True)
class ResultRow:
    """One result of a batch as it is stored, less the batch's agent and receive time: CheckResult's
    columns without a model instance (building one cost 7 of the 21 µs a batch item took,
    bench/ingest_paths.py). ``rollups.Cell.of`` reads it as it reads a CheckResult."""

    id: UUID
    endpoint_id: UUID
    check_type: str
    success: bool
    checked_at: datetime
    latency_ms: float | None = None
    packets_sent: int | None = None
    packets_received: int | None = None
    status_code: int | None = None
    resolved_ip: str = ""
    details: dict = field(default_factory=dict)


def results_store(results: list[ResultRow], *, agent_id: UUID, received_at: datetime) -> set[UUID]:
    """Store the results that are not stored yet (ids unique within ``results``) and add exactly
    those to the rollups; the ids stored now. The caller holds the agent's row lock in an open
    transaction: one agent's batches are stored one at a time."""
    if not results:
        return set()
    if connection.vendor != "postgresql":
        stored = set(CheckResult.objects.filter(pk__in=[r.id for r in results]).values_list("pk", flat=True))
        fresh = [_model(row, agent_id, received_at) for row in results if row.id not in stored]
        CheckResult.objects.bulk_create(fresh, ignore_conflicts=True, batch_size=500)
        rollups_add(fresh)
        return {result.id for result in fresh}
    with connection.cursor() as cursor:
        cursor.execute(_statement(TIERS), [_payload(results, shares=bool(TIERS)), str(agent_id), received_at])
        rows = cursor.fetchall()
    if rows and rows[0][1]:
        # A stored row found no series (see _statement): fail the batch (the agent resends it)
        # rather than store it without its rollups.
        raise RollupSeriesMissing(f"{rows[0][1]} stored result(s) found no rollup series")
    return {row[0] for row in rows}


class RollupSeriesMissing(RuntimeError):
    """Raised inside the batch's transaction, so nothing of it is kept."""


_ROW_FIELDS = ResultRow.__slots__


def _model(row: ResultRow, agent_id: UUID, received_at: datetime) -> CheckResult:
    return CheckResult(agent_id=agent_id, received_at=received_at, **{name: getattr(row, name) for name in _ROW_FIELDS})


def _payload(results: list[ResultRow], *, shares: bool) -> str:
    rows = []
    for result in results:
        share = Cell.of(result) if shares else _NO_SHARE
        rows.append(
            {
                "id": str(result.id),
                "endpoint_id": str(result.endpoint_id),
                "check_type": result.check_type,
                "success": result.success,
                "checked_at": result.checked_at.isoformat(),
                "latency_ms": result.latency_ms,
                "packets_sent": result.packets_sent,
                "packets_received": result.packets_received,
                "status_code": result.status_code,
                "resolved_ip": result.resolved_ip,
                "details": result.details,
                "samples": share.latency_count,
                "sample_sum": share.latency_sum,
                "sample_min": share.latency_min,
                "sample_max": share.latency_max,
                "histogram": histogram_encode(share.histogram).hex(),
            }
        )
    return json_bytes(rows).decode()


_NO_SHARE = Cell()
_STATEMENTS: dict[tuple, str] = {}


def _statement(tiers: tuple) -> str:
    """The statement for these tiers (built once). Its parts, in order:

    - ``incoming``: the batch, one row per result with its rollup share;
    - ``stored``: the raw insert; RETURNING names the rows stored now (not a resend's);
    - ``series``: the agent's series for the fresh rows' (endpoint, check type), those missing
      created. A series made by another transaction would be invisible to this statement's
      snapshot while its insert found the conflict, so neither would name it: only the agent's
      own batches create its series, and they wait on the agent's row lock, which the caller took
      in an earlier statement, whose commit this statement's snapshot sees;
    - one upsert per tier: the shares added up per (series, bucket), in key order (two batches
      taking row locks in one order cannot deadlock), added to the stored row.

    The statement answers the ids stored now (with a check that every one of them was added up)."""
    if tiers not in _STATEMENTS:
        raw = ", ".join(_RAW)
        ctes = [
            f"incoming AS (SELECT * FROM json_to_recordset(%s::json) AS x({_FIELDS}))",  # noqa: S608
            # %s: the agent's id, then the receive time.
            "stored AS (INSERT INTO results_checkresult (agent_id, received_at, "  # noqa: S608
            f"{raw}) SELECT %s::uuid, %s::timestamptz, {raw} FROM incoming ORDER BY id "
            "ON CONFLICT (id) DO NOTHING RETURNING id, agent_id)",
        ]
        if tiers:
            series = RollupSeries._meta.db_table
            ctes += [
                "fresh AS (SELECT incoming.*, stored.agent_id FROM incoming JOIN stored USING (id))",
                "wanted AS (SELECT DISTINCT endpoint_id, agent_id, check_type FROM fresh)",
                f"created AS (INSERT INTO {series} (endpoint_id, agent_id, check_type) "  # noqa: S608
                "SELECT * FROM wanted ORDER BY 1, 3 ON CONFLICT DO NOTHING "
                "RETURNING id, endpoint_id, agent_id, check_type)",
                f"series AS (SELECT s.id, s.endpoint_id, s.agent_id, s.check_type FROM {series} s "  # noqa: S608
                "JOIN wanted USING (endpoint_id, agent_id, check_type) UNION ALL SELECT * FROM created)",
                "shares AS (SELECT series.id AS series_id, fresh.* FROM fresh "
                "JOIN series USING (endpoint_id, agent_id, check_type))",
            ]
            for model, unit in tiers:
                ctes.append(f"{unit} AS ({_tier_upsert(model._meta.db_table, unit)})")
        # Each row also says how many stored rows found no series: none, unless a series was
        # made outside the agent's lock, which the caller refuses loudly instead of losing rollups.
        lost = "(SELECT count(*) FROM fresh) - (SELECT count(*) FROM shares)" if tiers else "0"
        _STATEMENTS[tiers] = f"WITH {', '.join(ctes)} SELECT id, {lost} FROM stored"  # noqa: S608 - our names only
    return _STATEMENTS[tiers]


def _tier_upsert(table: str, unit: str) -> str:
    bucket = f"date_trunc('{unit}', checked_at, 'UTC')"
    # A new row's histogram is compacted as a merged one would be (smotra_histogram_add, 0007).
    histogram = "smotra_histogram_add(''::bytea, string_agg(decode(histogram, 'hex'), ''::bytea))"
    return (
        f"INSERT INTO {table} AS t ({', '.join(ROLLUP_COLUMNS)}) "  # noqa: S608
        f"SELECT series_id, {bucket}, count(*), count(*) FILTER (WHERE success), count(*) FILTER (WHERE NOT success), "
        "COALESCE(sum(packets_sent), 0), COALESCE(sum(packets_received), 0), sum(samples), sum(sample_sum), "
        f"min(sample_min), max(sample_max), {histogram} "
        f"FROM shares GROUP BY 1, 2 ORDER BY 1, 2 {on_conflict_add()}"
    )
