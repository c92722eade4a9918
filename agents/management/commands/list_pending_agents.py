"""``manage.py list_pending_agents [--json]``: registrations waiting for a claim."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand
from django.utils import timezone

from agents.models import AgentRegistration, RegistrationState


class Command(BaseCommand):
    help = "List agents that registered and wait to be claimed (expired ones included, marked)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="One JSON array on stdout.")

    def rows(self) -> list[dict]:
        now = timezone.now()
        pending = AgentRegistration.objects.filter(state=RegistrationState.PENDING).order_by("registered_at")
        return [
            {
                "agent_id": str(registration.pk),
                "hostname": registration.hostname,
                "agent_version": registration.agent_version,
                "ip_addresses": [entry.get("ip") for entry in registration.ip_addresses or []],
                "registered_at": registration.registered_at.isoformat(),
                "expires_at": registration.expires_at.isoformat(),
                "expired": registration.expires_at <= now,
                "locked": registration.is_locked,
                "polls": registration.poll_count,
            }
            for registration in pending
        ]

    def handle(self, *args, **options):
        rows = self.rows()
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if not rows:
            self.stdout.write("No pending agents.")
            return
        for row in rows:
            flags = " ".join(flag for flag in ("expired", "locked") if row[flag])
            addresses = ",".join(row["ip_addresses"]) or "-"
            self.stdout.write(
                f"{row['agent_id']}  {row['hostname']}  {row['agent_version']}  {addresses}  "
                f"expires {row['expires_at']}  polls {row['polls']}  {flags}".rstrip()
            )
