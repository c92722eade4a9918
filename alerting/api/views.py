"""Alerting API: alert rules, incidents (``/alerts``, upstream's name), channels and maintenance
windows, tenant-scoped; every write is a service of alerting.services."""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from alerting.api import serializers as s
from alerting.models import OPEN, AlertRule, Channel, Incident, IncidentEvent, MaintenanceWindow
from alerting.services import channels, incidents, rules, windows
from smotra.api.mixins import ServiceCreateMixin, crud_schema
from smotra.api.pagination import keyed
from tenants.api.mixins import TenantScopedCrudViewSet, TenantScopedViewSetMixin

RULES = "alert rules"
ALERTS = "alerts"


@crud_schema(s.AlertRuleSerializer, s.AlertRuleCreateSerializer, s.AlertRuleUpdateSerializer, RULES)
class AlertRuleViewSet(TenantScopedCrudViewSet):
    """Operators manage rules, viewers read them; the built-in agent_offline rule cannot be deleted."""

    queryset = AlertRule.objects.prefetch_related("channels").order_by("name", "id")
    serializer_class = s.AlertRuleSerializer
    create_serializer_class = s.AlertRuleCreateSerializer
    update_serializer_class = s.AlertRuleUpdateSerializer
    pagination_class = keyed("alert_rules")

    def create_object(self, **data):
        return rules.alert_rule_create(actor=self.actor, **data)

    def update_object(self, rule, **data):
        return rules.alert_rule_update(actor=self.actor, rule=rule, **data)

    def delete_object(self, rule):
        rules.alert_rule_delete(actor=self.actor, rule=rule)


@extend_schema_view(
    list=extend_schema(tags=[ALERTS], parameters=[s.IncidentListQuerySerializer], summary="Incidents, newest first"),
    retrieve=extend_schema(tags=[ALERTS], summary="An incident with its history and notifications"),
    create=extend_schema(
        request=s.AlertRuleCreateSerializer,
        responses={201: s.AlertRuleSerializer},
        tags=[RULES],
        summary="Create an alert rule (upstream's spelling of POST /alert-rules)",
        description="The same body, checks and answer as POST /alert-rules; operators and admins.",
    ),
)
class IncidentViewSet(
    TenantScopedViewSetMixin,
    ServiceCreateMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Incidents are opened and resolved by the evaluator: people read and acknowledge them."""

    queryset = Incident.objects.select_related("acknowledged_by").order_by("-created_at", "-id")
    serializer_class = s.IncidentSerializer
    create_serializer_class = s.AlertRuleCreateSerializer
    pagination_class = keyed("alerts")

    def get_serializer_class(self):
        if self.action in ("retrieve", "acknowledge"):
            return s.IncidentDetailSerializer
        return super().get_serializer_class()

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action in ("retrieve", "acknowledge"):
            events = Prefetch("events", queryset=IncidentEvent.objects.select_related("actor"))
            queryset = queryset.prefetch_related(events, "notifications")
        return queryset

    def list(self, request, *args, **kwargs):
        query = s.IncidentListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = self.paginate_queryset(_incidents_filter(self.get_queryset(), **query.validated_data))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def create_object(self, **data):
        return rules.alert_rule_create(actor=self.actor, **data)

    def get_response_serializer(self, instance):
        if self.action == "create":
            return s.AlertRuleSerializer(instance, context=self.get_serializer_context())
        return s.IncidentDetailSerializer(
            self.get_queryset().get(pk=instance.pk), context=self.get_serializer_context()
        )

    @extend_schema(
        request=s.IncidentAcknowledgeSerializer,
        responses=s.IncidentDetailSerializer,
        tags=[ALERTS],
        summary="Acknowledge an active incident (stops its reminders)",
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        incident = self.get_object()
        body = s.IncidentAcknowledgeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        incident = incidents.incident_acknowledge(actor=self.actor, incident=incident, **body.validated_data)
        return Response(self.get_response_serializer(incident).data)


def _incidents_filter(queryset, *, status=None, **equal):
    """``status=open`` is active or acknowledged; every other parameter is an equality."""
    if status == "open":
        queryset = queryset.filter(status__in=OPEN)
    elif status:
        queryset = queryset.filter(status=status)
    return queryset.filter(**equal)


@crud_schema(s.ChannelSerializer, s.ChannelCreateSerializer, s.ChannelUpdateSerializer, "channels")
class ChannelViewSet(TenantScopedCrudViewSet):
    """Admins manage channels, viewers see them with their secrets masked."""

    queryset = Channel.objects.order_by("name", "id")
    serializer_class = s.ChannelSerializer
    create_serializer_class = s.ChannelCreateSerializer
    update_serializer_class = s.ChannelUpdateSerializer
    pagination_class = keyed("channels")

    def create_object(self, **data):
        return channels.channel_create(actor=self.actor, **data)

    def update_object(self, channel, **data):
        return channels.channel_update(actor=self.actor, channel=channel, **data)

    def delete_object(self, channel):
        channels.channel_delete(actor=self.actor, channel=channel)

    @extend_schema(
        request=None,
        responses=s.ChannelTestResultSerializer,
        tags=["channels"],
        summary="Send a test notification now (a failed delivery is still a 200 saying why)",
    )
    @action(detail=True, methods=["post"], url_path="test")
    def send_test(self, request, pk=None):
        attempt = channels.channel_test(actor=self.actor, channel=self.get_object())
        delivered = attempt.outcome == "delivered"
        return Response({"delivered": delivered, "status_code": attempt.status_code, "error": attempt.error})


@crud_schema(
    s.MaintenanceWindowSerializer,
    s.MaintenanceWindowCreateSerializer,
    s.MaintenanceWindowUpdateSerializer,
    "maintenance windows",
)
class MaintenanceWindowViewSet(TenantScopedCrudViewSet):
    """Operators plan windows, viewers read them."""

    queryset = MaintenanceWindow.objects.order_by("-starts_at", "-id")
    serializer_class = s.MaintenanceWindowSerializer
    create_serializer_class = s.MaintenanceWindowCreateSerializer
    update_serializer_class = s.MaintenanceWindowUpdateSerializer
    pagination_class = keyed("maintenance_windows")

    def create_object(self, **data):
        return windows.maintenance_window_create(actor=self.actor, **data)

    def update_object(self, window, **data):
        return windows.maintenance_window_update(actor=self.actor, window=window, **data)

    def delete_object(self, window):
        windows.maintenance_window_delete(actor=self.actor, window=window)
