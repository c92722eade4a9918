"""Alerting: rules evaluated over the rollups, incidents with their history, notification channels,
an outbox of notifications with every delivery attempt, and maintenance windows.

Layering: alerting sits above results (it reads rollups) and below nothing; lower apps never import
it (``/result/summary`` counts open incidents through the hook in smotra.extensions)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from uuid6 import uuid7

from smotra.models import TimestampedModel, UUIDv7Model
from tenants.scoping import TenantScopedQuerySet


class TenantOwnedQuerySet(TenantScopedQuerySet):
    tenant_field = "tenant"


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    WARNING = "warning", "Warning"
    INFO = "info", "Info"


class Metric(models.TextChoices):
    STATUS = "status", "Status (no check succeeded)"
    UPTIME = "uptime_percent", "Uptime %"
    LOSS = "packet_loss_percent", "Packet loss %"
    RESPONSE_TIME = "response_time_ms", "Response time (ms)"
    AGENT_OFFLINE = "agent_offline", "Agent offline"


class Operator(models.TextChoices):
    GREATER_THAN = "greater_than", ">"
    LESS_THAN = "less_than", "<"
    EQUALS = "equals", "="
    NOT_EQUALS = "not_equals", "≠"


class Aggregation(models.TextChoices):
    AVG = "avg", "Average"
    MIN = "min", "Minimum"
    MAX = "max", "Maximum"
    P50 = "p50", "p50"
    P95 = "p95", "p95"
    P99 = "p99", "p99"


class AlertRule(TimestampedModel):
    """When to open an incident: a condition over the last ``window_seconds`` of results per
    (endpoint, agent), held ``duration_seconds``, by enough agents (quorum). ``agent_offline`` rules
    watch agents instead (not heard from for agent.offline_after)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="alert_rules")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    metric = models.CharField(max_length=32, choices=Metric.choices)
    operator = models.CharField(max_length=16, choices=Operator.choices, default=Operator.GREATER_THAN)
    threshold = models.FloatField(default=0)
    aggregation = models.CharField(max_length=8, choices=Aggregation.choices, default=Aggregation.AVG)
    window_seconds = models.PositiveIntegerField(default=300)
    duration_seconds = models.PositiveIntegerField(default=0)
    # {"section_ids", "endpoint_ids", "endpoint_tag_ids", "agent_ids", "metric_types"}: lists, empty = all
    filters = models.JSONField(default=dict, blank=True)
    quorum_min_agents = models.PositiveIntegerField(default=1)
    quorum_min_percent = models.FloatField(default=50)
    channels = models.ManyToManyField("alerting.Channel", blank=True, related_name="rules")
    cooldown_seconds = models.PositiveIntegerField(default=300)
    notify_on_resolve = models.BooleanField(default=True)
    builtin = models.CharField(max_length=32, blank=True, default="", editable=False)

    objects = TenantOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "builtin"],
                condition=~models.Q(builtin=""),
                name="alert_rule_one_builtin_per_tenant",
                violation_error_message="This tenant already has this built-in rule.",
            ),
            models.CheckConstraint(
                condition=models.Q(window_seconds__gte=60),
                name="alert_rule_window_at_least_a_minute",
                violation_error_message="window_seconds must be at least 60.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ChannelType(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    EMAIL = "email", "Email"
    SLACK = "slack", "Slack"
    DISCORD = "discord", "Discord"
    TEAMS = "teams", "Microsoft Teams"
    PAGERDUTY = "pagerduty", "PagerDuty"


class Channel(TimestampedModel):
    """Where notifications go. ``configuration`` holds secrets (webhook URLs and secrets, routing
    keys): the API and the admin never show them after saving."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="alert_channels")
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=16, choices=ChannelType.choices)
    configuration = models.JSONField(default=dict)
    enabled = models.BooleanField(default=True)

    objects = TenantOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"


class MaintenanceWindow(TimestampedModel):
    """A planned stretch in which incidents open and resolve as usual but notify nobody. Empty id
    lists cover the whole tenant."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="maintenance_windows")
    name = models.CharField(max_length=200)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    section_ids = models.JSONField(default=list, blank=True)
    endpoint_ids = models.JSONField(default=list, blank=True)
    agent_ids = models.JSONField(default=list, blank=True)

    objects = TenantOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["tenant", "ends_at"], name="maintenance_tenant_end")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="maintenance_ends_after_start",
                violation_error_message="ends_at must be after starts_at.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class IncidentKind(models.TextChoices):
    ENDPOINT = "endpoint", "Endpoint"
    AGENT_NETWORK = "agent_network", "Agent network"
    AGENT_OFFLINE = "agent_offline", "Agent offline"


class IncidentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


OPEN = [IncidentStatus.ACTIVE, IncidentStatus.ACKNOWLEDGED]


class Incident(UUIDv7Model):
    """Something a rule found: an endpoint down (by quorum), one agent's network broken, or an agent
    offline. At most one is open per (rule, endpoint) and per (rule, kind, agent)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="incidents")
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="incidents")
    kind = models.CharField(max_length=16, choices=IncidentKind.choices)
    status = models.CharField(max_length=16, choices=IncidentStatus.choices, default=IncidentStatus.ACTIVE)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True, default="")
    endpoint = models.ForeignKey(
        "endpoints.Endpoint", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    target = models.CharField(max_length=2100, blank=True, default="")
    agent = models.ForeignKey("agents.Agent", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    failing_agents = models.JSONField(default=list, blank=True)
    ok_agents = models.JSONField(default=list, blank=True)
    metric_type = models.CharField(max_length=32, blank=True, default="")
    threshold_value = models.FloatField(null=True, blank=True)
    current_value = models.FloatField(null=True, blank=True)
    in_maintenance = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    last_notified_at = models.DateTimeField(null=True, blank=True)

    objects = TenantOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "status"], name="incident_tenant_status")]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "endpoint"],
                condition=models.Q(status__in=OPEN, kind="endpoint"),
                name="incident_one_open_per_rule_endpoint",
                violation_error_message="This rule already has an open incident for this endpoint.",
            ),
            models.UniqueConstraint(
                fields=["rule", "kind", "agent"],
                condition=models.Q(status__in=OPEN, kind__in=["agent_network", "agent_offline"]),
                name="incident_one_open_per_rule_agent",
                violation_error_message="This rule already has an open incident for this agent.",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.status in OPEN


class IncidentEvent(UUIDv7Model):
    """One line of an incident's history: a state change, an acknowledgement, a notification."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    kind = models.CharField(max_length=32)  # opened, acknowledged, resolved, updated, notified, reminder
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True, default="")
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} @ {self.at:%Y-%m-%d %H:%M:%S}"


class AlertState(models.Model):
    """What the evaluator remembers between passes about one (rule, subject) with no open incident or
    an open one: since when the condition has held (to open after duration_seconds) or has been
    false (to resolve after it). Subjects: ``endpoint:<id>``, ``agent_network:<id>``,
    ``agent_offline:<id>``."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="states")
    subject = models.CharField(max_length=80)
    breaching_since = models.DateTimeField(null=True, blank=True)
    clear_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "subject"], name="alert_state_per_rule_subject")]

    def __str__(self) -> str:
        return f"{self.rule_id} {self.subject}"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"
    SUPPRESSED = "suppressed", "Suppressed (maintenance)"


class Notification(UUIDv7Model):
    """The outbox: written in the transaction that changed the incident, delivered by the worker with
    the same idempotency key on every attempt. ``payload`` is frozen when written."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=32)  # alert.opened, alert.acknowledged, alert.resolved, alert.reminder, test
    idempotency_key = models.UUIDField(default=uuid7, unique=True, editable=False)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    leased_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    objects = TenantOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="notification_due")]

    def __str__(self) -> str:
        return f"{self.event} to {self.channel_id} ({self.status})"


class DeliveryAttempt(UUIDv7Model):
    """One try at delivering a notification: when, how long, the HTTP status or the error."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="delivery_attempts")
    at = models.DateTimeField()
    duration_ms = models.FloatField(default=0)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=16)  # delivered, failed
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.outcome} {self.status_code or ''} @ {self.at:%H:%M:%S}"
