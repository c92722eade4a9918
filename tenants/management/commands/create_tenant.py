"""``manage.py create_tenant NAME [--description TEXT] [--print-id]``: a tenant, from the shell."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from smotra.errors import DomainError
from tenants.services import Actor, tenant_create


class Command(BaseCommand):
    help = "Create a tenant (an organisation whose members manage its sections). Same service as the API."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--description", default="")
        parser.add_argument("--print-id", action="store_true", help="Print only the new tenant's id.")

    def handle(self, *args, name: str, description: str, print_id: bool, **options):
        try:
            tenant = tenant_create(actor=Actor.cli(), name=name, description=description)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(str(tenant.pk) if print_id else f"Created tenant {tenant.name!r} ({tenant.pk}).")
