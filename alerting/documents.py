"""The one JSON shape of an incident: the API's answer and the ``alert`` of every notification."""

from __future__ import annotations

from alerting.models import Incident


def _iso(moment) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def incident_document(incident: Incident) -> dict:
    return {
        "id": str(incident.pk),
        "rule_id": str(incident.rule_id),
        "kind": incident.kind,
        "status": incident.status,
        "severity": incident.severity,
        "title": incident.title,
        "description": incident.description,
        "endpoint_id": str(incident.endpoint_id) if incident.endpoint_id else None,
        "target": incident.target or None,
        "agent_id": str(incident.agent_id) if incident.agent_id else None,
        "failing_agents": list(incident.failing_agents),
        "ok_agents": list(incident.ok_agents),
        "metric_type": incident.metric_type or None,
        "threshold_value": incident.threshold_value,
        "current_value": incident.current_value,
        "in_maintenance": incident.in_maintenance,
        "created_at": _iso(incident.created_at),
        "acknowledged_at": _iso(incident.acknowledged_at),
        "acknowledged_by": incident.acknowledged_by.get_username() if incident.acknowledged_by_id else None,
        "resolved_at": _iso(incident.resolved_at),
        "last_notified_at": _iso(incident.last_notified_at),
    }
