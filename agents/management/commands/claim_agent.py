"""``manage.py claim_agent AGENT_ID --token TOKEN --section SECTION_ID [--name NAME]``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from agents.management.commands._agents import parse_uuid
from agents.services.onboarding import agent_claim
from smotra.errors import DomainError
from tenants.models import Section
from tenants.services import Actor


class Command(BaseCommand):
    help = "Claim a registered agent into a section with its plaintext claim token (same service as the admin)."

    def add_arguments(self, parser):
        parser.add_argument("agent_id")
        parser.add_argument("--token", required=True, help="The plaintext claim token the agent printed.")
        parser.add_argument("--section", required=True, help="Section id.")
        parser.add_argument("--name", default="", help="Display name (default: the agent's hostname).")

    def handle(self, *args, agent_id, token, section, name, **options):
        target = Section.objects.select_related("tenant").filter(pk=parse_uuid(section, "section id")).first()
        if target is None:
            raise CommandError(f"No section {section}.")
        try:
            agent = agent_claim(
                actor=Actor.cli(), agent_id=parse_uuid(agent_id), claim_token=token, section=target, name=name
            )
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self.stdout.write(f"Claimed {agent.pk} as {agent.name!r} in {target}. The key goes out on its next poll.")
