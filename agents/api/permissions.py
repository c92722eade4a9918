"""Agent-facing views: authenticated by X-Agent-API-Key, and only on the agent's own path."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from agents.authentication import AgentKeyAuthentication, AgentPrincipal, live_agent
from smotra import metrics
from smotra.api.parsers import InvalidJSON
from smotra.api.renderers import json_only


class IsPathAgent(BasePermission):
    """The authenticated agent is the one named in the path (ids canonicalised by the converter)."""

    message = "This key belongs to another agent."

    def has_permission(self, request, view):
        agent = request.user
        if not getattr(agent, "is_agent", False):
            # Only AgentKeyAuthentication runs on these views: no agent means no header at all
            # (a wrong key was refused, and counted, during authentication).
            metrics.AUTH_FAILURES.labels("missing").inc()
            return False
        return agent.pk == view.kwargs.get("agent_id")


def path_agent(request, digest: str, agent_id):
    """The agent whose live key has this digest, if it is the one in the path: else 401 (no such
    key) or 403 (another agent's key), as IsPathAgent answers. The key's agent becomes the
    request's principal either way (the access log names it, as after DRF's authentication)."""
    agent = live_agent(digest)
    request.user = AgentPrincipal(agent.pk)
    if agent.pk != agent_id:
        raise exceptions.PermissionDenied(IsPathAgent.message)
    return agent


class AgentView(APIView):
    """Base of the agent data-plane views. DRF authenticates in ``initial()``, before any handler
    reads the body, so a bad body without a key is a 401 (contract §2). Agents read JSON whatever
    they send as Accept: no negotiation (and no browsable API) on these routes."""

    authentication_classes = [AgentKeyAuthentication]
    permission_classes = [IsPathAgent]
    renderer_classes = [JSONRenderer]
    perform_content_negotiation = json_only

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication and permissions first
        # DRF skips the parser for an empty (or chunked, length-less) body and hands over {}: an
        # empty heartbeat would be stored as a row of nulls. Every agent POST carries a JSON document.
        if request.method == "POST" and not int(request.META.get("CONTENT_LENGTH") or 0):
            raise InvalidJSON("Request body is empty; a JSON document is required.")

    @property
    def agent(self):
        return self.request.user
