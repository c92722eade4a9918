"""URL layout: operational endpoints at the root, the admin, API docs, and the API under three prefixes."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from healthchecks import metrics as health_metrics
from healthchecks import views as health
from smotra.api.views import ApiInfoView

GET_ONLY = ["get", "head"]

admin.site.site_header = "Smotra administration"
admin.site.site_title = "Smotra"
admin.site.index_title = "Monitoring"
admin.site.site_url = "/admin/"  # "View site": the root is the API (a JSON 404), the admin is the site

handler400 = "smotra.api.errors.handler400"
handler403 = "smotra.api.errors.handler403"
handler404 = "smotra.api.errors.handler404"
handler500 = "smotra.api.errors.handler500"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("healthz/ready", health.ready, name="healthz-ready"),
    path("healthz/live", health.live, name="healthz-live"),
    path("metrics", health_metrics.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    # GET only: OPTIONS would render DRF's metadata through the HTML template renderer (a 500).
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema", http_method_names=GET_ONLY), name="swagger-ui"),
    path(
        "api/redoc",
        SpectacularRedocView.as_view(url_name="schema", http_method_names=GET_ONLY, template_name="smotra/redoc.html"),
        name="redoc",
    ),
    # No trailing-slash variants: a redirect of a POST loses its body (contract §1).
    path("api/v1", ApiInfoView.as_view(), name="api-info"),
    path("api/v1/", include("smotra.api.urls", namespace="api")),
    path("v1", ApiInfoView.as_view(), name="v1-info"),
    path("v1/", include("smotra.api.urls", namespace="v1")),
    path("", include("smotra.api.urls", namespace="root")),
]
