"""``GET {prefix}/agent/{agentId}/configuration`` (contract §6.1) with ETag / If-None-Match."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from agents.api.permissions import AgentView
from agents.services.configuration import configuration_for
from smotra import metrics


def _etag(version: int) -> str:
    return f'"{version}"'


def _matches(header: str | None, version: int) -> bool:
    """If-None-Match: ``"7"``, ``W/"7"``, a list of them, or ``*``."""
    if not header:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or _etag(version) in tags or str(version) in tags


class ConfigurationEndpointSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    address = serializers.CharField()
    port = serializers.IntegerField(required=False, help_text="Omitted when unset.")
    enabled = serializers.BooleanField()
    tags = serializers.ListField(child=serializers.CharField())


class AgentConfigurationSerializer(serializers.Serializer):
    """The configuration document (contract §6.1)."""

    version = serializers.IntegerField()
    agent_id = serializers.UUIDField()
    agent_name = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    monitoring = serializers.DictField()
    server = serializers.DictField()
    storage = serializers.DictField()
    self_upgrade = serializers.DictField()
    endpoints = ConfigurationEndpointSerializer(many=True)


class ConfigurationView(AgentView):
    @extend_schema(
        responses={200: AgentConfigurationSerializer, 304: OpenApiResponse(description="Not modified")},
        parameters=[OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, required=False)],
        tags=["agent data plane"],
        summary="The agent's configuration document",
    )
    def get(self, request, agent_id):
        version = self.agent.document_version
        headers = {"ETag": _etag(version), "Cache-Control": "no-cache"}
        if _matches(request.headers.get("If-None-Match"), version):
            metrics.CONFIG_FETCHES.labels("304").inc()
            return Response(status=304, headers=headers)
        metrics.CONFIG_FETCHES.labels("200").inc()
        # Kept rendered (agents.services.configuration): answered as they are, not through a renderer.
        return HttpResponse(configuration_for(self.agent), content_type="application/json", headers=headers)
