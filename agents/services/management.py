"""Changes people make to claimed agents: name, section, tags, configuration overrides."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from agents.models import Agent, AgentRegistration
from agents.overrides import overrides_validate
from agents.services.versions import config_version_after_move, config_version_lock, config_versions_bump
from endpoints.services import tags_in_section
from tenants.models import Role, Section
from tenants.services import Actor, audit_record, authorize


@transaction.atomic
def agent_update(
    *,
    actor: Actor,
    agent: Agent,
    name: str | None = None,
    section: Section | None = None,
    tag_ids: Iterable | None = None,
    monitoring_overrides: dict | None = None,
    server_overrides: dict | None = None,
    storage_overrides: dict | None = None,
) -> Agent:
    """Apply the given changes (None = unchanged) and bump the configuration version once."""
    authorize(actor, agent.section.tenant_id, Role.OPERATOR)
    changed: dict = {}
    bump_sections: set = set()
    # Only the fields changed here are written: a full save() would put back the config_version,
    # last-seen times and revocation this instance was loaded with, undoing concurrent updates.
    fields = ["updated_at"]
    moved = section is not None and section.pk != agent.section_id
    # A move sets the agent's own counter from its current total: hold both counters still first.
    previous = config_version_lock(agent, section.pk) if moved else None
    if moved:
        authorize(actor, section.tenant_id, Role.OPERATOR)
        bump_sections |= agent_section_move(agent, section, keep_tags=tag_ids is not None)
        changed["section_id"] = str(section.pk)
        fields.append("section")
    if name is not None:
        agent.name = changed["name"] = name
        fields.append("name")
    for block, overrides in (
        ("monitoring", monitoring_overrides),
        ("server", server_overrides),
        ("storage", storage_overrides),
    ):
        if overrides is not None:
            setattr(agent, f"{block}_overrides", overrides_validate(block, overrides))
            changed[f"{block}_overrides"] = overrides
            fields.append(f"{block}_overrides")
    agent.save(update_fields=fields)
    if tag_ids is not None:
        agent.tags.set(tags_in_section(agent.section_id, tag_ids))
        changed["tag_ids"] = [str(tag_id) for tag_id in tag_ids]
    config_versions_bump(section_ids=bump_sections, agent_ids=[] if moved else [agent.pk])
    if moved:
        config_version_after_move(agent, previous)
    audit_record(actor=actor, action="agent.update", obj=agent, tenant=agent.section.tenant, details=changed)
    return Agent.objects.with_document_version().select_related("section__tenant").get(pk=agent.pk)


def agent_section_move(agent: Agent, section: Section, *, keep_tags: bool) -> set:
    """Move the agent (and its self-endpoint) to another section; returns the sections whose
    endpoint lists changed. Tags of the old section cannot follow: they are dropped unless replaced."""
    old_section_id = agent.section_id
    agent.section = section
    if not keep_tags:
        agent.tags.clear()
    if agent.self_endpoint_id:
        agent.self_endpoint.section = section
        agent.self_endpoint.save(update_fields=["section", "updated_at"])
        agent.self_endpoint.tags.clear()
        return {old_section_id, section.pk}
    return set()


@transaction.atomic
def agent_delete(*, actor: Actor, agent: Agent) -> None:
    """Forget an agent (its key stops working): its self-endpoint, registration, results, vitals and
    status go with it (revoking keeps them). The agent may then register as a new one."""
    authorize(actor, agent.section.tenant_id, Role.ADMIN)
    audit_record(actor=actor, action="agent.delete", obj=agent, tenant=agent.section.tenant)
    section_id = agent.section_id
    if agent.self_endpoint_id:
        agent.self_endpoint.delete()
    AgentRegistration.objects.filter(pk=agent.pk).delete()  # so the agent may register again
    agent.delete()
    config_versions_bump(section_ids=[section_id])
