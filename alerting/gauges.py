"""Alerting metrics: open incidents counted at scrape time, and how long evaluation passes take."""

from __future__ import annotations

from django.db.models import Count
from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily

from alerting.models import OPEN, Incident, Severity

EVALUATION_SECONDS = Histogram(
    "smotra_alert_evaluation_seconds",
    "Duration of one evaluation pass over every enabled rule.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)


class OpenAlertsCollector:
    """``smotra_alerts_open{severity}``: open (active or acknowledged) incidents, one SQL count."""

    def collect(self):
        family = GaugeMetricFamily("smotra_alerts_open", "Open incidents by severity.", labels=["severity"])
        counts = dict(Incident.objects.filter(status__in=OPEN).values_list("severity").annotate(n=Count("pk")))
        for severity in Severity.values:
            family.add_metric([severity], counts.get(severity, 0))
        yield family
