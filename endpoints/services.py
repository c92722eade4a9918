"""Writes for tags, endpoints and topologies. Each one bumps the configuration versions it affects."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from endpoints.models import Endpoint, MemberRole, Tag, TagScope, Topology, TopologyMember, TopologyType
from smotra.db import save_changes, unique_or_conflict
from smotra.errors import Invalid
from tenants.models import Role, Section
from tenants.services import Actor, audit_record, authorize, section_config_bump


def tags_in_section(section_id, tag_ids: Iterable, *, field: str = "tag_ids") -> list[Tag]:
    """The tags with these ids, all of which must belong to the section."""
    wanted = {str(tag_id) for tag_id in tag_ids}
    tags = list(Tag.objects.filter(section_id=section_id, pk__in=wanted))
    missing = wanted - {str(tag.pk) for tag in tags}
    if missing:
        raise Invalid(f"Tags not found in this section: {', '.join(sorted(missing))}.", field=field)
    return tags


# ---------------------------------------------------------------------------------------------
# Tags

TAG_EXISTS = "A tag with this name already exists in this section."


@transaction.atomic
def tag_create(*, actor: Actor, section: Section, name: str, scope: str = TagScope.GLOBAL) -> Tag:
    authorize(actor, section.tenant_id, Role.OPERATOR)
    with unique_or_conflict(TAG_EXISTS, "name"):
        tag = Tag.objects.create(section=section, name=name, scope=scope)
    audit_record(actor=actor, action="tag.create", obj=tag, tenant=section.tenant)
    return tag  # an unused tag changes no configuration: no bump


@transaction.atomic
def tag_update(*, actor: Actor, tag: Tag, **changes) -> Tag:
    authorize(actor, tag.section.tenant_id, Role.OPERATOR)
    save_changes(tag, changes, conflict=TAG_EXISTS)
    section_config_bump(section_ids=[tag.section_id])
    audit_record(actor=actor, action="tag.update", obj=tag, tenant=tag.section.tenant, details=changes)
    return tag


@transaction.atomic
def tag_delete(*, actor: Actor, tag: Tag) -> None:
    authorize(actor, tag.section.tenant_id, Role.OPERATOR)
    audit_record(actor=actor, action="tag.delete", obj=tag, tenant=tag.section.tenant)
    section_id = tag.section_id
    tag.delete()
    section_config_bump(section_ids=[section_id])


# ---------------------------------------------------------------------------------------------
# Endpoints


@transaction.atomic
def endpoint_create(
    *,
    actor: Actor,
    section: Section,
    address: str,
    port: int | None = None,
    enabled: bool = True,
    description: str = "",
    tag_ids: Iterable = (),
    endpoint_id=None,
) -> Endpoint:
    """A new endpoint; ``endpoint_id`` adopts an id agents already report results for."""
    authorize(actor, section.tenant_id, Role.OPERATOR)
    tags = tags_in_section(section.pk, tag_ids)
    extra = {"pk": endpoint_id} if endpoint_id else {}
    with unique_or_conflict("An endpoint with this id already exists.", "id"):
        endpoint = Endpoint.objects.create(
            section=section, address=address, port=port, enabled=enabled, description=description, **extra
        )
    endpoint.tags.set(tags)
    section_config_bump(section_ids=[section.pk])
    audit_record(actor=actor, action="endpoint.create", obj=endpoint, tenant=section.tenant)
    return endpoint


@transaction.atomic
def endpoint_update(*, actor: Actor, endpoint: Endpoint, tag_ids: Iterable | None = None, **changes) -> Endpoint:
    authorize(actor, endpoint.section.tenant_id, Role.OPERATOR)
    for field, value in changes.items():
        setattr(endpoint, field, value)
    endpoint.save()
    if tag_ids is not None:
        endpoint.tags.set(tags_in_section(endpoint.section_id, tag_ids))
    section_config_bump(section_ids=[endpoint.section_id])
    details = {**changes, **({"tag_ids": list(tag_ids)} if tag_ids is not None else {})}
    audit_record(actor=actor, action="endpoint.update", obj=endpoint, tenant=endpoint.section.tenant, details=details)
    return endpoint


@transaction.atomic
def endpoint_delete(*, actor: Actor, endpoint: Endpoint) -> None:
    authorize(actor, endpoint.section.tenant_id, Role.OPERATOR)
    audit_record(actor=actor, action="endpoint.delete", obj=endpoint, tenant=endpoint.section.tenant)
    section_id = endpoint.section_id
    endpoint.delete()
    section_config_bump(section_ids=[section_id])


# ---------------------------------------------------------------------------------------------
# Topologies

TOPOLOGY_EXISTS = "A topology with this name already exists in this section."


def _set_members(topology: Topology, role: str, tag_ids: Iterable, field: str) -> None:
    tags = tags_in_section(topology.section_id, tag_ids, field=field)
    TopologyMember.objects.filter(topology=topology, role=role).exclude(tag__in=tags).delete()
    existing = set(TopologyMember.objects.filter(topology=topology, role=role).values_list("tag_id", flat=True))
    TopologyMember.objects.bulk_create(
        [TopologyMember(topology=topology, tag=tag, role=role) for tag in tags if tag.pk not in existing]
    )


@transaction.atomic
def topology_create(
    *,
    actor: Actor,
    section: Section,
    name: str,
    type: str = TopologyType.FULL_MESH,
    enabled: bool = True,
    monitor_tag_ids: Iterable = (),
    target_tag_ids: Iterable = (),
) -> Topology:
    authorize(actor, section.tenant_id, Role.OPERATOR)
    with unique_or_conflict(TOPOLOGY_EXISTS, "name"):
        topology = Topology.objects.create(section=section, name=name, type=type, enabled=enabled)
    _set_members(topology, MemberRole.MONITOR, monitor_tag_ids, "monitor_tag_ids")
    _set_members(topology, MemberRole.TARGET, target_tag_ids, "target_tag_ids")
    section_config_bump(section_ids=[section.pk])
    audit_record(actor=actor, action="topology.create", obj=topology, tenant=section.tenant)
    return topology


@transaction.atomic
def topology_update(
    *,
    actor: Actor,
    topology: Topology,
    monitor_tag_ids: Iterable | None = None,
    target_tag_ids: Iterable | None = None,
    **changes,
) -> Topology:
    authorize(actor, topology.section.tenant_id, Role.OPERATOR)
    save_changes(topology, changes, conflict=TOPOLOGY_EXISTS)
    if monitor_tag_ids is not None:
        _set_members(topology, MemberRole.MONITOR, monitor_tag_ids, "monitor_tag_ids")
    if target_tag_ids is not None:
        _set_members(topology, MemberRole.TARGET, target_tag_ids, "target_tag_ids")
    section_config_bump(section_ids=[topology.section_id])
    audit_record(
        actor=actor,
        action="topology.update",
        obj=topology,
        tenant=topology.section.tenant,
        details=changes,
    )
    return topology


@transaction.atomic
def topology_delete(*, actor: Actor, topology: Topology) -> None:
    authorize(actor, topology.section.tenant_id, Role.OPERATOR)
    audit_record(actor=actor, action="topology.delete", obj=topology, tenant=topology.section.tenant)
    section_id = topology.section_id
    topology.delete()
    section_config_bump(section_ids=[section_id])


@transaction.atomic
def topology_member_add(*, actor: Actor, topology: Topology, tag: Tag, role: str) -> TopologyMember:
    authorize(actor, topology.section.tenant_id, Role.OPERATOR)
    if tag.section_id != topology.section_id:
        raise Invalid("The tag belongs to another section than the topology.", field="tag")
    with unique_or_conflict("This tag already has this role in this topology.", "tag"):
        member = TopologyMember.objects.create(topology=topology, tag=tag, role=role)
    section_config_bump(section_ids=[topology.section_id])
    audit_record(actor=actor, action="topology.member_add", obj=member, tenant=topology.section.tenant)
    return member


@transaction.atomic
def topology_member_remove(*, actor: Actor, member: TopologyMember) -> None:
    topology = member.topology
    authorize(actor, topology.section.tenant_id, Role.OPERATOR)
    audit_record(actor=actor, action="topology.member_remove", obj=member, tenant=topology.section.tenant)
    member.delete()
    section_config_bump(section_ids=[topology.section_id])
