"""Reads for the admin's charts and overview page.

The chart series are the report selector's rows (``report``, grouped by agent). Figures over a
whole window (an agent's availability and percentiles for the day, an endpoint's for the last hour)
are the same rollup rows added up into one ``Cell`` per key, read from the table ``report`` would
read for that window: percentiles of a window come from its merged histograms, never from the
buckets' percentiles."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import OuterRef, Subquery

from agents.models import Agent
from results.histogram import percentile
from results.models import CheckResult, Heartbeat, UnknownEndpoint
from results.rollups import Cell
from results.selectors.reports import (
    AGGREGATIONS,
    ReportQuery,
    report,
    report_source,
    series_in,
    series_of,
    visible_endpoints,
)
from results.selectors.summary import summary

# Each range is drawn from buckets of one aggregation: 60 to 288 of them.
RANGES = {
    "1h": (timedelta(hours=1), "1m"),
    "24h": (timedelta(hours=24), "5m"),
    "7d": (timedelta(days=7), "1h"),
    "30d": (timedelta(days=30), "6h"),
}
DEFAULT_RANGE = "24h"
PREFERRED_CHECK = "ping"  # SmokePing's: the one with loss and a latency spread per check
WORST_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class Window:
    """The stretch a chart shows: ``start`` is a bucket boundary, the last bucket holds ``now``."""

    key: str
    start: datetime
    now: datetime
    span: timedelta
    aggregation: str

    @property
    def step(self) -> int:
        return AGGREGATIONS[self.aggregation]

    def query(self, **filters) -> ReportQuery:
        return ReportQuery(start=self.start, end=self.now, aggregation=self.aggregation, **filters)


def chart_window(key: str | None, *, now: datetime | None = None) -> Window:
    """The window of a ``?range=`` value (anything else: the last 24 hours)."""
    key = key if key in RANGES else DEFAULT_RANGE
    span, aggregation = RANGES[key]
    now = now or datetime.now(UTC)
    step = AGGREGATIONS[aggregation]
    last = int(now.timestamp()) // step * step
    start = datetime.fromtimestamp(last + step, UTC) - span
    return Window(key=key, start=start, now=now, span=span, aggregation=aggregation)


# ---------------------------------------------------------------------------------------------
# Series: the report's rows, per endpoint, check type and agent


@dataclass
class Series:
    """One agent's buckets of one check type on one endpoint, oldest first."""

    endpoint_id: object
    check_type: str
    agent_id: object
    name: str
    rows: list


def latency_series(user, window: Window, *, endpoint_ids=(), agent_ids=()) -> list[Series]:
    """Every (endpoint, check type, agent) the report has rows for in the window."""
    query = window.query(endpoint_ids=tuple(endpoint_ids), agent_ids=tuple(agent_ids), group_by="agent")
    _aggregation, rows, _totals = report(user, query, now=window.now)
    grouped: dict[tuple, Series] = {}
    for row in rows:
        key = (row["endpoint_id"], row["metric_type"], row["agent_id"])
        if key not in grouped:
            grouped[key] = Series(row["endpoint_id"], row["metric_type"], row["agent_id"], row["hostname"] or "", [])
        grouped[key].rows.append(row)
    return sorted(grouped.values(), key=lambda series: (series.name, str(series.agent_id)))


def check_types_of(series: list[Series]) -> list[str]:
    """The check types the series cover, the most reported first (ping first when present)."""
    counts = Counter()
    for one in series:
        counts[one.check_type] += len(one.rows)
    return sorted(counts, key=lambda name: (name != PREFERRED_CHECK, -counts[name], name))


def pick_check_type(series: list[Series], wanted: str | None) -> str | None:
    types = check_types_of(series)
    return wanted if wanted in types else (types[0] if types else None)


# ---------------------------------------------------------------------------------------------
# Figures over a whole window


def window_buckets(user, query: ReportQuery, key: Callable[[dict], object], *, now: datetime) -> dict:
    """The rollup rows of the query's window (the table ``report`` reads), added up per ``key(row)``."""
    model, _aggregation = report_source(query, now)
    agents = Agent.objects.visible_to(user)
    if query.agent_ids:
        agents = agents.filter(pk__in=query.agent_ids)
    scope = series_in(visible_endpoints(user, query), agents, query.metric_types)
    series = series_of(scope)
    rows = model.objects.filter(bucket__gte=query.start, bucket__lt=query.end, series_id__in=scope.values("pk"))
    merged: dict = defaultdict(Cell)
    for row in rows.values().iterator(chunk_size=5000):
        endpoint_id, agent_id, check_type = series[row["series_id"]]
        merged[key({**row, "endpoint_id": endpoint_id, "agent_id": agent_id, "check_type": check_type})].add_row(row)
    return merged


