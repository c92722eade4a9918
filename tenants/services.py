"""Writes for tenants, sections and memberships; the role checks and the audit log every app uses."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, F

from smotra.db import save_changes, unique_or_conflict
from smotra.errors import Conflict, Forbidden, Invalid, NotFound
from smotra.http import client_address
from tenants.models import ROLE_RANK, AuditEvent, Membership, Role, Section, Tenant, User


@dataclass(frozen=True)
class Actor:
    """Who is acting and from where; every service that writes takes one for the audit log."""

    user: User | None
    label: str
    source_address: str | None = None
    # Someone with shell access to the server (manage.py): not subject to tenant roles.
    trusted: bool = False

    @classmethod
    def from_request(cls, request) -> Actor:
        user = request.user if getattr(request.user, "is_authenticated", False) else None
        label = f"user:{user.get_username()}" if user else "anonymous"
        return cls(user=user, label=label, source_address=client_address(request) or None)

    @classmethod
    def cli(cls) -> Actor:
        return cls(user=None, label="cli", trusted=True)

    @classmethod
    def system(cls, label: str, source_address: str | None = None) -> Actor:
        return cls(user=None, label=label, source_address=source_address)


def audit_record(
    *, actor: Actor, action: str, obj=None, tenant: Tenant | None = None, details: dict | None = None, **ids
) -> AuditEvent:
    """Append one audit event. ``obj`` names the object; ``object_type``/``object_id`` may be given instead."""
    return AuditEvent.objects.create(
        actor=actor.user,
        actor_label=actor.label,
        action=action,
        tenant=tenant,
        object_type=ids.get("object_type") or (obj._meta.model_name if obj is not None else ""),
        object_id=str(ids.get("object_id") or (obj.pk if obj is not None else "")),
        object_repr=str(obj)[:200] if obj is not None else "",
        source_address=actor.source_address,
        # Anything a service passes (UUIDs, model instances, datetimes) is stored as its text.
        details=json.loads(json.dumps(details or {}, default=str)),
    )


# ---------------------------------------------------------------------------------------------
# Roles


def user_role(user: User | None, tenant_id) -> str | None:
    """The user's role in the tenant (``admin`` for superusers), or None."""
    if user is None or not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMIN
    return Membership.objects.filter(user=user, tenant_id=tenant_id).values_list("role", flat=True).first()


def require_role(user: User | None, tenant_id, role: str) -> None:
    """Raise Forbidden unless the user holds ``role`` (or a higher one) in the tenant."""
    held = user_role(user, tenant_id)
    if held is None or ROLE_RANK[held] < ROLE_RANK[role]:
        raise Forbidden(f"This needs the {role} role in the tenant.")


def authorize(actor: Actor, tenant_id, role: str) -> None:
    """Raise Forbidden unless the actor may act with ``role`` in the tenant (trusted actors may)."""
    if not actor.trusted:
        require_role(actor.user, tenant_id, role)


def tenants_with_role(user: User, role: str):
    """Tenants in which the user holds at least ``role``."""
    if user.is_superuser:
        return Tenant.objects.all()
    allowed = [name for name, rank in ROLE_RANK.items() if rank >= ROLE_RANK[role]]
    return Tenant.objects.filter(memberships__user=user, memberships__role__in=allowed)


# ---------------------------------------------------------------------------------------------
# Tenants and sections


def _require_superuser(actor: Actor, message: str) -> None:
    if not actor.trusted and (actor.user is None or not actor.user.is_superuser):
        raise Forbidden(message)


@transaction.atomic
def tenant_create(*, actor: Actor, name: str, description: str = "") -> Tenant:
    _require_superuser(actor, "Only superusers create tenants.")
    with unique_or_conflict("A tenant with this name already exists.", "name"):
        tenant = Tenant.objects.create(name=name, description=description)
    audit_record(actor=actor, action="tenant.create", obj=tenant, tenant=tenant)
    return tenant


@transaction.atomic
def tenant_update(*, actor: Actor, tenant: Tenant, **changes) -> Tenant:
    authorize(actor, tenant.pk, Role.ADMIN)
    save_changes(tenant, changes, conflict="A tenant with this name already exists.")
    audit_record(actor=actor, action="tenant.update", obj=tenant, tenant=tenant, details=changes)
    return tenant


