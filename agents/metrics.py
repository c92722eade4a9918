"""Gauges of agents computed from the database at scrape time (``/metrics`` registers them)."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily

from agents.models import Agent, AgentStatus


class AgentStatusCollector:
    """``smotra_agents{status}``: agents per computed status, counted in SQL at scrape time.

    A gauge per status (four series), never per agent; computed from the database so every worker
    answers the same, without multiprocess gauge bookkeeping."""

    def collect(self):
        family = GaugeMetricFamily("smotra_agents", "Agents by computed status.", labels=["status"])
        for status in AgentStatus.values:
            family.add_metric([status], Agent.objects.with_status(status).count())
        yield family
