"""Adoption of endpoint ids agents report for but the server does not know."""

from __future__ import annotations

from django.db import transaction

from endpoints.models import Endpoint
from endpoints.services import endpoint_create
from results.models import UnknownEndpoint
from smotra.errors import Invalid


@transaction.atomic
def unknown_endpoint_adopt(*, actor, unknown: UnknownEndpoint, address: str = "") -> Endpoint:
    """Create the endpoint an agent already reports for, with that id, in the agent's section;
    its next results are accepted. Every agent's record of that id is then settled."""
    address = address or unknown.sample_address
    if not address:
        raise Invalid("No address is known for this endpoint; give one.", field="address")
    endpoint = endpoint_create(
        actor=actor, section=unknown.agent.section, address=address, endpoint_id=unknown.endpoint_id
    )
    # Settled for the agents of this tenant; another tenant's record of the same id is its own.
    UnknownEndpoint.objects.filter(
        endpoint_id=unknown.endpoint_id, agent__section__tenant=unknown.agent.section.tenant_id
    ).delete()
    return endpoint
