"""The business API, mounted identically under /api/v1, /v1 and the root (contract §1)."""

from __future__ import annotations

from django.urls import include, path

app_name = "api"

urlpatterns = [
    path("", include("tenants.api.urls")),
    path("", include("endpoints.api.urls")),
    path("", include("agents.api.urls")),
    path("", include("results.api.urls")),
    path("", include("alerting.api.urls")),
]
