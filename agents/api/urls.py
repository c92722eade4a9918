from __future__ import annotations

from rest_framework.routers import SimpleRouter

from agents.api import views

router = SimpleRouter(trailing_slash=False)
router.register("agents", views.AgentViewSet, basename="agent")

urlpatterns = router.urls
