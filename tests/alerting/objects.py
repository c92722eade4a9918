"""Small makers of alerting rows for tests: rules, the built-in rule, channels and incidents."""

from __future__ import annotations

from datetime import UTC, datetime

from alerting.builtin import AGENT_OFFLINE, builtin_rules_ensure
from alerting.models import AlertRule, Channel, Incident


def rule_of(tenant, **fields) -> AlertRule:
    channels = fields.pop("channels", [])
    values = {"name": "Slow", "metric": "response_time_ms", "operator": "greater_than", "threshold": 500.0}
    rule = AlertRule.objects.create(tenant=tenant, **{**values, **fields})
    rule.channels.set(channels)
    return rule


def builtin_rule(tenant) -> AlertRule:
    """The tenant's built-in agent_offline rule (made with the tenant; made here if it was not)."""
    builtin_rules_ensure(AlertRule, [tenant.pk])
    return AlertRule.objects.get(tenant=tenant, builtin=AGENT_OFFLINE)


def channel_of(tenant, type: str = "webhook", *, enabled: bool = True, name: str = "", **configuration) -> Channel:
    configuration = configuration or {"url": "https://hooks.example.com/smotra", "secret": "s3cret-value"}
    return Channel.objects.create(
        tenant=tenant, name=name or f"{type} channel", type=type, configuration=configuration, enabled=enabled
    )


def incident_of(rule: AlertRule, *, created_at: datetime | None = None, **fields) -> Incident:
    values = {
        "kind": "endpoint",
        "status": "active",
        "severity": rule.severity,
        "title": "example.org is slow",
        "created_at": created_at or datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
    }
    return Incident.objects.create(tenant=rule.tenant, rule=rule, **{**values, **fields})
