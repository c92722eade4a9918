"""``manage.py purge_registrations [--older-than 7d]``: forget stale registrations and keys.

Schedule it (cron, a systemd timer, a Kubernetes CronJob) e.g. hourly; it is idempotent."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from agents.models import AgentRegistration, RegistrationState
from smotra.config import ConfigError, parse_age
from smotra.ratelimit import ratelimit_prune
from tenants.tokens import revoked_tokens_prune


class Command(BaseCommand):
    help = (
        "Delete pending registrations expired for longer than --older-than (their agents get 404 and "
        "register again), clear API keys still undelivered that long after the claim, prune rate-limit counters "
        "and logged-out tokens that have expired anyway."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", default="7d", help="Go duration, or Nd for days (default 7d).")

    def handle(self, *args, older_than: str, **options):
        cutoff = timezone.now() - self.parse_age(older_than)
        expired, _ = AgentRegistration.objects.filter(state=RegistrationState.PENDING, expires_at__lt=cutoff).delete()
        undelivered = AgentRegistration.objects.filter(
            state=RegistrationState.CLAIMED, pending_api_key__isnull=False, claimed_at__lt=cutoff
        ).update(pending_api_key=None)
        counters = ratelimit_prune()
        revoked = revoked_tokens_prune()
        self.stdout.write(
            f"Purged {expired} expired registration(s), cleared {undelivered} undelivered key(s), "
            f"pruned {counters} rate-limit counter(s) and {revoked} revoked token(s) past their expiry."
        )

    @staticmethod
    def parse_age(text: str) -> timedelta:
        try:
            return timedelta(seconds=parse_age("--older-than", text))
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
