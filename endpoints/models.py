"""What agents monitor: tags, endpoints and the topologies that connect monitors to targets."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from endpoints.validators import validate_address
from smotra.models import TimestampedModel
from tenants.scoping import TenantScopedQuerySet


class TagScope(models.TextChoices):
    AGENT = "agent", "Agent"
    ENDPOINT = "endpoint", "Endpoint"
    GLOBAL = "global", "Global"


class Tag(TimestampedModel):
    """A label in a section. Its scope says whose configuration it appears in (contract §6.1)."""

    section = models.ForeignKey("tenants.Section", on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=16, choices=TagScope.choices, default=TagScope.GLOBAL)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["section", "name"],
                name="tag_unique_name_per_section",
                violation_error_message="A tag with this name already exists in this section.",
            ),
            models.CheckConstraint(
                condition=models.Q(scope__in=TagScope.values),
                name="tag_scope_valid",
                violation_error_message="Scope must be agent, endpoint or global.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.scope})"


class Endpoint(TimestampedModel):
    """Something to check: an IP address, a hostname or a URL, optionally with a port."""

    section = models.ForeignKey("tenants.Section", on_delete=models.CASCADE, related_name="endpoints")
    address = models.CharField(max_length=2048, validators=[validate_address])
    port = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    enabled = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True, default="")
    tags = models.ManyToManyField(Tag, blank=True, related_name="endpoints")

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["address", "port"]
        indexes = [models.Index(fields=["section", "enabled"], name="endpoint_section_enabled")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(port__isnull=True) | models.Q(port__gte=1, port__lte=65535),
                name="endpoint_port_range",
                violation_error_message="Port must be between 1 and 65535.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.address}:{self.port}" if self.port else self.address


class TopologyType(models.TextChoices):
    FULL_MESH = "full-mesh", "Full mesh"
    HUB_AND_SPOKE = "hub-and-spoke", "Hub and spoke"
    ONE_WAY = "one-way", "One way"


class Topology(TimestampedModel):
    """Who monitors whom: agents with a ``monitor`` tag check endpoints with a ``target`` tag."""

    section = models.ForeignKey("tenants.Section", on_delete=models.CASCADE, related_name="topologies")
    name = models.CharField(max_length=100)
    type = models.CharField(max_length=16, choices=TopologyType.choices, default=TopologyType.FULL_MESH)
    enabled = models.BooleanField(default=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "topologies"
        constraints = [
            models.UniqueConstraint(
                fields=["section", "name"],
                name="topology_unique_name_per_section",
                violation_error_message="A topology with this name already exists in this section.",
            ),
            models.CheckConstraint(
                condition=models.Q(type__in=TopologyType.values),
                name="topology_type_valid",
                violation_error_message="Type must be full-mesh, hub-and-spoke or one-way.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class MemberRole(models.TextChoices):
    MONITOR = "monitor", "Monitor"
    TARGET = "target", "Target"


class TopologyMemberQuerySet(TenantScopedQuerySet):
    tenant_field = "topology__section__tenant"


class TopologyMember(TimestampedModel):
    """A tag taking part in a topology as monitor or target (one tag may hold both roles)."""

    topology = models.ForeignKey(Topology, on_delete=models.CASCADE, related_name="members")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="topology_memberships")
    role = models.CharField(max_length=16, choices=MemberRole.choices)

    objects = TopologyMemberQuerySet.as_manager()

    class Meta:
        ordering = ["topology__name", "role", "tag__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["topology", "tag", "role"],
                name="topology_member_unique",
                violation_error_message="This tag already has this role in this topology.",
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=MemberRole.values),
                name="topology_member_role_valid",
                violation_error_message="Role must be monitor or target.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tag.name} as {self.role} in {self.topology.name}"
