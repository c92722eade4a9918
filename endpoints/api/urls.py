from __future__ import annotations

from rest_framework.routers import SimpleRouter

from endpoints.api import views

router = SimpleRouter(trailing_slash=False)
router.register("tags", views.TagViewSet, basename="tag")
router.register("endpoints", views.EndpointViewSet, basename="endpoint")
router.register("topologies", views.TopologyViewSet, basename="topology")

urlpatterns = router.urls
