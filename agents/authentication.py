"""DRF authentication for agents: the ``X-Agent-API-Key`` header (contract §6)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from django.contrib.auth.models import AnonymousUser
from django.db import connection
from rest_framework import authentication, exceptions

from agents.keys import api_key_hash, hashes_match
from agents.models import Agent
from smotra import metrics

HEADER = "X-Agent-API-Key"


class AgentKeyAuthentication(authentication.BaseAuthentication):
    """One indexed lookup by key hash. Revoked agents have no hash, so they fail at once."""

    def authenticate(self, request):
        digest = key_digest(request)
        return None if digest is None else (live_agent(digest), None)

    def authenticate_header(self, request):
        return HEADER


class AgentKeyHeader(AgentKeyAuthentication):
    """The key of a view whose own statement checks it (the heartbeat, one round trip): its digest
    becomes ``request.auth`` and nothing is read here. The view looks the key up only when that
    statement stores nothing (agents.api.permissions.path_agent)."""

    def authenticate(self, request):
        digest = key_digest(request)
        return None if digest is None else (AnonymousUser(), digest)


def key_digest(request) -> str | None:
    """The digest of the request's agent key; None without the header; a refusal of one that
    cannot be a key (empty, or longer than any key issued)."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not key or len(key) > 256:
        raise invalid_key()
    return api_key_hash(key)


@dataclass(frozen=True, slots=True)
class AgentPrincipal:
    """The agent a request was authenticated for, without its row (the access log's principal)."""

    pk: UUID
    is_agent = True
    is_authenticated = True


_lookup_sql: dict[str, str] = {}


def agent_by_key_hash(digest: str) -> Agent | None:
    """The live agent with this key hash: one lookup on the unique index.

    Every agent request pays for this, and profiling showed Django spending more time building and
    compiling the query than the database answering it. The SQL is compiled by the ORM once per
    database vendor and reused through ``raw()``, which still converts values like any queryset.
    It also reads the section's configuration counter (a join), for the document version."""
    vendor = connection.vendor
    if vendor not in _lookup_sql:
        live = Agent.objects.with_document_version().filter(api_key_hash="", revoked_at__isnull=True)
        query = live.order_by()[:1].query
        _lookup_sql[vendor] = query.sql_with_params()[0]
    found = list(Agent.objects.raw(_lookup_sql[vendor], [digest]))
    return found[0] if found else None


def live_agent(digest: str) -> Agent:
    """The live agent this key digest belongs to, else the 401 refusal (counted)."""
    agent = agent_by_key_hash(digest)
    if agent is None or not hashes_match(agent.api_key_hash, digest):
        raise invalid_key()
    return agent


def invalid_key() -> exceptions.AuthenticationFailed:
    metrics.AUTH_FAILURES.labels("invalid").inc()
    return exceptions.AuthenticationFailed("Invalid authentication")
