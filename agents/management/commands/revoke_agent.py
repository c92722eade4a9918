"""``manage.py revoke_agent AGENT_ID``: the agent's key stops working at once."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from agents.management.commands._agents import agent_by_id
from agents.services.keys import agent_revoke
from smotra.errors import DomainError
from tenants.services import Actor


class Command(BaseCommand):
    help = "Revoke an agent's API key."

    def add_arguments(self, parser):
        parser.add_argument("agent_id")

    def handle(self, *args, agent_id, **options):
        agent = agent_by_id(agent_id)
        try:
            agent_revoke(actor=Actor.cli(), agent=agent)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Revoked {agent.pk} ({agent.name}).")
