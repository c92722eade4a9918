"""Endpoints API: tags, endpoints, topologies (tenant-scoped, service-backed)."""

from __future__ import annotations

from endpoints import services
from endpoints.api import serializers as s
from endpoints.models import Endpoint, Tag, Topology
from smotra.api.mixins import crud_schema
from smotra.api.pagination import keyed
from tenants.api.mixins import TenantScopedCrudViewSet


@crud_schema(s.TagSerializer, s.TagCreateSerializer, s.TagUpdateSerializer, "tags")
class TagViewSet(TenantScopedCrudViewSet):
    queryset = Tag.objects.select_related("section")
    serializer_class = s.TagSerializer
    create_serializer_class = s.TagCreateSerializer
    update_serializer_class = s.TagUpdateSerializer
    pagination_class = keyed("tags")

    def create_object(self, **data):
        return services.tag_create(actor=self.actor, **data)

    def update_object(self, tag, **data):
        return services.tag_update(actor=self.actor, tag=tag, **data)

    def delete_object(self, tag):
        services.tag_delete(actor=self.actor, tag=tag)


@crud_schema(s.EndpointSerializer, s.EndpointCreateSerializer, s.EndpointUpdateSerializer, "endpoints")
class EndpointViewSet(TenantScopedCrudViewSet):
    queryset = Endpoint.objects.select_related("section", "self_agent").prefetch_related("tags")
    serializer_class = s.EndpointSerializer
    create_serializer_class = s.EndpointCreateSerializer
    update_serializer_class = s.EndpointUpdateSerializer
    pagination_class = keyed("endpoints")

    def create_object(self, **data):
        return services.endpoint_create(actor=self.actor, **data)

    def update_object(self, endpoint, **data):
        return services.endpoint_update(actor=self.actor, endpoint=endpoint, **data)

    def delete_object(self, endpoint):
        services.endpoint_delete(actor=self.actor, endpoint=endpoint)


@crud_schema(s.TopologySerializer, s.TopologyCreateSerializer, s.TopologyUpdateSerializer, "topologies")
class TopologyViewSet(TenantScopedCrudViewSet):
    queryset = Topology.objects.select_related("section").prefetch_related("members")
    serializer_class = s.TopologySerializer
    create_serializer_class = s.TopologyCreateSerializer
    update_serializer_class = s.TopologyUpdateSerializer
    pagination_class = keyed("topologies")

    def create_object(self, **data):
        return services.topology_create(actor=self.actor, **data)

    def update_object(self, topology, **data):
        topology = services.topology_update(actor=self.actor, topology=topology, **data)
        return self.get_queryset().get(pk=topology.pk)  # members were prefetched before they changed

    def delete_object(self, topology):
        services.topology_delete(actor=self.actor, topology=topology)
