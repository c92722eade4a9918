"""OpenAPI generation: the canonical /api/v1 paths only, and the error shape on every operation."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers

CANONICAL_PREFIX = "/api/v1"

# Statuses any API operation can answer with the error body; body-related ones only for writes.
ERROR_STATUSES = {
    "400": "Invalid input or malformed JSON",
    "401": "Missing or invalid credentials",
    "403": "Authenticated but not allowed",
    "404": "Not found",
    "405": "Method not allowed",
    "406": "Not acceptable",
    # Answered by the HTTP server before the application, in the same error body.
    "408": "The request did not arrive whole within server.read_timeout",
    "414": "Request line too long",
    "431": "Request header fields too large",
    "429": "Too many requests",
    "500": "Unexpected server error",
    "503": "Database unavailable, retry later",
}
BODY_ERROR_STATUSES = {"413": "Request body too large", "415": "Unsupported media type"}
# Writes can collide with the current state (a unique name, a non-empty tenant, an already revoked key).
WRITE_ERROR_STATUSES = {"409": "Conflict with the current state"}


class ErrorDetailSerializer(serializers.Serializer):
    field = serializers.CharField()
    issue = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    """The contract's error body (AGENT_API.md §2)."""

    error = serializers.CharField(help_text="snake_case error code")
    message = serializers.CharField()
    details = ErrorDetailSerializer(many=True, required=False)
    request_id = serializers.CharField()


def only_canonical_prefix(endpoints, **kwargs):
    """The API is mounted three times (contract §1); the schema documents the canonical mount."""
    return [
        endpoint
        for endpoint in endpoints
        if endpoint[0] == CANONICAL_PREFIX or endpoint[0].startswith(CANONICAL_PREFIX + "/")
    ]


class AutoSchema(SpectacularAutoSchema):
    """Adds the shared error responses to every operation that does not declare its own."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        statuses = dict(ERROR_STATUSES)
        if self.method in ("POST", "PUT", "PATCH"):
            statuses.update(BODY_ERROR_STATUSES)
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            statuses.update(WRITE_ERROR_STATUSES)
        for status, description in statuses.items():
            if status not in responses:
                responses[status] = self._get_response_for_code(ErrorSerializer, status, direction=direction)
                responses[status]["description"] = description
        return responses


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "POST /api/v1/auth/token"}


class AgentKeyScheme(OpenApiAuthenticationExtension):
    target_class = "agents.authentication.AgentKeyAuthentication"
    name = "agentKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-Agent-API-Key"}
