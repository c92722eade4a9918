"""The one tenant filter: every tenant-owned row is reached through ``visible_to(user)``."""

from __future__ import annotations

from django.db import models


class TenantScopedQuerySet(models.QuerySet):
    """Rows owned by a tenant, filtered to the tenants a user is a member of (the one tenant filter).

    Subclasses name the path from the row to its tenant in ``tenant_field`` ("" for Tenant itself)."""

    tenant_field = "section__tenant"

    def _tenant_prefix(self) -> str:
        return f"{self.tenant_field}__" if self.tenant_field else ""

    def visible_to(self, user):
        """Everything for superusers; rows of the user's tenants for members; nothing for others."""
        if user.is_superuser:
            return self
        if not user.is_authenticated:
            return self.none()
        return self.filter(**{f"{self._tenant_prefix()}memberships__user": user})

    def for_tenant(self, tenant):
        return self.filter(**{self.tenant_field or "pk": tenant})
