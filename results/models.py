"""What agents report: vitals (heartbeats), their latest status, check results, unknown endpoints."""

from __future__ import annotations

from django.db import models

from smotra.models import UUIDv7Model
from tenants.scoping import TenantScopedQuerySet


class AgentOwnedQuerySet(TenantScopedQuerySet):
    tenant_field = "agent__section__tenant"


class CheckType(models.TextChoices):
    PING = "ping", "Ping"
    TCP = "tcpconnect", "TCP connect"
    UDP = "udpconnect", "UDP probe"
    HTTP = "httpget", "HTTP GET"
    TRACEROUTE = "traceroute", "Traceroute"
    PLUGIN = "plugin", "Plugin"


class Heartbeat(UUIDv7Model):
    """One vitals snapshot. Both heartbeat shapes of the field land here (contract §6.2)."""

    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="heartbeats")
    timestamp = models.DateTimeField(help_text="The agent's clock (receive time when it sent none).")
    received_at = models.DateTimeField()
    health_status = models.CharField(max_length=32, blank=True, default="")
    cpu_usage_percent = models.FloatField(null=True, blank=True)
    memory_usage_mb = models.FloatField(null=True, blank=True)
    memory_total_mb = models.FloatField(null=True, blank=True)
    system_uptime_secs = models.BigIntegerField(null=True, blank=True)
    agent_uptime_secs = models.BigIntegerField(null=True, blank=True)
    agent_status = models.JSONField(null=True, blank=True)

    objects = AgentOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-timestamp"]
        indexes = [
            models.Index(fields=["agent", "-timestamp"], name="heartbeat_agent_time"),
            models.Index(fields=["timestamp"], name="heartbeat_time"),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id} @ {self.timestamp:%Y-%m-%d %H:%M:%S}"


class AgentStatusReport(UUIDv7Model):
    """The latest status report of an agent (contract §6.3); one row per agent, overwritten."""

    agent = models.OneToOneField("agents.Agent", on_delete=models.CASCADE, related_name="status_report")
    received_at = models.DateTimeField()
    reported_at = models.DateTimeField(null=True, blank=True)
    agent_version = models.CharField(max_length=100, blank=True, default="")
    config_version = models.BigIntegerField(null=True, blank=True)
    is_running = models.BooleanField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="Running since.")
    stopped_at = models.DateTimeField(null=True, blank=True)
    checks_performed = models.BigIntegerField(null=True, blank=True)
    checks_successful = models.BigIntegerField(null=True, blank=True)
    checks_failed = models.BigIntegerField(null=True, blank=True)
    failed_report_count = models.BigIntegerField(null=True, blank=True)
    server_connected = models.BooleanField(null=True, blank=True)
    cache_len = models.BigIntegerField(null=True, blank=True)
    cache_capacity = models.BigIntegerField(null=True, blank=True)

    objects = AgentOwnedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"status of {self.agent_id} @ {self.received_at:%Y-%m-%d %H:%M:%S}"


