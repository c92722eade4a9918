"""Shared bits of the agent management commands."""

from __future__ import annotations

import uuid

from django.core.management.base import CommandError

from agents.models import Agent


def parse_uuid(value: str, what: str = "agent id") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a valid {what}.") from None


def agent_by_id(value: str) -> Agent:
    agent = Agent.objects.select_related("section__tenant").filter(pk=parse_uuid(value)).first()
    if agent is None:
        raise CommandError(f"No claimed agent {value}.")
    return agent
