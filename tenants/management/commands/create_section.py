"""``manage.py create_section TENANT NAME [--monitor-all] [--print-id]``: a section, from the shell."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from smotra.errors import DomainError
from tenants.management.commands._tenancy import tenant_by_name_or_id
from tenants.services import Actor, section_create


class Command(BaseCommand):
    help = (
        "Create a section of TENANT (its name or id). With --monitor-all every agent of the section "
        "monitors every enabled endpoint in it, with no tags or topologies to set up."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="Tenant name or id.")
        parser.add_argument("name")
        parser.add_argument("--description", default="")
        parser.add_argument("--monitor-all", action="store_true", help="Agents monitor all endpoints of the section.")
        parser.add_argument("--print-id", action="store_true", help="Print only the new section's id.")

    def handle(self, *args, tenant: str, name: str, description: str, monitor_all: bool, print_id: bool, **options):
        try:
            section = section_create(
                actor=Actor.cli(),
                tenant=tenant_by_name_or_id(tenant),
                name=name,
                description=description,
                monitor_all_endpoints=monitor_all,
            )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        if print_id:
            self.stdout.write(str(section.pk))
            return
        scope = "all its endpoints" if monitor_all else "what its topologies say"
        self.stdout.write(f"Created section {section} ({section.pk}); its agents monitor {scope}.")
