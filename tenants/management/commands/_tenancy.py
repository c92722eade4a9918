"""Shared bits of the tenancy commands."""

from __future__ import annotations

import uuid

from django.core.management.base import CommandError

from tenants.models import Tenant


def tenant_by_name_or_id(value: str) -> Tenant:
    """The tenant called ``value``, or whose id it is."""
    try:
        lookup = {"pk": uuid.UUID(value)}
    except ValueError:
        lookup = {"name": value}
    tenant = Tenant.objects.filter(**lookup).first()
    if tenant is None:
        raise CommandError(f"No tenant {value!r} (give its name or id; manage.py list_sections lists them).")
    return tenant
