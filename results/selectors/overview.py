"""Reads for the admin's agent page: latest vitals and status, monitored endpoints with results."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.utils import timezone

from agents.services.configuration import monitored_endpoints
from results.models import AgentStatusReport, CheckResult, Heartbeat, UnknownEndpoint

RATIO_WINDOW = timedelta(hours=24)


@dataclass
class AgentOverview:
    heartbeat: Heartbeat | None
    report: AgentStatusReport | None
    endpoints: list
    unknown_endpoints: list
    ratio_window: timedelta = RATIO_WINDOW


def _count(queryset) -> Subquery:
    counted = queryset.order_by().values("endpoint_id").annotate(n=Count("pk")).values("n")
    return Subquery(counted, output_field=IntegerField())


def endpoints_with_results(agent, *, now=None):
    """The agent's monitored endpoints, each with its last result and the success ratio of the
    last 24 hours (``ok``/``total``), in one query."""
    since = (now or timezone.now()) - RATIO_WINDOW
    own = CheckResult.objects.filter(agent_id=agent.pk, endpoint_id=OuterRef("pk"))
    last = own.order_by("-checked_at")
    recent = own.filter(checked_at__gte=since)
    return monitored_endpoints(agent).annotate(
        last_checked_at=Subquery(last.values("checked_at")[:1]),
        last_success=Subquery(last.values("success")[:1]),
        last_check_type=Subquery(last.values("check_type")[:1]),
        total=_count(recent),
        ok=_count(recent.filter(Q(success=True))),
    )


def agent_overview(agent) -> AgentOverview:
    return AgentOverview(
        heartbeat=Heartbeat.objects.filter(agent_id=agent.pk).order_by("-timestamp").first(),
        report=AgentStatusReport.objects.filter(agent_id=agent.pk).first(),
        endpoints=list(endpoints_with_results(agent)),
        unknown_endpoints=list(UnknownEndpoint.objects.filter(agent_id=agent.pk)[:100]),
    )
