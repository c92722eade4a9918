"""Abstract bases shared by every app's models."""

from __future__ import annotations

from django.db import models
from uuid6 import uuid7


class UUIDv7Model(models.Model):
    """Primary key is a UUIDv7: time-ordered, so inserts append to the index instead of scattering."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)

    class Meta:
        abstract = True


class TimestampedModel(UUIDv7Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


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


class RateLimitCounter(UUIDv7Model):
    """Requests counted per key (e.g. ``register:<ip>``) and fixed window, shared by all workers."""

    key = models.CharField(max_length=200)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "window_start"], name="ratelimit_key_window")]
        indexes = [models.Index(fields=["window_start"], name="ratelimit_window")]

    def __str__(self) -> str:
        return f"{self.key} @ {self.window_start:%H:%M}: {self.count}"
