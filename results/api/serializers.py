"""Request bodies of the agent data plane, for the OpenAPI schema.

The views validate these payloads with the fast hand-written checks of results.services (a batch of
1,000 results through DRF serializers would cost more than storing it); these classes document the
same rules for integrators and for schema-based fuzzing."""

from __future__ import annotations

from rest_framework import serializers


class CacheStatsSerializer(serializers.Serializer):
    len = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    capacity = serializers.IntegerField(min_value=0, required=False, allow_null=True)


class AgentStatusSerializer(serializers.Serializer):
    """The agent's status: the nested heartbeat's ``agent_status`` and the report body (§6.3)."""

    agent_version = serializers.CharField(max_length=100, required=False, allow_null=True, allow_blank=True)
    config_version = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    is_running = serializers.BooleanField(required=False, allow_null=True)
    started_at = serializers.DateTimeField(required=False, allow_null=True)
    stopped_at = serializers.DateTimeField(required=False, allow_null=True)
    checks_performed = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    checks_successful = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    checks_failed = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    reported_at = serializers.DateTimeField(required=False, allow_null=True)
    failed_report_count = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    server_connected = serializers.BooleanField(required=False, allow_null=True)
    cache_stats = CacheStatsSerializer(required=False, allow_null=True)


class VitalsSerializer(serializers.Serializer):
    agent_uptime_secs = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    cpu_usage_percent = serializers.FloatField(min_value=0, required=False, allow_null=True)
    memory_usage_mb = serializers.FloatField(min_value=0, required=False, allow_null=True)
    memory_total_mb = serializers.FloatField(min_value=0, required=False, allow_null=True)
    system_uptime_secs = serializers.IntegerField(min_value=0, required=False, allow_null=True)


class HeartbeatSerializer(serializers.Serializer):
    """Either shape (§6.2): nested (``health_status``, ``metrics``, ``agent_status``) or flat (older agents)."""

    timestamp = serializers.DateTimeField(required=False, allow_null=True)
    health_status = serializers.CharField(max_length=32, required=False, allow_null=True)
    metrics = VitalsSerializer(required=False, allow_null=True)
    agent_status = AgentStatusSerializer(required=False, allow_null=True)
    status = serializers.CharField(max_length=32, required=False, allow_null=True, help_text="Flat shape.")
    cpu_usage_percent = serializers.FloatField(min_value=0, required=False, allow_null=True)
    memory_usage_mb = serializers.FloatField(min_value=0, required=False, allow_null=True)
    memory_total_mb = serializers.FloatField(min_value=0, required=False, allow_null=True)
    system_uptime_secs = serializers.IntegerField(min_value=0, required=False, allow_null=True)


class CheckTypeSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["ping", "tcpconnect", "udpconnect", "httpget", "traceroute", "plugin"])
    result = serializers.DictField(help_text="Fields per type: see AGENT_API.md §6.4.")


class MonitoringResultSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="Agent-made UUIDv7; the deduplication key.")
    agent_id = serializers.UUIDField()
    endpoint_id = serializers.UUIDField()
    timestamp = serializers.DateTimeField()
    check_type = CheckTypeSerializer()


class ResultBatchSerializer(serializers.Serializer):
    results = MonitoringResultSerializer(many=True, min_length=1)