@transaction.atomic
def tenant_delete(*, actor: Actor, tenant: Tenant) -> None:
    _require_superuser(actor, "Only superusers delete tenants.")
    count = Section.objects.filter(tenant=tenant).aggregate(agents=Count("agents"))["agents"]
    if count:
        raise Conflict(
            f"Tenant {tenant.name!r} still has {count} agent(s); move or delete them first.", code="has_agents"
        )
    audit_record(actor=actor, action="tenant.delete", obj=tenant, details={"name": tenant.name})
    tenant.delete()


@transaction.atomic
def section_create(
    *, actor: Actor, tenant: Tenant, name: str, description: str = "", monitor_all_endpoints: bool = False
) -> Section:
    authorize(actor, tenant.pk, Role.ADMIN)
    with unique_or_conflict("A section with this name already exists in this tenant.", "name"):
        section = Section.objects.create(
            tenant=tenant, name=name, description=description, monitor_all_endpoints=monitor_all_endpoints
        )
    audit_record(actor=actor, action="section.create", obj=section, tenant=tenant)
    return section


@transaction.atomic
def section_update(*, actor: Actor, section: Section, **changes) -> Section:
    authorize(actor, section.tenant_id, Role.ADMIN)
    flag_changed = changes.get("monitor_all_endpoints", section.monitor_all_endpoints) != section.monitor_all_endpoints
    save_changes(section, changes, conflict="A section with this name already exists in this tenant.")
    if flag_changed:
        section_config_bump(section_ids=[section.pk])
        section.refresh_from_db(fields=["config_version"])
    audit_record(actor=actor, action="section.update", obj=section, tenant=section.tenant, details=changes)
    return section


def section_config_bump(*, section_ids: Iterable) -> int:
    """One step up for the configuration version of these sections, and so of every agent in them.

    Concurrent bumps of one section queue on its row (taken in id order, so two transactions never
    wait on each other crosswise); a NO KEY lock does not block inserts that reference the section."""
    section_ids = sorted({str(section_id) for section_id in section_ids})
    if not section_ids:
        return 0
    with transaction.atomic(savepoint=False):
        list(Section.objects.filter(pk__in=section_ids).order_by("pk").select_for_update(no_key=True).values("pk"))
        return Section.objects.filter(pk__in=section_ids).update(config_version=F("config_version") + 1)


@transaction.atomic
def section_delete(*, actor: Actor, section: Section) -> None:
    authorize(actor, section.tenant_id, Role.ADMIN)
    count = section.agents.count()
    if count:
        raise Conflict(
            f"Section {section.name!r} still has {count} agent(s); move or delete them first.", code="has_agents"
        )
    audit_record(actor=actor, action="section.delete", obj=section, tenant=section.tenant)
    section.delete()


# ---------------------------------------------------------------------------------------------
# Memberships


@transaction.atomic
def membership_create(*, actor: Actor, tenant: Tenant, username: str, role: str) -> Membership:
    authorize(actor, tenant.pk, Role.ADMIN)
    user = User.objects.filter(username=username).first()
    if user is None:
        raise Invalid(f"No user named {username!r}.", field="username")
    with unique_or_conflict("This user is already a member of this tenant.", "username"):
        membership = Membership.objects.create(user=user, tenant=tenant, role=role)
    audit_record(actor=actor, action="membership.create", obj=membership, tenant=tenant, details=_who(membership))
    return membership


@transaction.atomic
def membership_update(*, actor: Actor, membership: Membership, role: str | None = None) -> Membership:
    authorize(actor, membership.tenant_id, Role.ADMIN)
    if role is None:  # an empty PATCH changes nothing
        return membership
    previous, membership.role = membership.role, role
    membership.save(update_fields=["role"])
    details = {**_who(membership), "previous_role": previous}
    audit_record(actor=actor, action="membership.update", obj=membership, tenant=membership.tenant, details=details)
    return membership


@transaction.atomic
def membership_delete(*, actor: Actor, membership: Membership) -> None:
    authorize(actor, membership.tenant_id, Role.ADMIN)
    audit_record(
        actor=actor, action="membership.delete", obj=membership, tenant=membership.tenant, details=_who(membership)
    )
    membership.delete()


def _who(membership: Membership) -> dict:
    return {"username": membership.user.get_username(), "role": membership.role}


def get_or_404(queryset, message: str, **lookup):
    """The object from an already tenant-scoped queryset, or NotFound (never reveals other tenants)."""
    obj = queryset.filter(**lookup).first()
    if obj is None:
        raise NotFound(message)
    return obj
