"""Agents API for people: list (contract §7), detail, PATCH; key lifecycle actions."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from agents.api import serializers as s
from agents.models import Agent
from agents.selectors import agents_filter
from agents.services.keys import agent_key_rotate, agent_revoke
from agents.services.management import agent_delete, agent_update
from smotra.api.mixins import ServiceDestroyMixin, ServiceUpdateMixin
from smotra.api.pagination import keyed
from tenants.api.mixins import TenantScopedViewSetMixin


@extend_schema_view(
    list=extend_schema(
        tags=["agents"],
        parameters=[
            OpenApiParameter("section", str, description="Section id"),
            OpenApiParameter("status", str, enum=["online", "offline", "never_seen", "revoked"]),
            OpenApiParameter("tag", str, description="Tag id or name"),
            OpenApiParameter("search", str, description="Part of the name or hostname, or the agent id"),
        ],
    ),
    retrieve=extend_schema(tags=["agents"]),
    partial_update=extend_schema(request=s.AgentUpdateSerializer, responses=s.AgentDetailSerializer, tags=["agents"]),
    destroy=extend_schema(
        responses={204: None},
        tags=["agents"],
        summary="Forget the agent with its results and vitals (revoke keeps them)",
    ),
)
class AgentViewSet(
    TenantScopedViewSetMixin,
    ServiceUpdateMixin,
    ServiceDestroyMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Agent.objects.select_related("section").prefetch_related("tags")
    serializer_class = s.AgentDetailSerializer
    update_serializer_class = s.AgentUpdateSerializer
    pagination_class = keyed("agents")

    def get_serializer_class(self):
        return s.AgentSerializer if self.action == "list" else super().get_serializer_class()

    def list(self, request, *args, **kwargs):
        query = s.AgentListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        queryset = agents_filter(self.get_queryset(), **query.validated_data)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(
            s.AgentSerializer(page, many=True, context=self.get_serializer_context()).data
        )

    @extend_schema(request=None, responses=s.AgentDetailSerializer, tags=["agents"], summary="Revoke the agent's key")
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        agent = agent_revoke(actor=self.actor, agent=self.get_object())
        return Response(s.AgentDetailSerializer(agent, context=self.get_serializer_context()).data)

    @extend_schema(request=None, responses=s.RotatedKeySerializer, tags=["agents"], summary="Issue a new key")
    @action(detail=True, methods=["post"], url_path="rotate-key")
    def rotate_key(self, request, pk=None):
        agent = self.get_object()
        key = agent_key_rotate(actor=self.actor, agent=agent)
        return Response({"agentId": str(agent.pk), "apiKey": key})

    def update_object(self, agent, **data):
        return agent_update(actor=self.actor, agent=agent, **data)

    def delete_object(self, agent):
        agent_delete(actor=self.actor, agent=agent)

    def get_response_serializer(self, instance):
        return s.AgentDetailSerializer(Agent.objects.get(pk=instance.pk), context=self.get_serializer_context())
