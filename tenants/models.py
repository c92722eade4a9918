"""Users, tenants, sections, memberships and the audit log."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from uuid6 import uuid7

from smotra.models import TimestampedModel, UUIDv7Model
from tenants.scoping import TenantScopedQuerySet


class User(AbstractUser):
    """A person: administrator, operator or viewer. Passwords hash with Argon2 (settings)."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    ADMIN = "admin", "Admin"


# What each role may do; a role includes everything of the roles before it.
ROLE_RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


class TenantQuerySet(TenantScopedQuerySet):
    tenant_field = ""


class OwnedByTenantQuerySet(TenantScopedQuerySet):
    tenant_field = "tenant"


class Tenant(TimestampedModel):
    """The top of the hierarchy: an organisation whose members manage its sections."""

    name = models.CharField(max_length=200, unique=True, error_messages={"unique": "A tenant with this name exists."})
    description = models.TextField(blank=True, default="")

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Section(TimestampedModel):
    """A part of a tenant (a site, a region): agents, endpoints, tags and topologies live in one."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="sections")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    monitor_all_endpoints = models.BooleanField(
        default=False,
        help_text="Every agent of the section monitors every enabled endpoint in it: no tags or topologies needed.",
    )
    # Bumped by every change that can alter its agents' configuration documents (endpoints, tags,
    # topologies, the flag above); an agent's configuration version is its own plus this.
    config_version = models.PositiveBigIntegerField(default=0, editable=False)

    objects = OwnedByTenantQuerySet.as_manager()

    class Meta:
        ordering = ["tenant__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"],
                name="section_unique_name_per_tenant",
                violation_error_message="A section with this name already exists in this tenant.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.tenant.name} / {self.name}"


class Membership(UUIDv7Model):
    """A user's role in one tenant."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OwnedByTenantQuerySet.as_manager()

    class Meta:
        ordering = ["tenant__name", "user__username"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "tenant"],
                name="membership_unique_user_tenant",
                violation_error_message="This user is already a member of this tenant.",
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=Role.values),
                name="membership_role_valid",
                violation_error_message="Role must be viewer, operator or admin.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"


class AuditEvent(UUIDv7Model):
    """Who did what to which object, when and from where. Written by services, never edited."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    # The actor as a string that survives user deletion: "user:alice", "agent:<id>", "cli".
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=64, db_index=True)
    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64, db_index=True)
    object_repr = models.CharField(max_length=200, blank=True, default="")
    source_address = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = OwnedByTenantQuerySet.as_manager()  # scoped by its tenant; tenant-less events: superusers only

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action} {self.object_type}"


class RevokedToken(models.Model):
    """A bearer token ended before its expiry (logout), by its ``jti`` claim. Kept until the token
    would have expired anyway, then pruned (``tenants.tokens.revoked_tokens_prune``)."""

    jti = models.CharField(max_length=64, primary_key=True)  # the primary key: one indexed look-up
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.jti} (until {self.expires_at:%Y-%m-%d %H:%M:%S})"
