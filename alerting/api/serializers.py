"""Serializers of the alerting API (snake_case): rules, incidents, channels, maintenance windows.

Input serializers use the strict fields (smotra.api.strict) and refuse unknown keys inside the nested
objects (a misspelt ``treshold`` is named, not ignored); what needs the tenant's data (ids of its
endpoints, channels...) is checked by the services."""

from __future__ import annotations

import math
from collections.abc import Mapping

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from alerting.builtin import AGENT_OFFLINE
from alerting.documents import incident_document
from alerting.models import (
    Aggregation,
    AlertRule,
    Channel,
    ChannelType,
    IncidentKind,
    IncidentStatus,
    MaintenanceWindow,
    Metric,
    NotificationStatus,
    Operator,
    Severity,
)
from alerting.services.channels import configuration_masked
from results.selectors.reports import METRIC_ALIASES, METRIC_TYPES
from smotra.api import strict
from tenants.api.fields import VisiblePrimaryKeyRelatedField
from tenants.models import Tenant

MAX_IDS = 1000
MAX_CHANNELS = 100
WEEK = 7 * 86400
DAY = 86400

# ---------------------------------------------------------------------------------------------
# Shared fields


class EnumField(strict.ChoiceField):
    """A choice field documented as its own enum component: names such as ``status`` or ``type``
    already stand for other choice sets elsewhere in the schema."""

    def __init__(self, choices, *, enum_name: str, **kwargs):
        self.enum_name = enum_name
        super().__init__(choices, **kwargs)


class EnumFieldExtension(OpenApiSerializerFieldExtension):
    target_class = EnumField
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        component = ResolvedComponent(
            name=self.target.enum_name,
            type=ResolvedComponent.SCHEMA,
            object=self.target.enum_name,
            schema={"type": "string", "enum": list(self.target.choices)},
        )
        auto_schema.registry.register_on_missing(component)
        return component.ref


class FiniteFloatField(strict.FloatField):
    """A JSON number that is finite: ``1e999`` parses as infinity, a 400-digit integer overflows."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise serializers.ValidationError("Must be a number.", code="invalid")
        try:
            value = float(data)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            raise serializers.ValidationError("Must be a finite number.", code="invalid")
        return super().to_internal_value(value)


class AwareDateTimeField(strict.DateTimeField):
    """An ISO 8601 instant with its time zone: a time without one is refused rather than guessed."""

    default_error_messages = {"naive": "Must carry a time zone (Z or an offset)."}

    def to_internal_value(self, value):
        moment = super().to_internal_value(value)
        parsed = parse_datetime(value)
        if parsed is not None and parsed.tzinfo is None:
            self.fail("naive")
        return moment


class StrictKeysSerializer(serializers.Serializer):
    """A JSON object whose keys must all be known: an unknown one is a 400 naming it."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({key: ["Unknown field."] for key in unknown})
        return super().to_internal_value(data)


def _ids(max_length: int = MAX_IDS, **kwargs):
    return serializers.ListField(child=strict.UUIDField(), max_length=max_length, **kwargs)


def _read_ids(**kwargs):
    return serializers.ListField(child=serializers.UUIDField(), read_only=True, **kwargs)


class TenantChoiceSerializer(serializers.Serializer):
    """``tenant_id`` of a create body: required unless the user belongs to one tenant only."""

    tenant_id = VisiblePrimaryKeyRelatedField(
        queryset=Tenant.objects.all(),
        source="tenant",
        required=False,
        help_text="The tenant to create it in; may be left out by members of one tenant only.",
    )

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if "tenant" not in attrs:
            tenants = list(Tenant.objects.visible_to(self.context["request"].user)[:2])
            if len(tenants) != 1:
                raise serializers.ValidationError({"tenant_id": ["Required: you belong to several tenants."]})
            attrs["tenant"] = tenants[0]
        return attrs


SEVERITY = {"choices": Severity.choices, "enum_name": "SeverityEnum"}

# ---------------------------------------------------------------------------------------------
# Alert rules


