"""``/result/report``: aggregated buckets read from the rollups, tenant-scoped.

Rows come from the minute rollups for sub-hour aggregations and from the hourly ones otherwise (or
when the window reaches back past the minute retention: the answer then says ``1h``). Counts and
sums are added up; percentiles come from adding the histograms (results/histogram.py), never from
averaging percentiles. Buckets without results are absent, so a chart shows a gap."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings

from agents.models import Agent
from endpoints.models import Endpoint
from results.histogram import percentile
from results.models import HourRollup, MinuteRollup
from results.rollups import Cell

AGGREGATIONS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "1d": 86400}
SUB_HOUR = {"1m", "5m", "15m"}
METRIC_TYPES = ("ping", "tcpconnect", "udpconnect", "httpget", "traceroute", "plugin")
# The upstream API's names for the same checks.
METRIC_ALIASES = {"icmp_ping": "ping", "tcp_check": "tcpconnect", "http_check": "httpget", "custom": "plugin"}
STATUSES = ("reachable", "unreachable", "degraded")


@dataclass(frozen=True)
class ReportQuery:
    start: datetime
    end: datetime
    aggregation: str = "5m"
    agent_ids: tuple = ()
    endpoint_ids: tuple = ()
    metric_types: tuple = ()
    section_id: object = None
    target: str = ""
    statuses: tuple = ()
    group_by: str = "agent"


# Rollup rows added up into one report row.
Bucket = Cell


def report_source(query: ReportQuery, now: datetime) -> tuple[type, str]:
    """The rollup table to read and the aggregation actually used."""
    minute_floor = now - timedelta(seconds=settings.SMOTRA.results.minute_rollup_retention)
    if query.aggregation in SUB_HOUR and query.start >= minute_floor:
        return MinuteRollup, query.aggregation
    return HourRollup, "1h" if query.aggregation in SUB_HOUR else query.aggregation


def visible_endpoints(user, query: ReportQuery):
    """The endpoints a report may cover: the user's tenants', narrowed by the query's filters."""
    endpoints = Endpoint.objects.visible_to(user)
    if query.endpoint_ids:
        endpoints = endpoints.filter(pk__in=query.endpoint_ids)
    if query.section_id:
        endpoints = endpoints.filter(section_id=query.section_id)
    if query.target:
        address, _, port = query.target.rpartition(":") if _has_port(query.target) else (query.target, "", "")
        endpoints = endpoints.filter(address=address, **({"port": int(port)} if port else {}))
    return endpoints


_PORT = re.compile(r"[0-9]{1,5}")


def _has_port(target: str) -> bool:
    head, sep, tail = target.rpartition(":")
    # ASCII digits only: str.isdigit() is also true of "²", which int() refuses.
    return bool(sep) and bool(_PORT.fullmatch(tail)) and "://" not in target and head.count(":") == 0


def report(user, query: ReportQuery, *, now: datetime | None = None) -> tuple[str, list[dict], dict]:
    """(the aggregation used, every row of the report in order, totals over those rows)."""
    aggregation, buckets, endpoints, names = _buckets(user, query, now)
    return aggregation, [_row(key, bucket, endpoints, names) for key, bucket in buckets], _totals(buckets)


def report_page(
    user, query: ReportQuery, *, page: int, size: int, now: datetime | None = None
) -> tuple[str, list[dict], int, dict]:
    """(the aggregation used, the rows of one page, how many rows in all, totals over all rows):
    percentiles are worked out for the page's rows only."""
    aggregation, buckets, endpoints, names = _buckets(user, query, now)
    rows = [_row(key, bucket, endpoints, names) for key, bucket in buckets[(page - 1) * size : page * size]]
    return aggregation, rows, len(buckets), _totals(buckets)


