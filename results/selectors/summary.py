"""``/result/summary``: the state of the fleet, from the rollups (never from raw rows)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.db.models import Sum

from agents.models import Agent, AgentStatus
from endpoints.models import Endpoint
from results.models import HourRollup, MinuteRollup
from results.selectors.reports import Bucket, bucket_status, series_in
from smotra.hooks import open_alerts

TIME_RANGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
# A target's state is its merged status over all agents in this last stretch; none: unknown.
RECENT = timedelta(minutes=15)


def summary(user, *, time_range: str = "24h", section_id=None, now: datetime | None = None) -> dict:
    now = now or datetime.now(UTC)
    agents = Agent.objects.visible_to(user).select_related("section")
    endpoints = Endpoint.objects.visible_to(user).filter(enabled=True)
    if section_id:
        agents, endpoints = agents.filter(section_id=section_id), endpoints.filter(section_id=section_id)
    series = series_in(endpoints, agents).values("pk")
    agents = list(agents)
    endpoint_ids = list(endpoints.values_list("pk", flat=True))
    states = _target_states(series, now)
    per_agent, total = _checks(series, now - TIME_RANGES[time_range], now, time_range)
    active = sum(1 for agent in agents if agent.status(now=now) == AgentStatus.ONLINE)
    return {
        "time_range": time_range,
        "total_agents": len(agents),
        "active_agents": active,
        "inactive_agents": len(agents) - active,
        "total_targets": len(endpoint_ids),
        **{f"{state}_targets": sum(1 for value in states.values() if value == state) for state in _STATES},
        "unknown_targets": len(endpoint_ids) - len(states),
        "total_checks": total.check_count,
        "successful_checks": total.success_count,
        "failed_checks": total.failure_count,
        "average_response_time_ms": round(total.latency_sum / total.latency_count, 3) if total.latency_count else None,
        "active_alerts": open_alerts(user, section_id),
        "by_agent": [_agent_row(agent, per_agent[agent.pk], now) for agent in agents],
    }


_STATES = ("reachable", "unreachable", "degraded")


# Summed in the database: the summary needs counts and sums, never histograms.
_SUMMED = ("check_count", "success_count", "failure_count", "packets_sent", "packets_received")
_SUMMED += ("latency_count", "latency_sum")


def _sums(rows, by: str) -> dict:
    """{value of ``by``: Bucket of the summed counts} in one GROUP BY."""
    grouped = rows.order_by().values(by).annotate(**{name: Sum(name) for name in _SUMMED})
    sums = {}
    for row in grouped:
        bucket = Bucket()
        for name in _SUMMED:
            setattr(bucket, name, row[name] or 0)
        sums[row[by]] = bucket
    return sums


def _target_states(series, now: datetime) -> dict:
    """endpoint id -> merged status of the last 15 minutes (absent: no results, unknown)."""
    recent = MinuteRollup.objects.filter(bucket__gte=now - RECENT, series_id__in=series)
    return {endpoint_id: bucket_status(bucket) for endpoint_id, bucket in _sums(recent, "series__endpoint_id").items()}


def _checks(series, since: datetime, now: datetime, time_range: str):
    """Checks per agent and in all over the time range (minute rollups for an hour, else hourly)."""
    model = MinuteRollup if time_range == "1h" else HourRollup
    rows = model.objects.filter(bucket__gte=since, bucket__lte=now, series_id__in=series)
    per_agent = defaultdict(Bucket, _sums(rows, "series__agent_id"))
    total = Bucket()
    for bucket in per_agent.values():
        for name in _SUMMED:
            setattr(total, name, getattr(total, name) + getattr(bucket, name))
    return per_agent, total


def _agent_row(agent: Agent, bucket: Bucket, now: datetime) -> dict:
    rate = round(bucket.success_count / bucket.check_count * 100, 2) if bucket.check_count else None
    return {
        "agent_id": agent.pk,
        "hostname": agent.name,
        "status": agent.status(now=now),
        "checks_performed": bucket.check_count,
        "success_rate_percent": rate,
    }