class AlertFiltersSerializer(serializers.Serializer):
    """What a rule looks at; an empty list means all."""

    section_ids = _read_ids()
    endpoint_ids = _read_ids()
    endpoint_tag_ids = _read_ids()
    agent_ids = _read_ids()
    metric_types = serializers.ListField(
        child=serializers.ChoiceField(METRIC_TYPES), read_only=True, help_text="Check types."
    )

    def to_representation(self, filters):
        return super().to_representation({key: (filters or {}).get(key) or [] for key in self.fields})


class AlertConditionSerializer(serializers.Serializer):
    metric = EnumField(Metric.choices, enum_name="AlertMetricEnum", read_only=True)
    operator = EnumField(Operator.choices, enum_name="AlertOperatorEnum", read_only=True)
    threshold = serializers.FloatField(read_only=True)
    aggregation = EnumField(Aggregation.choices, enum_name="AlertAggregationEnum", read_only=True)
    window_seconds = serializers.IntegerField(read_only=True)
    duration_seconds = serializers.IntegerField(read_only=True)
    filters = AlertFiltersSerializer(read_only=True)


class AlertQuorumSerializer(serializers.Serializer):
    min_agents = serializers.IntegerField(source="quorum_min_agents", read_only=True)
    min_percent = serializers.FloatField(source="quorum_min_percent", read_only=True)


