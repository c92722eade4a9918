"""``GET /metrics``: Prometheus text for the whole server.

Under `serve` (PROMETHEUS_MULTIPROC_DIR set) counters are aggregated from every gunicorn worker's
files; database-derived gauges are computed on the spot. A failing database costs the gauges, not
the scrape."""

from __future__ import annotations

import logging
import os

from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from agents.metrics import AgentStatusCollector
from alerting.gauges import OpenAlertsCollector

logger = logging.getLogger("smotra.metrics")


def _process_metrics() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def _database_metrics() -> bytes:
    registry = CollectorRegistry()
    registry.register(AgentStatusCollector())
    registry.register(OpenAlertsCollector())
    try:
        return generate_latest(registry)
    except Exception as exc:  # the database may be down; the process metrics still matter then
        logger.warning("database metrics unavailable: %s", exc)
        return b""


def metrics(request):
    return HttpResponse(_process_metrics() + _database_metrics(), content_type=CONTENT_TYPE_LATEST)
