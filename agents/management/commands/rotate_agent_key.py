"""``manage.py rotate_agent_key AGENT_ID``: print a new key (only the key, on stdout); the old one dies."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from agents.management.commands._agents import agent_by_id
from agents.services.keys import agent_key_rotate
from smotra.errors import DomainError
from tenants.services import Actor


class Command(BaseCommand):
    help = "Issue a new API key for an agent and print it once; the old key stops working."

    def add_arguments(self, parser):
        parser.add_argument("agent_id")

    def handle(self, *args, agent_id, **options):
        try:
            key = agent_key_rotate(actor=Actor.cli(), agent=agent_by_id(agent_id))
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(key)
