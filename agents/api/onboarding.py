"""Agent onboarding API (contract §3-§5): register, claim status, claim."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.services.onboarding import agent_claim, registration_poll, registration_register
from smotra.api import strict
from smotra.api.schema import ErrorSerializer
from smotra.errors import NotFound
from smotra.http import client_address
from tenants.models import Section
from tenants.services import Actor


class IpAddressSerializer(serializers.Serializer):
    ip = strict.IPAddressField()
    iface = strict.CharField(max_length=64)
    family = strict.ChoiceField(choices=["ipv4", "ipv6"])
    recommended = strict.BooleanField(default=False)

    def validate(self, data):
        expected = "ipv6" if ":" in data["ip"] else "ipv4"
        if data["family"] != expected:
            raise serializers.ValidationError({"family": f"{data['ip']} is an {expected} address."})
        return data


class AgentRegistrationSerializer(serializers.Serializer):
    agentId = strict.UUIDField()
    claimTokenHash = strict.RegexField(
        r"^[0-9a-fA-F]{64}$", error_messages={"invalid": "Must be exactly 64 hex characters (SHA-256)."}
    )
    # A host name as the agent's OS reports it. It names the agent and may become its self-endpoint's
    # address, so markup, spaces and slashes are refused here rather than stored.
    hostname = strict.RegexField(
        r"^[A-Za-z0-9._-]{1,255}$",
        max_length=255,
        error_messages={"invalid": "Must be a host name: letters, digits, '.', '-' and '_' only."},
    )
    agentVersion = strict.CharField(max_length=100)
    # A ListField, not many=True: a list serializer lets its items be null when the list may be.
    ipAddresses = serializers.ListField(child=IpAddressSerializer(), required=False, allow_null=True, max_length=64)

    def validate_ipAddresses(self, value):
        if value and sum(1 for entry in value if entry["recommended"]) > 1:
            raise serializers.ValidationError("At most one address may be recommended.")
        return value or []


class RegistrationResponseSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["pending_claim"])
    pollUrl = serializers.CharField()
    claimUrl = serializers.URLField()
    expiresAt = serializers.DateTimeField()


class ClaimStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["pending_claim", "claimed"])
    expiresAt = serializers.DateTimeField(required=False)
    pollIn = serializers.IntegerField(required=False)
    apiKey = serializers.CharField(required=False)
    configUrl = serializers.CharField(required=False)


class ClaimRequestSerializer(serializers.Serializer):
    agentId = strict.UUIDField()
    claimToken = strict.CharField(max_length=256, trim_whitespace=False)
    sectionId = strict.UUIDField()
    name = strict.CharField(max_length=200, required=False, allow_blank=True, allow_null=True)


class ClaimResponseSerializer(serializers.Serializer):
    agentId = serializers.UUIDField()
    status = serializers.CharField()
    message = serializers.CharField()


def claim_url(request, agent_id) -> str:
    """The admin page where a person claims this agent (login first if needed, then back to it)."""
    path = reverse("admin:agents_agentregistration_claim", args=[agent_id])
    base = settings.SMOTRA.agent.server_url.rstrip("/")
    return f"{base}{path}" if base else request.build_absolute_uri(path)


class RegisterView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=AgentRegistrationSerializer,
        responses={201: RegistrationResponseSerializer, 200: RegistrationResponseSerializer, 409: ErrorSerializer},
        tags=["onboarding"],
        summary="An agent registers itself (no auth)",
        auth=[],
    )
    def post(self, request):
        data = AgentRegistrationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        registration, created = registration_register(
            agent_id=values["agentId"],
            claim_token_hash=values["claimTokenHash"],
            hostname=values["hostname"],
            agent_version=values["agentVersion"],
            ip_addresses=values.get("ipAddresses") or [],
            source_address=client_address(request) or None,
        )
        body = {
            "status": "pending_claim",
            "pollUrl": f"/agent/{registration.pk}/claim-status",
            "claimUrl": claim_url(request, registration.pk),
            "expiresAt": registration.expires_at,
        }
        return Response(RegistrationResponseSerializer(body).data, status=201 if created else 200)


class ClaimStatusView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(responses=ClaimStatusSerializer, tags=["onboarding"], summary="An agent polls for its key", auth=[])
    def get(self, request, agent_id):
        status = registration_poll(agent_id=agent_id, source_address=client_address(request) or None)
        if status.api_key:
            body = {"status": "claimed", "apiKey": status.api_key, "configUrl": f"/agent/{agent_id}/configuration"}
        else:
            body = {"status": "pending_claim", "expiresAt": status.expires_at, "pollIn": status.poll_in}
        return Response(ClaimStatusSerializer(body).data)


class ClaimView(APIView):
    @extend_schema(
        request=ClaimRequestSerializer,
        responses={200: ClaimResponseSerializer, 409: ErrorSerializer},
        tags=["onboarding"],
        summary="A person claims a registered agent into a section",
    )
    def post(self, request):
        data = ClaimRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        section = Section.objects.visible_to(request.user).filter(pk=values["sectionId"]).first()
        if section is None:
            raise NotFound("No such section.", code="section_not_found")
        agent = agent_claim(
            actor=Actor.from_request(request),
            agent_id=values["agentId"],
            claim_token=values["claimToken"],
            section=section,
            name=values.get("name") or "",
        )
        return Response(
            {
                "agentId": str(agent.pk),
                "status": "claimed",
                "message": "Agent claimed successfully. API key will be delivered on next poll.",
            }
        )
