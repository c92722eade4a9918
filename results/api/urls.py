from __future__ import annotations

from django.urls import path

import smotra.api.converters  # noqa: F401 - registers the anyuuid path converter
from results.api import queries, views

urlpatterns = [
    path("agent/<anyuuid:agent_id>/heartbeat", views.HeartbeatView.as_view(), name="agent-heartbeat"),
    path("agent/<anyuuid:agent_id>/report", views.ReportView.as_view(), name="agent-report"),
    path("agent/<anyuuid:agent_id>/results", views.ResultsView.as_view(), name="agent-results"),
    path("result/report", queries.ReportView.as_view(), name="result-report"),
    path("result/metrics", queries.MetricsView.as_view(), name="result-metrics"),
    path("result/summary", queries.SummaryView.as_view(), name="result-summary"),
]