def figures(bucket: Cell) -> dict:
    """Availability (checks that succeeded), loss (ping packets lost) and latency percentiles."""
    bounds = {"low": bucket.latency_min, "high": bucket.latency_max}
    sent = bucket.packets_sent
    return {
        "checks": bucket.check_count,
        "availability": round(bucket.success_count / bucket.check_count * 100, 2) if bucket.check_count else None,
        "loss": round((sent - bucket.packets_received) / sent * 100, 2) if sent else None,
        **{f"p{p}": percentile(bucket.histogram, p, **bounds) for p in (50, 95, 99)},
    }


def agent_figures(user, window: Window, endpoint_id, check_type: str) -> dict:
    """agent id -> figures of one endpoint and check type over the window."""
    query = window.query(endpoint_ids=(endpoint_id,), metric_types=(check_type,))
    merged = window_buckets(user, query, lambda row: row["agent_id"], now=window.now)
    return {agent_id: figures(bucket) for agent_id, bucket in merged.items()}


def last_results(user, endpoint_id, agent_ids) -> dict:
    """agent id -> its newest result for the endpoint (any check type), in one query."""
    newest = CheckResult.objects.filter(agent_id=OuterRef("pk"), endpoint_id=endpoint_id).order_by("-checked_at")
    agents = Agent.objects.visible_to(user).filter(pk__in=list(agent_ids))
    annotated = agents.annotate(
        last_checked_at=Subquery(newest.values("checked_at")[:1]),
        last_success=Subquery(newest.values("success")[:1]),
        last_check_type=Subquery(newest.values("check_type")[:1]),
        last_latency_ms=Subquery(newest.values("latency_ms")[:1]),
    )
    return {agent.pk: agent for agent in annotated.only("id", "name") if agent.last_checked_at is not None}


# ---------------------------------------------------------------------------------------------
# Vitals over time


def vitals_series(user, agent_id, window: Window) -> list[dict]:
    """The agent's heartbeats in the window, averaged per chart bucket (the agent's clock)."""
    heartbeats = Heartbeat.objects.visible_to(user).filter(
        agent_id=agent_id, timestamp__gte=window.start, timestamp__lte=window.now
    )
    columns = ("timestamp", "cpu_usage_percent", "memory_usage_mb", "memory_total_mb")
    buckets: dict[int, list[tuple]] = defaultdict(list)
    for row in heartbeats.order_by("timestamp").values_list(*columns).iterator(chunk_size=5000):
        buckets[int(row[0].timestamp()) // window.step * window.step].append(row[1:])
    return [_vitals_point(start, samples) for start, samples in sorted(buckets.items())]


def _mean(values) -> float | None:
    present = [value for value in values if value is not None]
    return sum(present) / len(present) if present else None


def _vitals_point(start: int, samples: list[tuple]) -> dict:
    cpu, used, total = zip(*samples, strict=True)
    return {
        "timestamp": datetime.fromtimestamp(start, UTC),
        "cpu_usage_percent": _mean(cpu),
        "memory_usage_mb": _mean(used),
        "memory_total_mb": max((value for value in total if value is not None), default=None),
        "heartbeats": len(samples),
    }


# ---------------------------------------------------------------------------------------------
# The overview page


def worst_endpoints(user, *, now: datetime, limit: int = 10) -> list[dict]:
    """Endpoints with results in the last hour, worst first: lowest availability, then the highest
    loss, then the highest p95 (over all their latency samples, every agent and check type)."""
    query = ReportQuery(start=now - WORST_WINDOW, end=now, aggregation="1m")
    merged = window_buckets(user, query, lambda row: row["endpoint_id"], now=now)
    endpoints = visible_endpoints(user, query).filter(pk__in=list(merged)).select_related("section")
    rows = [{"endpoint": endpoint, **figures(merged[endpoint.pk])} for endpoint in endpoints]
    rows.sort(key=lambda row: (row["availability"], -(row["loss"] or 0), -(row["p95"] or 0), str(row["endpoint"])))
    return rows[:limit]


def fleet_overview(user, *, now: datetime | None = None) -> dict:
    """The overview page: agents by status, endpoint states of the last 15 minutes (the summary
    selector's), the worst endpoints of the last hour and the unknown endpoint ids seen last."""
    now = now or datetime.now(UTC)
    fleet = summary(user, time_range="1h", now=now)
    statuses = Counter(str(row["status"]) for row in fleet["by_agent"])
    unknown = UnknownEndpoint.objects.visible_to(user).select_related("agent").order_by("-last_seen_at")
    return {
        "agents": {name: statuses.get(name, 0) for name in ("online", "offline", "never_seen", "revoked")},
        "total_agents": fleet["total_agents"],
        "endpoints": {name: fleet[f"{name}_targets"] for name in ("reachable", "degraded", "unreachable", "unknown")},
        "total_endpoints": fleet["total_targets"],
        "worst": worst_endpoints(user, now=now),
        "unknown_endpoints": list(unknown[:10]),
        "now": now,
    }
