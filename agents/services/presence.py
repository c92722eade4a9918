"""Last-seen bookkeeping that does not cost a write on every agent request."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from agents.models import Agent


def _stale(moment: datetime | None, now: datetime) -> bool:
    resolution = timedelta(seconds=settings.SMOTRA.agent.last_seen_resolution)
    return moment is None or now - moment >= resolution


def agent_seen(agent: Agent, *, result: bool = False, agent_version: str | None = None, now=None) -> None:
    """Record that the agent called in (and sent results). The agent row loaded by authentication
    tells whether the stored times are older than ``agent.last_seen_resolution`` (5 s); only then is
    there an UPDATE, so status stays correct to within that bound at one write per agent per 5 s."""
    now = now or timezone.now()
    changes = {}
    if _stale(agent.last_seen_at, now):
        changes["last_seen_at"] = now
    if result and _stale(agent.last_result_at, now):
        changes["last_result_at"] = now
    if agent_version and agent_version != agent.agent_version:
        changes["agent_version"] = agent_version[:100]
    if changes:
        Agent.objects.filter(pk=agent.pk).update(**changes)
        for field, value in changes.items():
            setattr(agent, field, value)
