from __future__ import annotations

from rest_framework.routers import SimpleRouter

from alerting.api import views

router = SimpleRouter(trailing_slash=False)
router.register("alert-rules", views.AlertRuleViewSet, basename="alert-rule")
router.register("alerts", views.IncidentViewSet, basename="alert")
router.register("channels", views.ChannelViewSet, basename="channel")
router.register("maintenance-windows", views.MaintenanceWindowViewSet, basename="maintenance-window")

urlpatterns = router.urls
