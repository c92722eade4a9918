"""Writes for alert rules: what a rule watches (always things of its own tenant) and whom it notifies.

Field names in errors are the API's (``condition.threshold``, ``notifications[0]``): the body a person
sent, whatever the caller (API or admin)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable

from django.db import transaction

from agents.models import Agent
from alerting.models import Aggregation, AlertRule, Channel, Metric, Operator, Severity
from endpoints.models import Endpoint, Tag
from results.selectors.reports import METRIC_ALIASES, METRIC_TYPES
from smotra.errors import Conflict, Invalid
from tenants.models import Role, Section, Tenant
from tenants.services import Actor, audit_record, authorize

FILTER_KEYS = ("section_ids", "endpoint_ids", "endpoint_tag_ids", "agent_ids", "metric_types")
FILTER_MODELS = {"section_ids": Section, "endpoint_ids": Endpoint, "endpoint_tag_ids": Tag, "agent_ids": Agent}
# agent_offline rules watch agents, not checks of endpoints: these filters would mean nothing there.
ENDPOINT_FILTERS = ("endpoint_ids", "endpoint_tag_ids", "metric_types")
PERCENT_METRICS = (Metric.UPTIME, Metric.LOSS)
# The model field behind each part of the API's body, for error messages.
FIELD_PATHS = {
    "metric": "condition.metric",
    "operator": "condition.operator",
    "threshold": "condition.threshold",
    "aggregation": "condition.aggregation",
    "window_seconds": "condition.window_seconds",
    "duration_seconds": "condition.duration_seconds",
    "quorum_min_agents": "quorum.min_agents",
    "quorum_min_percent": "quorum.min_percent",
}
# What a built-in rule lets people change (besides its channels and its section/agent filters).
BUILTIN_EDITABLE = {
    "name",
    "description",
    "enabled",
    "severity",
    "cooldown_seconds",
    "notify_on_resolve",
    "duration_seconds",
}


def ids_of_tenant(model, tenant: Tenant, ids: Iterable, field: str) -> list[str]:
    """``ids`` as canonical strings (duplicates dropped, order kept) when every one is a ``model`` row
    of the tenant; otherwise Invalid naming the first that is not (``field[index]``)."""
    ids = list(ids)
    canonical = [_canonical(value, f"{field}[{index}]") for index, value in enumerate(ids)]
    found = {str(pk) for pk in model.objects.for_tenant(tenant).filter(pk__in=canonical).values_list("pk", flat=True)}
    for index, value in enumerate(canonical):
        if value not in found:
            raise Invalid(f"No {model._meta.verbose_name} {value} in this tenant.", field=f"{field}[{index}]")
    return list(dict.fromkeys(canonical))


def _canonical(value, field: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise Invalid(f"{value!r} is not a UUID.", field=field) from None


def filters_clean(tenant: Tenant, filters: dict) -> dict:
    """Every filter key, as lists of the tenant's ids (metric types by the agent's names)."""
    unknown = sorted(set(filters) - set(FILTER_KEYS))
    if unknown:
        raise Invalid(f"Unknown filter {unknown[0]!r}.", field=f"condition.filters.{unknown[0]}")
    clean = {
        key: ids_of_tenant(model, tenant, filters.get(key) or (), f"condition.filters.{key}")
        for key, model in FILTER_MODELS.items()
    }
    clean["metric_types"] = _metric_types(filters.get("metric_types") or ())
    return clean


def _metric_types(names: Iterable[str]) -> list[str]:
    canonical = []
    for index, name in enumerate(names):
        name = METRIC_ALIASES.get(name, name)
        if name not in METRIC_TYPES:
            raise Invalid(f"Unknown check type {name!r}.", field=f"condition.filters.metric_types[{index}]")
        canonical.append(name)
    return sorted(set(canonical))


def channels_of_tenant(tenant: Tenant, channel_ids: Iterable) -> list[Channel]:
    ids = ids_of_tenant(Channel, tenant, channel_ids, "notifications")
    return list(Channel.objects.filter(pk__in=ids))


def _condition_check(rule: AlertRule) -> None:
    """What no single field can tell: the threshold against the metric, filters against the metric."""
    if not math.isfinite(rule.threshold):
        raise Invalid("The threshold must be a finite number.", field="condition.threshold")
    if rule.metric in PERCENT_METRICS and not 0 <= rule.threshold <= 100:
        raise Invalid(f"A threshold of {rule.metric} is a percentage (0 to 100).", field="condition.threshold")
    if rule.metric == Metric.RESPONSE_TIME and rule.threshold < 0:
        raise Invalid("A response time threshold cannot be negative.", field="condition.threshold")
    if rule.metric == Metric.AGENT_OFFLINE:
        for key in ENDPOINT_FILTERS:
            if rule.filters.get(key):
                raise Invalid(
                    f"agent_offline rules watch agents: filter them by section_ids or agent_ids, not {key}.",
                    field=f"condition.filters.{key}",
                )


@transaction.atomic
def alert_rule_create(
    *,
    actor: Actor,
    tenant: Tenant,
    name: str,
    metric: str,
    operator: str | None = None,
    threshold: float | None = None,
    description: str = "",
    enabled: bool = True,
    severity: str = Severity.WARNING,
    aggregation: str = Aggregation.AVG,
    window_seconds: int = 300,
    duration_seconds: int = 0,
    filters: dict | None = None,
    quorum_min_agents: int = 1,
    quorum_min_percent: float = 50.0,
    channel_ids: Iterable = (),
    cooldown_seconds: int = 300,
    notify_on_resolve: bool = True,
) -> AlertRule:
    """A new rule; ``operator`` and ``threshold`` are required except for agent_offline rules."""
    authorize(actor, tenant.pk, Role.OPERATOR)
    if metric != Metric.AGENT_OFFLINE:
        for field, value in (("operator", operator), ("threshold", threshold)):
            if value is None:
                raise Invalid(f"{metric} rules need a {field}.", field=FIELD_PATHS[field])
    rule = AlertRule(
        tenant=tenant,
        name=name,
        description=description,
        enabled=enabled,
        severity=severity,
        metric=metric,
        operator=operator or Operator.GREATER_THAN,
        threshold=0.0 if threshold is None else threshold,
        aggregation=aggregation,
        window_seconds=window_seconds,
        duration_seconds=duration_seconds,
        filters=filters_clean(tenant, filters or {}),
        quorum_min_agents=quorum_min_agents,
        quorum_min_percent=quorum_min_percent,
        cooldown_seconds=cooldown_seconds,
        notify_on_resolve=notify_on_resolve,
    )
    _condition_check(rule)
    rule.save()
    rule.channels.set(channels_of_tenant(tenant, channel_ids))
    audit_record(actor=actor, action="alert_rule.create", obj=rule, tenant=tenant)
    return rule


@transaction.atomic
def alert_rule_update(
    *, actor: Actor, rule: AlertRule, channel_ids: Iterable | None = None, filters: dict | None = None, **changes
) -> AlertRule:
    """Change a rule. ``filters`` keys left out keep their lists; a built-in rule keeps its condition
    (only its section/agent filters and duration change) and its quorum."""
    authorize(actor, rule.tenant_id, Role.OPERATOR)
    if rule.builtin:
        _builtin_check(rule, changes)
    for field, value in changes.items():
        setattr(rule, field, value)
    if filters is not None:
        rule.filters = filters_clean(rule.tenant, {**(rule.filters or {}), **filters})
    _condition_check(rule)
    rule.save()
    if channel_ids is not None:
        rule.channels.set(channels_of_tenant(rule.tenant, channel_ids))
    details = {**changes, **({"filters": rule.filters} if filters is not None else {})}
    if channel_ids is not None:
        details["channel_ids"] = [str(channel.pk) for channel in rule.channels.all()]
    audit_record(actor=actor, action="alert_rule.update", obj=rule, tenant=rule.tenant, details=details)
    return rule


def _builtin_check(rule: AlertRule, changes: dict) -> None:
    for field, value in changes.items():
        if field not in BUILTIN_EDITABLE and value != getattr(rule, field):
            path = FIELD_PATHS.get(field, field)
            raise Invalid(f"The built-in {rule.builtin} rule's {path} cannot change.", field=path)


@transaction.atomic
def alert_rule_delete(*, actor: Actor, rule: AlertRule) -> None:
    """Delete a rule with its incidents; the built-in rule stays (it can be disabled)."""
    authorize(actor, rule.tenant_id, Role.OPERATOR)
    if rule.builtin:
        raise Conflict(f"The built-in {rule.builtin} rule cannot be deleted; disable it instead.", code="builtin_rule")
    audit_record(actor=actor, action="alert_rule.delete", obj=rule, tenant=rule.tenant)
    rule.delete()
