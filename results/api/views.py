"""Agent data plane: heartbeats (§6.2), status reports (§6.3), result batches (§6.4)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import APIException, NotAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.api.permissions import AgentView, path_agent
from agents.authentication import AgentKeyHeader, AgentPrincipal, invalid_key
from results.api.serializers import AgentStatusSerializer, HeartbeatSerializer, ResultBatchSerializer
from results.services import batch_items, heartbeat_store, heartbeat_values, results_ingest, status_report_record
from smotra import metrics
from smotra.api.parsers import InvalidJSON
from smotra.errors import DomainError

TAGS = ["agent data plane"]


class ReportAcceptedSerializer(serializers.Serializer):
    received_at = serializers.DateTimeField()


class RejectedResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    id = serializers.CharField(allow_null=True)
    error = serializers.ChoiceField(
        choices=["agent_id_mismatch", "unknown_endpoint", "invalid_check_type", "validation_error"]
    )
    message = serializers.CharField()


class ResultBatchAcceptedSerializer(serializers.Serializer):
    submission_id = serializers.UUIDField()
    accepted = serializers.IntegerField()
    duplicates_skipped = serializers.IntegerField()
    rejected = RejectedResultSerializer(many=True)
    received_at = serializers.DateTimeField()


class HeartbeatView(AgentView):
    """The key is checked by the statement that stores the heartbeat (one round trip on PostgreSQL,
    results.services.vitals.heartbeat_store). Only when that stores nothing, or the body is refused,
    is the key looked up, so that 401 and 403 come before a 400 as on every agent route (contract §2)."""

    authentication_classes = [AgentKeyHeader]
    permission_classes = []

    def initial(self, request, *args, **kwargs):
        APIView.initial(self, request, *args, **kwargs)  # not AgentView's checks: these
        if request.auth is None:  # any method: no key, 401 (contract §6)
            metrics.AUTH_FAILURES.labels("missing").inc()
            raise NotAuthenticated()
        if request.method != "POST":  # the key is checked before the 405 (or OPTIONS), as elsewhere
            path_agent(request, request.auth, kwargs.get("agent_id"))

    @extend_schema(
        request=HeartbeatSerializer,
        responses={204: OpenApiResponse(description="Stored; empty body (the agent counts 200/202 as failures)")},
        tags=TAGS,
        summary="Heartbeat with vitals (flat or nested shape)",
        auth=[{"agentKey": []}],  # the same key as every agent route, checked by the storing statement
    )
    def post(self, request, agent_id):
        digest = request.auth
        try:
            if not int(request.META.get("CONTENT_LENGTH") or 0):
                raise InvalidJSON("Request body is empty; a JSON document is required.")
            heartbeat = heartbeat_values(request.data)
        except (APIException, DomainError):
            path_agent(request, digest, agent_id)
            raise
        stored = heartbeat_store(agent_id=agent_id, key_digest=digest, heartbeat=heartbeat)
        if not stored:
            path_agent(request, digest, agent_id)  # 401 or 403, which is the common case here
            # The key is this agent's after all: it was issued (a claim, a rotation) between the
            # statement and the lookup. Once more, now that it is.
            stored = heartbeat_store(agent_id=agent_id, key_digest=digest, heartbeat=heartbeat)
        if not stored:
            raise invalid_key()  # and revoked again since: as any revoked key
        request.user = AgentPrincipal(agent_id)
        return Response(status=204)


class ReportView(AgentView):
    @extend_schema(
        request=AgentStatusSerializer, responses={202: ReportAcceptedSerializer}, tags=TAGS, summary="Status report"
    )
    def post(self, request, agent_id):
        received_at = status_report_record(agent=self.agent, body=request.data)
        return Response({"received_at": received_at}, status=202)


class ResultsView(AgentView):
    @extend_schema(
        request=ResultBatchSerializer,
        responses={202: ResultBatchAcceptedSerializer},
        tags=TAGS,
        summary="A batch of check results (per-item rejections, never a poison batch)",
    )
    def post(self, request, agent_id):
        outcome = results_ingest(agent=self.agent, items=batch_items(request.data))
        return Response(ResultBatchAcceptedSerializer(outcome).data, status=202)
