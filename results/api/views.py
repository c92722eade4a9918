"""Agent data plane: heartbeats (§6.2), status reports (§6.3), result batches (§6.4)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from agents.api.permissions import AgentView
from results.api.serializers import AgentStatusSerializer, HeartbeatSerializer, ResultBatchSerializer
from results.services import batch_items, heartbeat_record, results_ingest, status_report_record

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
    @extend_schema(
        request=HeartbeatSerializer,
        responses={204: OpenApiResponse(description="Stored; empty body (the agent counts 200/202 as failures)")},
        tags=TAGS,
        summary="Heartbeat with vitals (flat or nested shape)",
    )
    def post(self, request, agent_id):
        heartbeat_record(agent=self.agent, body=request.data)
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
