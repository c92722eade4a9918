"""The outbox: notifications written in the transaction that changed the incident (delivered later by
alerting.delivery, with the same idempotency key on every attempt)."""

from __future__ import annotations

from datetime import datetime

from alerting.documents import incident_document
from alerting.models import Channel, Incident, IncidentEvent, Notification, NotificationStatus

EVENTS = ("alert.opened", "alert.acknowledged", "alert.resolved", "alert.reminder", "test")


def payload_of(event: str, *, tenant_id, incident: Incident | None, rule, key, now: datetime) -> dict:
    """The webhook body (and what the other channel types render from)."""
    return {
        "event": event,
        "alert": incident_document(incident) if incident is not None else None,
        "rule": {"id": str(rule.pk), "name": rule.name} if rule is not None else None,
        "tenant_id": str(tenant_id),
        "sent_at": now.isoformat().replace("+00:00", "Z"),
        "idempotency_key": str(key),
    }


def notifications_enqueue(incident: Incident, event: str, *, now: datetime, suppressed: bool = False) -> int:
    """One outbox row per enabled channel of the incident's rule; ``suppressed`` (maintenance) rows
    are recorded but never sent. Returns how many will be sent."""
    channels = list(incident.rule.channels.filter(enabled=True, tenant_id=incident.tenant_id))
    sent = 0
    for channel in channels:
        notification = Notification(
            tenant_id=incident.tenant_id,
            incident=incident,
            channel=channel,
            event=event,
            status=NotificationStatus.SUPPRESSED if suppressed else NotificationStatus.PENDING,
            next_attempt_at=now,
            created_at=now,
        )
        notification.payload = payload_of(
            event,
            tenant_id=incident.tenant_id,
            incident=incident,
            rule=incident.rule,
            key=notification.idempotency_key,
            now=now,
        )
        notification.save()
        sent += not suppressed
    if channels and not suppressed:
        Incident.objects.filter(pk=incident.pk).update(last_notified_at=now)
        incident.last_notified_at = now
    if channels:
        IncidentEvent.objects.create(
            incident=incident,
            at=now,
            kind="suppressed" if suppressed else "notified",
            data={"event": event, "channels": [str(channel.pk) for channel in channels]},
        )
    return sent


def test_notification(channel: Channel, *, now: datetime) -> Notification:
    """A ``test`` notification for one channel (no incident), due at once."""
    notification = Notification(
        tenant_id=channel.tenant_id, channel=channel, event="test", next_attempt_at=now, created_at=now
    )
    notification.payload = payload_of(
        "test", tenant_id=channel.tenant_id, incident=None, rule=None, key=notification.idempotency_key, now=now
    )
    notification.save()
    return notification
