"""``manage.py list_sections [--tenant TENANT] [--json]``: where agents can be claimed into."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand
from django.db.models import Count

from tenants.management.commands._tenancy import tenant_by_name_or_id
from tenants.models import Section


class Command(BaseCommand):
    help = "List sections (with their tenant, agents and endpoints): the ids a claim needs."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Only this tenant's (name or id).")
        parser.add_argument("--json", action="store_true", help="One JSON array on stdout.")

    def rows(self, tenant: str | None) -> list[dict]:
        sections = Section.objects.select_related("tenant").annotate(
            agent_count=Count("agents", distinct=True), endpoint_count=Count("endpoints", distinct=True)
        )
        if tenant:
            sections = sections.filter(tenant=tenant_by_name_or_id(tenant))
        return [
            {
                "id": str(section.pk),
                "tenant_id": str(section.tenant_id),
                "tenant": section.tenant.name,
                "name": section.name,
                "monitor_all_endpoints": section.monitor_all_endpoints,
                "agents": section.agent_count,
                "endpoints": section.endpoint_count,
            }
            for section in sections.order_by("tenant__name", "name")
        ]

    def handle(self, *args, tenant=None, **options):
        rows = self.rows(tenant)
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if not rows:
            self.stdout.write("No sections yet: manage.py create_tenant NAME, then create_section TENANT NAME.")
            return
        for row in rows:
            flag = "  monitors all endpoints" if row["monitor_all_endpoints"] else ""
            self.stdout.write(
                f"{row['id']}  {row['tenant']} / {row['name']}  "
                f"{row['agents']} agent(s), {row['endpoints']} endpoint(s){flag}"
            )
