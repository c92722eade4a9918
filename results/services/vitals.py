"""Heartbeats (vitals) and status reports from agents (contract §6.2, §6.3)."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb
from uuid6 import uuid7

from agents.models import Agent
from agents.services.presence import agent_seen
from results.models import AgentStatusReport, Heartbeat
from results.services.heartbeat_commit import GroupCommit
from smotra import metrics
from smotra import validation as v
from smotra.errors import Invalid

_METRICS = ("cpu_usage_percent", "memory_usage_mb", "memory_total_mb")
_UPTIMES = ("system_uptime_secs", "agent_uptime_secs")
_NESTED_KEYS = ("health_status", "metrics", "agent_status")


def _vitals(source: dict, path: str) -> dict:
    values = {name: v.number(source, name, f"{path}{name}") for name in _METRICS}
    values.update({name: v.number(source, name, f"{path}{name}", integer=True) for name in _UPTIMES})
    return values


def status_fields(status: dict, path: str = "") -> dict:
    """The agent_status object (contract §6.2 nested shape, §6.3 body) as AgentStatusReport fields."""
    cache = v.mapping(status, "cache_stats", f"{path}cache_stats") or {}
    counters = ("checks_performed", "checks_successful", "checks_failed", "failed_report_count", "config_version")
    return {
        "agent_version": v.string(status, "agent_version", f"{path}agent_version", max_length=100) or "",
        **{name: v.number(status, name, f"{path}{name}", integer=True) for name in counters},
        "is_running": v.boolean(status, "is_running", f"{path}is_running"),
        "server_connected": v.boolean(status, "server_connected", f"{path}server_connected"),
        "started_at": v.timestamp(status, "started_at", f"{path}started_at"),
        "stopped_at": v.timestamp(status, "stopped_at", f"{path}stopped_at"),
        "reported_at": v.timestamp(status, "reported_at", f"{path}reported_at"),
        "cache_len": v.number(cache, "len", f"{path}cache_stats.len", integer=True),
        "cache_capacity": v.number(cache, "capacity", f"{path}cache_stats.capacity", integer=True),
    }


# Objects of a heartbeat body whose name a too-deep value is reported under (deepest first).
_HEARTBEAT_OBJECTS = ("agent_status.cache_stats", "agent_status", "metrics")
_REPORT_OBJECTS = ("cache_stats",)


def _refuse_hostile(body: dict, known: tuple[str, ...]) -> None:
    """NUL characters (field ``body``) and nesting beyond MAX_JSON_DEPTH (the deepest known object)."""
    v.refuse_hostile(body, "body", known=known)


@dataclass(frozen=True, slots=True)
class HeartbeatValues:
    columns: dict  # the vitals row's own columns but its agent and times
    timestamp: datetime | None  # the agent's clock; None: the receive time
    agent_version: str | None  # reported by the nested shape
    shape: str  # "nested" or "flat", for the metric


def heartbeat_values(body) -> HeartbeatValues:
    """One vitals snapshot from either shape, validated: nested (``metrics`` + ``agent_status``) or flat."""
    if not isinstance(body, dict):
        raise Invalid("The heartbeat must be a JSON object.", field="body")
    # Any key of the nested shape selects it, so a malformed ``metrics`` is refused, not ignored.
    nested = any(key in body for key in _NESTED_KEYS)
    if nested:
        vitals = _vitals(v.mapping(body, "metrics", "metrics") or {}, "metrics.")
        status_object = v.mapping(body, "agent_status", "agent_status")
        version = status_fields(status_object, "agent_status.")["agent_version"] if status_object else None
        health = v.string(body, "health_status", "health_status", max_length=32)
    else:
        vitals = _vitals(body, "")
        vitals["agent_uptime_secs"] = None
        status_object, version = None, None
        health = v.string(body, "status", "status", max_length=32)
    _refuse_hostile(body, _HEARTBEAT_OBJECTS)
    columns = {"health_status": health or "", "agent_status": status_object, **vitals}
    timestamp = v.timestamp(body, "timestamp", "timestamp")
    return HeartbeatValues(columns, timestamp, (version or "")[:100] or None, "nested" if nested else "flat")


def heartbeat_store(*, agent_id: UUID, key_digest: str, heartbeat: HeartbeatValues) -> bool:
    """Store the heartbeat if ``key_digest`` is the live key of ``agent_id``, with the agent's
    last-seen time (only when older than ``agent.last_seen_resolution``, as agents.services.presence
    does) and reported version. False: the key is not that agent's (nothing written; the caller
    tells 401 from 403).

    This is every agent's most frequent request. On PostgreSQL it is one statement and one round
    trip: the key check, the insert and the bookkeeping together (profiled, the separate key lookup
    and the ORM insert were half of a heartbeat's CPU); with ``agent.heartbeat_group_commit`` the
    heartbeats a process stores at the same moment share that statement (heartbeat_commit). SQLite,
    which has no data-modifying CTE and no round trips, takes the insert and the conditional update
    as two statements; it has a single writer, so there is nothing to group there."""
    now = timezone.now()
    params = _heartbeat_params(agent_id, key_digest, heartbeat, now)
    if connection.vendor == "postgresql":
        stored = _postgresql_store(params)
    else:
        with connection.cursor() as cursor, transaction.atomic():  # one write lock, and both or neither
            cursor.execute(_HEARTBEAT_SQL["insert"], params)
            stored = cursor.rowcount == 1
            if stored:
                cursor.execute(_HEARTBEAT_SQL["seen"], params)
    if stored:
        metrics.HEARTBEATS.labels(heartbeat.shape).inc()
    return stored


def _postgresql_store(params: dict) -> bool:
    # A caller inside a transaction writes alone: its row must not be committed by another thread,
    # nor other callers' rows written into its transaction.
    if settings.SMOTRA.agent.heartbeat_group_commit and not connection.in_atomic_block:
        return _GROUP.submit(params)
    return heartbeats_write([params])[0]


def heartbeats_write(rows: Sequence[dict]) -> list[bool]:
    """Store heartbeats (:func:`_heartbeat_params` each) with one statement on this thread's
    connection; per row, whether its key was live and the row stored. One row takes the very
    statement a heartbeat takes without group commit."""
    with connection.cursor() as cursor:
        if len(rows) == 1:
            cursor.execute(_HEARTBEAT_SQL["postgresql"], rows[0])
            return [cursor.fetchone()[0] == 1]
        params = [value for n, row in enumerate(rows) for value in (n, *(row[name] for name, _ in _GROUP_VALUES))]
        cursor.execute(_group_sql(len(rows)), params)
        stored = {row_id for (row_id,) in cursor.fetchall()}
    return [row["id"] in stored for row in rows]


_HEARTBEAT_COLUMNS = ("health_status", "cpu_usage_percent", "memory_usage_mb", "memory_total_mb")
_HEARTBEAT_COLUMNS += ("system_uptime_secs", "agent_uptime_secs", "agent_status")


def _heartbeat_params(agent_id: UUID, key_digest: str, heartbeat: HeartbeatValues, now: datetime) -> dict:
    """The statement's parameters as the database takes them: psycopg adapts Python's values
    itself (JSON wrapped as jsonb); for SQLite the model fields prepare them."""
    stale = now - timedelta(seconds=settings.SMOTRA.agent.last_seen_resolution)
    if connection.vendor == "postgresql":
        status = heartbeat.columns["agent_status"]
        return heartbeat.columns | {
            "agent_status": None if status is None else Jsonb(status),
            "id": uuid7(),
            "agent": agent_id,
            "digest": key_digest,
            "timestamp": heartbeat.timestamp or now,
            "now": now,
            "stale": stale,
            "version": heartbeat.agent_version,
        }
    field = Heartbeat._meta.get_field
    moment = field("received_at").get_db_prep_save
    params = {name: field(name).get_db_prep_save(heartbeat.columns[name], connection) for name in _HEARTBEAT_COLUMNS}
    return params | {
        "id": field("id").get_db_prep_save(uuid7(), connection),
        "agent": field("id").get_db_prep_save(agent_id, connection),
        "digest": key_digest,
        "timestamp": moment(heartbeat.timestamp or now, connection),
        "now": moment(now, connection),
        "stale": moment(stale, connection),
        "version": heartbeat.agent_version,
    }


_INSERT_COLUMNS = ", ".join(("id", "agent_id", "timestamp", "received_at", *_HEARTBEAT_COLUMNS))
# The agent's id comes from the row the key matched (``id`` of agents_agent, or of the CTE).
_INSERT_VALUES = ", ".join(
    ["%(id)s", "id", "%(timestamp)s", "%(now)s", *(f"%({name})s" for name in _HEARTBEAT_COLUMNS)]
)
_LIVE_KEY = "id = %(agent)s AND api_key_hash = %(digest)s AND revoked_at IS NULL"
_IS_STALE = "last_seen_at IS NULL OR last_seen_at <= %(stale)s"
_NEW_VERSION = "(%(version)s IS NOT NULL AND %(version)s <> agent_version)"
_SEEN_SET = (
    f"last_seen_at = CASE WHEN {_IS_STALE} THEN %(now)s ELSE last_seen_at END, "
    "agent_version = COALESCE(%(version)s, agent_version)"
)
_HEARTBEAT_SQL = {
    "postgresql": (
        f"WITH agent AS (SELECT id FROM agents_agent WHERE {_LIVE_KEY}), "  # noqa: S608 - our names only
        f"stored AS (INSERT INTO results_heartbeat ({_INSERT_COLUMNS}) "
        f"SELECT {_INSERT_VALUES} FROM agent RETURNING agent_id), "
        f"seen AS (UPDATE agents_agent SET {_SEEN_SET} "
        f"WHERE id IN (SELECT agent_id FROM stored) AND ({_IS_STALE} OR {_NEW_VERSION})) "
        "SELECT count(*) FROM stored"
    ).replace("%(version)s", "%(version)s::text"),
    "insert": (
        f"INSERT INTO results_heartbeat ({_INSERT_COLUMNS}) "  # noqa: S608 - our names only
        f"SELECT {_INSERT_VALUES} FROM agents_agent WHERE {_LIVE_KEY}"
    ),
    "seen": f"UPDATE agents_agent SET {_SEEN_SET} WHERE id = %(agent)s AND ({_IS_STALE} OR {_NEW_VERSION})",  # noqa: S608
}


# The group statement (PostgreSQL): the same key check, insert and bookkeeping as the one above, for
# every row of a VALUES list, with the one-row statement's parameters as its columns.
_GROUP_VALUES = (
    ("id", "uuid"),
    ("agent", "uuid"),
    ("digest", "text"),
    ("timestamp", "timestamptz"),
    ("now", "timestamptz"),
    ("stale", "timestamptz"),
    ("version", "text"),
    ("health_status", "text"),
    *((name, "float8") for name in _METRICS),
    *((name, "bigint") for name in _UPTIMES),
    ("agent_status", "jsonb"),
)


def _columns_of(fragment: str, relation: str) -> str:
    """A fragment of the one-row statement with its parameters read from ``relation``'s columns."""
    return re.sub(r"%\((\w+)\)s", rf"{relation}.\1", fragment)


@functools.cache
def _group_sql(size: int) -> str:
    """The statement for ``size`` rows (n, then _GROUP_VALUES each); it returns the stored rows' ids."""
    row = "(%s::int, " + ", ".join(f"%s::{type_}" for _, type_ in _GROUP_VALUES) + ")"
    # The heartbeat's own id is row_id: a bare ``id`` in the key check is the agent's, as above.
    names = ", ".join(["n", "row_id", *(name for name, _ in _GROUP_VALUES[1:])])
    values = ", ".join(["row_id", "agent", "timestamp", "now", *_HEARTBEAT_COLUMNS])
    return (
        f"WITH batch ({names}) AS (VALUES {', '.join([row] * size)}), "  # noqa: S608 - our names only
        f"live AS (SELECT batch.* FROM batch JOIN agents_agent ON {_columns_of(_LIVE_KEY, 'batch')}), "
        f"stored AS (INSERT INTO results_heartbeat ({_INSERT_COLUMNS}) SELECT {values} FROM live RETURNING id), "
        # One row per agent, though a group may hold several heartbeats of one: an UPDATE changes a
        # row once per statement (which joined row would win is unspecified). The latest moment and
        # the latest version sent are what one statement per heartbeat would have left.
        "latest AS (SELECT agent, max(now) AS now, max(stale) AS stale, "
        "(array_agg(version ORDER BY n DESC) FILTER (WHERE version IS NOT NULL))[1] AS version "
        "FROM live GROUP BY agent), "
        # The agents' rows are locked in the order of their ids: two groups (of two processes) that
        # share agents could otherwise lock them in opposite orders and deadlock. One agent per
        # statement, as without group commit, cannot.
        "locked AS (SELECT id, latest.now, latest.stale, latest.version FROM agents_agent JOIN latest "
        f"ON id = latest.agent WHERE {_columns_of(_IS_STALE, 'latest')} OR {_columns_of(_NEW_VERSION, 'latest')} "
        "ORDER BY id FOR NO KEY UPDATE OF agents_agent), "
        f"seen AS (UPDATE agents_agent SET {_columns_of(_SEEN_SET, 'locked')} FROM locked "
        "WHERE agents_agent.id = locked.id) "
        "SELECT id FROM stored"
    )


# Heartbeats stored at the same moment by the threads of this process (agent.heartbeat_group_commit).
_GROUP = GroupCommit(heartbeats_write)


def status_report_record(*, agent: Agent, body) -> datetime:
    """Keep the agent's latest status report (one upsert). Returns the receive time."""
    if not isinstance(body, dict):
        raise Invalid("The status report must be a JSON object.", field="body")
    now = timezone.now()
    fields = status_fields(body)
    _refuse_hostile(body, _REPORT_OBJECTS)
    AgentStatusReport.objects.bulk_create(
        [AgentStatusReport(agent=agent, received_at=now, **fields)],
        update_conflicts=True,
        unique_fields=["agent"],
        update_fields=["received_at", *fields],
    )
    agent_seen(agent, agent_version=fields["agent_version"] or None, now=now)
    metrics.REPORTS.inc()
    return now
