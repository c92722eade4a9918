"""Writes for maintenance windows: when, and which of the tenant's sections, endpoints and agents
(none listed: the whole tenant)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction

from agents.models import Agent
from alerting.models import MaintenanceWindow
from alerting.services.rules import ids_of_tenant
from endpoints.models import Endpoint
from smotra.errors import Invalid
from tenants.models import Role, Section, Tenant
from tenants.services import Actor, audit_record, authorize

SUBJECTS = {"section_ids": Section, "endpoint_ids": Endpoint, "agent_ids": Agent}


def _subjects_set(window: MaintenanceWindow, lists: dict) -> None:
    for field, ids in lists.items():
        if ids is not None:
            setattr(window, field, ids_of_tenant(SUBJECTS[field], window.tenant, ids, field))


def _period_check(window: MaintenanceWindow) -> None:
    if window.ends_at <= window.starts_at:
        raise Invalid("ends_at must be after starts_at.", field="ends_at")


@transaction.atomic
def maintenance_window_create(
    *,
    actor: Actor,
    tenant: Tenant,
    name: str,
    starts_at: datetime,
    ends_at: datetime,
    section_ids: Iterable = (),
    endpoint_ids: Iterable = (),
    agent_ids: Iterable = (),
) -> MaintenanceWindow:
    authorize(actor, tenant.pk, Role.OPERATOR)
    window = MaintenanceWindow(tenant=tenant, name=name, starts_at=starts_at, ends_at=ends_at)
    _period_check(window)
    _subjects_set(window, {"section_ids": section_ids, "endpoint_ids": endpoint_ids, "agent_ids": agent_ids})
    window.save()
    audit_record(actor=actor, action="maintenance_window.create", obj=window, tenant=tenant)
    return window


@transaction.atomic
def maintenance_window_update(
    *,
    actor: Actor,
    window: MaintenanceWindow,
    section_ids: Iterable | None = None,
    endpoint_ids: Iterable | None = None,
    agent_ids: Iterable | None = None,
    **changes,
) -> MaintenanceWindow:
    """Change a window; lists left out (None) keep theirs. Open incidents keep the ``in_maintenance``
    they opened with; their later notifications look at the windows of that moment."""
    authorize(actor, window.tenant_id, Role.OPERATOR)
    for field, value in changes.items():
        setattr(window, field, value)
    _period_check(window)
    lists = {"section_ids": section_ids, "endpoint_ids": endpoint_ids, "agent_ids": agent_ids}
    _subjects_set(window, lists)
    window.save()
    details = {**changes, **{field: ids for field, ids in lists.items() if ids is not None}}
    audit_record(actor=actor, action="maintenance_window.update", obj=window, tenant=window.tenant, details=details)
    return window


@transaction.atomic
def maintenance_window_delete(*, actor: Actor, window: MaintenanceWindow) -> None:
    authorize(actor, window.tenant_id, Role.OPERATOR)
    audit_record(actor=actor, action="maintenance_window.delete", obj=window, tenant=window.tenant)
    window.delete()
