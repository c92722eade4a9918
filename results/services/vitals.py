"""Heartbeats (vitals) and status reports from agents (contract §6.2, §6.3)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from agents.models import Agent
from agents.services.presence import agent_seen
from results.models import AgentStatusReport, Heartbeat
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


def heartbeat_record(*, agent: Agent, body) -> Heartbeat:
    """Store one vitals snapshot from either shape: nested (``metrics`` + ``agent_status``) or flat."""
    if not isinstance(body, dict):
        raise Invalid("The heartbeat must be a JSON object.", field="body")
    now = timezone.now()
    # Any key of the nested shape selects it, so a malformed ``metrics`` is refused, not ignored.
    nested = any(key in body for key in _NESTED_KEYS)
    if nested:
        vitals = _vitals(v.mapping(body, "metrics", "metrics") or {}, "metrics.")
        status_object = v.mapping(body, "agent_status", "agent_status")
        version = status_fields(status_object, "agent_status.")["agent_version"] if status_object else None
        health = v.string(body, "health_status", "health_status", max_length=32)
    else:
        vitals = _vitals(body, "")
        vitals.pop("agent_uptime_secs")
        status_object, version = None, None
        health = v.string(body, "status", "status", max_length=32)
    _refuse_hostile(body, _HEARTBEAT_OBJECTS)
    heartbeat = Heartbeat.objects.create(
        agent=agent,
        timestamp=v.timestamp(body, "timestamp", "timestamp") or now,
        received_at=now,
        health_status=health or "",
        agent_status=status_object,
        **vitals,
    )
    agent_seen(agent, agent_version=version, now=now)
    metrics.HEARTBEATS.labels("nested" if nested else "flat").inc()
    return heartbeat


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
