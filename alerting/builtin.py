"""Every tenant's built-in rule: an agent not heard from for agent.offline_after opens an
``agent_offline`` incident. Created with the tenant (and for existing tenants by a migration),
enabled, with no channels until someone adds them; editable, not deletable."""

from __future__ import annotations

AGENT_OFFLINE = "agent_offline"

DEFAULTS = {
    "name": "Agent offline",
    "description": "An agent has not been heard from for agent.offline_after.",
    "enabled": True,
    "severity": "warning",
    "metric": "agent_offline",
    "window_seconds": 300,
    "duration_seconds": 0,
    "cooldown_seconds": 3600,
}


def builtin_rules_ensure(rule_model, tenant_ids) -> int:
    """Create the built-in rules the tenants lack; returns how many were created."""
    have = set(
        rule_model.objects.filter(builtin=AGENT_OFFLINE, tenant_id__in=tenant_ids).values_list("tenant_id", flat=True)
    )
    missing = [
        rule_model(tenant_id=tenant_id, builtin=AGENT_OFFLINE, **DEFAULTS)
        for tenant_id in tenant_ids
        if tenant_id not in have
    ]
    rule_model.objects.bulk_create(missing, ignore_conflicts=True)
    return len(missing)


def on_tenant_saved(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        from alerting.models import AlertRule

        builtin_rules_ensure(AlertRule, [instance.pk])