class AlertRuleSerializer(serializers.ModelSerializer):
    tenant_id = serializers.UUIDField(read_only=True)
    severity = EnumField(read_only=True, **SEVERITY)
    condition = AlertConditionSerializer(source="*", read_only=True)
    quorum = AlertQuorumSerializer(source="*", read_only=True)
    notifications = serializers.PrimaryKeyRelatedField(
        source="channels", many=True, read_only=True, help_text="Ids of the channels notified."
    )
    builtin = EnumField(
        ["", AGENT_OFFLINE], enum_name="AlertRuleBuiltinEnum", read_only=True, help_text="Empty for your own rules."
    )

    class Meta:
        model = AlertRule
        fields = [
            "id",
            "tenant_id",
            "name",
            "description",
            "enabled",
            "severity",
            "condition",
            "quorum",
            "notifications",
            "cooldown_seconds",
            "notify_on_resolve",
            "builtin",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class AlertFiltersInputSerializer(StrictKeysSerializer):
    """What the rule looks at (empty lists: all); every id must be of the rule's tenant."""

    section_ids = _ids(required=False)
    endpoint_ids = _ids(required=False)
    endpoint_tag_ids = _ids(required=False, help_text="Endpoints with any of these tags.")
    agent_ids = _ids(required=False)
    metric_types = serializers.ListField(
        child=EnumField([*METRIC_TYPES, *METRIC_ALIASES], enum_name="AlertCheckTypeEnum"),
        required=False,
        max_length=len(METRIC_TYPES) + len(METRIC_ALIASES),
        help_text="The agent's check types, or upstream's icmp_ping, tcp_check, http_check, custom.",
    )


class AlertConditionChangeSerializer(StrictKeysSerializer):
    """A change to a rule's condition: the parts left out stay as they are."""

    metric = EnumField(Metric.choices, enum_name="AlertMetricEnum", required=False)
    operator = EnumField(Operator.choices, enum_name="AlertOperatorEnum", required=False)
    threshold = FiniteFloatField(required=False)
    aggregation = EnumField(Aggregation.choices, enum_name="AlertAggregationEnum", required=False)
    window_seconds = strict.IntegerField(min_value=60, max_value=DAY, required=False)
    duration_seconds = strict.IntegerField(min_value=0, max_value=DAY, required=False)
    filters = AlertFiltersInputSerializer(required=False, help_text="Filter lists left out stay as they are.")


class AlertConditionInputSerializer(AlertConditionChangeSerializer):
    """When an incident opens: the metric of the last ``window_seconds`` compared with the threshold."""

    metric = EnumField(Metric.choices, enum_name="AlertMetricEnum")
    operator = EnumField(
        Operator.choices, enum_name="AlertOperatorEnum", required=False, help_text="Required unless agent_offline."
    )
    threshold = FiniteFloatField(required=False, help_text="Required unless agent_offline.")
    aggregation = EnumField(
        Aggregation.choices,
        enum_name="AlertAggregationEnum",
        default=Aggregation.AVG,
        help_text="Of response_time_ms over the window (ignored for other metrics).",
    )
    window_seconds = strict.IntegerField(min_value=60, max_value=DAY, default=300)
    duration_seconds = strict.IntegerField(
        min_value=0, max_value=DAY, default=0, help_text="How long the condition must hold before an incident opens."
    )
    filters = AlertFiltersInputSerializer(required=False)


class AlertQuorumInputSerializer(StrictKeysSerializer):
    """How many of the agents that report on an endpoint must see it breach: at least min_agents
    and at least min_percent of them."""

    min_agents = strict.IntegerField(source="quorum_min_agents", min_value=1, max_value=10_000, default=1)
    min_percent = FiniteFloatField(source="quorum_min_percent", min_value=0, max_value=100, default=50)


class AlertRuleUpdateSerializer(serializers.Serializer):
    """A change to a rule: the parts left out stay as they are. The built-in rule's condition
    keeps its metric, operator, threshold, aggregation and window, and its quorum."""

    name = strict.CharField(max_length=200)
    description = strict.CharField(max_length=2000, allow_blank=True, default="")
    enabled = strict.BooleanField(default=True)
    severity = EnumField(default=Severity.WARNING, **SEVERITY)
    condition = AlertConditionChangeSerializer(source="*", required=False)
    quorum = AlertQuorumInputSerializer(source="*", required=False)
    notifications = _ids(MAX_CHANNELS, source="channel_ids", required=False, help_text="Ids of the channels to notify.")
    cooldown_seconds = strict.IntegerField(
        min_value=0, max_value=WEEK, default=300, help_text="Reminder interval while active; 0: no reminders."
    )
    notify_on_resolve = strict.BooleanField(default=True)


class AlertRuleCreateSerializer(TenantChoiceSerializer, AlertRuleUpdateSerializer):
    """A new rule (POST /alert-rules or POST /alerts)."""

    condition = AlertConditionInputSerializer(source="*")


# ---------------------------------------------------------------------------------------------
# Incidents ("alerts")


class IncidentSerializer(serializers.Serializer):
    """The incident document (alerting.documents): the API's answer and every notification's ``alert``."""

    id = serializers.UUIDField(read_only=True)
    rule_id = serializers.UUIDField(read_only=True)
    kind = EnumField(IncidentKind.choices, enum_name="IncidentKindEnum", read_only=True)
    status = EnumField(IncidentStatus.choices, enum_name="IncidentStatusEnum", read_only=True)
    severity = EnumField(read_only=True, **SEVERITY)
    title = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    endpoint_id = serializers.UUIDField(read_only=True, allow_null=True)
    target = serializers.CharField(read_only=True, allow_null=True)
    agent_id = serializers.UUIDField(read_only=True, allow_null=True)
    failing_agents = serializers.ListField(child=serializers.JSONField(), read_only=True)
    ok_agents = serializers.ListField(child=serializers.JSONField(), read_only=True)
    metric_type = serializers.CharField(read_only=True, allow_null=True)
    threshold_value = serializers.FloatField(read_only=True, allow_null=True)
    current_value = serializers.FloatField(read_only=True, allow_null=True)
    in_maintenance = serializers.BooleanField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    acknowledged_at = serializers.DateTimeField(read_only=True, allow_null=True)
    acknowledged_by = serializers.CharField(read_only=True, allow_null=True, help_text="Username.")
    resolved_at = serializers.DateTimeField(read_only=True, allow_null=True)
    last_notified_at = serializers.DateTimeField(read_only=True, allow_null=True)

    def to_representation(self, incident):
        return incident_document(incident)


class IncidentEventSerializer(serializers.Serializer):
    at = serializers.DateTimeField(read_only=True)
    kind = serializers.CharField(read_only=True, help_text="opened, acknowledged, resolved, notified...")
    actor = serializers.SerializerMethodField(help_text="Username of who did it; null for the server.")
    note = serializers.CharField(read_only=True)
    data = serializers.JSONField(read_only=True)

    def get_actor(self, event) -> str | None:
        return event.actor.get_username() if event.actor_id else None


class IncidentNotificationSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    channel_id = serializers.UUIDField(read_only=True)
    event = serializers.CharField(read_only=True)
    status = EnumField(NotificationStatus.choices, enum_name="NotificationStatusEnum", read_only=True)
    attempts = serializers.IntegerField(read_only=True)
    delivered_at = serializers.DateTimeField(read_only=True, allow_null=True)
    last_error = serializers.CharField(read_only=True)


class IncidentDetailSerializer(IncidentSerializer):
    """The incident document with its history and its notifications."""

    history = IncidentEventSerializer(many=True, read_only=True)
    notifications = IncidentNotificationSerializer(many=True, read_only=True)

    def to_representation(self, incident):
        return {
            **incident_document(incident),
            "history": IncidentEventSerializer(incident.events.all(), many=True).data,
            "notifications": IncidentNotificationSerializer(
                sorted(incident.notifications.all(), key=lambda n: (n.created_at, n.pk)), many=True
            ).data,
        }


class IncidentListQuerySerializer(serializers.Serializer):
    """Filters of the incident list; each one an equality, all of them together."""

    def to_internal_value(self, data):
        # DRF reads ``?status=`` from a query string as absent: that would list everything.
        empty = [name for name in self.fields if data.get(name) == ""]
        if empty:
            raise serializers.ValidationError({name: ["May not be empty."] for name in empty})
        return super().to_internal_value(data)

    status = EnumField(
        [*IncidentStatus.values, "open"],
        enum_name="IncidentStatusFilterEnum",
        required=False,
        help_text="open: active or acknowledged.",
    )
    severity = EnumField(required=False, **SEVERITY)
    kind = EnumField(IncidentKind.choices, enum_name="IncidentKindEnum", required=False)
    rule_id = strict.UUIDField(required=False)
    endpoint_id = strict.UUIDField(required=False)
    agent_id = strict.UUIDField(required=False)


class IncidentAcknowledgeSerializer(StrictKeysSerializer):
    """An optional note for the incident's history (and the people notified)."""

    note = strict.CharField(max_length=2000, allow_blank=True, required=False, default="")


# ---------------------------------------------------------------------------------------------
# Channels


class WebhookConfigurationSerializer(serializers.Serializer):
    url = serializers.URLField(read_only=True)
    secret_set = serializers.BooleanField(read_only=True, help_text="Whether requests are signed (the secret).")


class EmailConfigurationSerializer(serializers.Serializer):
    recipients = serializers.ListField(child=serializers.EmailField(), read_only=True)


class ChatConfigurationSerializer(serializers.Serializer):
    webhook_url = serializers.CharField(read_only=True, help_text="Scheme and host only: the rest is a secret.")
    webhook_url_set = serializers.BooleanField(read_only=True)


class PagerDutyConfigurationSerializer(serializers.Serializer):
    routing_key_hint = serializers.CharField(read_only=True, help_text="The routing key's last 4 characters.")


class WebhookConfigurationInputSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="http(s); not a private address unless alerts.allow_private_targets.")
    secret = serializers.CharField(
        required=False, max_length=256, help_text="Signs each body: X-Smotra-Signature: sha256=<HMAC>."
    )


