"""Configuration versions: the one place an agent's own part changes.

An agent's configuration version is its own counter plus its section's (``Agent.document_version``).
Changes to the section's endpoints, tags and topologies bump the section (``tenants.services.
section_config_bump``, called by the endpoints app, which therefore needs nothing from this one);
changes to the agent itself (name, tags, overrides, section) bump its own counter here. Services,
not database triggers, do it: every write that can change a document goes through a service, the
admin included, and knows exactly what it touched, so a bump is one UPDATE in the same transaction."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.db.models import F

from agents.models import Agent
from tenants.models import Section
from tenants.services import section_config_bump


def config_versions_bump(*, section_ids: Iterable = (), agent_ids: Iterable = ()) -> int:
    """One step up for the given sections (all their agents) and the given agents."""
    section_ids, agent_ids = list(section_ids), list(agent_ids)
    with transaction.atomic(savepoint=False):
        bumped = section_config_bump(section_ids=section_ids)
        if agent_ids:
            bumped += Agent.objects.filter(pk__in=agent_ids).update(config_version=F("config_version") + 1)
    return bumped


def config_version_lock(agent: Agent, *section_ids) -> int:
    """Lock the agent's row and the sections' rows (in id order, as section bumps take them) and
    return the agent's version: with the counters it is made of held still, a move can set it."""
    list(Agent.objects.filter(pk=agent.pk).select_for_update(no_key=True).values_list("pk", flat=True))
    sections = Section.objects.filter(pk__in={agent.section_id, *section_ids}).order_by("pk")
    list(sections.select_for_update(no_key=True).values_list("pk", flat=True))
    return Agent.objects.with_document_version().get(pk=agent.pk).document_version


def config_version_after_move(agent: Agent, previous: int) -> None:
    """After a move to another section, set the agent's own counter so that its version is one
    above ``previous``, whatever the new section's counter is (versions never go back)."""
    section_version = Section.objects.values_list("config_version", flat=True).get(pk=agent.section_id)
    Agent.objects.filter(pk=agent.pk).update(config_version=previous + 1 - section_version)
