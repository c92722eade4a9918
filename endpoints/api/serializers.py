"""Serializers of the endpoints API (snake_case)."""

from __future__ import annotations

from rest_framework import serializers

from endpoints.models import Endpoint, Tag, Topology
from smotra.api import strict
from tenants.api.fields import VisiblePrimaryKeyRelatedField
from tenants.models import Section


def _section_field():
    return VisiblePrimaryKeyRelatedField(queryset=Section.objects.all(), source="section")


class TagSerializer(serializers.ModelSerializer):
    section_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = Tag
        fields = ["id", "section_id", "name", "scope", "created_at", "updated_at"]
        read_only_fields = fields


class TagCreateSerializer(strict.ModelSerializer):
    section_id = _section_field()

    class Meta:
        model = Tag
        fields = ["section_id", "name", "scope"]
        validators: list = []


class TagUpdateSerializer(strict.ModelSerializer):
    class Meta:
        model = Tag
        fields = ["name", "scope"]
        validators: list = []


class EndpointSerializer(serializers.ModelSerializer):
    section_id = serializers.UUIDField(read_only=True)
    tag_ids = serializers.PrimaryKeyRelatedField(source="tags", many=True, read_only=True)
    agent_id = serializers.SerializerMethodField(help_text="The agent this endpoint represents, if any.")

    class Meta:
        model = Endpoint
        fields = [
            "id",
            "section_id",
            "address",
            "port",
            "enabled",
            "description",
            "tag_ids",
            "agent_id",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_agent_id(self, endpoint) -> str | None:
        agent = getattr(endpoint, "self_agent", None)
        return str(agent.pk) if agent else None


class EndpointCreateSerializer(strict.ModelSerializer):
    section_id = _section_field()
    tag_ids = serializers.ListField(child=strict.UUIDField(), required=False, default=list, max_length=1000)

    class Meta:
        model = Endpoint
        fields = ["section_id", "address", "port", "enabled", "description", "tag_ids"]


class EndpointUpdateSerializer(strict.ModelSerializer):
    tag_ids = serializers.ListField(child=strict.UUIDField(), required=False, max_length=1000)

    class Meta:
        model = Endpoint
        fields = ["address", "port", "enabled", "description", "tag_ids"]


class TopologySerializer(serializers.ModelSerializer):
    section_id = serializers.UUIDField(read_only=True)
    monitor_tag_ids = serializers.SerializerMethodField()
    target_tag_ids = serializers.SerializerMethodField()

    class Meta:
        model = Topology
        fields = [
            "id",
            "section_id",
            "name",
            "type",
            "enabled",
            "monitor_tag_ids",
            "target_tag_ids",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def _tag_ids(self, topology, role) -> list[str]:
        return [str(member.tag_id) for member in topology.members.all() if member.role == role]

    def get_monitor_tag_ids(self, topology) -> list[str]:
        return self._tag_ids(topology, "monitor")

    def get_target_tag_ids(self, topology) -> list[str]:
        return self._tag_ids(topology, "target")


class TopologyCreateSerializer(strict.ModelSerializer):
    section_id = _section_field()
    monitor_tag_ids = serializers.ListField(child=strict.UUIDField(), required=False, default=list, max_length=1000)
    target_tag_ids = serializers.ListField(child=strict.UUIDField(), required=False, default=list, max_length=1000)

    class Meta:
        model = Topology
        fields = ["section_id", "name", "type", "enabled", "monitor_tag_ids", "target_tag_ids"]
        validators: list = []


class TopologyUpdateSerializer(strict.ModelSerializer):
    monitor_tag_ids = serializers.ListField(child=strict.UUIDField(), required=False, max_length=1000)
    target_tag_ids = serializers.ListField(child=strict.UUIDField(), required=False, max_length=1000)

    class Meta:
        model = Topology
        fields = ["name", "type", "enabled", "monitor_tag_ids", "target_tag_ids"]
        validators: list = []