class EmailConfigurationInputSerializer(serializers.Serializer):
    recipients = serializers.ListField(child=serializers.EmailField(), min_length=1, max_length=50)


class ChatConfigurationInputSerializer(serializers.Serializer):
    webhook_url = serializers.URLField(help_text="The incoming webhook URL of Slack, Discord or Teams.")


class PagerDutyConfigurationInputSerializer(serializers.Serializer):
    routing_key = serializers.CharField(min_length=1, max_length=64, help_text="The Events API v2 integration key.")


MASKED_CONFIGURATION = PolymorphicProxySerializer(
    component_name="ChannelConfiguration",
    serializers=[
        WebhookConfigurationSerializer,
        EmailConfigurationSerializer,
        ChatConfigurationSerializer,
        PagerDutyConfigurationSerializer,
    ],
    resource_type_field_name=None,
)
CONFIGURATION_INPUT = PolymorphicProxySerializer(
    component_name="ChannelConfigurationInput",
    serializers=[
        WebhookConfigurationInputSerializer,
        EmailConfigurationInputSerializer,
        ChatConfigurationInputSerializer,
        PagerDutyConfigurationInputSerializer,
    ],
    resource_type_field_name=None,
)


@extend_schema_field(CONFIGURATION_INPUT)
class ConfigurationField(serializers.DictField):
    """The channel type's configuration object (checked by the service, which knows the type)."""


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": True,
        "description": "Keys of the channel's type (see ChannelConfigurationInput); keys left out keep "
        "their stored values, so secrets need not be sent again. An empty secret removes it.",
    }
)
class ConfigurationChangeField(serializers.DictField):
    pass


