"""DRF authentication for agents: the ``X-Agent-API-Key`` header (contract §6)."""

from __future__ import annotations

from rest_framework import authentication, exceptions

from agents.keys import api_key_hash, hashes_match
from agents.models import Agent
from smotra import metrics

HEADER = "X-Agent-API-Key"


class AgentKeyAuthentication(authentication.BaseAuthentication):
    """One indexed lookup by key hash. Revoked agents have no hash, so they fail at once."""

    def authenticate(self, request):
        key = request.headers.get(HEADER)
        if key is None:
            return None
        if not key or len(key) > 256:
            raise _invalid()
        digest = api_key_hash(key)
        # One lookup on the unique index; no ORDER BY (first() would add the model's ordering).
        agent = Agent.objects.filter(api_key_hash=digest, revoked_at__isnull=True).order_by()[:1]
        agent = agent[0] if agent else None
        if agent is None or not hashes_match(agent.api_key_hash, digest):
            raise _invalid()
        return agent, None

    def authenticate_header(self, request):
        return HEADER


def _invalid() -> exceptions.AuthenticationFailed:
    metrics.AUTH_FAILURES.labels("invalid").inc()
    return exceptions.AuthenticationFailed("Invalid authentication")
