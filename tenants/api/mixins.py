"""The one tenant filter of the API: every viewset of tenant-owned data gets its queryset here."""

from __future__ import annotations

from rest_framework import mixins, viewsets

from smotra.api.mixins import ServiceCreateMixin, ServiceDestroyMixin, ServiceUpdateMixin
from tenants.services import Actor


class TenantScopedViewSetMixin:
    """Every query of the view is ``queryset.visible_to(user)``: views never filter tenants by hand.

    Objects of other tenants are invisible, so guessing their ids gives 404, not 403."""

    def get_queryset(self):
        return super().get_queryset().visible_to(self.request.user)

    @property
    def actor(self) -> Actor:
        return Actor.from_request(self.request)


class TenantScopedCrudViewSet(
    TenantScopedViewSetMixin,
    ServiceCreateMixin,
    ServiceUpdateMixin,
    ServiceDestroyMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """List, retrieve, create, PATCH and delete of a tenant-owned resource, writes through services.

    Subclasses define ``create_object``, ``update_object`` and ``delete_object``."""