class ChannelSerializer(serializers.ModelSerializer):
    tenant_id = serializers.UUIDField(read_only=True)
    type = EnumField(ChannelType.choices, enum_name="ChannelTypeEnum", read_only=True)
    configuration = serializers.SerializerMethodField(help_text="Masked: secrets are never shown.")

    class Meta:
        model = Channel
        fields = ["id", "tenant_id", "name", "type", "configuration", "enabled", "created_at", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(MASKED_CONFIGURATION)
    def get_configuration(self, channel) -> dict:
        return configuration_masked(channel.type, channel.configuration)


class ChannelUpdateSerializer(serializers.Serializer):
    """A change to a channel (never of its type)."""

    name = strict.CharField(max_length=200)
    type = EnumField(ChannelType.choices, enum_name="ChannelTypeEnum", help_text="Cannot change once created.")
    configuration = ConfigurationChangeField()
    enabled = strict.BooleanField(default=True)


class ChannelCreateSerializer(TenantChoiceSerializer):
    """A new channel: its configuration has the keys of its type."""

    name = strict.CharField(max_length=200)
    type = EnumField(ChannelType.choices, enum_name="ChannelTypeEnum")
    configuration = ConfigurationField()
    enabled = strict.BooleanField(default=True)


class ChannelTestResultSerializer(serializers.Serializer):
    delivered = serializers.BooleanField()
    status_code = serializers.IntegerField(allow_null=True, help_text="The receiver's HTTP status, if it answered.")
    error = serializers.CharField(allow_blank=True, help_text="Why it failed; empty when delivered.")


# ---------------------------------------------------------------------------------------------
# Maintenance windows


class MaintenanceWindowSerializer(serializers.ModelSerializer):
    tenant_id = serializers.UUIDField(read_only=True)
    section_ids = _read_ids()
    endpoint_ids = _read_ids()
    agent_ids = _read_ids()
    active = serializers.SerializerMethodField(help_text="Whether now is within the window.")

    class Meta:
        model = MaintenanceWindow
        fields = [
            "id",
            "tenant_id",
            "name",
            "starts_at",
            "ends_at",
            "section_ids",
            "endpoint_ids",
            "agent_ids",
            "active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_active(self, window) -> bool:
        now = self.context.setdefault("now", timezone.now())  # one clock for the whole page
        return window.starts_at <= now < window.ends_at


class MaintenanceWindowUpdateSerializer(serializers.Serializer):
    """A change to a window: lists left out stay as they are."""

    name = strict.CharField(max_length=200)
    starts_at = AwareDateTimeField()
    ends_at = AwareDateTimeField(help_text="After starts_at.")
    section_ids = _ids(default=list)
    endpoint_ids = _ids(default=list)
    agent_ids = _ids(default=list)


class MaintenanceWindowCreateSerializer(TenantChoiceSerializer, MaintenanceWindowUpdateSerializer):
    """A new window; none of the id lists: the whole tenant."""
