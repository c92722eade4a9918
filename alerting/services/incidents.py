"""Writes people make to incidents (the evaluator opens and resolves them): acknowledgement."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from alerting.models import Incident, IncidentEvent, IncidentStatus
from alerting.services.maintenance import in_maintenance, windows_now
from alerting.services.notifications import notifications_enqueue
from smotra.errors import Conflict, NotFound
from tenants.models import Role
from tenants.services import Actor, audit_record, authorize

NOT_ACTIVE = {
    IncidentStatus.ACKNOWLEDGED: ("incident_already_acknowledged", "This incident is already acknowledged."),
    IncidentStatus.RESOLVED: (
        "incident_resolved",
        "This incident is resolved; only an active one can be acknowledged.",
    ),
}


@transaction.atomic
def incident_acknowledge(*, actor: Actor, incident: Incident, note: str = "", now: datetime | None = None) -> Incident:
    """Active → acknowledged (reminders stop), with a history line and, in the same transaction, an
    ``alert.acknowledged`` notification per enabled channel of the rule (suppressed in maintenance).

    A conditional UPDATE: of two people acknowledging at once, or a person and the evaluator
    resolving, exactly one wins and the other gets 409."""
    authorize(actor, incident.tenant_id, Role.OPERATOR)
    now = now or timezone.now()
    changed = Incident.objects.filter(pk=incident.pk, status=IncidentStatus.ACTIVE).update(
        status=IncidentStatus.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=actor.user
    )
    try:
        incident.refresh_from_db()
    except Incident.DoesNotExist:  # its rule was deleted meanwhile
        raise NotFound("No such incident.") from None
    if not changed:
        code, message = NOT_ACTIVE.get(incident.status, ("incident_not_active", "This incident is not active."))
        raise Conflict(message, code=code)
    IncidentEvent.objects.create(incident=incident, at=now, kind="acknowledged", actor=actor.user, note=note)
    notifications_enqueue(incident, "alert.acknowledged", now=now, suppressed=_in_maintenance(incident, now))
    audit_record(
        actor=actor, action="incident.acknowledge", obj=incident, tenant=incident.tenant, details={"note": note}
    )
    return incident


def _in_maintenance(incident: Incident, now: datetime) -> bool:
    if incident.in_maintenance:
        return True
    subject = incident.endpoint or incident.agent
    return in_maintenance(
        windows_now(incident.tenant_id, now),
        section_id=subject.section_id if subject is not None else None,
        endpoint_id=incident.endpoint_id,
        agent_id=incident.agent_id,
    )
