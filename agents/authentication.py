"""DRF authentication for agents: the ``X-Agent-API-Key`` header (contract §6)."""

from __future__ import annotations

from rest_framework import authentication, exceptions

from agents.keys import api_key_hash, hashes_match
from agents.models import Agent

HEADER = "X-Agent-API-Key"


class AgentKeyAuthentication(authentication.BaseAuthentication):
    """One indexed lookup by key hash. Revoked agents have no hash, so they fail at once."""

    def authenticate(self, request):
        key = request.headers.get(HEADER)
        if key is None:
            return None
        if not key or len(key) > 256:
            raise exceptions.AuthenticationFailed("Invalid authentication")
        digest = api_key_hash(key)
        agent = Agent.objects.filter(api_key_hash=digest, revoked_at__isnull=True).first()
        if agent is None or not hashes_match(agent.api_key_hash, digest):
            raise exceptions.AuthenticationFailed("Invalid authentication")
        return agent, None

    def authenticate_header(self, request):
        return HEADER
