"""Admin tests: two tenants built by hand (no shared factories), and helpers for the admin's forms.

Everything of tenant B carries "bravo" in its name, so a page that leaks B shows that word."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.contrib.admin.models import LogEntry
from django.urls import reverse

from agents.models import Agent
from endpoints.models import Endpoint, MemberRole, Tag, TagScope, Topology, TopologyMember
from tenants.models import AuditEvent, Membership, Role, Section, Tenant, User

LEAK_MARKER = "bravo"


@dataclass
class Side:
    """One tenant's objects: a section with a tag, an endpoint, a topology, an agent and an audit event."""

    tenant: Tenant
    section: Section
    tag: Tag
    agent_tag: Tag
    endpoint: Endpoint
    topology: Topology
    agent: Agent
    audit: AuditEvent


@dataclass
class World:
    a: Side
    b: Side
    annex: Section  # a second section of tenant A
    annex_tag: Tag


def build_side(prefix: str) -> Side:
    tenant = Tenant.objects.create(name=f"{prefix.title()} Tenant")
    section = Section.objects.create(tenant=tenant, name=f"{prefix}-section")
    tag = Tag.objects.create(section=section, name=f"{prefix}-web", scope=TagScope.GLOBAL)
    agent_tag = Tag.objects.create(section=section, name=f"{prefix}-probe", scope=TagScope.AGENT)
    endpoint = Endpoint.objects.create(section=section, address=f"{prefix}.example.net", port=443)
    endpoint.tags.set([tag])
    topology = Topology.objects.create(section=section, name=f"{prefix}-mesh")
    TopologyMember.objects.create(topology=topology, tag=agent_tag, role=MemberRole.MONITOR)
    agent = Agent.objects.create(id=uuid.uuid4(), section=section, name=f"{prefix}-agent", hostname=f"{prefix}-host")
    agent.tags.set([agent_tag])
    audit = AuditEvent.objects.create(
        actor_label="cli",
        action="tag.create",
        tenant=tenant,
        object_type="tag",
        object_id=str(tag.pk),
        object_repr=f"{prefix}-audit-entry",
    )
    return Side(tenant, section, tag, agent_tag, endpoint, topology, agent, audit)


def build_world() -> World:
    a, b = build_side("acme"), build_side(LEAK_MARKER)
    annex = Section.objects.create(tenant=a.tenant, name="acme-annex")
    annex_tag = Tag.objects.create(section=annex, name="annex-tag")
    return World(a=a, b=b, annex=annex, annex_tag=annex_tag)


def staff_user(username: str, tenant: Tenant | None = None, role: str = Role.VIEWER, **extra) -> User:
    """A staff account (needed to log in to the admin), member of ``tenant`` with ``role`` if given."""
    user = User.objects.create(username=username, is_staff=True, **extra)
    if tenant is not None:
        Membership.objects.create(user=user, tenant=tenant, role=role)
    return user


def admin_url(model, view: str = "changelist", *args) -> str:
    """``admin_url(Tag)``, ``admin_url(Tag, "change", tag.pk)``: the admin's URL for the model."""
    meta = model._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=[str(arg) for arg in args])


def management_form(prefix: str, total: int, initial: int = 0) -> dict:
    """The hidden fields every inline formset posts along."""
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


SNAPSHOT_MODELS = [Tenant, Section, Membership, Tag, Endpoint, Topology, TopologyMember, Agent, AuditEvent, LogEntry]


def db_snapshot() -> dict:
    """Every row the admin could touch (with the tag links), to compare before and after a refusal."""
    state = {model.__name__: sorted(map(repr, model.objects.values())) for model in SNAPSHOT_MODELS}
    for link in (Endpoint.tags.through, Agent.tags.through):
        state[link.__name__] = sorted(map(repr, link.objects.values()))
    return state


def html(response) -> str:
    return response.content.decode()


def table_row(page: str, text: str) -> str:
    """The changelist row (``<tr>...</tr>``) that contains ``text``."""
    rows = [row for row in page.split("<tr") if text in row]
    assert len(rows) == 1, f"{len(rows)} rows contain {text!r}"
    return rows[0].split("</tr>")[0]


def form_errors(response) -> dict:
    """The admin form's errors (``__all__`` for non-field ones), from the re-rendered page."""
    return dict(response.context["adminform"].form.errors)
