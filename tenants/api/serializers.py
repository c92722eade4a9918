"""Serializers of the tenancy API (snake_case)."""

from __future__ import annotations

from rest_framework import serializers

from smotra.api import strict
from tenants.api.fields import VisiblePrimaryKeyRelatedField
from tenants.models import Membership, Role, Section, Tenant


class TokenRequestSerializer(serializers.Serializer):
    username = strict.CharField(max_length=150)
    password = strict.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    token_type = serializers.CharField()
    expires_at = serializers.DateTimeField()


class TenantSerializer(strict.ModelSerializer):
    class Meta:
        model = Tenant
        fields = ["id", "name", "description", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {"name": {"validators": []}}  # uniqueness: the database decides, the service says 409


class SectionSerializer(serializers.ModelSerializer):
    tenant_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = Section
        fields = ["id", "tenant_id", "name", "description", "monitor_all_endpoints", "created_at", "updated_at"]
        read_only_fields = fields


class SectionCreateSerializer(strict.ModelSerializer):
    tenant_id = VisiblePrimaryKeyRelatedField(queryset=Tenant.objects.all(), source="tenant")

    class Meta:
        model = Section
        fields = ["tenant_id", "name", "description", "monitor_all_endpoints"]
        validators: list = []


class SectionUpdateSerializer(strict.ModelSerializer):
    class Meta:
        model = Section
        fields = ["name", "description", "monitor_all_endpoints"]
        validators: list = []


class MembershipSerializer(serializers.ModelSerializer):
    tenant_id = serializers.UUIDField(read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "tenant_id", "username", "role", "created_at"]
        read_only_fields = fields


class MembershipCreateSerializer(serializers.Serializer):
    tenant_id = VisiblePrimaryKeyRelatedField(queryset=Tenant.objects.all(), source="tenant")
    username = strict.CharField(max_length=150)
    role = strict.ChoiceField(choices=Role.choices)


class MembershipUpdateSerializer(serializers.Serializer):
    role = strict.ChoiceField(choices=Role.choices)
