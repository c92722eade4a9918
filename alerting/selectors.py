"""Reads of alerting state for other parts of the server."""

from __future__ import annotations

from django.db.models import Q

from alerting.models import OPEN, Incident


def open_incident_count(user, section_id=None) -> int:
    """Open incidents of the user's tenants (of one section: its endpoints' and agents')."""
    incidents = Incident.objects.visible_to(user).filter(status__in=OPEN)
    if section_id:
        incidents = incidents.filter(Q(endpoint__section_id=section_id) | Q(agent__section_id=section_id))
    return incidents.count()
