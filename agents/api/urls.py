from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

import smotra.api.converters  # noqa: F401 - registers the anyuuid path converter
from agents.api import configuration, onboarding, views

router = SimpleRouter(trailing_slash=False)
router.register("agents", views.AgentViewSet, basename="agent")

# Both spellings seen in the wild are routes (contract §1); onboarding comes before the router so
# that "agents/claim" is not taken for an agent id.
urlpatterns = [
    path("agent/register", onboarding.RegisterView.as_view(), name="agent-register"),
    path("agent/<anyuuid:agent_id>/claim-status", onboarding.ClaimStatusView.as_view(), name="agent-claim-status"),
    path("agents/<anyuuid:agent_id>/claim-status", onboarding.ClaimStatusView.as_view(), name="agents-claim-status"),
    path(
        "agent/<anyuuid:agent_id>/configuration",
        configuration.ConfigurationView.as_view(),
        name="agent-configuration",
    ),
    path("agents/claim", onboarding.ClaimView.as_view(), name="agents-claim"),
    path("agent/claim", onboarding.ClaimView.as_view(), name="agent-claim"),
    *router.urls,
]