class CheckResult(models.Model):
    """One check result. The agent-made UUIDv7 ``id`` is the primary key, which makes resends
    duplicates instead of copies. Common fields are columns; the type-specific rest is ``details``."""

    id = models.UUIDField(primary_key=True)
    # No single-column indexes: (agent, checked_at) and (endpoint, checked_at) below serve their
    # lookups, and every index is one more write per stored result.
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="results", db_index=False)
    # No database constraint: results outlive endpoints that are deleted later.
    endpoint = models.ForeignKey(
        "endpoints.Endpoint", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="results"
    )
    check_type = models.CharField(max_length=16, choices=CheckType.choices)
    success = models.BooleanField()
    checked_at = models.DateTimeField(help_text="The agent's timestamp.")
    received_at = models.DateTimeField()
    latency_ms = models.FloatField(null=True, blank=True, help_text="Primary latency of the check.")
    packets_sent = models.PositiveIntegerField(null=True, blank=True)
    packets_received = models.PositiveIntegerField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    resolved_ip = models.CharField(max_length=64, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)

    objects = AgentOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-checked_at"]
        indexes = [
            models.Index(fields=["endpoint", "checked_at"], name="result_endpoint_time"),
            models.Index(fields=["agent", "checked_at"], name="result_agent_time"),
            # (timestamp, id): the keyset order of /result/metrics, read in index order page by page.
            models.Index(fields=["checked_at", "id"], name="result_time_id"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(check_type__in=CheckType.values),
                name="result_check_type_valid",
                violation_error_message="Unknown check type.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.check_type} {self.endpoint_id} {'ok' if self.success else 'fail'}"


class UnknownEndpoint(UUIDv7Model):
    """An endpoint id an agent reported results for that the server does not know; adoptable."""

    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="unknown_endpoints")
    endpoint_id = models.UUIDField()
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    count = models.PositiveBigIntegerField(default=0)
    sample_address = models.CharField(max_length=255, blank=True, default="")
    # The newest result id counted. Agents make UUIDv7 ids (time-ordered) and send oldest first, so
    # a resent batch holds no id above it and counts nothing again.
    last_result_id = models.UUIDField(null=True, blank=True, editable=False)

    objects = AgentOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-last_seen_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "endpoint_id"],
                name="unknown_endpoint_per_agent",
                violation_error_message="This unknown endpoint is already recorded for this agent.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.endpoint_id} (seen {self.count}x by {self.agent_id})"


class RollupSeries(models.Model):
    """One (endpoint, agent, check type) that has rollups: rows refer to it by a 4-byte id, so a
    rollup row is about 150 bytes with its key instead of two UUIDs and a type in the row and in
    every index entry (results/rollups.py creates series as results arrive)."""

    id = models.AutoField(primary_key=True)
    endpoint_id = models.UUIDField()
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="+")
    check_type = models.CharField(max_length=16, choices=CheckType.choices)

    objects = AgentOwnedQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "rollup series"
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint_id", "agent", "check_type"],
                name="rollup_series_unique",
                violation_error_message="This endpoint, agent and check type already have a series.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.check_type} {self.endpoint_id} by {self.agent_id}"


class Rollup(models.Model):
    """Aggregates of one series (endpoint, agent, check type) over one time bucket, kept additive so
    that any window and any set of agents is a sum of rows (results/rollups.py maintains them).

    Latency samples: every ping latency, tcpconnect's connect time, the response time of udpconnect,
    httpget and plugin checks (traceroute has none). ``histogram`` counts them over the fixed
    log-spaced buckets of results/histogram.py (stored as bytes); percentiles come from adding those
    up."""

    series = models.ForeignKey(RollupSeries, on_delete=models.CASCADE, related_name="+", db_index=False)
    bucket = models.DateTimeField(help_text="Start of the bucket (UTC), by the results' own timestamps.")
    check_count = models.PositiveIntegerField(default=0)
    success_count = models.PositiveIntegerField(default=0)
    failure_count = models.PositiveIntegerField(default=0)
    packets_sent = models.PositiveIntegerField(default=0)
    packets_received = models.PositiveIntegerField(default=0)
    latency_count = models.PositiveIntegerField(default=0)
    latency_sum = models.FloatField(default=0.0)
    latency_min = models.FloatField(null=True, blank=True)
    latency_max = models.FloatField(null=True, blank=True)
    histogram = models.BinaryField(default=b"")

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"series {self.series_id} @ {self.bucket:%Y-%m-%d %H:%M}"


class MinuteRollup(Rollup):
    """One minute of results (kept ``results.minute_rollup_retention``, 14 days by default)."""

    pk = models.CompositePrimaryKey("series", "bucket")


class HourRollup(Rollup):
    """One hour of results (kept ``results.hour_rollup_retention``, 400 days by default)."""

    pk = models.CompositePrimaryKey("series", "bucket")

    class Meta:
        # The last day or month of every series (the fleet summary) is one range of this index;
        # through the key it is a probe per series, which PostgreSQL gives up for a scan of the
        # whole table once a fleet has a few hundred series (49 ms instead of 12 in bench/readside).
        indexes = [models.Index(fields=["bucket"], name="hour_rollup_bucket")]


class DayRollup(Rollup):
    """One UTC day of results, for month- and year-long reports (kept as long as the hourly ones)."""

    pk = models.CompositePrimaryKey("series", "bucket")