def _buckets(user, query: ReportQuery, now: datetime | None):
    now = now or datetime.now(UTC)
    model, aggregation = report_source(query, now)
    endpoints = {
        endpoint.pk: endpoint for endpoint in visible_endpoints(user, query).only("id", "address", "port", "section_id")
    }
    agents = Agent.objects.visible_to(user)
    if query.agent_ids:
        agents = agents.filter(pk__in=query.agent_ids)
    names = dict(agents.values_list("pk", "name"))
    rows = model.objects.filter(
        bucket__gte=query.start,
        bucket__lt=query.end,
        endpoint_id__in=list(endpoints),
        agent_id__in=list(names),
    )
    if query.metric_types:
        rows = rows.filter(check_type__in=query.metric_types)
    buckets = sorted(_group(rows.values(), AGGREGATIONS[aggregation], query.group_by).items(), key=_order)
    if query.statuses:
        buckets = [(key, bucket) for key, bucket in buckets if bucket_status(bucket) in query.statuses]
    return aggregation, buckets, endpoints, names


def _totals(buckets: list[tuple[tuple, Bucket]]) -> dict:
    total = Bucket()
    for _key, bucket in buckets:
        total.check_count += bucket.check_count
        total.success_count += bucket.success_count
        total.failure_count += bucket.failure_count
        total.latency_count += bucket.latency_count
        total.latency_sum += bucket.latency_sum
    return {
        "total_checks": total.check_count,
        "successful_checks": total.success_count,
        "failed_checks": total.failure_count,
        "average_response_time_ms": _ms(total.latency_sum / total.latency_count) if total.latency_count else None,
    }


def _group(rows, width: int, group_by: str) -> dict[tuple, Bucket]:
    buckets: dict[tuple, Bucket] = {}
    for row in rows.iterator(chunk_size=5000):
        start = datetime.fromtimestamp(int(row["bucket"].timestamp()) // width * width, UTC)
        agent = row["agent_id"] if group_by == "agent" else None
        buckets.setdefault((start, row["endpoint_id"], agent, row["check_type"]), Bucket()).add_row(row)
    return buckets


def _order(item) -> tuple:
    (start, endpoint_id, agent_id, check_type), _bucket = item
    return (start, str(endpoint_id), str(agent_id or ""), check_type)


def bucket_status(bucket: Bucket) -> str:
    """reachable: every check succeeded and nothing was lost; unreachable: none succeeded."""
    if bucket.success_count == 0:
        return "unreachable"
    lost = bucket.packets_sent and bucket.packets_received < bucket.packets_sent
    return "degraded" if bucket.failure_count or lost else "reachable"


def _row(key: tuple, bucket: Bucket, endpoints: dict, names: dict) -> dict:
    start, endpoint_id, agent_id, check_type = key
    endpoint = endpoints[endpoint_id]
    samples = bucket.latency_count
    loss = None
    if check_type == "ping" and bucket.packets_sent:
        loss = round((bucket.packets_sent - bucket.packets_received) / bucket.packets_sent * 100, 2)
    bounds = {"low": bucket.latency_min, "high": bucket.latency_max}
    return {
        "timestamp": start,
        "agent_id": agent_id,
        "hostname": names.get(agent_id) if agent_id else None,
        "endpoint_id": endpoint_id,
        "target": f"{endpoint.address}:{endpoint.port}" if endpoint.port else endpoint.address,
        "metric_type": check_type,
        "status": bucket_status(bucket),
        "check_count": bucket.check_count,
        "successful_checks": bucket.success_count,
        "failed_checks": bucket.failure_count,
        "success_rate_percent": round(bucket.success_count / bucket.check_count * 100, 2),
        "packet_loss_percent": loss,
        "avg_response_time_ms": _ms(bucket.latency_sum / samples) if samples else None,
        "min_response_time_ms": _ms(bucket.latency_min) if samples else None,
        "max_response_time_ms": _ms(bucket.latency_max) if samples else None,
        "p50_response_time_ms": _ms(percentile(bucket.histogram, 50, **bounds)) if samples else None,
        "p95_response_time_ms": _ms(percentile(bucket.histogram, 95, **bounds)) if samples else None,
        "p99_response_time_ms": _ms(percentile(bucket.histogram, 99, **bounds)) if samples else None,
    }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
