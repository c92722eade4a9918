from __future__ import annotations

from django.urls import path

import smotra.api.converters  # noqa: F401 - registers the anyuuid path converter
from results.api import views

urlpatterns = [
    path("agent/<anyuuid:agent_id>/heartbeat", views.HeartbeatView.as_view(), name="agent-heartbeat"),
    path("agent/<anyuuid:agent_id>/report", views.ReportView.as_view(), name="agent-report"),
    path("agent/<anyuuid:agent_id>/results", views.ResultsView.as_view(), name="agent-results"),
]
