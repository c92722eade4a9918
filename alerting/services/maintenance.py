"""Maintenance windows: which of a tenant's windows cover an endpoint or an agent at a moment."""

from __future__ import annotations

from datetime import datetime

from alerting.models import MaintenanceWindow


def windows_now(tenant_id, now: datetime) -> list[MaintenanceWindow]:
    return list(MaintenanceWindow.objects.filter(tenant_id=tenant_id, starts_at__lte=now, ends_at__gt=now))


def covers(window: MaintenanceWindow, *, section_id=None, endpoint_id=None, agent_id=None) -> bool:
    """Empty lists cover the whole tenant; otherwise any listed section, endpoint or agent does."""
    if not (window.section_ids or window.endpoint_ids or window.agent_ids):
        return True
    listed = {str(value) for value in (*window.section_ids, *window.endpoint_ids, *window.agent_ids)}
    return any(str(value) in listed for value in (section_id, endpoint_id, agent_id) if value is not None)


def in_maintenance(windows: list[MaintenanceWindow], **subject) -> bool:
    return any(covers(window, **subject) for window in windows)
