"""Serializers of the agents API. Agent objects are camelCase (contract §7: a dashboard reads them)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents.models import Agent, AgentStatus
from smotra.api import strict
from tenants.api.fields import VisiblePrimaryKeyRelatedField
from tenants.models import Section


class AgentSerializer(serializers.ModelSerializer):
    """The contract's Agent object, plus the status the server computes."""

    sectionId = serializers.UUIDField(source="section_id", read_only=True)
    agentVersion = serializers.CharField(source="agent_version", read_only=True)
    configVersion = serializers.IntegerField(source="document_version", read_only=True)
    ipAddresses = serializers.JSONField(source="ip_addresses", read_only=True)
    lastSeenAt = serializers.DateTimeField(source="last_seen_at", read_only=True, allow_null=True)
    lastResultSubmittedAt = serializers.DateTimeField(source="last_result_at", read_only=True, allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)
    status = serializers.SerializerMethodField()

    class Meta:
        model = Agent
        fields = [
            "id",
            "name",
            "sectionId",
            "agentVersion",
            "configVersion",
            "ipAddresses",
            "lastSeenAt",
            "lastResultSubmittedAt",
            "createdAt",
            "updatedAt",
            "status",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=AgentStatus.choices))
    def get_status(self, agent) -> str:
        now = self.context.setdefault("now", timezone.now())  # one clock for the whole page
        return agent.status(now=now)


class AgentDetailSerializer(AgentSerializer):
    hostname = serializers.CharField(read_only=True)
    tagIds = serializers.PrimaryKeyRelatedField(source="tags", many=True, read_only=True)
    monitoringOverrides = serializers.JSONField(source="monitoring_overrides", read_only=True)
    serverOverrides = serializers.JSONField(source="server_overrides", read_only=True)
    storageOverrides = serializers.JSONField(source="storage_overrides", read_only=True)
    selfEndpointId = serializers.UUIDField(source="self_endpoint_id", read_only=True, allow_null=True)
    apiKeyPrefix = serializers.CharField(source="api_key_prefix", read_only=True)
    claimedAt = serializers.DateTimeField(source="claimed_at", read_only=True, allow_null=True)
    revokedAt = serializers.DateTimeField(source="revoked_at", read_only=True, allow_null=True)

    class Meta(AgentSerializer.Meta):
        fields = [
            *AgentSerializer.Meta.fields,
            "hostname",
            "tagIds",
            "monitoringOverrides",
            "serverOverrides",
            "storageOverrides",
            "selfEndpointId",
            "apiKeyPrefix",
            "claimedAt",
            "revokedAt",
        ]
        read_only_fields = fields


class AgentUpdateSerializer(serializers.Serializer):
    """PATCH body (snake_case, as the management API's other resources)."""

    name = strict.CharField(max_length=200, required=False)
    section_id = VisiblePrimaryKeyRelatedField(queryset=Section.objects.all(), source="section", required=False)
    tag_ids = serializers.ListField(child=strict.UUIDField(), required=False, max_length=1000)
    monitoring_overrides = serializers.DictField(required=False)
    server_overrides = serializers.DictField(required=False)
    storage_overrides = serializers.DictField(required=False)


class AgentListQuerySerializer(serializers.Serializer):
    section = serializers.UUIDField(required=False)
    status = serializers.ChoiceField(choices=AgentStatus.choices, required=False)
    tag = serializers.CharField(required=False, max_length=100)
    search = serializers.CharField(required=False, max_length=200)


class RotatedKeySerializer(serializers.Serializer):
    """The new key, shown once to the person who rotated it."""

    agentId = serializers.UUIDField()
    apiKey = serializers.CharField()
