"""API key lifecycle: revocation and rotation (contract §6; issue: key lifecycle)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from agents.keys import api_key_display_prefix, api_key_generate, api_key_hash
from agents.models import Agent, AgentRegistration
from smotra.errors import Conflict
from tenants.models import Role
from tenants.services import Actor, audit_record, authorize


@transaction.atomic
def agent_revoke(*, actor: Actor, agent: Agent) -> Agent:
    """Stop the key at once: the hash is dropped, so the next request's lookup finds nothing."""
    authorize(actor, agent.section.tenant_id, Role.ADMIN)
    if agent.revoked_at is not None:
        raise Conflict("This agent is already revoked.", code="already_revoked")
    agent.revoked_at = timezone.now()
    agent.api_key_hash = None
    agent.save(update_fields=["revoked_at", "api_key_hash", "updated_at"])
    _forget_undelivered_key(agent)
    audit_record(actor=actor, action="agent.revoke", obj=agent, tenant=agent.section.tenant)
    return agent


@transaction.atomic
def agent_key_rotate(*, actor: Actor, agent: Agent) -> str:
    """A new key, returned once to whoever rotated it; the old one stops working in the same commit."""
    authorize(actor, agent.section.tenant_id, Role.ADMIN)
    if agent.revoked_at is not None:
        raise Conflict("A revoked agent stays revoked until it registers again and is claimed.", code="agent_revoked")
    key = api_key_generate()
    agent.api_key_hash = api_key_hash(key)
    agent.api_key_prefix = api_key_display_prefix(key)
    agent.save(update_fields=["api_key_hash", "api_key_prefix", "updated_at"])
    _forget_undelivered_key(agent)
    audit_record(actor=actor, action="agent.rotate_key", obj=agent, tenant=agent.section.tenant)
    return key


def _forget_undelivered_key(agent: Agent) -> None:
    """A key still waiting for its delivery is dead now: never hand it to the agent."""
    AgentRegistration.objects.filter(pk=agent.pk, pending_api_key__isnull=False).update(pending_api_key=None)
